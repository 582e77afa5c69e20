"""One admitted unit of work (a request, a stream frame): its deadline, queue room and decode memory.

Made by :meth:`service.requests.layer.PoseRequests.admit`, the one gate (read its docstring first).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from service import metrics
from service.config import Settings
from service.engine.pipeline import EstimateOptions, Pipeline
from service.engine.queue_room import Reservation
from service.errors import DeadlineExceededError, InferenceError, QueueFullError
from service.requests.budget import Charge, DecodeBudget
from service.requests.images import Decode, DecodeLimits, ImageInput, image_error, start_decode
from service.requests.options import PoseOptions
from service.vision.image import DecodedImage, ImageError
from service.wire.results import PoseResult, visible

T = TypeVar("T")


def engine_options(options: PoseOptions) -> EstimateOptions:
    """The engine's view of validated options (boxes as an (M, 4) float32 array)."""
    boxes = None if options.boxes is None else np.asarray(options.boxes, np.float32).reshape(-1, 4)
    return EstimateOptions(model=options.model, detector=options.detector, boxes=boxes, max_people=options.max_people,
                           bbox_threshold=options.bbox_threshold, flip_test=options.flip_test)  # fmt: skip


def keypoint_threshold(options: PoseOptions, settings: Settings) -> float:
    """The threshold a request asked for, else POSE_KEYPOINT_THRESHOLD."""
    given = options.keypoint_threshold
    return settings.keypoint_threshold if given is None else given


def checked_finite(result: PoseResult) -> PoseResult:
    """``result`` when every number of it is finite: where answers are built, for every transport.

    A model (or a filter) that produced NaN or infinity must not reach a client: JSON has no
    such numbers, and a client would carry them into its own maths.

    Raises:
        InferenceError: a box, score or keypoint is not finite.
    """
    for name in ("boxes", "bbox_scores", "scores", "keypoints"):
        if not np.isfinite(getattr(result, name)).all():
            raise InferenceError(f"the models produced non-finite {name} (NaN or infinity)")
    return result


