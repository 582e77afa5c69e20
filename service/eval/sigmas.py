"""Per-keypoint OKS sigmas of each benchmark, as MMPose's dataset meta files give them.

COCO-17 is pycocotools' own (``service.vision.tracking.COCO17_SIGMAS``). COCO-WholeBody's 133
(body 17, feet 6, face 68, left hand 21, right hand 21) are MMPose's
``configs/_base_/datasets/coco_wholebody.py`` (from COCO-WholeBody's ``myeval_wholebody.py``);
CrowdPose's 14 are ``configs/_base_/datasets/crowdpose.py``.
"""

from __future__ import annotations

import numpy as np

from service.vision.tracking import COCO17_SIGMAS

__all__ = ["COCO17_SIGMAS", "CROWDPOSE14_SIGMAS", "WHOLEBODY133_SIGMAS", "WHOLEBODY_PARTS"]

WHOLEBODY133_SIGMAS = np.array([
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062,
    0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.068, 0.066, 0.066,
    0.092, 0.094, 0.094, 0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031,
    0.025, 0.020, 0.023, 0.029, 0.032, 0.037, 0.038, 0.043, 0.041, 0.045,
    0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013, 0.015,
    0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017,
    0.011, 0.009, 0.011, 0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010,
    0.034, 0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009,
    0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.01,
    0.008, 0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035,
    0.018, 0.024, 0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02, 0.019,
    0.022, 0.031, 0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024,
    0.035, 0.018, 0.024, 0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02,
    0.019, 0.022, 0.031,
])  # fmt: skip

CROWDPOSE14_SIGMAS = np.array(
    [0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079]
)

# COCO-WholeBody parts: (results / annotation field, first keypoint, end), as CocoWholeBodyMetric cuts them
WHOLEBODY_PARTS: tuple[tuple[str, str, int, int], ...] = (
    ("body", "keypoints", 0, 17),
    ("foot", "foot_kpts", 17, 23),
    ("face", "face_kpts", 23, 91),
    ("lefthand", "lefthand_kpts", 91, 112),
    ("righthand", "righthand_kpts", 112, 133),
)
