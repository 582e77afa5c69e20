"""Image intake: untrusted bytes -> a BGR uint8 array, or a typed error.

Formats: JPEG, PNG, WebP, BMP, TIFF and GIF, recognised by their magic bytes
(the declared content type is not trusted). The header is read first (PIL's lazy
plugin parsers, called directly so PIL's global decompression-bomb limit plays no
part: ``max_pixels`` is the only size limit), the limits are checked, and only then
is the image decoded, so a 60000 x 60000 header costs nothing.

Decoding: JPEG through simplejpeg (libjpeg-turbo's TurboJPEG API, the same pixels as
``cv2.imdecode``, whose libjpeg-turbo is the decoder MMPose's own ``mmcv.imread`` uses)
in strict mode: a libjpeg warning (premature end of data, corrupt data) is an error,
so a truncated or size-patched JPEG is refused instead of being padded with gray, and
nothing is printed. PNG through ``cv2.imdecode`` (libpng); the other formats, and any
PNG that OpenCV refuses, through PIL. Behaviour, whatever the decoder:

- EXIF orientation is applied (JPEG, PNG, WebP, TIFF); ``width``/``height`` are the
  upright size. The tag comes from the header (TIFF: Pillow turns TIFFs upright itself);
  cv2 is told to ignore it so that it is applied exactly once.
- Grayscale and palette images become 3-channel BGR; 16-bit samples keep their high byte.
- Alpha is dropped: transparent pixels keep their stored colour (no compositing),
  as ``cv2.imread(..., IMREAD_COLOR)`` does.
- CMYK JPEGs (Adobe, inverted) are converted to BGR.
- Animated WebP / GIF and multi-page TIFF: the first frame.
- Truncated or corrupt files are refused (libjpeg warnings are errors; OpenCV and PIL fail
  on a missing end of image).
- No colour management: ICC profiles are ignored, like cv2 and MMPose.

Large JPEGs may be decoded at 1/2, 1/4 or 1/8 size in the DCT domain
(``min_long_side``); ``scale`` records the factor. :func:`probe_image` reads only the
header: the size, the decode factor and the memory the decode will hold
(:data:`DECODE_BYTES_PER_PIXEL`), so a caller can budget it before decoding. A downscaled pixel ``i`` covers
original pixels ``[i * f, (i + 1) * f)``: map keypoints back with
:meth:`DecodedImage.keypoints_to_original` and boxes with :meth:`DecodedImage.boxes_to_original`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import cv2
import numpy as np
import simplejpeg
from cv2.typing import MatLike
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
    "DECODE_BYTES_PER_PIXEL",
    "MIN_IMAGE_SIDE",
    "DecodedImage",
    "ImageProbe",
    "ImageError",
    "ImageTooLargeError",
    "InvalidImageError",
    "UnsupportedImageTypeError",
    "decode_bytes",
    "decode_image",
    "decode_probed",
    "image_from_pixels",
    "probe_image",
    "sniff_image_format",
]

MIN_IMAGE_SIDE = 2  # smallest accepted width and height: a 1-pixel side has no geometry to pose
REDUCTION_FACTORS = (8, 4, 2)  # DCT-domain downscales libjpeg offers through cv2.IMREAD_REDUCED_COLOR_*
_ORIENTATION_TAG = 0x0112

_CV2_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
# Peak memory of a decode, in bytes per decoded pixel: the BGR frame (3) and the decoder's transient
# copies, plus 3 for an EXIF turn where the format has one. Measured as the growth of ru_maxrss while
# decoding a 4000x3000 image in a fresh process: JPEG 3.1 (6.4 turned), PNG 6.5, BMP and TIFF 14.0,
# GIF 11.0, WebP 22.1 (PIL formats keep PIL's 4-byte-per-pixel image beside the array). Raw pixels are
# used as they are (BGR, 3: the message's own bytes) or copied once with the channels swapped (RGB, 6).
DECODE_BYTES_PER_PIXEL = {"jpeg": 7, "png": 10, "bmp": 14, "tiff": 17, "gif": 11, "webp": 25, "raw": 3, "raw_rgb": 6}
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


@dataclass(frozen=True)
class ImageProbe:
    """What the header of an encoded image says, before any pixel is decoded.

    Attributes:
        format: as :func:`sniff_image_format`.
        width, height: the stored size (before EXIF orientation).
        factor: the DCT downscale :func:`decode_probed` will use (1, 2, 4 or 8).
        header: the parsed header, which :func:`decode_probed` decodes from (it is not parsed twice).
    """

    format: str
    width: int
    height: int
    factor: int
    header: ImageFile.ImageFile = field(repr=False, compare=False)

    @property
    def decode_bytes(self) -> int:
        """Peak bytes the decode holds (:func:`decode_bytes` of the decoded pixels)."""
        return decode_bytes(self.format, -(-self.width // self.factor) * -(-self.height // self.factor))


def decode_bytes(fmt: str, pixels: int) -> int:
    """Peak bytes a decode of ``pixels`` decoded pixels of format ``fmt`` holds (:data:`DECODE_BYTES_PER_PIXEL`)."""
    return pixels * DECODE_BYTES_PER_PIXEL[fmt]


def probe_image(data: bytes, *, max_pixels: int, min_long_side: int | None = None) -> ImageProbe:
    """Read and check the header only (cheap: no pixel is decoded); arguments as :func:`decode_image`.

    Raises:
        InvalidImageError, ImageTooLargeError, UnsupportedImageTypeError: as :func:`decode_image`.
    """
    fmt, header = _checked_header(data, max_pixels)
    width, height = header.size
    return ImageProbe(fmt, width, height, _reduction(fmt, width, height, min_long_side), header)


def _checked_header(data: bytes, max_pixels: int) -> tuple[str, ImageFile.ImageFile]:
    fmt = sniff_image_format(data)
    if fmt == "webp":
        # PIL's WebP parser allocates the whole canvas while reading the header: check first
        size = _webp_canvas_size(data)
        if size is not None:
            _check_size(*size, max_pixels)
    header = _read_header(data, fmt)
    _check_size(*header.size, max_pixels)
    return fmt, header


def _reduction(fmt: str, width: int, height: int, min_long_side: int | None) -> int:
    if fmt != "jpeg" or min_long_side is None:
        return 1
    return next((f for f in REDUCTION_FACTORS if -(-max(width, height) // f) >= min_long_side), 1)


def decode_image(data: bytes, *, max_pixels: int, min_long_side: int | None = None) -> DecodedImage:
    """Decode untrusted bytes into an upright BGR image, checking limits from the header first.

    :func:`probe_image`, then :func:`decode_probed`.

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
    return decode_probed(data, probe_image(data, max_pixels=max_pixels, min_long_side=min_long_side))


