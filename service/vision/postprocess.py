"""Network outputs to results: SimCC decoding, inverse crop mapping, detector outputs, NMS, rescoring.

Reproduces MMPose's ``SimCCLabel.decode`` / ``get_simcc_maximum``, the inverse
transform of ``TopdownPoseEstimator.add_pred_to_datasample``, ``flip_vectors``,
CocoMetric's ``bbox_keypoint`` rescoring, and the detector post-processing of
mmdet / Megvii YOLOX, batch-first.

Legend:
    N: instances (person crops) in the batch.
    K: keypoints per instance.
    Wx, Wy: SimCC vector lengths, ``input_w * split_ratio`` and ``input_h * split_ratio``.
    D: detections of one image; A: anchors (grid cells) of a raw YOLOX head; C: classes.
    M: boxes kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "box_iou",
    "decode_simcc",
    "decode_yolox_raw",
    "detections_to_boxes",
    "flip_simcc_back",
    "keypoints_to_image",
    "nms",
    "person_scores",
]


def decode_simcc(
    simcc_x: NDArray[np.floating], simcc_y: NDArray[np.floating], split_ratio: float
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """SimCC vectors to keypoints in network-input pixels (MMPose ``SimCCLabel.decode``).

    Location: argmax per axis (first maximum on ties), divided by ``split_ratio``.
    Score: the **minimum** of the x and y maxima (MMPose ``get_simcc_maximum``; rtmlib
    averages them instead). Where the score is <= 0 MMPose sets both bins to -1 before
    the division, so those keypoints decode to ``-1 / split_ratio``; kept as is.
    Non-finite scores (a broken model) are reported as 0 so results stay valid JSON.

    Args:
        simcc_x: (N, K, Wx) x-axis SimCC.
        simcc_y: (N, K, Wy) y-axis SimCC.
        split_ratio: SimCC bins per input pixel (``simcc_split_ratio``, 2.0 for RTMPose).

    Returns:
        locs: (N, K, 2) float32 (x, y) in network-input pixels.
        scores: (N, K) float32.
    """
    if simcc_x.ndim != 3 or simcc_y.ndim != 3 or simcc_x.shape[:2] != simcc_y.shape[:2]:
        raise ValueError(f"simcc_x and simcc_y must be (N, K, L) alike, got {simcc_x.shape} and {simcc_y.shape}")
    locs = np.stack((simcc_x.argmax(axis=2), simcc_y.argmax(axis=2)), axis=-1).astype(np.float32)
    scores = np.minimum(simcc_x.max(axis=2), simcc_y.max(axis=2)).astype(np.float32)
    scores[~np.isfinite(scores)] = 0.0
    locs[scores <= 0.0] = -1.0
    locs /= np.float32(split_ratio)
    return locs, scores


def keypoints_to_image(
    locs: NDArray[np.floating],
    centers: ArrayLike,
    scales: ArrayLike,
    input_size: tuple[int, int],
) -> NDArray[np.float32]:
    """Network-input pixels back to image pixels: ``loc / input_size * scale + center - 0.5 * scale``.

    The inverse of the crop warp, as MMPose ``TopdownPoseEstimator.add_pred_to_datasample``.

    Args:
        locs: (N, K, 2) keypoints (x, y) in network-input pixels.
        centers: (N, 2) box centres used for the crops.
        scales: (N, 2) aspect-fixed box sizes used for the crops.
        input_size: Network input (w, h).

    Returns:
        (N, K, 2) float32 keypoints in image pixels.
    """
    centers = np.asarray(centers, dtype=np.float32).reshape(-1, 1, 2)
    scales = np.asarray(scales, dtype=np.float32).reshape(-1, 1, 2)
    size = np.asarray(input_size, dtype=np.float32)
    return np.asarray(locs, dtype=np.float32) / size * scales + centers - 0.5 * scales


def flip_simcc_back(
    simcc_x: NDArray[np.floating], simcc_y: NDArray[np.floating], flip_index: ArrayLike
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """Undo a horizontal input flip on SimCC outputs (MMPose ``flip_vectors``).

    Swaps left/right keypoints and reverses the x vectors; the caller then averages
    with the unflipped outputs, ``(x + x_back) * 0.5``, as MMPose's flip test does
    (no half-bin shift for SimCC in MMPose, none here).

    Args:
        simcc_x: (N, K, Wx) outputs for the flipped crops.
        simcc_y: (N, K, Wy) outputs for the flipped crops.
        flip_index: (K,) keypoint permutation (``KeypointSet.flip_index``).

    Returns:
        (x, y): (N, K, Wx) and (N, K, Wy), in the unflipped frame (new arrays).
    """
    index = np.asarray(flip_index, dtype=np.intp)
    return simcc_x[:, index, ::-1], simcc_y[:, index]


def detections_to_boxes(
    dets: NDArray[np.floating],
    labels: NDArray[np.integer],
    ratio: float | tuple[float, float],
    image_size: tuple[int, int],
    *,
    score_threshold: float,
    person_class: int,
    max_people: int,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """One image's detector output (letterboxed pixels) to person boxes in image pixels.

    Keeps ``label == person_class`` and ``score > score_threshold`` (strict, as mmdet's
    ``score_thr`` and MMPose's demos), divides by the letterbox ratio, clips to the image
    (mmdet clips to the resized image before rescaling: the same), drops boxes left with
    no area (they cannot be cropped), sorts by score (stable) and keeps ``max_people``.

    Args:
        dets: (D, 5) x1, y1, x2, y2, score in letterboxed-input pixels.
        labels: (D,) class ids.
        ratio: The letterbox ratio, (ratio_x, ratio_y) or one float (``letterbox`` output).
        image_size: Original image (w, h).
        score_threshold: Keep scores above this.
        person_class: Class id of "person" (0 for COCO-trained detectors).
        max_people: Most boxes returned.

    Returns:
        boxes: (M, 4) float32 x1, y1, x2, y2 in image pixels, best first.
        scores: (M,) float32.
    """
    dets = np.asarray(dets, dtype=np.float32).reshape(-1, 5)
    labels = np.asarray(labels).reshape(-1)
    keep = (labels == person_class) & (dets[:, 4] > score_threshold)
    ratio_xy = np.broadcast_to(np.asarray(ratio, dtype=np.float32), (2,))
    boxes = dets[keep, :4]  # a copy (boolean index): divided in place
    boxes /= np.tile(ratio_xy, 2)
    width, height = image_size
    np.clip(boxes[:, 0::2], 0.0, width, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0.0, height, out=boxes[:, 1::2])
    scores = dets[keep, 4]
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores = boxes[valid], scores[valid]
    order = np.argsort(-scores, kind="stable")[:max_people]
    return boxes[order], scores[order]


def box_iou(boxes_a: NDArray[np.floating], boxes_b: NDArray[np.floating]) -> NDArray[np.float32]:
    """Pairwise IoU of (x1, y1, x2, y2) boxes, areas without the legacy "+1" (torchvision / mmcv).

    Args:
        boxes_a: (P, 4) boxes.
        boxes_b: (Q, 4) boxes.

    Returns:
        (P, Q) float32 IoU; 0 where both boxes are empty.
    """
    a = np.asarray(boxes_a, dtype=np.float32).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, dtype=np.float32).reshape(1, -1, 4)
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: NDArray[np.floating], scores: NDArray[np.floating], iou_threshold: float) -> NDArray[np.intp]:
    """Greedy non-maximum suppression (torchvision ``nms`` semantics).

    Boxes are visited by decreasing score (stable on ties); a box is dropped when its
    IoU with an already kept box is greater than ``iou_threshold``. One vectorised IoU
    row per kept box: O(D) memory, however many raw boxes come in.

    Args:
        boxes: (D, 4) x1, y1, x2, y2.
        scores: (D,) scores.
        iou_threshold: Suppress above this IoU.

    Returns:
        (M,) indices into ``boxes`` of the kept boxes, best first.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float32).reshape(-1), kind="stable")
    ranked = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[order]
    remaining = np.arange(len(order))
    keep = []
    while remaining.size:
        best, rest = remaining[0], remaining[1:]
        keep.append(best)
        remaining = rest[box_iou(ranked[best : best + 1], ranked[rest])[0] <= iou_threshold]
    return order[np.asarray(keep, dtype=np.intp)]


