"""What the detector step returns: person boxes and their scores (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Detections:
    """Person boxes from a detector. M boxes."""

    boxes: F32  # (M, 4) x1, y1, x2, y2, clipped to the image
    scores: F32  # (M,)
