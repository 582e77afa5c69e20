"""Moving people for stream tests: each person a detector band with two pose markers (head and feet).

The pose oracle of :func:`install_tracking_pose` reads keypoints 0-8 from the red marker
near the box's top-left corner and 9-16 from the green one near its bottom-right corner,
so the confident keypoints span the person (a tracker's next box comes from them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from service.wire._proto.pose.v1 import pose_pb2 as pb
from tests.helpers import png
from tests.oracles import BANDS, draw_marker, draw_person, install_pose_oracle

Box = tuple[int, int, int, int]
HEAD_CHANNELS = [0] * 9 + [1] * 8  # network input channels (RGB after the swap): red head, green feet
INSET = 20  # markers sit this far inside the box corners


def install_tracking_pose(repo: Path, name: str = "pose", **config: object) -> Path:
    return install_pose_oracle(repo, name, channels=HEAD_CHANNELS, **config)


def markers(box: Sequence[float]) -> NDArray[np.float64]:
    """(17, 2) where the pose oracle puts each keypoint for a person in ``box``."""
    x1, y1, x2, y2 = box
    head, feet = (x1 + INSET, y1 + INSET), (x2 - INSET, y2 - INSET)
    return np.array([head] * 9 + [feet] * 8, np.float64)


def frame(boxes: Sequence[Box], size: tuple[int, int] = (640, 480), *, jitter: NDArray | None = None) -> NDArray:
    """A BGR frame with one band per box (BANDS, in order) and its two markers (``jitter``: (P, 2, 2) offsets)."""
    image = np.zeros((size[1], size[0], 3), np.uint8)
    for p, (box, (lo, hi)) in enumerate(zip(boxes, BANDS, strict=False)):
        draw_person(image, box, channel=0, value=int((lo + hi) / 2))
        points = markers(box)[[0, 9]]
        if jitter is not None:
            points = points + jitter[p]
        draw_marker(image, tuple(points[0]), channel=2)  # red (BGR index 2)
        draw_marker(image, tuple(points[1]), channel=1)  # green
    return image


def walk(start: Box, step: tuple[float, float], frames: int) -> list[Box]:
    """The box moving by ``step`` pixels per frame."""
    x1, y1, x2, y2 = start
    return [
        (round(x1 + i * step[0]), round(y1 + i * step[1]), round(x2 + i * step[0]), round(y2 + i * step[1]))
        for i in range(frames)
    ]


TOLERANCE = 3.6  # px: the oracle's precision through the crop resampling (as in the unary tests)


def frame_message(frame_id: int, image: np.ndarray | bytes, timestamp: float = 0.0) -> pb.StreamRequest:
    data = image if isinstance(image, bytes) else png(image)
    return pb.StreamRequest(frame=pb.Frame(frame_id=frame_id, timestamp=timestamp, image=pb.Image(encoded=data)))
