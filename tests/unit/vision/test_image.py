"""decode_image: every format, EXIF orientation, odd modes, limits before decoding, bad bytes, fuzzing.

All inputs are generated here (PIL / cv2 / hand-written headers); no binary is committed.
"""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from service.vision.image import (
    MIN_IMAGE_SIDE,
    DecodedImage,
    ImageError,
    ImageTooLargeError,
    InvalidImageError,
    UnsupportedImageTypeError,
    decode_image,
    probe_image,
    sniff_image_format,
)

LIMIT = 50_000_000
RNG = np.random.default_rng(7)


def _rgb_pattern(height: int = 60, width: int = 90) -> np.ndarray:
    """Distinct flat colour blocks: survive JPEG, and any flip or turn is visible."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[: height // 3, : width // 2] = (255, 0, 0)
    rgb[height // 2 :, width // 2 :] = (0, 0, 255)
    rgb[height // 3 :, : width // 5] = (0, 255, 0)
    return rgb


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def _assert_valid(decoded: DecodedImage) -> None:
    bgr = decoded.bgr
    assert bgr.dtype == np.uint8
    assert bgr.ndim == 3
    assert bgr.shape[2] == 3
    assert bgr.flags.c_contiguous
    factor = int(decoded.scale)
    assert bgr.shape[:2] == (-(-decoded.height // factor), -(-decoded.width // factor))


@pytest.mark.parametrize(
    ("fmt", "params", "tolerance"),
    [
        ("JPEG", {"quality": 95, "subsampling": 0}, 12),
        ("PNG", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("TIFF", {"compression": "tiff_lzw"}, 0),
        ("GIF", {}, 0),
    ],
)
def test_formats_decode_to_the_same_bgr_pixels(fmt: str, params: dict[str, object], tolerance: int) -> None:
    rgb = _rgb_pattern(61, 93)
    decoded = decode_image(_encode(Image.fromarray(rgb), fmt, **params), max_pixels=LIMIT)
    _assert_valid(decoded)
    assert (decoded.width, decoded.height, decoded.scale) == (93, 61, 1.0)
    assert decoded.format == ("jpeg" if fmt == "JPEG" else fmt.lower())
    assert np.abs(decoded.bgr.astype(int) - rgb[..., ::-1]).max() <= tolerance


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(fmt: str, orientation: int) -> None:
    rgb = _rgb_pattern()
    exif = Image.Exif()
    exif[0x0112] = orientation
    params: dict[str, object] = (
        {"quality": 100, "subsampling": 0} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    )
    data = _encode(Image.fromarray(rgb), fmt, exif=exif.tobytes(), **params)
    decoded = decode_image(data, max_pixels=LIMIT)
    # PIL's exif_transpose of the stored pixels is the independent expectation
    stored = Image.fromarray(rgb)
    stored.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(stored))[..., ::-1]
    assert decoded.bgr.shape == expected.shape
    assert (decoded.width, decoded.height) == (expected.shape[1], expected.shape[0])
    assert np.abs(decoded.bgr.astype(int) - expected).max() <= (8 if fmt == "JPEG" else 0)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_broken_exif_block_is_ignored() -> None:
    data = _encode(Image.fromarray(_rgb_pattern()), "JPEG", exif=b"Exif\x00\x00MM\x00*garbage")
    assert decode_image(data, max_pixels=LIMIT).width == 90


def test_grayscale_palette_and_alpha_become_bgr() -> None:
    rgb = _rgb_pattern()
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    for mode in ("L", "1", "P", "LA"):
        decoded = decode_image(_encode(Image.fromarray(rgb).convert(mode), "PNG"), max_pixels=LIMIT)
        _assert_valid(decoded)
        if mode in ("L", "LA"):
            np.testing.assert_array_equal(decoded.bgr, np.dstack([gray] * 3))
    # alpha is dropped: a fully transparent pixel keeps its stored colour (no compositing)
    rgba = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])
    for fmt in ("PNG", "WEBP", "TIFF"):
        params: dict[str, object] = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
        decoded = decode_image(_encode(Image.fromarray(rgba), fmt, **params), max_pixels=LIMIT)
        np.testing.assert_array_equal(decoded.bgr, rgb[..., ::-1])


@pytest.mark.parametrize("fmt", [".png", ".tiff"])
def test_sixteen_bit_keeps_the_high_byte(fmt: str) -> None:
    values = RNG.integers(0, 65536, (40, 50, 3), dtype=np.uint16)
    for image in (values, values[..., 0]):
        ok, encoded = cv2.imencode(fmt, image)
        assert ok
        decoded = decode_image(encoded.tobytes(), max_pixels=LIMIT)
        expected = (image >> 8).astype(np.uint8)
        expected = expected if expected.ndim == 3 else np.dstack([expected] * 3)
        assert np.abs(decoded.bgr.astype(int) - expected).max() <= 1


def test_cmyk_jpeg_has_the_right_colours() -> None:
    rgb = _rgb_pattern()
    rgb[:5] = (200, 120, 40)
    data = _encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    decoded = decode_image(data, max_pixels=LIMIT)
    assert np.abs(decoded.bgr.astype(int) - rgb[..., ::-1]).max() <= 40  # an inverted decode would be ~255 off


@pytest.mark.parametrize("fmt", ["WEBP", "GIF"])
def test_animation_gives_the_first_frame(fmt: str) -> None:
    frames = [Image.fromarray(np.full((40, 50, 3), value, np.uint8)) for value in (30, 200, 120)]
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    decoded = decode_image(data, max_pixels=LIMIT)
    assert np.abs(decoded.bgr.astype(int) - 30).max() <= 2


def test_float_tiff_is_an_unsupported_type() -> None:
    data = _encode(Image.fromarray(RNG.random((20, 30)).astype(np.float32)), "TIFF")
    with pytest.raises(UnsupportedImageTypeError, match="32-bit"):
        decode_image(data, max_pixels=LIMIT)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidImageError),
        (b"%PDF-1.7\n%binary", UnsupportedImageTypeError),
        (b"<html><body>", UnsupportedImageTypeError),
        (b"\x00\x00\x00\x1cftypheic", UnsupportedImageTypeError),
        (b"\xff\xd8\xff", InvalidImageError),
        (b"\x89PNG\r\n\x1a\n", InvalidImageError),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", InvalidImageError),
        (b"BM" + bytes(60), InvalidImageError),
        (b"GIF89a", InvalidImageError),
        (b"II*\x00" + bytes(20), InvalidImageError),
    ],
)
def test_bad_bytes_give_typed_errors(data: bytes, error: type[ImageError]) -> None:
    with pytest.raises(error):
        decode_image(data, max_pixels=LIMIT)
    assert issubclass(error, ValueError)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_truncated_images_are_invalid(fmt: str) -> None:
    noise = Image.fromarray(RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    data = _encode(noise, fmt, **({"progressive": True} if fmt == "JPEG" else {}))
    full = decode_image(data, max_pixels=LIMIT).bgr
    for keep in (len(data) // 3, len(data) - 40):  # cut into the pixel data
        with pytest.raises(InvalidImageError):
            decode_image(data[:keep], max_pixels=LIMIT)
    # only the end marker missing: refused (JPEG, WebP, BMP, TIFF) or all pixels intact (PNG IEND, GIF trailer)
    for keep in (len(data) - 2, len(data) - 1):
        try:
            decoded = decode_image(data[:keep], max_pixels=LIMIT)
        except InvalidImageError:
            continue
        assert fmt in ("PNG", "GIF")
        np.testing.assert_array_equal(decoded.bgr, full)


def test_trailing_bytes_after_a_jpeg_are_accepted() -> None:
    data = _encode(Image.fromarray(_rgb_pattern()), "JPEG") + b"\x00" * 64 + b"motion-photo-mp4"
    assert decode_image(data, max_pixels=LIMIT).width == 90


def test_too_small_images_are_invalid() -> None:
    for size in ((1, 1), (1, 40), (40, 1)):
        with pytest.raises(InvalidImageError, match="at least"):
            decode_image(_encode(Image.new("RGB", size), "PNG"), max_pixels=LIMIT)
    assert decode_image(_encode(Image.new("RGB", (MIN_IMAGE_SIDE, MIN_IMAGE_SIDE)), "PNG"), max_pixels=LIMIT)


def test_huge_headers_are_refused_before_decoding() -> None:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PIL DecompressionBombWarning either
        with pytest.raises(ImageTooLargeError, match="60000x60000"):
            decode_image(_png_header_only(60000, 60000), max_pixels=LIMIT)
        # a WebP canvas PIL would allocate (400 MB) while reading its header
        vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (9999).to_bytes(3, "little") * 2
        with pytest.raises(ImageTooLargeError, match="10000x10000"):
            decode_image(b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x, max_pixels=LIMIT)
        # and a JPEG: SOF0 announcing 65000 x 65000
        sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 65000, 65000, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
        with pytest.raises(ImageTooLargeError):
            decode_image(b"\xff\xd8" + sof + b"\xff\xd9", max_pixels=LIMIT)
    assert time.perf_counter() - start < 1.0
    # the limit is on width * height
    data = _encode(Image.new("RGB", (100, 50)), "PNG")
    with pytest.raises(ImageTooLargeError):
        decode_image(data, max_pixels=4999)
    assert decode_image(data, max_pixels=5000).width == 100


def _blob_jpeg(width: int, height: int, center: tuple[float, float], orientation: int = 1) -> bytes:
    ys, xs = np.mgrid[0:height, 0:width]
    blob = 255 * np.exp(-((xs - center[0]) ** 2 + (ys - center[1]) ** 2) / (2 * 20.0**2))
    image = Image.fromarray(np.dstack([blob] * 3).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(image, "JPEG", quality=98, exif=exif.tobytes())


def _centroid(bgr: np.ndarray) -> np.ndarray:
    weights = np.clip(bgr[..., 1].astype(float) - 5, 0, None)
    ys, xs = np.mgrid[0 : bgr.shape[0], 0 : bgr.shape[1]]
    return np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()


@pytest.mark.parametrize(
    ("min_long_side", "factor"),
    [(None, 1), (2402, 1), (1202, 1), (1201, 2), (602, 2), (601, 4), (302, 4), (301, 8), (1, 8)],
)
def test_large_jpegs_decode_downscaled_in_the_dct_domain(min_long_side: int | None, factor: int) -> None:
    data = _blob_jpeg(2401, 1603, (1000.0, 700.0))
    decoded = decode_image(data, max_pixels=LIMIT, min_long_side=min_long_side)
    _assert_valid(decoded)
    assert decoded.scale == factor
    assert (decoded.width, decoded.height) == (2401, 1603)
    assert decoded.bgr.shape[:2] == (-(-1603 // factor), -(-2401 // factor))
    # decoded pixel centres map back to original pixel centres
    np.testing.assert_allclose(decoded.keypoints_to_original(_centroid(decoded.bgr)), [1000.0, 700.0], atol=0.1)
    box = decoded.boxes_to_original([0.0, 0.0, decoded.bgr.shape[1], decoded.bgr.shape[0]])
    np.testing.assert_allclose(box, [0, 0, decoded.bgr.shape[1] * factor, decoded.bgr.shape[0] * factor])


def test_downscale_with_orientation_and_never_for_png() -> None:
    decoded = decode_image(_blob_jpeg(1600, 800, (400.0, 100.0), orientation=6), max_pixels=LIMIT, min_long_side=400)
    assert (decoded.width, decoded.height, decoded.scale) == (800, 1600, 4.0)
    assert decoded.bgr.shape[:2] == (400, 200)
    # turned 90 degrees clockwise: (x, y) -> (h - 1 - y, x)
    np.testing.assert_allclose(decoded.keypoints_to_original(_centroid(decoded.bgr)), [699.0, 400.0], atol=0.2)
    png = _encode(Image.new("RGB", (1600, 800)), "PNG")
    assert decode_image(png, max_pixels=LIMIT, min_long_side=100).scale == 1.0


def test_sniff_image_format_reads_magic_only() -> None:
    assert sniff_image_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_image_format(b"MM\x00*") == "tiff"
    with pytest.raises(UnsupportedImageTypeError, match="starts with 00 01"):
        sniff_image_format(b"\x00\x01")


_SEEDS = {
    fmt: _encode(Image.fromarray(RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)), fmt)
    for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL warns about the corrupt metadata it skips
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    seed=st.sampled_from(sorted(_SEEDS)),
    cut=st.integers(min_value=0, max_value=4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
)
def test_fuzz_mutated_images_never_raise_untyped(seed: str, cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(_SEEDS[seed][: max(1, len(_SEEDS[seed]) - cut)])
    for position, value in flips:
        data[position % len(data)] = value
    try:
        decoded = decode_image(bytes(data), max_pixels=LIMIT, min_long_side=8)
    except ImageError:
        return
    _assert_valid(decoded)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=512))
def test_fuzz_random_bytes_never_raise_untyped(data: bytes) -> None:
    with pytest.raises(ImageError):
        decode_image(data, max_pixels=LIMIT)


def test_a_jpeg_whose_header_claims_more_than_its_data_holds_is_invalid_and_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    ok, data = cv2.imencode(".jpg", np.full((8, 8, 3), 128, np.uint8))
    assert ok
    patched = bytearray(data.tobytes())
    sof = patched.find(b"\xff\xc0")
    patched[sof + 5 : sof + 9] = (7071).to_bytes(2, "big") * 2  # 8x8 data, a 7071x7071 frame header
    probe = probe_image(bytes(patched), max_pixels=50_000_000)
    assert (probe.width, probe.height, probe.decode_bytes) == (7071, 7071, 7071 * 7071 * 7)
    with pytest.raises(InvalidImageError, match="premature end of data segment"):
        decode_image(bytes(patched), max_pixels=50_000_000)
    assert capfd.readouterr() == ("", ""), "libjpeg's warning is an error, never a line on stderr"
