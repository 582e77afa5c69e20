"""What a run says: the summary JSON, the table beside the published figures, and the CI check.

The published figure compared with is the served model's row (``service.models.published``)
for the same benchmark, preferring the row whose boxes (ground truth or a detector) and
flip test match the run's; its conditions are printed under the table, so a comparison
across different conditions is never silent.
"""

from __future__ import annotations

from typing import Any, TextIO

from service.eval.dataset import Kind
from service.models.registry import REGISTRY


def synthetic_warning(models: list[str]) -> str:
    """What the summary and the table say when ``models`` (pose model, detector) have synthetic weights."""
    return (
        f"SYNTHETIC WEIGHTS ({', '.join(models)}): random weights of the right architecture, so what "
        f"{'it predicts' if len(models) == 1 else 'they predict'} is meaningless, and so is every figure measured "
        "from it, until the official weights are installed (python -m service.models pull NAME)."
    )


PRIMARY = {Kind.MPII: "PCKh@0.5"}  # else AP
PERSON_BOXES = {Kind.COCO: "coco-person", Kind.HUMANART: "humanart-person", Kind.WHOLEBODY: "coco-person",
                Kind.CROWDPOSE: "coco-person"}  # fmt: skip


def primary_metric(kind: Kind) -> str:
    return PRIMARY.get(kind, "AP")


def figures(name: str | None) -> list[dict[str, Any]]:
    """The registry's published rows of a model, as dicts (none for a name the registry does not know)."""
    entry = REGISTRY.get(name) if name else None
    return [figure.to_dict() for figure in entry.published] if entry else []


def pick_published(rows: list[dict[str, Any]], dataset: str, *, boxes: str, flip_test: bool | None,
                   metric: str, detector: str | None = None) -> dict[str, Any] | None:  # fmt: skip
    """The row to compare with: same dataset and metric; then same boxes, then boxes unknown; then the served
    detector's row (where rows name their detector); then same flip test (None: the model's default, off)."""
    wanted = "gt" if boxes == "gt" else "detector"
    candidates = [r for r in rows if r["dataset"] == dataset and r["metric"] == metric]
    if not candidates:
        return None

    def rank(row: dict[str, Any]) -> tuple[int, int, int]:
        box_rank = 2 if row["boxes"] == wanted else 1 if row["boxes"] is None else 0
        detector_rank = int(detector is not None and row["detector"] == detector)  # (ground-truth rows name none)
        return box_rank, detector_rank, int(row["flip_test"] == bool(flip_test))

    return max(candidates, key=rank)


def _published_values(row: dict[str, Any] | None, metric: str) -> dict[str, float]:
    if row is None:
        return {}
    out = {metric: row["value"], **row["details"]}
    if row["ar"] is not None:
        out["AR"] = row["ar"]
    return out


def table_rows(summary: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(metric, measured, published) for the table: every measured keypoint figure, then the person boxes'."""
    kind = Kind(summary["dataset"])
    published = _published_values(summary["published"], primary_metric(kind))
    rows = [(name, value, published.get(name)) for name, value in summary["keypoints"].items()]
    rows += [(name, None, value) for name, value in published.items() if name not in summary["keypoints"]]
    if summary.get("bbox"):
        rows.append(("person box AP", summary["bbox"]["AP"], _box_ap_published(summary)))
    return rows


def _box_ap_published(summary: dict[str, Any]) -> float | None:
    """Beside the served detector's box AP: the person AP of the detector the published row used (the seed's
    "detector having human AP of 56.4"), else the served detector's own published AP."""
    row, detector = summary["published"], summary.get("published_detector")
    if row is not None and row["detector_ap"] is not None:
        return float(row["detector_ap"])
    return float(detector["value"]) if detector else None


_FLIP = {True: "on", False: "off", None: "the model's default"}


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def write_table(summary: dict[str, Any], out: TextIO) -> None:
    """The table (metric, measured, published, difference) and what the published row was measured with."""
    if summary.get("warning"):
        out.write(f"\n*** {summary['warning']} ***\n\n")
    out.write(f"{'metric':<16} {'measured':>10} {'published':>10} {'difference':>11}\n")
    for name, measured, published in table_rows(summary):
        diff = None if measured is None or published is None else measured - published
        sign = "" if diff is None or diff < 0 else "+"
        out.write(f"{name:<16} {_number(measured):>10} {_number(published):>10} {sign + _number(diff):>11}\n")
    row = summary["published"]
    out.write(f"\n{summary['model'] or 'model not given'} on {summary['dataset']}: {summary['images']} images, "
              f"{summary['people']} people")  # fmt: skip
    if summary["boxes"] is not None:  # a run (not --score)
        out.write(
            f", boxes {summary['boxes']}, flip test {_FLIP[summary['flip_test']]}, weights "
            f"{summary['weights']}, {summary['backend']} {summary['precision']}, {summary['seconds']:.1f} s"
        )
    out.write("\n")
    if row is None:
        out.write("published: no published figure of this model for this benchmark\n")
    else:
        conditions = f"boxes {row['boxes'] or 'not stated'}"
        if row["detector_ap"] is not None:
            conditions += (
                f" (detector of person AP {row['detector_ap']:.3f}{', ' + row['detector'] if row['detector'] else ''})"
            )
        flip = {True: "on", False: "off", None: "not stated"}[row["flip_test"]]
        out.write(f"published: {row['dataset_name']}, {conditions}, flip test {flip}; model_zoo.md {row['source']}\n")
    detector = summary.get("published_detector")
    if summary.get("bbox") and detector is not None:
        out.write(
            f"{summary['detector']}'s own published box AP: {detector['value']:.3f} ({detector['dataset_name']})\n"
        )
    if summary.get("warning"):
        out.write(f"\n*** {summary['warning']} ***\n")


def check_within(summary: dict[str, Any], within: float) -> str | None:
    """None when the primary metric lies within ``within`` of the published one, else why not."""
    metric = primary_metric(Kind(summary["dataset"]))
    row = summary["published"]
    if row is None:
        return f"--expect-within: no published {metric} of {summary['model']} for {summary['dataset']} to hold to"
    measured = summary["keypoints"][metric]
    if abs(measured - row["value"]) > within:
        gap = measured - row["value"]
        return f"{metric} {measured:.4f} is {gap:+.4f} from the published {row['value']:.4f} (allowed ±{within:g})"
    return None
