"""Video a fake camera plays: a y4m file (what Chromium's ``--use-file-for-fake-video-capture`` reads).

YUV4MPEG2 is a text header, then per frame ``FRAME\\n`` and the I420 planes (Y at full size,
U and V at half size each way). Chromium plays the file in a loop at its frame rate, so a
clip whose last frame meets its first (a walk there and back) never jumps.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from tests.streams import Box, frame, walk


def write_y4m(path: Path, frames: Iterable[NDArray[np.uint8]], fps: int = 15) -> Path:
    """Write BGR frames (all one size, even sides) as a y4m file."""
    with path.open("wb") as out:
        for i, image in enumerate(frames):
            if i == 0:
                height, width = image.shape[:2]
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def walking_there_and_back(start: Box, step: tuple[float, float], frames: int) -> list[Box]:
    """The boxes of a person walking ``frames`` steps and back: a loop without a jump."""
    there = walk(start, step, frames)
    return there + there[-2:0:-1]


def walking_clip(path: Path, size: tuple[int, int] = (480, 360), frames: int = 30, fps: int = 15) -> Path:
    """One oracle person (tests/streams.py) walking across ``size`` and back, as a y4m clip."""
    boxes = walking_there_and_back((20, 30, 130, 320), (4.0, 0.5), frames)
    return write_y4m(path, (frame([box], size) for box in boxes), fps)
