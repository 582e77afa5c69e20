"""Keypoint sets: names, skeleton links, left/right flip pairs and drawing colours.

Every table below is transcribed by a script from the dataset meta files of
open-mmlab/mmpose (``configs/_base_/datasets/*.py`` as shipped in the mmpose
1.3.2 release), the files MMPose itself reads through ``parse_pose_metainfo``:
keypoint order is the order of ``keypoint_info``, a skeleton link is the pair of
``link`` names turned into indices, a flip pair is a keypoint and its ``swap``,
and the colours are MMPose's visualiser colours, **RGB** as in the configs
(MMPose's defaults where a config gives none: keypoint (255, 128, 0), link
(96, 96, 255)). Face sets have no skeleton in MMPose, so none here.

Legend: K keypoints, L skeleton links.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["KEYPOINT_SETS", "KeypointSet"]

RGB = tuple[int, int, int]

DEFAULT_KEYPOINT_COLOR_RGB: RGB = (255, 128, 0)  # mmpose parse_pose_metainfo default
DEFAULT_LINK_COLOR_RGB: RGB = (96, 96, 255)  # mmpose parse_pose_metainfo default


@dataclass(frozen=True)
class KeypointSet:
    """One keypoint layout (what a pose model's K output channels mean).

    Attributes:
        name: Our name for the set (``coco17``, ``wholebody133``, ...), used in model configs.
        names: The K keypoint names, in model output order.
        skeleton: L links as (index, index) pairs, in MMPose's drawing order.
        flip_pairs: Left/right pairs (i, j), i < j, swapped by a horizontal flip.
        keypoint_colors_rgb: K colours, RGB (reverse them for cv2 drawing).
        link_colors_rgb: L colours, RGB.
        dataset: The MMPose ``dataset_name`` the tables come from.
        flip_index: (K,) int64, derived: ``flip_index[k]`` is the keypoint that k becomes
            in a horizontally flipped image (MMPose ``flip_indices``); an involution.
    """

    name: str
    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_pairs: tuple[tuple[int, int], ...] = ()
    keypoint_colors_rgb: tuple[RGB, ...] = ()
    link_colors_rgb: tuple[RGB, ...] = ()
    dataset: str = ""
    flip_index: NDArray[np.int64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        count = len(self.names)
        if len(set(self.names)) != count:
            raise ValueError(f"{self.name}: keypoint names are not unique")
        for a, b in (*self.skeleton, *self.flip_pairs):
            if not (0 <= a < count and 0 <= b < count) or a == b:
                raise ValueError(f"{self.name}: pair ({a}, {b}) is out of range for {count} keypoints")
        index = np.arange(count, dtype=np.int64)
        for a, b in self.flip_pairs:
            if index[a] != a or index[b] != b:
                raise ValueError(f"{self.name}: keypoint of flip pair ({a}, {b}) already has a partner")
            index[a], index[b] = b, a
        index.setflags(write=False)
        object.__setattr__(self, "flip_index", index)
        if not self.keypoint_colors_rgb:
            object.__setattr__(self, "keypoint_colors_rgb", (DEFAULT_KEYPOINT_COLOR_RGB,) * count)
        if not self.link_colors_rgb:
            object.__setattr__(self, "link_colors_rgb", (DEFAULT_LINK_COLOR_RGB,) * len(self.skeleton))
        if len(self.keypoint_colors_rgb) != count or len(self.link_colors_rgb) != len(self.skeleton):
            raise ValueError(f"{self.name}: need one colour per keypoint and one per link")

    @property
    def num_keypoints(self) -> int:
        """K, the number of keypoints."""
        return len(self.names)


def _numbered(prefix: str, start: int, stop: int) -> tuple[str, ...]:
    """``prefix{start}`` .. ``prefix{stop - 1}``: MMPose's numbered names (face landmarks, fingers)."""
    return tuple(f"{prefix}{i}" for i in range(start, stop))


def _runs(*runs: tuple[RGB, int]) -> tuple[RGB, ...]:
    """Expand (colour, count) runs into one colour per item."""
    return tuple(color for color, count in runs for _ in range(count))


# COCO person keypoints; mmpose configs/_base_/datasets/coco.py
COCO17 = KeypointSet(
    name="coco17",
    dataset="coco",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
        "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle",
    ),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
        (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    flip_pairs=(
        (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
    ),
    keypoint_colors_rgb=_runs(
        ((51, 153, 255), 5), ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 1),
        ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1),
        ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 1),
    ),
    link_colors_rgb=_runs(
        ((0, 255, 0), 2), ((255, 128, 0), 2), ((51, 153, 255), 4), ((0, 255, 0), 1), ((255, 128, 0), 1),
        ((0, 255, 0), 1), ((255, 128, 0), 1), ((51, 153, 255), 7),
    ),
)  # fmt: skip

# COCO-WholeBody (body 17, feet 6, face 68, left hand 21, right hand 21); mmpose .../coco_wholebody.py
WHOLEBODY133 = KeypointSet(
    name="wholebody133",
    dataset="coco_wholebody",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
        "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
        "right_heel", *_numbered("face-", 0, 68), "left_hand_root", *_numbered("left_thumb", 1, 5),
        *_numbered("left_forefinger", 1, 5), *_numbered("left_middle_finger", 1, 5),
        *_numbered("left_ring_finger", 1, 5), *_numbered("left_pinky_finger", 1, 5), "right_hand_root",
        *_numbered("right_thumb", 1, 5), *_numbered("right_forefinger", 1, 5),
        *_numbered("right_middle_finger", 1, 5), *_numbered("right_ring_finger", 1, 5),
        *_numbered("right_pinky_finger", 1, 5),
    ),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
        (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6), (15, 17), (15, 18), (15, 19), (16, 20), (16, 21),
        (16, 22), (91, 92), (92, 93), (93, 94), (94, 95), (91, 96), (96, 97), (97, 98), (98, 99), (91, 100),
        (100, 101), (101, 102), (102, 103), (91, 104), (104, 105), (105, 106), (106, 107), (91, 108), (108, 109),
        (109, 110), (110, 111), (112, 113), (113, 114), (114, 115), (115, 116), (112, 117), (117, 118), (118, 119),
        (119, 120), (112, 121), (121, 122), (122, 123), (123, 124), (112, 125), (125, 126), (126, 127), (127, 128),
        (112, 129), (129, 130), (130, 131), (131, 132),
    ),
    flip_pairs=(
        (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 20), (18, 21), (19, 22),
        (23, 39), (24, 38), (25, 37), (26, 36), (27, 35), (28, 34), (29, 33), (30, 32), (40, 49), (41, 48), (42, 47),
        (43, 46), (44, 45), (54, 58), (55, 57), (59, 68), (60, 67), (61, 66), (62, 65), (63, 70), (64, 69), (71, 77),
        (72, 76), (73, 75), (78, 82), (79, 81), (83, 87), (84, 86), (88, 90), (91, 112), (92, 113), (93, 114),
        (94, 115), (95, 116), (96, 117), (97, 118), (98, 119), (99, 120), (100, 121), (101, 122), (102, 123),
        (103, 124), (104, 125), (105, 126), (106, 127), (107, 128), (108, 129), (109, 130), (110, 131), (111, 132),
    ),
    keypoint_colors_rgb=_runs(
        ((51, 153, 255), 5), ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 1),
        ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1),
        ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 7), ((255, 255, 255), 69), ((255, 128, 0), 4),
        ((255, 153, 255), 4), ((102, 178, 255), 4), ((255, 51, 51), 4), ((0, 255, 0), 4), ((255, 255, 255), 1),
        ((255, 128, 0), 4), ((255, 153, 255), 4), ((102, 178, 255), 4), ((255, 51, 51), 4), ((0, 255, 0), 4),
    ),
    link_colors_rgb=_runs(
        ((0, 255, 0), 2), ((255, 128, 0), 2), ((51, 153, 255), 4), ((0, 255, 0), 1), ((255, 128, 0), 1),
        ((0, 255, 0), 1), ((255, 128, 0), 1), ((51, 153, 255), 7), ((0, 255, 0), 3), ((255, 128, 0), 7),
        ((255, 153, 255), 4), ((102, 178, 255), 4), ((255, 51, 51), 4), ((0, 255, 0), 4), ((255, 128, 0), 4),
        ((255, 153, 255), 4), ((102, 178, 255), 4), ((255, 51, 51), 4), ((0, 255, 0), 4),
    ),
)  # fmt: skip

