"""The transport-neutral request layer: what every way in (HTTP, gRPC, streams, the CLI) does the same way.

Auth, readiness, the deadline, image intake (encoded bytes decoded off the event loop,
or raw pixels), options into the engine's form, the call into the Pipeline and its
timing. Transports only parse their wire format into these calls and write the
answer back; errors leave as :class:`~service.errors.PoseError`, which carries both its
HTTP status and its gRPC code.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from service import metrics
from service.api.options import PoseOptions
from service.config import Settings, cpu_count
from service.engine.engine import Engine
from service.engine.results import PoseResult
from service.errors import (
    BadImageError,
    BadRequestError,
    DeadlineExceededError,
    NotReadyError,
    PayloadTooLargeError,
    PoseError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from service.vision.image import (
    DecodedImage,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageTypeError,
    decode_image,
    image_from_pixels,
)

MAX_TIMEOUT_S = 3600.0  # the longest deadline a client may ask for


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


@dataclass(frozen=True)
class Estimate:
    """A served request: the image as decoded (for rendering), the result, the keypoint threshold in force."""

    image: DecodedImage
    result: PoseResult
    keypoint_threshold: float


def image_error(exc: ImageError) -> PoseError:
    """The client-facing error of a ``vision`` image error (vision imports nothing of the package)."""
    if isinstance(exc, ImageTooLargeError):
        return PayloadTooLargeError(str(exc))
    if isinstance(exc, UnsupportedImageTypeError):
        return UnsupportedMediaTypeError(str(exc))
    return BadImageError(str(exc))


class PoseRequests:
    """One per process, over one engine; every transport holds the same instance."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._decoders = ThreadPoolExecutor(max(2, cpu_count()), thread_name_prefix="decode")

    def close(self) -> None:
        self._decoders.shutdown(wait=False, cancel_futures=True)

    # -- checks every call makes ---------------------------------------------------------------------------------

    def authorize(self, authorization: str | None) -> None:
        """Check an ``Authorization`` value (``Bearer <token>``) against POSE_API_KEYS (constant time).

        Raises:
            UnauthorizedError: keys are set and the token is missing or not one of them.
        """
        keys = self.settings.api_keys
        if not keys:
            return
        scheme, _, token = (authorization or "").partition(" ")
        given = token.strip().encode() if scheme.lower() == "bearer" else b""
        if not any(hmac.compare_digest(given, key.encode()) for key in keys):
            raise UnauthorizedError("missing or invalid bearer token")

    def not_ready_reason(self) -> str:
        state = self.engine.state
        if state.closing:
            return "shutting down"
        if state.error:
            return f"model loading failed: {state.error}"
        return "loading and warming up models"

    def ensure_ready(self) -> None:
        """Raises: NotReadyError while models load and after a failed load.

        While shutting down, calls the transports still let in (they stop taking new ones
        first) are served; once the engine has closed the Pipeline refuses with
        ShuttingDownError.
        """
        if not self.engine.state.loaded:
            raise NotReadyError(self.not_ready_reason())

    def deadline(self, timeout_s: float | None) -> float:
        """The ``time.monotonic()`` deadline of a request that may take ``timeout_s`` (None: the default).

        Raises:
            BadRequestError: not a number in (0, 3600].
        """
        if timeout_s is None:
            timeout_s = self.settings.request_timeout_s
        if not math.isfinite(timeout_s) or timeout_s <= 0 or timeout_s > MAX_TIMEOUT_S:
            raise BadRequestError(f"the request timeout must lie in (0, {MAX_TIMEOUT_S:g}] seconds; got {timeout_s}")
        return time.monotonic() + timeout_s

    def keypoint_threshold(self, options: PoseOptions) -> float:
        given = options.keypoint_threshold
        return self.settings.keypoint_threshold if given is None else given

    # -- the work ------------------------------------------------------------------------------------------------

    async def decode(self, image: ImageInput, *, full_size: bool = False) -> DecodedImage:
        """Decode (or wrap raw pixels) off the event loop, with the service's limits.

        Args:
            full_size: never decode a large JPEG downscaled (rendering draws on the decoded image).

        Raises:
            BadImageError, PayloadTooLargeError, UnsupportedMediaTypeError.
        """
        settings = self.settings
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            if isinstance(image, RawPixels):
                return await loop.run_in_executor(
                    self._decoders,
                    lambda: image_from_pixels(image.pixels, image.width, image.height, rgb=image.rgb,
                                              max_pixels=settings.max_image_pixels),
                )  # fmt: skip
            min_side = None if full_size or not settings.decode_min_side else settings.decode_min_side
            return await loop.run_in_executor(
                self._decoders,
                lambda: decode_image(image.data, max_pixels=settings.max_image_pixels, min_long_side=min_side),
            )
        except ImageError as exc:
            raise image_error(exc) from None
        finally:
            metrics.STAGE_DURATION.labels("decode", "none").observe(time.perf_counter() - start)

    async def estimate(
        self,
        image: ImageInput,
        options: PoseOptions,
        *,
        deadline: float,
        full_size: bool = False,
        started: float | None = None,
    ) -> Estimate:
        """Decode, then detect and pose through the Pipeline; ``timing_ms`` gains ``decode`` and ``total``.

        Args:
            deadline: ``time.monotonic()`` by which the answer is due (see :meth:`deadline`).
            full_size: see :meth:`decode`.
            started: ``time.perf_counter()`` when the request arrived (``total`` counts from it).

        Raises:
            PoseError: any client-facing failure (bad image or options, queue full, deadline, ...).
        """
        started = time.perf_counter() if started is None else started
        decode_start = time.perf_counter()
        decoded = await self.decode(image, full_size=full_size)
        decode_ms = (time.perf_counter() - decode_start) * 1000
        if time.monotonic() >= deadline:
            raise DeadlineExceededError("request deadline passed while decoding the image")
        result = await self.engine.pipeline.estimate(decoded, options.estimate_options(), deadline=deadline)
        result.timing_ms["decode"] = decode_ms
        result.timing_ms["total"] = (time.perf_counter() - started) * 1000
        return Estimate(decoded, result, self.keypoint_threshold(options))
