"""Reference implementations transcribed from the upstream code, for golden values.

Deliberately plain (per-instance loops, float64, the upstream's own steps) and
independent of ``service.vision``: tests compare the vectorised functions with these.

Sources (open-mmlab, Apache-2.0): mmpose ``structures/bbox/transforms.py``
(bbox_xyxy2cs, get_warp_matrix, _rotate_point, _get_3rd_point),
``datasets/transforms/topdown_transforms.py`` (_fix_aspect_ratio),
``codecs/utils/post_processing.py`` (get_simcc_maximum), ``codecs/simcc_label.py``
(decode), ``models/pose_estimators/topdown.py`` (inverse transform),
``evaluation/metrics/coco_metric.py`` (bbox_keypoint rescoring), ``models/utils/tta.py``
(flip_vectors); mmcv ``image/geometric.py`` (rescale_size); torchvision ``nms``.
"""

from __future__ import annotations

import cv2
import numpy as np


def bbox_xyxy2cs(bbox: np.ndarray, padding: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    scale = (bbox[..., 2:] - bbox[..., :2]) * padding
    center = (bbox[..., 2:] + bbox[..., :2]) * 0.5
    return center, scale


def fix_aspect_ratio(bbox_scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    w, h = np.hsplit(bbox_scale, [1])
    return np.where(w > h * aspect_ratio, np.hstack([w, w / aspect_ratio]), np.hstack([h * aspect_ratio, h]))


def _rotate_point(pt: np.ndarray, angle_rad: float) -> np.ndarray:
    sn, cs = np.sin(angle_rad), np.cos(angle_rad)
    return np.array([[cs, -sn], [sn, cs]]) @ pt


def _get_3rd_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    direction = a - b
    return b + np.r_[-direction[1], direction[0]]


def get_warp_matrix(
    center: np.ndarray, scale: np.ndarray, rot: float, output_size: tuple[int, int], inv: bool = False
) -> np.ndarray:
    """mmpose get_warp_matrix (shift 0): three float32 points through cv2.getAffineTransform."""
    src_w = scale[0]
    dst_w, dst_h = output_size
    rot_rad = np.deg2rad(rot)
    src_dir = _rotate_point(np.array([0.0, src_w * -0.5]), rot_rad)
    dst_dir = np.array([0.0, dst_w * -0.5])
    src = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = center
    src[1, :] = center + src_dir
    src[2, :] = _get_3rd_point(src[0, :], src[1, :])
    dst = np.zeros((3, 2), dtype=np.float32)
    dst[0, :] = [dst_w * 0.5, dst_h * 0.5]
    dst[1, :] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    dst[2, :] = _get_3rd_point(dst[0, :], dst[1, :])
    if inv:
        return cv2.getAffineTransform(np.float32(dst), np.float32(src))
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def get_simcc_maximum(simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, k, _ = simcc_x.shape
    simcc_x = simcc_x.reshape(n * k, -1)
    simcc_y = simcc_y.reshape(n * k, -1)
    x_locs = np.argmax(simcc_x, axis=1)
    y_locs = np.argmax(simcc_y, axis=1)
    locs = np.stack((x_locs, y_locs), axis=-1).astype(np.float32)
    max_val_x = np.amax(simcc_x, axis=1)
    max_val_y = np.amax(simcc_y, axis=1)
    mask = max_val_x > max_val_y
    max_val_x[mask] = max_val_y[mask]
    vals = max_val_x
    locs[vals <= 0.0] = -1
    return locs.reshape(n, k, 2), vals.reshape(n, k)


def simcc_decode(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    keypoints, scores = get_simcc_maximum(simcc_x.copy(), simcc_y.copy())
    keypoints /= split_ratio
    return keypoints, scores


def to_image(keypoints: np.ndarray, center: np.ndarray, scale: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """TopdownPoseEstimator.add_pred_to_datasample, one instance, float64."""
    size = np.asarray(input_size, dtype=np.float64)
    return keypoints.astype(np.float64) / size * scale + center - 0.5 * scale


def coco_bbox_keypoint_score(bbox_score: float, keypoint_scores: np.ndarray, thr: float = 0.2) -> float:
    mean_kpt_score = 0.0
    valid_num = 0
    for kpt_score in keypoint_scores:
        if kpt_score > thr:
            mean_kpt_score += kpt_score
            valid_num += 1
    if valid_num != 0:
        mean_kpt_score /= valid_num
    return bbox_score * mean_kpt_score


def flip_vectors(x_labels: np.ndarray, y_labels: np.ndarray, flip_indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return x_labels[:, flip_indices][..., ::-1], y_labels[:, flip_indices]


def rescale_size(old_size: tuple[int, int], scale: tuple[int, int]) -> tuple[tuple[int, int], float]:
    """mmcv rescale_size for a (w, h) target with keep_ratio (square targets)."""
    w, h = old_size
    max_long_edge, max_short_edge = max(scale), min(scale)
    scale_factor = min(max_long_edge / max(h, w), max_short_edge / min(h, w))
    return (int(w * float(scale_factor) + 0.5), int(h * float(scale_factor) + 0.5)), scale_factor


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """torchvision.ops.nms semantics, one box at a time."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        ok = True
        for j in keep:
            xx1, yy1 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            xx2, yy2 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
            area_i = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            area_j = (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1])
            if inter / (area_i + area_j - inter) > iou_threshold:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep
