"""service.vision.postprocess against MMPose / Megvii / torchvision formulas (mmpose_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from service.vision.keypoints import KEYPOINT_SETS
from service.vision.postprocess import (
    box_iou,
    decode_simcc,
    decode_yolox_raw,
    detections_to_boxes,
    flip_simcc_back,
    keypoints_to_image,
    nms,
    person_scores,
)
from tests.unit.vision import mmpose_reference as ref

RNG = np.random.default_rng(99)


def test_decode_simcc_equals_mmpose_codec_on_random_outputs() -> None:
    simcc_x = RNG.normal(size=(5, 17, 384)).astype(np.float32)
    simcc_y = RNG.normal(size=(5, 17, 512)).astype(np.float32)
    simcc_x[0, 3] -= 10.0  # all negative: score <= 0, marked
    locs, scores = decode_simcc(simcc_x, simcc_y, 2.0)
    ref_locs, ref_scores = ref.simcc_decode(simcc_x, simcc_y, 2.0)
    assert locs.dtype == scores.dtype == np.float32
    assert locs.shape == (5, 17, 2)
    assert scores.shape == (5, 17)
    np.testing.assert_array_equal(locs, ref_locs)
    np.testing.assert_array_equal(scores, ref_scores)
    np.testing.assert_array_equal(locs[0, 3], [-0.5, -0.5])  # MMPose: bin -1, then / split ratio


def test_decode_simcc_score_is_the_minimum_not_the_mean() -> None:
    simcc_x = np.zeros((1, 2, 20), np.float32)
    simcc_y = np.zeros((1, 2, 30), np.float32)
    simcc_x[0, 0, 7], simcc_y[0, 0, 11] = 0.9, 0.3  # rtmlib would say 0.6
    simcc_x[0, 1, 0], simcc_y[0, 1, 29] = 0.2, 0.8
    locs, scores = decode_simcc(simcc_x, simcc_y, 2.0)
    np.testing.assert_allclose(scores, [[0.3, 0.2]])
    np.testing.assert_allclose(locs, [[[3.5, 5.5], [0.0, 14.5]]])


def test_decode_simcc_ties_take_the_first_bin_and_nan_scores_zero() -> None:
    simcc_x = np.zeros((1, 2, 8), np.float32)
    simcc_y = np.zeros((1, 2, 8), np.float32)
    simcc_x[0, 0, [2, 5]] = 1.0
    simcc_y[0, 0, [6, 7]] = 1.0
    simcc_x[0, 1, 3] = np.nan
    locs, scores = decode_simcc(simcc_x, simcc_y, 1.0)
    np.testing.assert_array_equal(locs[0, 0], [2.0, 6.0])
    assert scores[0, 1] == 0.0
    assert np.all(locs[0, 1] == -1.0)
    with pytest.raises(ValueError, match="alike"):
        decode_simcc(simcc_x, simcc_y[:, :1], 2.0)


def test_keypoints_to_image_is_mmpose_inverse_transform() -> None:
    locs = RNG.uniform(-5, 200, size=(3, 4, 2)).astype(np.float32)
    centers = RNG.uniform(0, 1000, size=(3, 2))
    scales = RNG.uniform(10, 500, size=(3, 2))
    result = keypoints_to_image(locs, centers, scales, (192, 256))
    assert result.dtype == np.float32
    assert result.shape == (3, 4, 2)
    for i in range(3):
        expected = ref.to_image(locs[i], centers[i], scales[i], (192, 256))
        np.testing.assert_allclose(result[i], expected, rtol=1e-6, atol=1e-3)


def test_flip_simcc_back_is_mmpose_flip_vectors_and_an_involution() -> None:
    flip_index = KEYPOINT_SETS["coco17"].flip_index
    simcc_x = RNG.normal(size=(2, 17, 384)).astype(np.float32)
    simcc_y = RNG.normal(size=(2, 17, 512)).astype(np.float32)
    x, y = flip_simcc_back(simcc_x, simcc_y, flip_index)
    ref_x, ref_y = ref.flip_vectors(simcc_x, simcc_y, list(flip_index))
    np.testing.assert_array_equal(x, ref_x)
    np.testing.assert_array_equal(y, ref_y)
    x2, y2 = flip_simcc_back(x, y, flip_index)
    np.testing.assert_array_equal(x2, simcc_x)
    np.testing.assert_array_equal(y2, simcc_y)
    # the left shoulder (5) of the flipped crop is the right shoulder (6) of the original, mirrored
    np.testing.assert_array_equal(x[:, 5], simcc_x[:, 6, ::-1])


def test_detections_to_boxes_filters_maps_clips_sorts_and_caps() -> None:
    dets = np.array(
        [
            [10.0, 10.0, 50.0, 90.0, 0.5],  # kept
            [20.0, 20.0, 60.0, 60.0, 0.9],  # kept, best
            [0.0, 0.0, 10.0, 10.0, 0.95],  # other class
            [5.0, 5.0, 15.0, 15.0, 0.3],  # at the threshold: dropped (strict)
            [-8.0, 200.0, 400.0, 330.0, 0.7],  # clipped to the image
            [310.0, 10.0, 330.0, 20.0, 0.8],  # wholly in the padding: no area left, dropped
        ],
        np.float32,
    )
    labels = np.array([0, 0, 2, 0, 0, 0])
    ratio = (0.5, 0.4)
    boxes, scores = detections_to_boxes(
        dets, labels, ratio, (600, 800), score_threshold=0.3, person_class=0, max_people=10
    )
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.5])
    np.testing.assert_allclose(boxes, [[40, 50, 120, 150], [0, 500, 600, 800], [20, 25, 100, 225]])
    assert boxes.dtype == scores.dtype == np.float32
    capped, _ = detections_to_boxes(dets, labels, 0.5, (600, 800), score_threshold=0.3, person_class=0, max_people=1)
    np.testing.assert_allclose(capped, [[40, 40, 120, 120]])
    empty, empty_scores = detections_to_boxes(
        np.zeros((0, 5)), np.zeros((0,)), 1.0, (10, 10), score_threshold=0.3, person_class=0, max_people=5
    )
    assert empty.shape == (0, 4)
    assert empty_scores.shape == (0,)


def test_nms_equals_torchvision_semantics_on_random_boxes() -> None:
    for trial in range(20):
        count = 1 + trial * 3
        xy = RNG.uniform(0, 100, size=(count, 2))
        wh = RNG.uniform(1, 60, size=(count, 2))
        boxes = np.hstack([xy, xy + wh]).astype(np.float32)
        scores = RNG.choice([0.3, 0.5, 0.7, 0.9], size=count).astype(np.float32)  # ties on purpose
        for threshold in (0.3, 0.5, 0.7):
            keep = nms(boxes, scores, threshold)
            assert keep.tolist() == ref.nms(boxes.tolist(), scores.tolist(), threshold)
    assert nms(np.zeros((0, 4)), np.zeros((0,)), 0.5).shape == (0,)


def test_nms_threshold_is_strict_and_box_iou_is_without_plus_one() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float32)
    np.testing.assert_allclose(box_iou(boxes[:1], boxes), [[1.0, 50 / 150, 0.0]])
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 1 / 3).tolist() == [0, 1, 2]  # IoU == threshold: kept
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.3).tolist() == [0, 2]


def test_decode_yolox_raw_matches_megvii_demo_postprocess() -> None:
    width, height, classes = 64, 32, 3
    cells = sum((width // s) * (height // s) for s in (8, 16, 32))
    raw = RNG.uniform(-1, 1, size=(2, cells, 5 + classes)).astype(np.float32)
    raw[..., 4:] = RNG.uniform(0, 1, size=(2, cells, 1 + classes))
    boxes, scores, class_ids = decode_yolox_raw(raw, (width, height))
    assert boxes.shape == (2, cells, 4)
    assert scores.shape == (2, cells)
    assert class_ids.dtype == np.int64
    # Megvii demo_postprocess, written out anchor by anchor
    index = 0
    for stride in (8, 16, 32):
        for gy in range(height // stride):
            for gx in range(width // stride):
                for b in range(2):
                    cx, cy, w, h, obj, *cls = raw[b, index].tolist()
                    cx, cy = (cx + gx) * stride, (cy + gy) * stride
                    w, h = np.exp(w) * stride, np.exp(h) * stride
                    expected = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
                    np.testing.assert_allclose(boxes[b, index], expected, rtol=1e-5, atol=1e-4)
                    assert class_ids[b, index] == int(np.argmax(cls))
                    np.testing.assert_allclose(scores[b, index], obj * max(cls), rtol=1e-6)
                index += 1
    with pytest.raises(ValueError, match="must be"):
        decode_yolox_raw(raw[:, :-1], (width, height))


def test_person_scores_equal_coco_metric_bbox_keypoint() -> None:
    keypoint_scores = RNG.uniform(0, 1, size=(6, 17))  # float64: 0.2 is exactly the threshold below
    keypoint_scores[1] = 0.1  # none above the threshold: score 0
    keypoint_scores[2, :5] = 0.2  # exactly at the threshold: excluded (strict)
    bbox_scores = RNG.uniform(0.3, 1.0, size=6).astype(np.float32)
    result = person_scores(bbox_scores, keypoint_scores)
    expected = [ref.coco_bbox_keypoint_score(b, k) for b, k in zip(bbox_scores, keypoint_scores, strict=True)]
    assert result.dtype == np.float32
    assert result[1] == 0.0
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    assert person_scores(np.zeros(0), np.zeros((0, 17))).shape == (0,)
