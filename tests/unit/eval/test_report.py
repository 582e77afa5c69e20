"""The published row a run is compared with, the table, and --expect-within."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.eval import report
from service.eval.__main__ import main


def test_the_row_with_the_runs_boxes_is_preferred() -> None:
    rows = report.figures("rtmpose-m-humanart")
    gt = report.pick_published(rows, "humanart", boxes="gt", flip_test=False, metric="AP")
    detector = report.pick_published(rows, "humanart", boxes="detector", flip_test=False, metric="AP")
    assert (gt["value"], gt["boxes"]) == (0.728, "gt")
    assert (detector["value"], detector["detector_ap"]) == (0.355, 0.562)
    coco = report.pick_published(rows, "coco", boxes="some-detections.json", flip_test=True, metric="AP")
    assert coco["value"] == 0.725  # a detection file is a detector's boxes
    assert report.pick_published(rows, "mpii", boxes="gt", flip_test=False, metric="PCKh@0.5") is None
    # rows that name their detector: the served one's
    pipeline = report.figures("rtmpose-m-aic-coco")
    for served, expected in (("rtmdet-nano", 0.732), ("rtmdet-m", 0.757)):
        row = report.pick_published(pipeline, "coco", boxes="detector", flip_test=False, metric="AP", detector=served)
        assert (row["value"], row["detector"]) == (expected, served)
    assert report.figures("not-a-registry-model") == []


def _ground_truth_results(coco4: Path, tmp_path: Path) -> Path:
    annotations = json.loads((coco4 / "test_coco.json").read_text())
    entries = [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
                "keypoints": [v if i % 3 != 2 else 1.0 for i, v in enumerate(a["keypoints"])]}
               for a in annotations["annotations"] if a["num_keypoints"]]  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps(entries))
    return path


@pytest.mark.parametrize(("within", "code"), [(0.3, 0), (0.2, 1)])
def test_expect_within_holds_ap_to_the_published_figure(coco4: Path, tmp_path: Path, within: float, code: int,
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    results = _ground_truth_results(coco4, tmp_path)
    summary = tmp_path / "summary.json"
    argv = ["--annotations", str(coco4 / "test_coco.json"), "--score", str(results), "--model", "rtmpose-m",
            "--summary", str(summary), "--expect-within", str(within)]  # fmt: skip
    assert main(argv) == code  # AP 1.0 against rtmpose-m's published 0.749: 0.251 apart
    written = json.loads(summary.read_text())
    assert written["keypoints"]["AP"] == 1.0
    assert written["published"]["value"] == 0.749
    out = capsys.readouterr()
    assert "+0.2510" in out.out
    assert ("0.251" in out.err) == bool(code)


def test_synthetic_weights_are_said_loudly() -> None:
    summary = {"dataset": "coco", "keypoints": {"AP": 0.01}, "published": None, "model": "rtmpose-m", "images": 1,
               "people": 1, "boxes": "gt", "flip_test": False, "weights": "synthetic", "backend": "onnxruntime",
               "precision": "fp32", "seconds": 1.0, "warning": report.synthetic_warning(["rtmpose-m"])}  # fmt: skip

    class Out:
        text = ""

        def write(self, s: str) -> None:
            Out.text += s

    report.write_table(summary, Out())  # type: ignore[arg-type]
    assert Out.text.count("SYNTHETIC WEIGHTS (rtmpose-m)") == 2
    assert "meaningless" in Out.text
