"""COCO-style scoring: pycocotools for COCO, Human-Art and person boxes; xtcocotools where MMPose needs it.

- COCO / Human-Art keypoints (17): pycocotools' ``COCOeval(..., "keypoints")``: what
  MMPose's CocoMetric computes (xtcocotools with ``use_area=True`` is pycocotools there).
- COCO-WholeBody (133): MMPose's ``CocoWholeBodyMetric``: xtcocotools, one COCOeval per part
  (``keypoints_body``, ``_foot``, ``_face``, ``_lefthand``, ``_righthand``) with that part's
  sigmas, then ``keypoints_wholebody`` with all 133; ``use_area=True``.
- CrowdPose (14): CocoMetric with ``iou_type="keypoints_crowd"``, ``use_area=False``:
  AP, AR and AP easy / medium / hard by the images' ``crowdIndex``.
- Person boxes: pycocotools' ``COCOeval(..., "bbox")`` on category 1.

Results entries are scored without their ``bbox``: ``loadRes`` would otherwise take a
detection's area from the box instead of from its keypoints' extent, as MMPose's results
(which carry no box) get it. The libraries print; their output goes to the debug log.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from xtcocotools.coco import COCO as XTCOCO
from xtcocotools.cocoeval import COCOeval as XTCOCOeval

from service.eval.sigmas import CROWDPOSE14_SIGMAS, WHOLEBODY133_SIGMAS, WHOLEBODY_PARTS

logger = logging.getLogger(__name__)

KEYPOINT_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
CROWD_STATS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP easy", "AP medium", "AP hard")
BBOX_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR", "ARs", "ARm", "ARl")

Stats = dict[str, float]


@contextlib.contextmanager
def _quiet(what: str) -> Iterator[None]:
    """The evaluation libraries print their tables and warn (xtcocotools: no per-part scores, so the person
    score is used, as in MMPose): keep stdout for ours, log theirs at debug."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    logger.debug("%s:\n%s%s", what, captured.getvalue(), "".join(f"warning: {w.message}\n" for w in caught))


def _stats(names: Sequence[str], values: Sequence[float]) -> Stats:
    return {name: round(float(v), 6) for name, v in zip(names, values, strict=False)}


def without_boxes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keypoint results entries as they are scored and written: without their ``bbox``."""
    return [{k: v for k, v in e.items() if k != "bbox"} for e in entries]


def _run(evaluator: Any, image_ids: Sequence[int] | None, what: str) -> list[float]:
    if image_ids is not None:
        evaluator.params.imgIds = list(image_ids)
    with _quiet(what):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return list(evaluator.stats)


def score_coco(annotations: Path, entries: list[dict[str, Any]], image_ids: Sequence[int] | None = None) -> Stats:
    """COCO keypoint AP / AR (pycocotools), as MMPose's CocoMetric on COCO and Human-Art."""
    if not entries:
        return dict.fromkeys(KEYPOINT_STATS, 0.0)
    with _quiet("load"):
        gt = COCO(str(annotations))
        dt = gt.loadRes(without_boxes(entries))
    return _stats(KEYPOINT_STATS, _run(COCOeval(gt, dt, "keypoints"), image_ids, "keypoints"))


def score_boxes(annotations: Path, entries: list[dict[str, Any]], image_ids: Sequence[int] | None = None) -> Stats:
    """Person box AP / AR (pycocotools ``bbox`` on category 1): the detector's own figure."""
    if not entries:
        return dict.fromkeys(BBOX_STATS, 0.0)
    with _quiet("load"):
        gt = COCO(str(annotations))
        dt = gt.loadRes(entries)
    evaluator = COCOeval(gt, dt, "bbox")
    evaluator.params.catIds = [1]
    return _stats(BBOX_STATS, _run(evaluator, image_ids, "bbox"))


def split_wholebody(entry: dict[str, Any]) -> dict[str, Any]:
    """A 133-keypoint entry (``format=coco``: one flat list) in CocoWholeBodyMetric's per-part fields."""
    if "foot_kpts" in entry:
        return entry
    flat = entry["keypoints"]
    out = {k: v for k, v in entry.items() if k not in ("keypoints", "bbox")}
    for _, field, start, end in WHOLEBODY_PARTS:
        out[field] = flat[start * 3 : end * 3]
    return out


def score_wholebody(annotations: Path, entries: list[dict[str, Any]],
                    image_ids: Sequence[int] | None = None) -> Stats:  # fmt: skip
    """MMPose's CocoWholeBodyMetric: whole-body AP / AR (``AP``, ``AR``, ...) and each part's AP and AR."""
    if not entries:
        return dict.fromkeys(KEYPOINT_STATS, 0.0)
    with _quiet("load"):
        gt = XTCOCO(str(annotations))
        dt = gt.loadRes([split_wholebody(e) for e in entries])
    out: Stats = {}
    for part, _, start, end in WHOLEBODY_PARTS:
        evaluator = XTCOCOeval(gt, dt, f"keypoints_{part}", WHOLEBODY133_SIGMAS[start:end], use_area=True)
        evaluator.params.useSegm = None
        stats = _run(evaluator, image_ids, part)
        out[f"{part} AP"], out[f"{part} AR"] = round(float(stats[0]), 6), round(float(stats[5]), 6)
    evaluator = XTCOCOeval(gt, dt, "keypoints_wholebody", WHOLEBODY133_SIGMAS, use_area=True)
    evaluator.params.useSegm = None
    return {**_stats(KEYPOINT_STATS, _run(evaluator, image_ids, "wholebody")), **out}


def score_crowdpose(annotations: Path, entries: list[dict[str, Any]],
                    image_ids: Sequence[int] | None = None) -> Stats:  # fmt: skip
    """CrowdPose AP, AR and AP easy / medium / hard (xtcocotools ``keypoints_crowd``, no areas).

    The easy / medium / hard split reads the annotation file itself, so a subset
    (``image_ids``) is written to a file of its own first.
    """
    if not entries:
        return dict.fromkeys(CROWD_STATS, 0.0)
    with tempfile.TemporaryDirectory() as folder:
        if image_ids is not None:
            annotations = _subset(annotations, set(image_ids), Path(folder) / "subset.json")
            entries = [e for e in entries if e["image_id"] in set(image_ids)]
        with _quiet("load"):
            gt = XTCOCO(str(annotations))
            dt = gt.loadRes(without_boxes(entries))
        evaluator = XTCOCOeval(gt, dt, "keypoints_crowd", CROWDPOSE14_SIGMAS, use_area=False)
        evaluator.params.useSegm = None
        return _stats(CROWD_STATS, _run(evaluator, None, "crowdpose"))


def _subset(annotations: Path, image_ids: set[int], target: Path) -> Path:
    data = json.loads(annotations.read_text())
    data["images"] = [img for img in data["images"] if img["id"] in image_ids]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in image_ids]
    target.write_text(json.dumps(data))
    return target