def decode_yolox_raw(
    output: NDArray[np.floating],
    input_size: tuple[int, int],
    strides: Sequence[int] = (8, 16, 32),
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64]]:
    """A raw YOLOX head (exported without decoding or NMS) to boxes, as Megvii ``demo_postprocess``.

    Per anchor: centre ``(xy + grid) * stride``, size ``exp(wh) * stride``; score =
    objectness x best class probability, class = that class (both already sigmoid-ed
    in the export), as Megvii's ``postprocess`` and mmdet's YOLOX head.

    Args:
        output: (A, 5 + C) or (N, A, 5 + C): cx, cy, w, h, objectness, C class scores;
            anchors ordered stride by stride, row-major within a stride.
        input_size: Network input (w, h).
        strides: Feature strides of the head.

    Returns:
        boxes: (..., A, 4) float32 x1, y1, x2, y2 in network-input pixels.
        scores: (..., A) float32.
        class_ids: (..., A) int64.
    """
    output = np.asarray(output, dtype=np.float32)
    width, height = input_size
    grids, steps = [], []
    for stride in strides:
        xs, ys = np.meshgrid(np.arange(width // stride), np.arange(height // stride))
        grids.append(np.stack((xs, ys), axis=-1).reshape(-1, 2))
        steps.append(np.full((grids[-1].shape[0], 1), stride))
    grid = np.concatenate(grids).astype(np.float32)
    step = np.concatenate(steps).astype(np.float32)
    if output.shape[-2] != len(grid) or output.shape[-1] < 6:
        raise ValueError(f"output must be (..., {len(grid)}, 5 + C) for input {input_size}, got {output.shape}")
    centers = (output[..., :2] + grid) * step
    half = np.exp(output[..., 2:4]) * step * 0.5
    boxes = np.concatenate((centers - half, centers + half), axis=-1)
    class_scores = output[..., 5:]
    class_ids = class_scores.argmax(axis=-1)
    scores = output[..., 4] * np.take_along_axis(class_scores, class_ids[..., None], axis=-1)[..., 0]
    return boxes.astype(np.float32), scores.astype(np.float32), class_ids.astype(np.int64)


def person_scores(
    bbox_scores: ArrayLike, keypoint_scores: NDArray[np.floating], threshold: float = 0.2
) -> NDArray[np.float32]:
    """Instance scores as MMPose CocoMetric ``score_mode='bbox_keypoint'``.

    ``bbox_score * mean(keypoint scores > threshold)``; the mean is 0 when no keypoint
    passes (so the instance scores 0), exactly as ``CocoMetric`` (strict ``>``).

    Args:
        bbox_scores: (N,) detector scores (1.0 for boxes given by the caller).
        keypoint_scores: (N, K) keypoint scores.
        threshold: ``keypoint_score_thr`` (MMPose default 0.2).

    Returns:
        (N,) float32 instance scores.
    """
    kpt = np.asarray(keypoint_scores, dtype=np.float64)
    valid = kpt > threshold
    count = valid.sum(axis=-1)
    total = np.where(valid, kpt, 0.0).sum(axis=-1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return (np.asarray(bbox_scores, dtype=np.float64).reshape(-1) * mean).astype(np.float32)
