"""Pure tracking maths on batched arrays: boxes from keypoints, OKS, OKS-NMS, box merging, greedy matching.

Conventions: N, P, Q people, K keypoints; boxes (., 4) x1, y1, x2, y2 in image pixels;
keypoints (., K, 3) x, y, score. Float32 in, float32 out. No state, no package imports.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from service.vision.postprocess import box_iou

__all__ = [
    "COCO17_SIGMAS",
    "boxes_from_keypoints",
    "greedy_match",
    "keypoint_sigmas",
    "merge_boxes",
    "oks",
    "oks_nms",
]

F32 = NDArray[np.float32]

# per-keypoint OKS sigmas of COCO-17 (pycocotools' COCOeval), nose .. right ankle
COCO17_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89], np.float32
) / np.float32(10.0)


def keypoint_sigmas(num_keypoints: int) -> F32:
    """OKS sigmas: COCO's for 17 keypoints, else COCO's mean for every keypoint (an approximation)."""
    if num_keypoints == len(COCO17_SIGMAS):
        return COCO17_SIGMAS
    return np.full(num_keypoints, COCO17_SIGMAS.mean(), np.float32)


def boxes_from_keypoints(
    keypoints: F32, *, score_threshold: float, min_keypoints: int, scale: float, width: int, height: int
) -> tuple[F32, NDArray[np.bool_]]:
    """The box around each pose's confident keypoints, scaled about its centre and clipped to the image.

    MMDeploy's PoseTracker rule: only keypoints scoring >= ``score_threshold`` count, and a
    pose with fewer than ``min_keypoints`` of them gives no box.

    Args:
        keypoints: (N, K, 3).
        scale: Side factor about the centre, e.g. 1.25.

    Returns:
        (N, 4) boxes (zeros where invalid) and (N,) valid flags.
    """
    keypoints = np.asarray(keypoints, np.float32).reshape(len(keypoints), -1, 3)
    good = keypoints[..., 2] >= score_threshold  # (N, K)
    valid = good.sum(axis=1) >= max(1, min_keypoints)
    inf = np.float32(np.inf)
    xs, ys = keypoints[..., 0], keypoints[..., 1]
    x1, y1 = np.where(good, xs, inf).min(axis=1), np.where(good, ys, inf).min(axis=1)
    x2, y2 = np.where(good, xs, -inf).max(axis=1), np.where(good, ys, -inf).max(axis=1)
    cx, cy = (x1 + x2) * 0.5, (y1 + y2) * 0.5
    half_w, half_h = (x2 - x1) * (scale * 0.5), (y2 - y1) * (scale * 0.5)
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    boxes = np.clip(boxes, 0, np.array([width, height, width, height], np.float32))
    boxes[~valid] = 0
    return boxes.astype(np.float32), valid


def oks(keypoints_a: F32, keypoints_b: F32, areas_b: F32, sigmas: F32, *, score_threshold: float = 0.0) -> F32:
    """Object keypoint similarity of every pose in ``a`` to every pose in ``b`` (COCO's formula).

    Only keypoints of ``b`` scoring above ``score_threshold`` count (COCO: the visible
    ground-truth keypoints); a pair with none is 0.

    Args:
        keypoints_a: (P, K, 3).
        keypoints_b: (Q, K, 3).
        areas_b: (Q,) object areas (pixels^2) of ``b``, e.g. box areas.
        sigmas: (K,) per-keypoint sigmas.

    Returns:
        (P, Q) OKS in [0, 1].
    """
    a = np.asarray(keypoints_a, np.float32)[:, None]  # (P, 1, K, 3)
    b = np.asarray(keypoints_b, np.float32)[None]  # (1, Q, K, 3)
    variances = (2.0 * np.asarray(sigmas, np.float32)) ** 2  # (K,)
    d2 = ((a[..., :2] - b[..., :2]) ** 2).sum(-1)  # (P, Q, K)
    area = np.maximum(np.asarray(areas_b, np.float32), 1.0)[None, :, None]
    e = d2 / (variances * area * 2.0)
    counted = (b[..., 2] > score_threshold).astype(np.float32)  # (1, Q, K)
    total = counted.sum(-1)
    return np.divide((np.exp(-e) * counted).sum(-1), total, out=np.zeros(d2.shape[:2], np.float32), where=total > 0)


def oks_nms(keypoints: F32, scores: F32, areas: F32, sigmas: F32, threshold: float) -> NDArray[np.intp]:
    """Greedy NMS on poses by OKS: keep the best pose, drop others with OKS > ``threshold`` to it, repeat.

    Args:
        keypoints: (N, K, 3). scores: (N,). areas: (N,) box areas.

    Returns:
        Indices of the kept poses, best first.
    """
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")
    similarity = oks(keypoints, keypoints, areas, sigmas)
    keep: list[int] = []
    removed = np.zeros(len(order), bool)
    for i in order:
        if removed[i]:
            continue
        keep.append(int(i))
        removed |= similarity[i] > threshold
    return np.array(keep, np.intp)


def merge_boxes(first: F32, second: F32, iou_threshold: float) -> NDArray[np.intp]:
    """Which boxes of ``second`` survive beside all of ``first`` (``first`` wins every overlap).

    MMDeploy's rule on detector frames: track boxes (``first``) and detections (``second``)
    are merged by IoU-NMS with the track boxes ranked first; a detection overlapping a
    track box, or a better detection, by more than ``iou_threshold`` goes. ``second`` is
    assumed best first (detectors answer so).

    Returns:
        Indices into ``second`` of the kept boxes.
    """
    second = np.asarray(second, np.float32).reshape(-1, 4)
    blocked = np.zeros(len(second), bool)
    if len(first):
        blocked |= (box_iou(second, first) > iou_threshold).any(axis=1)
    keep: list[int] = []
    pairwise = box_iou(second, second)
    for i in range(len(second)):
        if blocked[i]:
            continue
        keep.append(i)
        blocked |= pairwise[i] > iou_threshold
    return np.array(keep, np.intp)


def greedy_match(similarity: F32, threshold: float) -> list[tuple[int, int]]:
    """Greedy one-to-one matching: the most similar pair first, then the next among the rest.

    Args:
        similarity: (P, Q) scores, higher is better.
        threshold: pairs below it never match.

    Returns:
        (row, column) pairs.
    """
    sim = np.array(similarity, np.float32, copy=True)
    pairs: list[tuple[int, int]] = []
    if sim.size == 0:
        return pairs
    while True:
        row, col = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[row, col] < threshold or sim[row, col] == -np.inf:
            return pairs
        pairs.append((int(row), int(col)))
        sim[row, :] = -np.inf
        sim[:, col] = -np.inf
