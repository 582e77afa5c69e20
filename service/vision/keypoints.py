"""Keypoint sets: names, skeleton edges, left/right flip pairs and colours.

PROVISIONAL: COCO-17 is complete; the other sets carry only their sizes until the
vision work fills them in (same API).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class KeypointSet:
    name: str
    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_pairs: tuple[tuple[int, int], ...] = ()
    flip_index: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = np.arange(len(self.names))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        object.__setattr__(self, "flip_index", index)

    @property
    def num_keypoints(self) -> int:
        return len(self.names)


COCO17 = KeypointSet(
    name="coco17",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),  # fmt: skip
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
        (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),  # fmt: skip
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
)


def _sized(name: str, count: int) -> KeypointSet:
    return KeypointSet(name=name, names=tuple(f"{name}_{i}" for i in range(count)))


KEYPOINT_SETS: dict[str, KeypointSet] = {
    s.name: s
    for s in (
        COCO17,
        _sized("wholebody133", 133),
        _sized("halpe26", 26),
        _sized("mpii16", 16),
        _sized("crowdpose14", 14),
        _sized("hand21", 21),
        _sized("face106", 106),
        _sized("face68", 68),
        _sized("wflw98", 98),
        _sized("ap10k17", 17),
    )
}
