"""One admitted unit of work (a request, a stream frame): its deadline, queue room and decode memory.

Made by :meth:`service.api.requests.PoseRequests.admit` (read its docstring first); the
image types every transport hands to the request layer live here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from service import metrics
from service.api.budget import RENDER_BYTES_PER_PIXEL, Charge, DecodeBudget
from service.api.options import PoseOptions
from service.config import Settings
from service.engine.pipeline import EstimateOptions, Pipeline
from service.engine.results import PoseResult
from service.engine.room import Reservation
from service.engine.served import ServedModel
from service.errors import (
    BadImageError,
    DeadlineExceededError,
    PayloadTooLargeError,
    PoseError,
    QueueFullError,
    UnsupportedMediaTypeError,
)
from service.vision.image import (
    DECODE_BYTES_PER_PIXEL,
    DecodedImage,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageTypeError,
    decode_image,
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


@dataclass(frozen=True)
class Estimate:
    """A served request: the image as decoded (for rendering), the result, the keypoint threshold in force."""

    image: DecodedImage
    result: PoseResult
    keypoint_threshold: float


def keypoint_threshold(options: PoseOptions, settings: Settings) -> float:
    """The threshold a request asked for, else POSE_KEYPOINT_THRESHOLD."""
    given = options.keypoint_threshold
    return settings.keypoint_threshold if given is None else given


def image_error(exc: ImageError) -> PoseError:
    """The client-facing error of a ``vision`` image error (vision imports nothing of the package)."""
    if isinstance(exc, ImageTooLargeError):
        return PayloadTooLargeError(str(exc))
    if isinstance(exc, UnsupportedImageTypeError):
        return UnsupportedMediaTypeError(str(exc))
    return BadImageError(str(exc))


class Admission:
    """One admitted unit of work: its deadline, its queue room and its decoded pixels' share of the budget.

    Made by :meth:`PoseRequests.admit`, valid inside its block.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        budget: DecodeBudget,
        decoders: ThreadPoolExecutor,
        settings: Settings,
        reservation: Reservation,
        *,
        deadline: float,
        started: float | None,
    ) -> None:
        self._pipeline = pipeline
        self._budget = budget
        self._decoders = decoders
        self._settings = settings
        self.deadline = deadline
        self.started = time.perf_counter() if started is None else started
        self._reservations = [reservation]
        self._charges: dict[int, tuple[DecodedImage, Charge]] = {}
        self._task = asyncio.current_task()
        self.ended = False  # set by the shutdown when the grace period is over

    @property
    def slots(self) -> int:
        """Images this admission has queue room for at once (1, more after :meth:`widen`)."""
        return len(self._reservations)

    def settle(self, options: EstimateOptions) -> None:
        """The options are fully known now (HTTP: after the body): hold the room they need instead.

        Raises:
            QueueFullError, UnknownModelError, InvalidOptionsError: as :meth:`PoseRequests.admit`.
        """
        slots = self.slots
        self._release_room()
        pipeline = self._pipeline
        try:
            for _ in range(slots):
                self._reservations.append(pipeline.reserve(options))
        except QueueFullError:
            self._release_room()
            metrics.REJECTED.labels("admission").inc()
            raise

    def trim(self, model: ServedModel, items: int) -> None:
        """One image's work needs at most ``items`` of ``model``'s queue after all: the rest goes back at once."""
        if len(self._reservations) == 1:
            self._reservations[0].trim(model.name, items)

    def widen(self, options: EstimateOptions, count: int) -> int:
        """Try to hold room for up to ``count`` more images at once, without waiting; returns how many."""
        pipeline = self._pipeline
        for added in range(count):
            try:
                self._reservations.append(pipeline.reserve(options))
            except QueueFullError:
                return added
        return count

    @asynccontextmanager
    async def within_deadline(self, doing: str) -> AsyncIterator[None]:
        """Raise DeadlineExceededError when the deadline passes inside the block (``doing``: for the message)."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(loop.time() + (self.deadline - time.monotonic())):
                yield
        except TimeoutError:
            raise DeadlineExceededError(f"the request's deadline passed while {doing}") from None

    async def decode(self, image: ImageInput, *, full_size: bool = False) -> DecodedImage:
        """Decode (or wrap raw pixels) off the event loop, within the budget and the deadline.

        The decode's share of the budget is held until :meth:`release` or the end of the
        admission (and, when the deadline cut a decode short, until its thread is done).

        Args:
            full_size: never decode a large JPEG downscaled (rendering draws on the decoded image).

        Raises:
            BadImageError, PayloadTooLargeError, UnsupportedMediaTypeError, DeadlineExceededError.
        """
        settings = self._settings
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            async with self.within_deadline("reading the image header"):
                nbytes, job = await loop.run_in_executor(None, _decode_job, image, settings, full_size)
            charge = await self._budget.charge(nbytes, self.deadline)
            future: Future[DecodedImage] = self._decoders.submit(job)
            try:
                async with self.within_deadline("decoding the image"):
                    decoded = await asyncio.wrap_future(future)
            except BaseException:
                # the thread may still be decoding: its pixels stay charged until it is done
                future.add_done_callback(lambda _: _call_soon(loop, charge.release))
                raise
        except ImageError as exc:
            raise image_error(exc) from None
        finally:
            metrics.STAGE_DURATION.labels("decode", "none").observe(time.perf_counter() - start)
        self._charges[id(decoded)] = (decoded, charge)
        return decoded

    def release(self, image: DecodedImage) -> None:
        """Return ``image``'s share of the decode budget now (its pixels are no longer needed)."""
        entry = self._charges.pop(id(image), None)
        if entry is not None:
            entry[1].release()

    async def estimate(self, image: ImageInput, options: PoseOptions, *, full_size: bool = False) -> Estimate:
        """Decode, then detect and pose through the Pipeline; ``timing_ms`` gains ``decode`` and ``total``.

        Raises:
            PoseError: any client-facing failure (bad image or options, deadline, ...).
        """
        decode_start = time.perf_counter()
        decoded = await self.decode(image, full_size=full_size)
        decode_ms = (time.perf_counter() - decode_start) * 1000
        if time.monotonic() >= self.deadline:
            raise DeadlineExceededError("request deadline passed while decoding the image")
        pipeline = self._pipeline
        # one image on one reservation: it shrinks to the crops found (a widened batch keeps its room)
        reservation = self._reservations[0] if len(self._reservations) == 1 else None
        result = await pipeline.estimate(decoded, options.estimate_options(), deadline=self.deadline,
                                         reservation=reservation)  # fmt: skip
        result.timing_ms["decode"] = decode_ms
        result.timing_ms["total"] = (time.perf_counter() - self.started) * 1000
        return Estimate(decoded, result, keypoint_threshold(options, self._settings))

    def end(self) -> None:
        """End the work with ShuttingDownError (see :meth:`PoseRequests.end_admitted`)."""
        self.ended = True
        if self._task is not None:
            self._task.cancel()

    def close(self) -> None:
        self._release_room()
        for _, charge in self._charges.values():
            charge.release()
        self._charges.clear()

    def _release_room(self) -> None:
        for reservation in self._reservations:
            reservation.release()
        self._reservations.clear()


def _decode_job(image: ImageInput, settings: Settings, full_size: bool) -> tuple[int, Callable[[], DecodedImage]]:
    """The bytes a decode will hold and the decode itself, from the header only (raises ImageError early)."""
    limit = settings.max_image_pixels
    if isinstance(image, RawPixels):
        image_from_pixels(image.pixels, image.width, image.height, rgb=False, max_pixels=limit)  # checks, no copy
        nbytes = image.width * image.height * DECODE_BYTES_PER_PIXEL["raw"] * (2 if image.rgb else 1)
        return nbytes, lambda: image_from_pixels(image.pixels, image.width, image.height, rgb=image.rgb,
                                                 max_pixels=limit)  # fmt: skip
    min_side = None if full_size or not settings.decode_min_side else settings.decode_min_side
    probe = probe_image(image.data, max_pixels=limit, min_long_side=min_side)
    nbytes = probe.decode_bytes + (probe.width * probe.height * RENDER_BYTES_PER_PIXEL if full_size else 0)
    return nbytes, lambda: decode_image(image.data, max_pixels=limit, min_long_side=min_side)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has closed: the process is ending
        loop.call_soon_threadsafe(callback)