@dataclass(frozen=True)
class Estimate:
    """A served request: the image as decoded (for rendering), the result, the keypoint threshold in force."""

    image: DecodedImage
    result: PoseResult
    keypoint_threshold: float

    @property
    def visible(self) -> npt.NDArray[np.bool_]:
        """(N, K) which keypoints count as visible."""
        return visible(self.result.keypoints[..., 2], self.keypoint_threshold)


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
        self._slots = 1
        self._reservations: list[Reservation] = []
        self._charges: dict[int, tuple[DecodedImage, Charge]] = {}
        self._task = asyncio.current_task()
        self.ended = False  # set by the shutdown when the grace period is over

    # -- queue room ----------------------------------------------------------------------------------------------

    @property
    def slots(self) -> int:
        """Images this admission has queue room for at once (1, more after :meth:`widen`)."""
        return self._slots

    @property
    def reservation(self) -> Reservation | None:
        """The room of the one image this work is about (None before :meth:`reserve`, or once widened)."""
        return self._reservations[0] if len(self._reservations) == 1 and self._slots == 1 else None

    def reserve(self, options: PoseOptions | EstimateOptions) -> None:
        """Hold the queue room one image (each slot's) with ``options`` may need; replaces what was held.

        Called as soon as the options are known (HTTP: from the query, again once the body's are read).

        Raises:
            QueueFullError: no room now (429 / RESOURCE_EXHAUSTED, retry later).
            UnknownModelError, InvalidOptionsError: a model that is not served, or too many boxes.
        """
        wanted = engine_options(options) if isinstance(options, PoseOptions) else options
        self._release_room()
        try:
            for _ in range(self._slots):
                self._reservations.append(self._pipeline.reserve(wanted))
        except QueueFullError:
            self._release_room()
            metrics.REJECTED.labels("admission").inc()
            raise

    def widen(self, options: PoseOptions, count: int) -> int:
        """Try to hold room for up to ``count`` more images at once, without waiting; returns how many."""
        wanted = engine_options(options)
        for added in range(count):
            try:
                self._reservations.append(self._pipeline.reserve(wanted))
            except QueueFullError:
                return added
            self._slots += 1
        return count

    # -- the deadline and the decode ------------------------------------------------------------------------------

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

        One decode-thread hop reads the header and decodes when the budget has room now;
        otherwise the work waits its turn here and decodes in a second hop. The decode's
        share of the budget is held until :meth:`release` or the end of the admission (and,
        when the deadline cut a decode short, until its thread is done).

        Args:
            full_size: never decode a large JPEG downscaled (rendering draws on the decoded image).

        Raises:
            BadImageError, PayloadTooLargeError, UnsupportedMediaTypeError, DeadlineExceededError.
        """
        settings = self._settings
        limits = DecodeLimits(settings.max_image_pixels, settings.decode_min_side or None, render=full_size)
        start = time.perf_counter()
        try:
            begun = await self._in_decoder(partial(start_decode, image, self._budget, limits), _release_begun)
            if begun.image is not None and begun.charge is not None:
                decoded, charge = begun.image, begun.charge
            else:  # no room in the budget now: wait for it here, then decode from the header already read
                charge = await self._budget.charge(begun.nbytes, self.deadline)
                decoded = await self._in_decoder(begun.finish, lambda _: charge.release())
        except ImageError as exc:
            raise image_error(exc) from None
        finally:
            metrics.STAGE_DURATION.labels("decode", "none").observe(time.perf_counter() - start)
        self._charges[id(decoded)] = (decoded, charge)
        return decoded

    async def _in_decoder(self, job: Callable[[], T], unclaimed: Callable[[Future[T]], None]) -> T:
        """``job`` on a decode thread, awaited within the deadline.

        Args:
            unclaimed: called with the job's future once it is done when its result is not
                returned (the job failed, or the deadline or a cancel cut the wait short while
                it ran): it gives back the budget the job held.
        """
        future: Future[T] = self._decoders.submit(job)
        try:
            async with self.within_deadline("decoding the image"):
                return await asyncio.wrap_future(future)
        except BaseException:
            future.add_done_callback(unclaimed)  # at once if done; else from the decode thread when it is
            # the job's exception is the one raised here: its traceback holds this frame, which would hold the future
            # holding the exception (a cycle that keeps the image's bytes until a full GC)
            del future
            raise

    def release(self, image: DecodedImage) -> None:
        """Return ``image``'s share of the decode budget now (its pixels are no longer needed)."""
        entry = self._charges.pop(id(image), None)
        if entry is not None:
            entry[1].release()

    # -- the work ------------------------------------------------------------------------------------------------

    async def estimate(self, image: ImageInput, options: PoseOptions, *, full_size: bool = False) -> Estimate:
        """Decode, then detect and pose through the Pipeline; ``timing_ms`` gains ``decode`` and ``total``.

        Reserves the room ``options`` need first when nothing is reserved yet.

        Raises:
            PoseError: any client-facing failure (bad image or options, no room, deadline, ...).
        """
        if not self._reservations:
            self.reserve(options)
        decode_start = time.perf_counter()
        decoded = await self.decode(image, full_size=full_size)
        decode_ms = (time.perf_counter() - decode_start) * 1000
        if time.monotonic() >= self.deadline:
            raise DeadlineExceededError("request deadline passed while decoding the image")
        # one image on one reservation: it shrinks to the crops found (a widened batch keeps its room)
        result = checked_finite(await self._pipeline.estimate(decoded, engine_options(options), deadline=self.deadline,
                                                              reservation=self.reservation))  # fmt: skip
        result.timing_ms["decode"] = decode_ms
        result.timing_ms["total"] = (time.perf_counter() - self.started) * 1000
        return Estimate(decoded, result, keypoint_threshold(options, self._settings))

    # -- the end -------------------------------------------------------------------------------------------------

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


def _release_begun(future: Future[Decode]) -> None:
    """A begun decode nobody takes: give back the budget it took, if it did."""
    if not future.cancelled() and future.exception() is None and (charge := future.result().charge) is not None:
        charge.release()