# Halpe-26: COCO-17 plus head, neck, hip and feet; mmpose configs/_base_/datasets/halpe26.py
HALPE26 = KeypointSet(
    name="halpe26",
    dataset="halpe26",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
        "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe",
        "left_heel", "right_heel",
    ),
    skeleton=(
        (15, 13), (13, 11), (11, 19), (16, 14), (14, 12), (12, 19), (17, 18), (18, 19), (18, 5), (5, 7), (7, 9),
        (18, 6), (6, 8), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6), (15, 20), (15, 22),
        (15, 24), (16, 21), (16, 23), (16, 25),
    ),
    flip_pairs=(
        (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (20, 21), (22, 23), (24, 25),
    ),
    keypoint_colors_rgb=_runs(
        ((51, 153, 255), 5), ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 1),
        ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1),
        ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 10),
    ),
    link_colors_rgb=_runs(
        ((0, 255, 0), 3), ((255, 128, 0), 3), ((51, 153, 255), 2), ((0, 255, 0), 3), ((255, 128, 0), 3),
        ((51, 153, 255), 7), ((0, 255, 0), 3), ((255, 128, 0), 3),
    ),
)  # fmt: skip

# MPII human pose; mmpose configs/_base_/datasets/mpii.py
MPII16 = KeypointSet(
    name="mpii16",
    dataset="mpii",
    names=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
        "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
        "left_wrist",
    ),
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (8, 12), (12, 11), (11, 10), (8, 13),
        (13, 14), (14, 15),
    ),
    flip_pairs=(
        (0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13),
    ),
    keypoint_colors_rgb=_runs(
        ((255, 128, 0), 3), ((0, 255, 0), 3), ((51, 153, 255), 4), ((255, 128, 0), 3), ((0, 255, 0), 3),
    ),
    link_colors_rgb=_runs(
        ((255, 128, 0), 3), ((0, 255, 0), 3), ((51, 153, 255), 3), ((255, 128, 0), 3), ((0, 255, 0), 3),
    ),
)  # fmt: skip

# CrowdPose; mmpose configs/_base_/datasets/crowdpose.py
CROWDPOSE14 = KeypointSet(
    name="crowdpose14",
    dataset="crowdpose",
    names=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "top_head", "neck",
    ),
    skeleton=(
        (10, 8), (8, 6), (11, 9), (9, 7), (6, 7), (0, 6), (1, 7), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (12, 13),
        (1, 13), (0, 13),
    ),
    flip_pairs=(
        (0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11),
    ),
    keypoint_colors_rgb=_runs(
        ((51, 153, 255), 5), ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 1),
        ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1), ((255, 128, 0), 1), ((0, 255, 0), 1),
    ),
    link_colors_rgb=_runs(
        ((0, 255, 0), 2), ((255, 128, 0), 2), ((51, 153, 255), 4), ((0, 255, 0), 1), ((255, 128, 0), 1),
        ((0, 255, 0), 1), ((255, 128, 0), 1), ((51, 153, 255), 3),
    ),
)  # fmt: skip

# COCO-WholeBody hand (one hand); mmpose configs/_base_/datasets/coco_wholebody_hand.py
HAND21 = KeypointSet(
    name="hand21",
    dataset="coco_wholebody_hand",
    names=(
        "wrist", *_numbered("thumb", 1, 5), *_numbered("forefinger", 1, 5), *_numbered("middle_finger", 1, 5),
        *_numbered("ring_finger", 1, 5), *_numbered("pinky_finger", 1, 5),
    ),
    skeleton=(
        (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12), (0, 13),
        (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20),
    ),
    keypoint_colors_rgb=_runs(
        ((255, 255, 255), 1), ((255, 128, 0), 4), ((255, 153, 255), 4), ((102, 178, 255), 4), ((255, 51, 51), 4),
        ((0, 255, 0), 4),
    ),
    link_colors_rgb=_runs(
        ((255, 128, 0), 4), ((255, 153, 255), 4), ((102, 178, 255), 4), ((255, 51, 51), 4), ((0, 255, 0), 4),
    ),
)  # fmt: skip