def decode_probed(data: bytes, probe: ImageProbe) -> DecodedImage:
    """Decode ``data``, whose header :func:`probe_image` read and checked, into an upright BGR image.

    Raises:
        InvalidImageError, UnsupportedImageTypeError: as :func:`decode_image` (corrupt pixel data, odd samples).
    """
    fmt, header, factor = probe.format, probe.header, probe.factor
    width, height = probe.width, probe.height
    orientation = _exif_orientation(header)  # read before decoding: PNG can grow it while loading

    bgr: NDArray[np.uint8] | None
    if fmt == "jpeg":
        bgr = _decode_jpeg(data, factor, width, height)
    else:
        bgr = _decode_cv2(data) if fmt == "png" else None
        if bgr is None:
            bgr = _decode_pil(header)
    if bgr.shape != (-(-height // factor), -(-width // factor), 3):
        raise InvalidImageError(f"decoded {bgr.shape[1]}x{bgr.shape[0]} differs from the header's {width}x{height}")
    if fmt == "tiff":
        # Pillow turns TIFFs upright itself while loading (and then drops the tag), older ones did not
        orientation = _exif_orientation(header)

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


def _exif_orientation(header: ImageFile.ImageFile) -> int:
    """The EXIF orientation (1-8) from the header; 1 when absent or unreadable."""
    try:
        if isinstance(header, TiffImagePlugin.TiffImageFile):
            value = header.tag_v2.get(_ORIENTATION_TAG)
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


def _decode_jpeg(data: bytes, factor: int, width: int, height: int) -> NDArray[np.uint8]:
    """Strict libjpeg-turbo decode at 1/``factor`` scale: any decoder warning is an InvalidImageError."""
    try:
        return simplejpeg.decode_jpeg(
            data, colorspace="BGR", min_factor=factor, min_width=-(-width // factor), min_height=-(-height // factor),
            strict=True,
        )  # fmt: skip
    except ValueError as exc:
        raise InvalidImageError(f"could not decode the JPEG: {exc}") from None


def _decode_cv2(data: bytes) -> NDArray[np.uint8] | None:
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), _CV2_FLAGS)
    except cv2.error:
        return None
    return None if bgr is None else _u8(bgr)


def _u8(image: MatLike) -> NDArray[np.uint8]:
    """An OpenCV result on 8-bit input as the uint8 array it is (OpenCV's stubs type results as any depth); no copy."""
    return np.asarray(image, np.uint8)


def _decode_pil(header: ImageFile.ImageFile) -> NDArray[np.uint8]:
    """Full decode of the first frame through PIL, to BGR uint8."""
    try:
        header.seek(0)
        if header.mode in _SIXTEEN_BIT_MODES:
            gray = (np.asarray(header).astype(np.uint16) >> 8).astype(np.uint8)
            return _u8(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        if header.mode in ("I", "F") or header.mode.startswith("I;"):
            raise UnsupportedImageTypeError(f"{header.mode!r} samples (32-bit integer or float) are not supported")
        return _u8(cv2.cvtColor(np.asarray(header.convert("RGB")), cv2.COLOR_RGB2BGR))
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
        return _u8(cv2.flip(image, 1))
    if orientation == 3:
        return _u8(cv2.rotate(image, cv2.ROTATE_180))
    if orientation == 4:
        return _u8(cv2.flip(image, 0))
    if orientation == 5:
        return _u8(cv2.transpose(image))
    if orientation == 6:
        return _u8(cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE))
    if orientation == 7:
        return _u8(cv2.rotate(cv2.transpose(image), cv2.ROTATE_180))
    if orientation == 8:
        return _u8(cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE))
    return image
