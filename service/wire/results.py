"""The answer for one image, :class:`PoseResult`, and the one visibility rule (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class PoseResult:
    """Every person of one image, in original image pixels. N people, K keypoints."""

    width: int
    height: int
    pose_model: str
    detector: str | None
    keypoint_set: str
    weights: str  # "synthetic" if any model used is synthetic, else "custom" if any is, else "official"
    boxes: F32  # (N, 4)
    bbox_scores: F32  # (N,)
    scores: F32  # (N,) person score, MMPose's bbox score x mean visible keypoint score
    keypoints: F32  # (N, K, 3) x, y, score
    timing_ms: dict[str, float] = field(default_factory=dict)


def visible(scores: npt.ArrayLike, keypoint_threshold: float) -> npt.NDArray[np.bool_]:
    """Which keypoints count as visible: score above the threshold (NaN never is).

    Args:
        scores: (..., K) keypoint scores.

    Returns:
        (..., K) bool.
    """
    return np.asarray(scores) > keypoint_threshold
