"""Service answers -> what is scored: MMPose's CocoMetric post-processing, then COCO results entries.

The service already scores each person as CocoMetric's ``bbox_keypoint`` mode does
(box score x mean keypoint score above 0.2, ``format=coco``'s ``score``); boxes given in
a request score 1, so a detection file's scores are multiplied in here, as MMPose does
with its ``bbox_file``. Then per image OKS-NMS at 0.9 (CocoMetric's default ``nms_mode``),
and the entries are written as ``format=coco`` writes them.

Legend: N people of one image, K keypoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from service.eval.dataset import EvalSet, Kind, mpii_image_id
from service.eval.sigmas import COCO17_SIGMAS, CROWDPOSE14_SIGMAS, WHOLEBODY133_SIGMAS
from service.wire import formats
from service.wire.results import PoseResult

F32 = npt.NDArray[np.float32]

BBOX_PADDING = 1.25  # MMPose GetBBoxCenterScale's default, the service's bbox_padding
NMS_THRESHOLD = 0.9  # CocoMetric's nms_thr
SIGMAS = {Kind.COCO: COCO17_SIGMAS, Kind.HUMANART: COCO17_SIGMAS, Kind.WHOLEBODY: WHOLEBODY133_SIGMAS,
          Kind.CROWDPOSE: CROWDPOSE14_SIGMAS}  # fmt: skip


def concat(results: Sequence[PoseResult]) -> PoseResult:
    """The answers of one image sent in several requests (boxes in chunks), as one result."""
    first = results[0]
    if len(results) == 1:
        return first
    return replace(
        first,
        boxes=np.concatenate([r.boxes for r in results]),
        bbox_scores=np.concatenate([r.bbox_scores for r in results]),
        scores=np.concatenate([r.scores for r in results]),
        keypoints=np.concatenate([r.keypoints.reshape(len(r.boxes), -1, 3) for r in results]),
    )


def select(result: PoseResult, keep: npt.ArrayLike) -> PoseResult:
    """The people ``keep`` (indices) of ``result``."""
    index = np.asarray(keep, np.intp)
    return replace(result, boxes=result.boxes[index], bbox_scores=result.bbox_scores[index],
                   scores=result.scores[index], keypoints=result.keypoints[index])  # fmt: skip


def with_box_scores(result: PoseResult, box_scores: F32 | None) -> PoseResult:
    """Given boxes come back scoring 1: a detection file's (N,) scores take their place (MMPose's ``bbox_score``)."""
    if box_scores is None:
        return result
    scores = np.asarray(box_scores, np.float32)
    return replace(result, bbox_scores=scores, scores=(result.scores * scores).astype(np.float32))


def crop_areas(boxes: F32, input_size: tuple[int, int]) -> F32:
    """(N,) areas CocoMetric gives OKS-NMS: the crop's ``bbox_scale`` (padded 1.25, fixed to the model's aspect)."""
    width = (boxes[:, 2] - boxes[:, 0]) * BBOX_PADDING
    height = (boxes[:, 3] - boxes[:, 1]) * BBOX_PADDING
    aspect = input_size[0] / input_size[1]
    wider = width > height * aspect
    fixed_w = np.where(wider, width, height * aspect)
    fixed_h = np.where(wider, width / aspect, height)
    return (fixed_w * fixed_h).astype(np.float32)


def oks_nms(keypoints: F32, scores: F32, areas: F32, sigmas: npt.NDArray[np.float64],
            threshold: float = NMS_THRESHOLD) -> list[int]:  # fmt: skip
    """MMPose's ``oks_nms`` (``mmpose/evaluation/functional/nms.py``): keep the best, drop OKS > ``threshold``.

    OKS here is ``oks_iou``'s: every keypoint counts, the area is the pair's mean area.

    Args:
        keypoints: (N, K, 3). scores: (N,). areas: (N,). sigmas: (K,).

    Returns:
        Indices kept, best first.
    """
    variances = (np.asarray(sigmas, np.float64) * 2) ** 2
    points = np.asarray(keypoints, np.float64)[..., :2]
    order = np.asarray(scores).argsort()[::-1]
    keep: list[int] = []
    while len(order) > 0:
        i, rest = int(order[0]), order[1:]
        keep.append(i)
        d2 = ((points[rest] - points[i]) ** 2).sum(-1)  # (R, K)
        mean_area = (areas[i] + areas[rest]) / 2 + np.spacing(1)
        e = d2 / variances / mean_area[:, None] / 2
        similarity = np.exp(-e).mean(-1) if e.shape[1] else np.zeros(len(rest))
        order = rest[similarity <= threshold]
    return keep


@dataclass(frozen=True)
class Predictions:
    keypoints: list[dict[str, Any]]  # COCO keypoint results entries (format=coco), after OKS-NMS
    boxes: list[dict[str, Any]]  # COCO detection entries of the people found (box score), when a detector ran
    people: int  # people in ``keypoints``


def box_entries(result: PoseResult, image_id: int) -> list[dict[str, Any]]:
    """COCO detection results entries: the person boxes (xywh) with their box scores."""
    xywh = np.column_stack([result.boxes[:, :2], result.boxes[:, 2:] - result.boxes[:, :2]]).astype(np.float64)
    return [
        {"image_id": image_id, "category_id": 1, "bbox": np.round(xywh[i], 2).tolist(),
         "score": round(float(result.bbox_scores[i]), 5)}
        for i in range(len(result.boxes))
    ]  # fmt: skip


def collect(evalset: EvalSet, answers: dict[int, PoseResult], *, input_size: tuple[int, int],
            nms: bool = True) -> Predictions:  # fmt: skip
    """Every image's answer as results entries; ``answers`` maps an image id to its (rescored) result."""
    if evalset.kind is Kind.MPII:
        return _mpii(evalset, answers)
    keypoints: list[dict[str, Any]] = []
    boxes: list[dict[str, Any]] = []
    for task in evalset.tasks:
        result = answers.get(task.image_id)
        if result is None or not len(result.boxes):
            continue
        if task.boxes is None:
            boxes.extend(box_entries(result, task.image_id))
        if nms:
            areas = crop_areas(result.boxes, input_size)
            result = select(result, oks_nms(result.keypoints, result.scores, areas, SIGMAS[evalset.kind]))
        keypoints.extend(formats.coco(result, image_id=task.image_id))
    return Predictions(keypoints, boxes, len(keypoints))


def _mpii(evalset: EvalSet, answers: dict[int, PoseResult]) -> Predictions:
    """One entry per annotation, in the annotations' order (each image's people come back in box order)."""
    taken: dict[int, int] = {}
    entries = []
    for ann in evalset.mpii or []:
        image_id = mpii_image_id(ann["image"])
        index = taken.get(image_id, 0)
        taken[image_id] = index + 1
        entries.extend(formats.coco(select(answers[image_id], [index]), image_id=image_id))
    return Predictions(entries, [], len(entries))
