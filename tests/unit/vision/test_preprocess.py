"""service.vision.preprocess against MMPose / mmcv formulas (tests/unit/vision/mmpose_reference.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from service.vision.preprocess import (
    bbox_xyxy_to_center_scale,
    fix_aspect_ratio,
    get_warp_matrices,
    letterbox,
    normalize_to_nchw,
    warp_crops,
)
from tests.unit.vision import mmpose_reference as ref

RNG = np.random.default_rng(1234)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (641, 479), (333, 517), (97, 131), (1203, 801), (320, 2)])
@pytest.mark.parametrize("side", [320, 640])
def test_letterbox_matches_mmdet_resize_and_pad(width: int, height: int, side: int) -> None:
    image = RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)
    canvas, ratio = letterbox(image, (side, side))

    (new_w, new_h), _ = ref.rescale_size((width, height), (side, side))
    expected = np.full((side, side, 3), 114, np.uint8)
    expected[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(canvas, expected)
    assert ratio == (new_w / width, new_h / height)  # mmdet's per-axis scale_factor


def test_letterbox_writes_into_the_given_buffer_and_keeps_channels() -> None:
    image = np.zeros((50, 100, 3), np.uint8)
    image[..., 0] = 200  # blue only
    batch = np.zeros((2, 64, 64, 3), np.uint8)
    canvas, ratio = letterbox(image, (64, 64), out=batch[1])
    assert canvas is batch[1] or np.shares_memory(canvas, batch)
    assert ratio == (0.64, 0.64)
    assert (batch[1, :32, :64, 0] == 200).all()
    assert (batch[1, :32, :64, 1:] == 0).all()
    assert (batch[1, 32:] == 114).all()
    assert (batch[0] == 0).all()


def test_letterbox_same_size_is_a_copy() -> None:
    image = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    canvas, ratio = letterbox(image, (64, 64))
    np.testing.assert_array_equal(canvas, image)
    assert ratio == (1.0, 1.0)
    assert not np.shares_memory(canvas, image)


def test_letterbox_rejects_a_wrong_buffer() -> None:
    with pytest.raises(ValueError, match="out must be"):
        letterbox(np.zeros((10, 10, 3), np.uint8), (32, 32), out=np.zeros((32, 31, 3), np.uint8))


def test_center_scale_and_aspect_fix_match_mmpose() -> None:
    boxes = np.array([[10.5, 20.0, 110.0, 70.25], [0.0, 0.0, 30.0, 300.0], [5.0, 5.0, 5.0, 9.0]])
    centers, scales = bbox_xyxy_to_center_scale(boxes, padding=1.25)
    ref_c, ref_s = ref.bbox_xyxy2cs(boxes, padding=1.25)
    assert centers.dtype == scales.dtype == np.float32
    np.testing.assert_allclose(centers, ref_c, rtol=1e-6)
    np.testing.assert_allclose(scales, ref_s, rtol=1e-6)
    for aspect in (192 / 256, 288 / 384, 1.0, 2.0):
        fixed = fix_aspect_ratio(scales, aspect)
        np.testing.assert_allclose(fixed, ref.fix_aspect_ratio(ref_s, aspect), rtol=1e-6)
        np.testing.assert_allclose(fixed[:, 0] / fixed[:, 1], aspect, rtol=1e-6)
        assert (fixed >= scales - 1e-4).all()  # only ever grows


@pytest.mark.parametrize("output_size", [(192, 256), (288, 384), (256, 256)])
def test_warp_matrices_equal_mmpose_get_warp_matrix(output_size: tuple[int, int]) -> None:
    boxes = np.array([[10.0, 20.0, 110.0, 300.0], [-40.0, 5.5, 60.0, 20.0], [1000.0, 2000.0, 1500.0, 2100.0]])
    centers, scales = bbox_xyxy_to_center_scale(boxes)
    scales = fix_aspect_ratio(scales, output_size[0] / output_size[1])
    for inverse in (False, True):
        matrices = get_warp_matrices(centers, scales, output_size, inverse=inverse)
        assert matrices.shape == (3, 2, 3)
        for i in range(3):
            expected = ref.get_warp_matrix(centers[i], scales[i], 0.0, output_size, inv=inverse)
            # MMPose builds it from float32 points: agree to float32 precision
            np.testing.assert_allclose(matrices[i], expected, rtol=1e-5, atol=1e-3)
        # forward and inverse compose to identity
    forward = get_warp_matrices(centers, scales, output_size)
    inverse = get_warp_matrices(centers, scales, output_size, inverse=True)
    for f, b in zip(forward, inverse, strict=True):
        np.testing.assert_allclose(
            (np.vstack([f, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2], np.eye(3)[:2], atol=1e-9
        )


def test_warp_matrix_maps_box_center_and_width() -> None:
    centers, scales = np.array([[50.0, 80.0]]), np.array([[120.0, 160.0]])
    m = get_warp_matrices(centers, scales, (192, 256))[0]
    np.testing.assert_allclose(m @ [50.0, 80.0, 1.0], [96.0, 128.0])
    np.testing.assert_allclose(m @ [110.0, 80.0, 1.0] - m @ [-10.0, 80.0, 1.0], [192.0, 0.0])


def test_warp_crops_equals_cv2_warp_per_crop_into_buffer() -> None:
    image = RNG.integers(0, 256, (301, 403, 3), dtype=np.uint8)
    boxes = np.array([[0.0, 0.0, 100.0, 200.0], [350.0, 250.0, 420.0, 330.0], [100.5, 50.25, 180.0, 140.0]])
    centers, scales = bbox_xyxy_to_center_scale(boxes)
    scales = fix_aspect_ratio(scales, 192 / 256)
    matrices = get_warp_matrices(centers, scales, (192, 256))
    out = np.full((3, 256, 192, 3), 7, np.uint8)
    crops = warp_crops(image, matrices, (192, 256), out=out)
    assert crops is out
    for i in range(3):
        ref_m = ref.get_warp_matrix(centers[i], scales[i], 0.0, (192, 256))
        expected = cv2.warpAffine(image, ref_m, (192, 256), flags=cv2.INTER_LINEAR)
        # float32-point vs closed-form matrix: bilinear weights may differ by one grey level
        assert np.abs(crops[i].astype(int) - expected).max() <= 1
    # out-of-image area (box 1 reaches past the right and bottom edges) is black, as MMPose
    assert (crops[1, -5:, -5:] == 0).all()
    assert warp_crops(image, matrices[:0], (192, 256)).shape == (0, 256, 192, 3)


def test_warp_crops_puts_an_image_point_where_mmpose_maps_it() -> None:
    image = np.zeros((400, 300, 3), np.uint8)
    cv2.circle(image, (211, 157), 2, (255, 255, 255), -1)
    center, scale = np.array([[180.0, 200.0]]), np.array([[150.0, 200.0]])
    crop = warp_crops(image, get_warp_matrices(center, scale, (192, 256)), (192, 256))[0]
    expected = ref.get_warp_matrix(center[0], scale[0], 0.0, (192, 256)) @ [211.0, 157.0, 1.0]
    ys, xs = np.nonzero(crop[..., 0] > 0)
    weights = crop[ys, xs, 0].astype(float)
    np.testing.assert_allclose([np.average(xs, weights=weights), np.average(ys, weights=weights)], expected, atol=0.3)


@pytest.mark.parametrize("to_rgb", [True, False])
def test_normalize_to_nchw_is_the_float64_formula(to_rgb: bool) -> None:
    batch = RNG.integers(0, 256, (3, 16, 12, 3), dtype=np.uint8)
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    result = normalize_to_nchw(batch, mean, std, to_rgb=to_rgb)
    fed = batch[..., ::-1] if to_rgb else batch
    expected = ((fed.astype(np.float64) - mean) / std).transpose(0, 3, 1, 2)
    assert result.dtype == np.float32
    assert result.shape == (3, 3, 16, 12)
    assert result.flags.c_contiguous
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-5)


def test_normalize_channel_order_is_explicit() -> None:
    batch = np.zeros((1, 2, 2, 3), np.uint8)
    batch[..., 2] = 255  # red in BGR
    rgb = normalize_to_nchw(batch, (0, 0, 0), (1, 1, 1), to_rgb=True)
    bgr = normalize_to_nchw(batch, (0, 0, 0), (1, 1, 1), to_rgb=False)
    assert (rgb[0, 0] == 255).all()
    assert (rgb[0, 2] == 0).all()
    assert (bgr[0, 2] == 255).all()
    assert (bgr[0, 0] == 0).all()


def test_normalize_into_buffer_and_rejects_bad_shapes() -> None:
    batch = RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    out = np.empty((2, 3, 8, 8), np.float32)
    assert normalize_to_nchw(batch, (1, 2, 3), (4, 5, 6), to_rgb=False, out=out) is out
    with pytest.raises(ValueError, match="out must be"):
        normalize_to_nchw(batch, (1, 2, 3), (4, 5, 6), to_rgb=False, out=np.empty((2, 3, 8, 8), np.float64))
    with pytest.raises(ValueError, match="batch must be"):
        normalize_to_nchw(batch[..., :2], (1, 2, 3), (4, 5, 6), to_rgb=False)
