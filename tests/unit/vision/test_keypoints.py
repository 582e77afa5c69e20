"""Keypoint sets: sizes, skeleton indices, flip pairs, colours (tables from the mmpose dataset configs)."""

from __future__ import annotations

import numpy as np
import pytest

from service.vision.keypoints import KEYPOINT_SETS, KeypointSet

EXPECTED_SIZES = {
    "coco17": (17, 19),
    "wholebody133": (133, 65),
    "halpe26": (26, 27),
    "mpii16": (16, 15),
    "crowdpose14": (14, 15),
    "hand21": (21, 20),
    "face106": (106, 0),
    "face68": (68, 0),
    "wflw98": (98, 0),
    "ap10k17": (17, 17),
}


def test_the_set_names_are_kept() -> None:
    assert set(KEYPOINT_SETS) == set(EXPECTED_SIZES)


@pytest.mark.parametrize("name", sorted(EXPECTED_SIZES))
def test_set_is_consistent(name: str) -> None:
    kset = KEYPOINT_SETS[name]
    count, links = EXPECTED_SIZES[name]
    assert kset.name == name
    assert kset.num_keypoints == len(kset.names) == count
    assert len(kset.skeleton) == links
    assert len(set(kset.names)) == count
    assert all(0 <= a < count and 0 <= b < count and a != b for a, b in kset.skeleton)
    assert len(kset.keypoint_colors_rgb) == count
    assert len(kset.link_colors_rgb) == links
    assert all(
        len(c) == 3 and all(0 <= v <= 255 for v in c) for c in (*kset.keypoint_colors_rgb, *kset.link_colors_rgb)
    )
    # flip_index: a permutation that is its own inverse, swapping exactly the flip pairs
    index = kset.flip_index
    assert index.dtype == np.int64
    assert sorted(index.tolist()) == list(range(count))
    np.testing.assert_array_equal(index[index], np.arange(count))
    assert int((index != np.arange(count)).sum()) == 2 * len(kset.flip_pairs)
    assert not index.flags.writeable


@pytest.mark.parametrize("name", ["coco17", "wholebody133", "halpe26", "mpii16", "crowdpose14"])
def test_flip_pairs_swap_left_and_right_names(name: str) -> None:
    kset = KEYPOINT_SETS[name]
    sided = [i for i, n in enumerate(kset.names) if "left" in n or "right" in n]
    assert sided
    for i in sided:
        partner = kset.names[kset.flip_index[i]]
        mirrored = kset.names[i].replace("left", "#").replace("right", "left").replace("#", "right")
        assert partner == mirrored


def test_body_sets_start_with_coco17_and_wholebody_hands_follow_the_hand_set() -> None:
    coco = KEYPOINT_SETS["coco17"]
    assert coco.names[0] == "nose"
    assert coco.names[16] == "right_ankle"
    for name in ("wholebody133", "halpe26"):
        assert KEYPOINT_SETS[name].names[:17] == coco.names
    assert KEYPOINT_SETS["wholebody133"].skeleton[:19] == coco.skeleton
    whole, hand = KEYPOINT_SETS["wholebody133"], KEYPOINT_SETS["hand21"]
    assert whole.names[91] == "left_hand_root"
    assert whole.names[112] == "right_hand_root"
    assert [(a - 91, b - 91) for a, b in whole.skeleton[25:45]] == list(hand.skeleton)
    assert whole.names[23:91] == tuple(f"face-{i}" for i in range(68))


def test_colours_are_mmpose_rgb() -> None:
    coco = KEYPOINT_SETS["coco17"]
    assert coco.keypoint_colors_rgb[0] == (51, 153, 255)  # head: mmpose's blue
    assert coco.keypoint_colors_rgb[5] == (0, 255, 0)  # left side green
    assert coco.keypoint_colors_rgb[6] == (255, 128, 0)  # right side orange


def test_invalid_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        KeypointSet(name="x", names=("a", "b"), skeleton=((0, 2),))
    with pytest.raises(ValueError, match="already has a partner"):
        KeypointSet(name="x", names=("a", "b", "c"), flip_pairs=((0, 1), (1, 2)))
    with pytest.raises(ValueError, match="not unique"):
        KeypointSet(name="x", names=("a", "a"))
    with pytest.raises(ValueError, match="one colour"):
        KeypointSet(name="x", names=("a", "b"), keypoint_colors_rgb=((1, 2, 3),))
    plain = KeypointSet(name="x", names=("a", "b"), skeleton=((0, 1),))
    assert plain.keypoint_colors_rgb == ((255, 128, 0),) * 2
    assert plain.link_colors_rgb == ((96, 96, 255),)
