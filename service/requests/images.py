"""The images every transport hands to the request layer, and their decode on one decode-thread hop.

:func:`start_decode` runs on a decode thread: it reads the header once (the limits are
checked before any pixel), takes the image's share of the decode budget when it fits
now, and decodes from the same parsed header. Only when the budget has no room now does
the request go back to the event loop to wait its turn, and then decode with
:meth:`Decode.finish` (the header is still not read again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.errors import BadImageError, PayloadTooLargeError, PoseError, UnsupportedMediaTypeError
from service.requests.budget import Charge, DecodeBudget, render_bytes
from service.vision.image import (
    DecodedImage,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageTypeError,
    decode_bytes,
    decode_probed,
    image_from_pixels,
    probe_image,
)


@dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes (JPEG, PNG, WebP, BMP, TIFF, GIF)."""

    data: bytes


@dataclass(frozen=True)
class RawPixels:
    """Packed 8-bit pixels, ``height`` rows of ``width`` x 3 bytes, B-G-R unless ``rgb``."""

    pixels: bytes
    width: int
    height: int
    rgb: bool = False


ImageInput = EncodedImage | RawPixels


def image_error(exc: ImageError) -> PoseError:
    """The client-facing error of a ``vision`` image error (vision imports nothing of the package)."""
    if isinstance(exc, ImageTooLargeError):
        return PayloadTooLargeError(str(exc))
    if isinstance(exc, UnsupportedImageTypeError):
        return UnsupportedMediaTypeError(str(exc))
    return BadImageError(str(exc))


@dataclass(frozen=True)
class DecodeLimits:
    """What a decode may do: the pixel limit, the JPEG downscale target, whether a render needs full size."""

    max_pixels: int
    min_long_side: int | None  # None: never downscale
    render: bool = False  # the decoded image will be drawn on (full size, plus the canvas in the budget)


@dataclass(frozen=True)
class Decode:
    """A decode begun on a decode thread: done (``image`` and its ``charge``), or waiting for budget."""

    nbytes: int  # the budget the decode holds
    finish: Callable[[], DecodedImage]  # the decode itself, from the header already read
    image: DecodedImage | None = None
    charge: Charge | None = None


def start_decode(image: ImageInput, budget: DecodeBudget, limits: DecodeLimits) -> Decode:
    """Read the header, and decode now when the budget has room (on a decode thread).

    Raises:
        ImageError: the header is bad or over the limits (nothing was charged or decoded).
        PayloadTooLargeError: the decode needs more than the whole budget.
    """
    nbytes, finish = _plan(image, limits)
    budget.check(nbytes)
    charge = budget.try_charge(nbytes)
    if charge is None:
        return Decode(nbytes, finish)
    try:
        return Decode(nbytes, finish, finish(), charge)
    except BaseException:
        charge.release()
        raise


def _plan(image: ImageInput, limits: DecodeLimits) -> tuple[int, Callable[[], DecodedImage]]:
    """The bytes the decode will hold and the decode itself, from the header (read once, here)."""
    if isinstance(image, RawPixels):
        # checks the size and length; wraps BGR without a copy (RGB is swapped, a copy, in the decode)
        image_from_pixels(image.pixels, image.width, image.height, rgb=False, max_pixels=limits.max_pixels)
        nbytes = decode_bytes("raw_rgb" if image.rgb else "raw", image.width * image.height)
        return nbytes, lambda: image_from_pixels(image.pixels, image.width, image.height, rgb=image.rgb,
                                                 max_pixels=limits.max_pixels)  # fmt: skip
    min_side = None if limits.render else limits.min_long_side
    probe = probe_image(image.data, max_pixels=limits.max_pixels, min_long_side=min_side)
    nbytes = render_bytes(probe.decode_bytes, probe.width * probe.height) if limits.render else probe.decode_bytes
    return nbytes, lambda: decode_probed(image.data, probe)
