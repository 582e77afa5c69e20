"""MPII PCKh, as MMPose's ``MpiiPCKAccuracy`` computes it (no library does it MMPose's way).

Follows ``mmpose/evaluation/metrics/keypoint_2d_metrics.py`` (``MpiiPCKAccuracy``) and
``mmpose/evaluation/functional/keypoint_eval.py`` (``keypoint_pck_accuracy``):

- predictions move to MPII's 1-based (MATLAB) pixels (+1); ground truth stays as in the json;
- a joint is correct when its distance / head size < the threshold; joints that are not
  visible, or of a person whose head size is 0, do not count;
- PCKh is the per-joint accuracy weighted by each joint's count, pelvis and thorax
  (joints 6 and 7) left out; PCKh@0.1 the same at 0.1;
- head size: the diagonal of the head box x 0.6 (``MpiiDataset``'s ``SC_BIAS``), from the
  head boxes of ``mpii_gt_val.mat`` (``headboxes_src``).

Results are fractions (MMPose prints percentages: 90.7 is 0.907). Legend: N people, K = 16 joints.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.io import loadmat

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
SC_BIAS = 0.6
# MPII joint order: 0 r ankle, 1 r knee, 2 r hip, 3 l hip, 4 l knee, 5 l ankle, 6 pelvis, 7 thorax,
# 8 upper neck, 9 head top, 10 r wrist, 11 r elbow, 12 r shoulder, 13 l shoulder, 14 l elbow, 15 l wrist
PARTS = {"Head": (9,), "Shoulder": (13, 12), "Elbow": (14, 11), "Wrist": (15, 10), "Hip": (3, 2), "Knee": (4, 1),
         "Ankle": (5, 0)}  # fmt: skip


def head_sizes(headbox_file: Path) -> F64:
    """(N,) head sizes from MMPose's ``mpii_gt_val.mat`` (``headboxes_src`` (2, 2, N): two corners per person)."""
    boxes = np.transpose(loadmat(str(headbox_file))["headboxes_src"], [2, 0, 1]).astype(np.float64)  # (N, 2, 2)
    return np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=1) * SC_BIAS


def joint_accuracy(pred: F64, gt: F64, visible: npt.NDArray[np.bool_], head: F64, threshold: float) -> F64:
    """(K,) fraction of visible joints within ``threshold`` head sizes; -1 for a joint never visible.

    Args:
        pred: (N, K, 2) predictions, 1-based. gt: (N, K, 2). visible: (N, K). head: (N,) head sizes.
    """
    mask = visible.astype(bool) & (head > 0)[:, None]
    norm = np.where(head > 0, head, 1e6)[:, None]
    distances = np.linalg.norm((pred - gt) / norm[..., None], axis=-1)  # (N, K)
    counted = mask.sum(axis=0)
    hits = ((distances < threshold) & mask).sum(axis=0)
    return np.where(counted > 0, hits / np.maximum(counted, 1), -1.0)


def pckh(pred: F64, gt: F64, visible: npt.NDArray[np.bool_], head: F64) -> dict[str, float]:
    """PCKh@0.5, PCKh@0.1 and the per-part PCKh@0.5 of MpiiPCKAccuracy, as fractions.

    Args:
        pred: (N, 16, 2) predicted joints in 0-based image pixels (the service's).
        gt: (N, 16, 2) ``joints`` of MMPose's MPII json (1-based). visible: (N, 16) ``joints_vis``.
        head: (N,) head sizes (:func:`head_sizes`).
    """
    pred = np.asarray(pred, np.float64) + 1.0
    gt = np.asarray(gt, np.float64)
    visible = np.asarray(visible).astype(bool)
    pelvis_and_thorax = np.zeros(visible.shape[1], bool)
    pelvis_and_thorax[6:8] = True  # MpiiPCKAccuracy leaves joints 6 and 7 out of the mean
    count = np.ma.array(visible.sum(axis=0).astype(np.float64), mask=pelvis_and_thorax)
    ratio = count / np.sum(count)
    at = {t: np.ma.array(joint_accuracy(pred, gt, visible, head, t), mask=False) for t in (0.5, 0.1)}
    out = {"PCKh@0.5": float(np.sum(at[0.5] * ratio)), "PCKh@0.1": float(np.sum(at[0.1] * ratio))}
    for name, joints in PARTS.items():
        out[name] = float(np.mean([at[0.5][j] for j in joints]))
    return {k: round(v, 6) for k, v in out.items()}


def score_mpii(annotations: list[dict[str, Any]], entries: list[dict[str, Any]], headbox_file: Path,
               positions: list[int] | None = None) -> dict[str, float]:  # fmt: skip
    """PCKh of ``entries`` (one per annotation, in order) against MMPose's MPII json annotations.

    Args:
        positions: the annotations' positions in their file (the head boxes' order); None: all, in order.

    Raises:
        ValueError: entries and annotations (or head boxes) do not pair up one to one.
    """
    head = head_sizes(headbox_file)
    if positions is not None and len(head) > max(positions, default=-1):
        head = head[positions]
    if not len(entries) == len(annotations) == len(head):
        raise ValueError(
            f"{len(entries)} results, {len(annotations)} annotations and {len(head)} head boxes: MPII pairs them "
            "by position (the annotation file and mpii_gt_val.mat of the same split)"
        )
    pred = np.array([e["keypoints"] for e in entries], np.float64).reshape(len(entries), -1, 3)[..., :2]
    gt = np.array([a["joints"] for a in annotations], np.float64)
    visible = np.array([a["joints_vis"] for a in annotations]) > 0
    return pckh(pred, gt, visible, head)
