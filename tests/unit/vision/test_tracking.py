"""Pure tracking maths: boxes from keypoints, OKS (against pycocotools' formula), OKS-NMS, merging, matching."""

from __future__ import annotations

import numpy as np
import pytest

from service.vision.tracking import (
    COCO17_SIGMAS,
    boxes_from_keypoints,
    greedy_match,
    keypoint_sigmas,
    merge_boxes,
    oks,
    oks_nms,
)


def pose(points: list[tuple[float, float]], scores: list[float] | None = None) -> np.ndarray:
    scores = scores or [1.0] * len(points)
    return np.array([[x, y, s] for (x, y), s in zip(points, scores, strict=True)], np.float32)


def test_boxes_from_confident_keypoints_scaled_and_clipped() -> None:
    a = pose([(100, 100), (140, 200), (0, 0), (120, 150)], [0.9, 0.8, 0.1, 0.6])  # (0, 0) is not confident
    b = pose([(10, 10), (630, 470), (20, 20), (30, 30)], [0.9, 0.9, 0.2, 0.2])  # 2 confident: too few
    c = pose([(600, 20), (660, 80), (610, 30), (620, 40)])  # reaches past the right edge
    boxes, valid = boxes_from_keypoints(np.stack([a, b, c]), score_threshold=0.5, min_keypoints=3, scale=1.25,
                                        width=640, height=480)  # fmt: skip
    assert valid.tolist() == [True, False, True]
    np.testing.assert_allclose(boxes[0], [95, 87.5, 145, 212.5])  # 40x100 about (120, 150) -> 50x125
    np.testing.assert_array_equal(boxes[1], 0)
    assert boxes[2, 2] == 640


def test_oks_matches_the_coco_formula() -> None:
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.uniform(0, 200, (3, 17, 2)), np.ones((3, 17, 1))], -1).astype(np.float32)
    b = (a[[0, 2]] + np.concatenate([rng.normal(0, 4, (2, 17, 2)), np.zeros((2, 17, 1))], -1)).astype(np.float32)
    b[1, :5, 2] = 0  # five keypoints of b[1] not visible: not counted
    areas = np.array([5000.0, 8000.0], np.float32)
    ours = oks(a, b, areas, COCO17_SIGMAS, score_threshold=0.5)
    for i in range(3):
        for j in range(2):  # pycocotools COCOeval.computeOks, written out
            var = (2 * COCO17_SIGMAS) ** 2
            d2 = ((a[i, :, :2] - b[j, :, :2]) ** 2).sum(-1)
            e = d2 / var / (areas[j] + np.spacing(1)) / 2
            visible = b[j, :, 2] > 0.5
            assert ours[i, j] == pytest.approx(np.exp(-e[visible]).sum() / visible.sum(), rel=1e-4)
    assert ours[0, 0] > 0.7 > ours[1, 0]  # the same pose a few pixels off; another pose
    assert keypoint_sigmas(133).shape == (133,)


def test_oks_nms_keeps_the_better_of_two_poses_on_one_person() -> None:
    person = pose([(100 + 5 * k, 100 + 10 * k) for k in range(17)])
    near = person + np.array([2, 1, 0], np.float32)  # the same person, found twice
    other = person + np.array([300, 0, 0], np.float32)
    keep = oks_nms(np.stack([near, person, other]), np.array([0.7, 0.9, 0.8]), np.full(3, 20000.0), COCO17_SIGMAS, 0.5)
    assert keep.tolist() == [1, 2]


def test_merge_boxes_track_boxes_win() -> None:
    tracks = np.array([[0, 0, 100, 200]], np.float32)
    detections = np.array([[5, 5, 100, 205], [300, 0, 400, 200], [305, 0, 405, 200], [500, 0, 600, 100]], np.float32)
    assert merge_boxes(tracks, detections, 0.7).tolist() == [1, 3]  # 0 overlaps the track, 2 overlaps 1
    assert merge_boxes(np.zeros((0, 4), np.float32), detections, 0.7).tolist() == [0, 1, 3]


def test_greedy_match_takes_the_best_pair_first() -> None:
    similarity = np.array([[0.9, 0.8], [0.85, 0.1], [0.2, 0.3]], np.float32)
    assert greedy_match(similarity, 0.5) == [(0, 0)]  # then (1, 0) is taken, (2, 1) is below the threshold
    assert greedy_match(similarity, 0.05) == [(0, 0), (2, 1)]
    assert greedy_match(np.zeros((0, 3), np.float32), 0.1) == []