# LaPa face landmarks; mmpose configs/_base_/datasets/lapa.py
FACE106 = KeypointSet(
    name="face106",
    dataset="lapa",
    names=(
        *_numbered("kpt-", 0, 106),
    ),
    flip_pairs=(
        (0, 32), (1, 31), (2, 30), (3, 29), (4, 28), (5, 27), (6, 26), (7, 25), (8, 24), (9, 23), (10, 22), (11, 21),
        (12, 20), (13, 19), (14, 18), (15, 17), (33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49),
        (40, 48), (41, 47), (55, 65), (56, 64), (57, 63), (58, 62), (59, 61), (66, 79), (67, 78), (68, 77), (69, 76),
        (70, 75), (71, 82), (72, 81), (73, 80), (74, 83), (84, 90), (85, 89), (86, 88), (91, 95), (92, 94),
        (96, 100), (97, 99), (101, 103), (104, 105),
    ),
    keypoint_colors_rgb=_runs(
        ((255, 0, 0), 106),
    ),
)  # fmt: skip

# COCO-WholeBody face (68 landmarks); mmpose configs/_base_/datasets/coco_wholebody_face.py
FACE68 = KeypointSet(
    name="face68",
    dataset="coco_wholebody_face",
    names=(
        *_numbered("face-", 0, 68),
    ),
    flip_pairs=(
        (0, 16), (1, 15), (2, 14), (3, 13), (4, 12), (5, 11), (6, 10), (7, 9), (17, 26), (18, 25), (19, 24),
        (20, 23), (21, 22), (31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46), (48, 54),
        (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67),
    ),
    keypoint_colors_rgb=_runs(
        ((255, 0, 0), 68),
    ),
)  # fmt: skip

# WFLW face landmarks; mmpose configs/_base_/datasets/wflw.py
WFLW98 = KeypointSet(
    name="wflw98",
    dataset="wflw",
    names=(
        *_numbered("kpt-", 0, 98),
    ),
    flip_pairs=(
        (0, 32), (1, 31), (2, 30), (3, 29), (4, 28), (5, 27), (6, 26), (7, 25), (8, 24), (9, 23), (10, 22), (11, 21),
        (12, 20), (13, 19), (14, 18), (15, 17), (33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49),
        (40, 48), (41, 47), (55, 59), (56, 58), (60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74),
        (67, 73), (76, 82), (77, 81), (78, 80), (83, 87), (84, 86), (88, 92), (89, 91), (93, 95), (96, 97),
    ),
    keypoint_colors_rgb=_runs(
        ((255, 0, 0), 98),
    ),
)  # fmt: skip

# AP-10K animal pose; mmpose configs/_base_/datasets/ap10k.py
AP10K17 = KeypointSet(
    name="ap10k17",
    dataset="ap10k",
    names=(
        "L_Eye", "R_Eye", "Nose", "Neck", "Root of tail", "L_Shoulder", "L_Elbow", "L_F_Paw", "R_Shoulder",
        "R_Elbow", "R_F_Paw", "L_Hip", "L_Knee", "L_B_Paw", "R_Hip", "R_Knee", "R_B_Paw",
    ),
    skeleton=(
        (0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (3, 5), (5, 6), (6, 7), (3, 8), (8, 9), (9, 10), (4, 11), (11, 12),
        (12, 13), (4, 14), (14, 15), (15, 16),
    ),
    flip_pairs=(
        (0, 1), (5, 8), (6, 9), (7, 10), (11, 14), (12, 15), (13, 16),
    ),
    keypoint_colors_rgb=_runs(
        ((0, 255, 0), 1), ((255, 128, 0), 1), ((51, 153, 255), 5), ((0, 255, 0), 2), ((255, 128, 0), 1),
        ((0, 255, 0), 1), ((255, 128, 0), 2), ((0, 255, 0), 4),
    ),
    link_colors_rgb=_runs(
        ((0, 0, 255), 3), ((0, 255, 0), 2), ((0, 255, 255), 3), ((6, 156, 250), 3), ((0, 255, 255), 3),
        ((6, 156, 250), 3),
    ),
)  # fmt: skip
KEYPOINT_SETS: dict[str, KeypointSet] = {
    s.name: s for s in (COCO17, WHOLEBODY133, HALPE26, MPII16, CROWDPOSE14, HAND21, FACE106, FACE68, WFLW98, AP10K17)
}
