"""The transport-neutral request layer: what every way in (HTTP, gRPC, streams, the CLI) does the same way.

Auth, readiness, admission, the deadline, image intake (encoded bytes decoded off the
event loop within the decode memory budget, or raw pixels), options into the engine's
form, the call into the Pipeline and its timing. Transports only parse their wire format
into these calls and write the answer back; errors leave as
:class:`~service.errors.PoseError`, which carries both its HTTP status and its gRPC code.

Every unit of work (a request, a stream frame) runs inside :meth:`PoseRequests.admit`:

- admitted at once or refused at once (503 not ready / shutting down, 429 no queue room,
  422 unknown model), before anything costly: an HTTP request is admitted as soon as its
  headers are read, before its body;
- one deadline from arrival to answer: body read, decode-memory wait, decode, queues;
- its image is decoded within the decode memory budget (``budget.py``);
- a caller that goes away cancels it (its queued items are skipped, counted as
  ``pose_rejected_total{reason="cancelled"}``);
- when the shutdown grace period ends, what is still running ends with ShuttingDownError.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from service import metrics
from service.api.admission import (
    Admission,
    EncodedImage,
    Estimate,
    ImageInput,
    RawPixels,
    image_error,
    keypoint_threshold,
)
from service.api.budget import DecodeBudget, budget_bytes
from service.api.options import PoseOptions
from service.config import Settings, cpu_count
from service.engine.engine import Engine
from service.engine.pipeline import EstimateOptions
from service.errors import (
    BadRequestError,
    NotReadyError,
    QueueFullError,
    ShuttingDownError,
    UnauthorizedError,
)

__all__ = ["MAX_TIMEOUT_S", "MIN_TIMEOUT_S", "Admission", "EncodedImage", "Estimate", "ImageInput", "PoseRequests",
           "RawPixels", "image_error"]  # fmt: skip

MIN_TIMEOUT_S = 0.01  # the shortest: no image is read, decoded and posed sooner (a shorter one is a client's mistake)
MAX_TIMEOUT_S = 3600.0  # the longest deadline a client may ask for


class PoseRequests:
    """One per process, over one engine; every transport holds the same instance.

    Raises:
        ValueError: settings that cannot work (a decode budget smaller than one image).
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.budget = DecodeBudget(budget_bytes(settings))
        self._decoders = ThreadPoolExecutor(max(2, cpu_count()), thread_name_prefix="decode")
        self._admitted: set[Admission] = set()
        self._ended = False

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
        first) are served; once the grace period is over (:meth:`end_admitted`) they are
        refused with ShuttingDownError.
        """
        if self._ended:
            raise ShuttingDownError("the service is shutting down and takes no new requests")
        if not self.engine.state.loaded:
            raise NotReadyError(self.not_ready_reason())

    def deadline(self, timeout_s: float | None) -> float:
        """The ``time.monotonic()`` deadline of a request that may take ``timeout_s`` (None: the default).

        Raises:
            BadRequestError: not a number in [0.01, 3600].
        """
        if timeout_s is None:
            timeout_s = self.settings.request_timeout_s
        if not math.isfinite(timeout_s) or not MIN_TIMEOUT_S <= timeout_s <= MAX_TIMEOUT_S:
            raise BadRequestError(
                f"the request timeout must lie in [{MIN_TIMEOUT_S:g}, {MAX_TIMEOUT_S:g}] seconds; got {timeout_s}"
            )
        return time.monotonic() + timeout_s

    def keypoint_threshold(self, options: PoseOptions) -> float:
        return keypoint_threshold(options, self.settings)

    # -- admission -----------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def admit(
        self, options: EstimateOptions | None = None, *, deadline: float, started: float | None = None
    ) -> AsyncIterator[Admission]:
        """Admit one unit of work (a request, a stream frame) now, or refuse it now; held for the block.

        Admission checks, cheapest first: readiness, then queue room for one image with
        ``options`` (None: the service's defaults), reserved until the block exits. Inside
        the block, :class:`Admission` decodes within the decode memory budget and runs the
        Pipeline under ``deadline``. Leaving the block returns the room and the budget.

        Args:
            options: what the work will ask for, as far as known now (HTTP: the query's options).
            deadline: ``time.monotonic()`` by which the answer is due (:meth:`deadline`).
            started: ``time.perf_counter()`` at arrival (``timing_ms.total`` counts from it).

        Raises:
            NotReadyError, ShuttingDownError: not serving (on entry, or when the shutdown grace period
                ends while the block runs).
            QueueFullError: no queue room now (429 / RESOURCE_EXHAUSTED, retry later).
            UnknownModelError, InvalidOptionsError: ``options`` name a model that is not served, or too many boxes.
        """
        self.ensure_ready()
        try:
            reservation = self.engine.pipeline.reserve(options or EstimateOptions())
        except QueueFullError:
            metrics.REJECTED.labels("admission").inc()
            raise
        admission = Admission(self.engine.pipeline, self.budget, self._decoders, self.settings, reservation,
                              deadline=deadline, started=started)  # fmt: skip
        self._admitted.add(admission)
        try:
            yield admission
        except asyncio.CancelledError:
            if not admission.ended:
                raise  # the caller went away (or its transport cancelled it)
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise ShuttingDownError("the shutdown grace period ended before this request finished") from None
        finally:
            self._admitted.discard(admission)
            admission.close()

    def end_admitted(self) -> int:
        """The shutdown grace period is over: every admitted unit ends with ShuttingDownError, none is admitted.

        Returns:
            How many were still running.
        """
        self._ended = True
        running = list(self._admitted)
        for admission in running:
            admission.end()
        return len(running)

    # -- one-shot work -------------------------------------------------------------------------------------------

    async def estimate(
        self,
        image: ImageInput,
        options: PoseOptions,
        *,
        deadline: float,
        full_size: bool = False,
        started: float | None = None,
    ) -> Estimate:
        """One image, start to end: :meth:`admit` for ``options``, then :meth:`Admission.estimate`.

        Raises:
            PoseError: any client-facing failure (bad image or options, no room, deadline, ...).
        """
        async with self.admit(options.estimate_options(), deadline=deadline, started=started) as admission:
            return await admission.estimate(image, options, full_size=full_size)
