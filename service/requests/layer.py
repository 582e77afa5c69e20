"""The transport-neutral request layer: what every way in (HTTP, gRPC, streams, the CLI) does the same way.

Auth, the one admission and shutdown gate, the deadline, image intake (encoded bytes
decoded off the event loop within the decode memory budget, or raw pixels), options into
the engine's form, the call into the Pipeline and its timing. Transports only parse their
wire format into these calls and write the answer back; errors leave as
:class:`~service.errors.PoseError`, which carries both its HTTP status and its gRPC code.

Every unit of work (a request, a stream frame) runs inside :meth:`PoseRequests.admit`,
the one gate:

- refused at once when the service does not serve (503 not ready / shutting down), before
  anything else is looked at, so a bad request to a service that is not ready gets 503;
- then the deadline (400 for a timeout out of bounds), one from arrival to answer: body
  read, decode-memory wait, decode, queues;
- then its queue room, reserved as soon as its options are known
  (:meth:`Admission.reserve`: 429 no room, 422 unknown model): an HTTP request is
  admitted as soon as its headers are read, before its body;
- its image is decoded within the decode memory budget (``budget.py``);
- a caller that goes away cancels it (its queued items are skipped, counted as
  ``pose_rejected_total{reason="cancelled"}``);
- shutdown shuts the gate (:meth:`PoseRequests.close_gate`) and waits for what it let in
  (:meth:`PoseRequests.wait_idle`); when the grace period ends, what still runs ends with
  ShuttingDownError (:meth:`PoseRequests.end_admitted`).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from service.config import MAX_TIMEOUT_S, MIN_TIMEOUT_S, Settings, cpu_count
from service.engine.engine import Engine
from service.errors import BadRequestError, NotReadyError, ShuttingDownError, UnauthorizedError
from service.inflight import InFlight
from service.requests.admission import Admission, Estimate
from service.requests.budget import DecodeBudget, budget_bytes
from service.requests.images import ImageInput
from service.requests.options import PoseOptions

__all__ = ["PoseRequests"]


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
        self._closed_at: float | None = None  # shutdown: nothing that arrives from then on is let in
        self._ended = False  # the grace period is over: what was let in ends too, nothing more is let in
        self._in_flight = InFlight()

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

    def deadline(self, timeout_s: float | None) -> float:
        """The ``time.monotonic()`` deadline of work that may take ``timeout_s`` (None: POSE_REQUEST_TIMEOUT_S).

        Raises:
            BadRequestError: not a number in [MIN_TIMEOUT_S, MAX_TIMEOUT_S] (the bounds POSE_REQUEST_TIMEOUT_S has).
        """
        if timeout_s is None:
            timeout_s = self.settings.request_timeout_s
        if not math.isfinite(timeout_s) or not MIN_TIMEOUT_S <= timeout_s <= MAX_TIMEOUT_S:
            raise BadRequestError(
                f"the request timeout must lie in [{MIN_TIMEOUT_S:g}, {MAX_TIMEOUT_S:g}] seconds; got {timeout_s}"
            )
        return time.monotonic() + timeout_s

    # -- the gate ------------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def admit(
        self,
        timeout_s: float | None = None,
        *,
        deadline: float | None = None,
        arrived: float | None = None,
        started: float | None = None,
    ) -> AsyncIterator[Admission]:
        """The one gate: admit one unit of work (a request, a stream frame) now, or refuse it now.

        Checks, in this order: the service serves (503), the deadline (400). Inside the block
        the work reserves its queue room (:meth:`Admission.reserve`), decodes within the decode
        budget and runs the Pipeline under the deadline. Leaving the block returns the room
        and the budget.

        Args:
            timeout_s: how long the work may take (None: POSE_REQUEST_TIMEOUT_S); checked by :meth:`deadline`.
            deadline: a ``time.monotonic()`` deadline instead (a stream frame's, from its arrival).
            arrived: ``time.monotonic()`` when the work arrived (default: now). Once the gate has closed
                (shutdown), work that arrived before it closed (a frame a stream buffered) is still let
                in until the grace period ends; work that arrives later is not.
            started: ``time.perf_counter()`` at arrival (``timing_ms.total`` counts from it).

        Raises:
            NotReadyError, ShuttingDownError: not serving (on entry, or when the shutdown grace period
                ends while the block runs).
            BadRequestError: ``timeout_s`` out of bounds.
        """
        self.check_open(arrived)
        if deadline is None:
            deadline = self.deadline(timeout_s)
        admission = Admission(self.engine.pipeline, self.budget, self._decoders, self.settings,
                              deadline=deadline, started=started)  # fmt: skip
        self._admitted.add(admission)
        try:
            with self._in_flight.entered():
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

    def check_open(self, arrived: float | None = None) -> None:
        """The gate's rule, which :meth:`admit` applies: does the service take work that ``arrived`` (default: now)?

        Also asked when a stream opens (its frames are then admitted one by one).

        Raises:
            ShuttingDownError: the gate has closed (shutdown) before the work arrived, or the grace period is over.
            NotReadyError: the models are still loading, or failed to load.
        """
        closed = self._closed_at
        if closed is not None and (self._ended or (time.monotonic() if arrived is None else arrived) >= closed):
            raise ShuttingDownError("the service is shutting down and takes no new requests")
        if not self.engine.state.loaded:
            raise NotReadyError(self.not_ready_reason())

    @property
    def admitted(self) -> int:
        """Units of work inside the gate now."""
        return len(self._admitted)

    def close_gate(self) -> None:
        """Shutdown: nothing that arrives from now on is admitted (ShuttingDownError); what was admitted goes on."""
        if self._closed_at is None:
            self._closed_at = time.monotonic()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no admitted work is left; False if ``timeout_s`` ran out first."""
        return await self._in_flight.wait_idle(timeout_s)

    def end_admitted(self) -> int:
        """The shutdown grace period is over: every admitted unit ends with ShuttingDownError, none is admitted.

        Returns:
            How many were still running.
        """
        self.close_gate()
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
        timeout_s: float | None = None,
        full_size: bool = False,
        started: float | None = None,
    ) -> Estimate:
        """One image, start to end: :meth:`admit`, then :meth:`Admission.estimate` (the CLI, tests).

        Raises:
            PoseError: any client-facing failure (bad image or options, no room, deadline, ...).
        """
        async with self.admit(timeout_s, started=started) as admission:
            return await admission.estimate(image, options, full_size=full_size)
