"""Image intake: untrusted bytes -> a BGR uint8 array, or a typed error.

Formats: JPEG, PNG, WebP, BMP, TIFF and GIF, recognised by their magic bytes
(the declared content type is not trusted). The header is read first (PIL's lazy
plugin parsers, called directly so PIL's global decompression-bomb limit plays no
part: ``max_pixels`` is the only size limit), the limits are checked, and only then
is the image decoded, so a 60000 x 60000 header costs nothing.

Decoding: JPEG and PNG through ``cv2.imdecode`` (libjpeg-turbo / libpng, the fast
path, and the decoder MMPose's own ``mmcv.imread`` uses), the other formats, and any
JPEG/PNG that OpenCV refuses, through PIL. Behaviour, whatever the decoder:

- EXIF orientation is applied (JPEG, PNG, WebP, TIFF); ``width``/``height`` are the
  upright size. The tag comes from the header (TIFF: Pillow turns TIFFs upright itself);
  cv2 is told to ignore it so that it is applied exactly once.
- Grayscale and palette images become 3-channel BGR; 16-bit samples keep their high byte.
- Alpha is dropped: transparent pixels keep their stored colour (no compositing),
  as ``cv2.imread(..., IMREAD_COLOR)`` does.
- CMYK JPEGs (Adobe, inverted) are converted to BGR.
- Animated WebP / GIF and multi-page TIFF: the first frame.
- Truncated files are refused (OpenCV and PIL both fail on a missing end of image).
- No colour management: ICC profiles are ignored, like cv2 and MMPose.

Large JPEGs may be decoded at 1/2, 1/4 or 1/8 size in the DCT domain
(``min_long_side``); ``scale`` records the factor. A downscaled pixel ``i`` covers
original pixels ``[i * f, (i + 1) * f)``: map keypoints back with
:meth:`DecodedImage.keypoints_to_original` and boxes with :meth:`DecodedImage.boxes_to_original`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

__all__ = [
    "MIN_IMAGE_SIDE",
    "DecodedImage",
    "ImageError",
    "ImageTooLargeError",
    "InvalidImageError",
    "UnsupportedImageTypeError",
    "decode_image",
    "image_from_pixels",
    "sniff_image_format",
]

MIN_IMAGE_SIDE = 2  # smallest accepted width and height: a 1-pixel side has no geometry to pose
REDUCTION_FACTORS = (8, 4, 2)  # DCT-domain downscales libjpeg offers through cv2.IMREAD_REDUCED_COLOR_*
_ORIENTATION_TAG = 0x0112

_CV2_FLAGS = {
    1: cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION,
    2: cv2.IMREAD_REDUCED_COLOR_2 | cv2.IMREAD_IGNORE_ORIENTATION,
    4: cv2.IMREAD_REDUCED_COLOR_4 | cv2.IMREAD_IGNORE_ORIENTATION,
    8: cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION,
}
_PIL_PARSERS: dict[str, type[ImageFile.ImageFile]] = {
    "jpeg": JpegImagePlugin.JpegImageFile,
    "png": PngImagePlugin.PngImageFile,
    "webp": WebPImagePlugin.WebPImageFile,
    "bmp": BmpImagePlugin.BmpImageFile,
    "tiff": TiffImagePlugin.TiffImageFile,
    "gif": GifImagePlugin.GifImageFile,
}
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


class ImageError(ValueError):
    """The bytes are not an image this service accepts (base of the typed errors)."""


class InvalidImageError(ImageError):
    """Corrupt, truncated or empty data, or an image smaller than ``MIN_IMAGE_SIDE``."""


class ImageTooLargeError(ImageError):
    """The header announces more pixels than allowed."""


class UnsupportedImageTypeError(ImageError):
    """Not one of the accepted formats (unknown magic bytes), or an unsupported sample type."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded, upright image.

    Attributes:
        bgr: (h, w, 3) uint8, C-contiguous, BGR; smaller than the original when ``scale > 1``.
        width: Width of the original upright image, in pixels.
        height: Height of the original upright image, in pixels.
        scale: Original pixels per decoded pixel: 1.0, or the DCT downscale factor 2, 4 or 8.
        format: "jpeg", "png", "webp", "bmp", "tiff", "gif", or "raw" (pixels given as they are).
    """

    bgr: NDArray[np.uint8]
    width: int
    height: int
    scale: float
    format: str

    def keypoints_to_original(self, points: ArrayLike) -> NDArray[np.float32]:
        """Points in decoded pixels -> original pixels (pixel centres at integers, as cv2 and MMPose).

        Args:
            points: (..., 2) x, y in ``bgr`` pixels.

        Returns:
            (..., 2) float32: ``p * scale + (scale - 1) / 2``.
        """
        return (np.asarray(points, dtype=np.float32) * self.scale + (self.scale - 1.0) * 0.5).astype(np.float32)

    def boxes_to_original(self, boxes: ArrayLike) -> NDArray[np.float32]:
        """Boxes in decoded pixels -> original pixels (box edges on pixel borders, as mmdet).

        Args:
            boxes: (..., 4) x1, y1, x2, y2 in ``bgr`` pixels.

        Returns:
            (..., 4) float32: ``b * scale``.
        """
        return (np.asarray(boxes, dtype=np.float32) * self.scale).astype(np.float32)


def sniff_image_format(data: bytes) -> str:
    """The image format announced by the magic bytes.

    Args:
        data: The raw bytes.

    Returns:
        "jpeg", "png", "webp", "bmp", "tiff" or "gif".

    Raises:
        InvalidImageError: ``data`` is empty.
        UnsupportedImageTypeError: no accepted format starts like this.
    """
    if not data:
        raise InvalidImageError("the image is empty (0 bytes)")
    head = bytes(data[:12])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    if head.startswith(b"BM"):
        return "bmp"
    raise UnsupportedImageTypeError(
        f"not a supported image (JPEG, PNG, WebP, BMP, TIFF, GIF): starts with {head[:8].hex(' ')}"
    )


def decode_image(data: bytes, *, max_pixels: int, min_long_side: int | None = None) -> DecodedImage:
    """Decode untrusted bytes into an upright BGR image, checking limits from the header first.

    Args:
        data: The encoded image.
        max_pixels: Largest accepted ``width * height`` of the original image (checked
            before decoding, from the header).
        min_long_side: When given, a JPEG whose long side is at least twice this is
            decoded downscaled in the DCT domain by the largest of 2, 4, 8 that keeps
            the decoded long side >= ``min_long_side``. Other formats decode at full size.

    Returns:
        The decoded image.

    Raises:
        InvalidImageError: empty, corrupt or truncated data, or a side < ``MIN_IMAGE_SIDE``.
        ImageTooLargeError: more than ``max_pixels`` pixels.
        UnsupportedImageTypeError: not an accepted format, or 32-bit integer / float samples.
    """
    fmt = sniff_image_format(data)
    if fmt == "webp":
        # PIL's WebP parser allocates the whole canvas while reading the header: check first
        size = _webp_canvas_size(data)
        if size is not None:
            _check_size(*size, max_pixels)
    header = _read_header(data, fmt)
    width, height = header.size
    _check_size(width, height, max_pixels)
    orientation = _exif_orientation(header, fmt)  # read before decoding: PNG can grow it while loading

    factor = 1
    if fmt == "jpeg" and min_long_side is not None:
        factor = next((f for f in REDUCTION_FACTORS if -(-max(width, height) // f) >= min_long_side), 1)
    bgr = _decode_cv2(data, factor) if fmt in ("jpeg", "png") else None
    if bgr is None:
        factor = 1
        bgr = _decode_pil(header)
    if bgr.shape != (-(-height // factor), -(-width // factor), 3):
        raise InvalidImageError(f"decoded {bgr.shape[1]}x{bgr.shape[0]} differs from the header's {width}x{height}")
    if fmt == "tiff":
        # Pillow turns TIFFs upright itself while loading (and then drops the tag), older ones did not
        orientation = _exif_orientation(header, fmt)

    bgr = _apply_orientation(bgr, orientation)
    if orientation >= 5:  # the transposing orientations swap the sides
        width, height = height, width
    return DecodedImage(np.ascontiguousarray(bgr), width, height, float(factor), fmt)


def image_from_pixels(pixels: bytes, width: int, height: int, *, rgb: bool, max_pixels: int) -> DecodedImage:
    """Raw packed 8-bit pixels (a camera frame) as an image, without decoding.

    Args:
        pixels: ``height`` rows of ``width`` pixels of 3 bytes, no padding.
        width, height: The frame size.
        rgb: The channel order is R, G, B (else B, G, R, OpenCV's order, used as is without a copy).
        max_pixels: Largest accepted ``width * height``, as for encoded images.

    Returns:
        The image, ``format`` "raw", ``scale`` 1.

    Raises:
        InvalidImageError: the byte length is not ``width * height * 3``, or a side < ``MIN_IMAGE_SIDE``.
        ImageTooLargeError: more than ``max_pixels`` pixels.
    """
    _check_size(width, height, max_pixels)
    if len(pixels) != width * height * 3:
        raise InvalidImageError(
            f"raw image of {width}x{height} needs {width * height * 3} bytes (width x height x 3), got {len(pixels)}"
        )
    bgr = np.frombuffer(pixels, np.uint8).reshape(height, width, 3)
    if rgb:
        bgr = np.ascontiguousarray(bgr[..., ::-1])
    return DecodedImage(bgr, width, height, 1.0, "raw")


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width < MIN_IMAGE_SIDE or height < MIN_IMAGE_SIDE:
        raise InvalidImageError(f"image is {width}x{height}: both sides must be at least {MIN_IMAGE_SIDE} pixels")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels} pixels"
        )


def _webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """(w, h) of a WebP from its first chunk (simple lossy, lossless or extended), else None."""
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _read_header(data: bytes, fmt: str) -> ImageFile.ImageFile:
    """Parse the header with the format's PIL plugin (no pixel decoding, no global bomb check)."""
    try:
        return _PIL_PARSERS[fmt](io.BytesIO(data))
    except MemoryError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image is too large: {exc}") from None
    except Exception as exc:  # PIL raises many types on malformed headers; all mean "bad data"
        raise InvalidImageError(f"not a valid {fmt.upper()} image: {exc or type(exc).__name__}") from None


def _exif_orientation(header: ImageFile.ImageFile, fmt: str) -> int:
    """The EXIF orientation (1-8) from the header; 1 when absent or unreadable."""
    try:
        if fmt == "tiff":
            value = header.tag_v2.get(_ORIENTATION_TAG)  # type: ignore[attr-defined]
        else:
            raw = header.info.get("exif")  # not getexif(): on PNG that decodes the whole image
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            value = exif.get(_ORIENTATION_TAG)
    except Exception:  # a broken EXIF block must not fail an otherwise good image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _decode_cv2(data: bytes, factor: int) -> NDArray[np.uint8] | None:
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), _CV2_FLAGS[factor])
    except cv2.error:
        return None


def _decode_pil(header: ImageFile.ImageFile) -> NDArray[np.uint8]:
    """Full decode of the first frame through PIL, to BGR uint8."""
    try:
        header.seek(0)
        if header.mode in _SIXTEEN_BIT_MODES:
            gray = (np.asarray(header).astype(np.uint16) >> 8).astype(np.uint8)
            return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        if header.mode in ("I", "F") or header.mode.startswith("I;"):
            raise UnsupportedImageTypeError(f"{header.mode!r} samples (32-bit integer or float) are not supported")
        return cv2.cvtColor(np.asarray(header.convert("RGB")), cv2.COLOR_RGB2BGR)
    except ImageError:
        raise
    except MemoryError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image is too large: {exc}") from None
    except Exception as exc:  # truncated or corrupt pixel data
        raise InvalidImageError(f"could not decode the image: {exc or type(exc).__name__}") from None


def _apply_orientation(image: NDArray[np.uint8], orientation: int) -> NDArray[np.uint8]:
    """Turn a stored image upright for EXIF orientation 1-8 (as PIL ``ImageOps.exif_transpose``)."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image
