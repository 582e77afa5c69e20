"""Memory budgets: bytes in flight, bounded. The decode budget holds decoded pixels and buffered stream frames.

A unit of work charges the peak bytes its decode will hold (``ImageProbe.decode_bytes``)
before decoding. The decode thread that has just read the header tries first
(:meth:`ByteBudget.try_charge`, never waiting, so the usual decode is one thread hop);
when the charge does not fit now, the request waits on the event loop
(:meth:`ByteBudget.charge`), first come first served, until earlier charges are
returned or its deadline passes. One image that needs more than the whole budget is
refused at once (413). Charges may be returned from any thread.

Frames a camera stream has taken but not started are held in the same budget as
*reclaimable* charges (:meth:`ByteBudget.hold`): when a charge does not fit, the oldest
of them, of any stream, is dropped (its stream reports it) before anyone waits, so a
stream's buffer never holds memory that decoding needs.

The gRPC transport bounds its request messages with a budget of its own (same class,
other gauges): a call holds the largest message it may receive until its message is read,
then the message's size, and is refused at once when that does not fit.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Gauge

from service import metrics
from service.config import Settings, memory_limit
from service.errors import DeadlineExceededError, PayloadTooLargeError
from service.vision.image import decode_bytes

RENDER_BYTES_PER_PIXEL = 3  # the canvas a render draws on, beside the decoded image


def budget_bytes(settings: Settings) -> int:
    """POSE_DECODE_BUDGET_BYTES, or (0) an eighth of the process's memory, at least :func:`image_bytes`.

    Raises:
        ValueError: a budget set smaller than one largest image needs (no such image could ever be served).
    """
    smallest = image_bytes(settings)
    if settings.decode_budget_bytes == 0:
        return max(memory_limit() // 8, smallest)
    if settings.decode_budget_bytes < smallest:
        raise ValueError(
            f"POSE_DECODE_BUDGET_BYTES = {settings.decode_budget_bytes} cannot hold the decode of one image of "
            f"POSE_MAX_IMAGE_PIXELS = {settings.max_image_pixels} pixels ({smallest} bytes as PNG, rendered): raise "
            "it or lower POSE_MAX_IMAGE_PIXELS"
        )
    return settings.decode_budget_bytes


def message_budget_bytes(settings: Settings, decode_budget: int) -> int:
    """POSE_GRPC_MESSAGE_BUDGET_BYTES, or (0) half ``decode_budget`` (the decode budget resolved), at least one message.

    Half: a message on its way in is held twice for a moment (gRPC's buffer and the copy Python
    gets), and the allocator keeps some of what such bursts free; with the decode budget at
    512 MiB, forty 32 MiB calls at once raised the peak by 1.0-1.6 GB with the whole decode
    budget for messages, 0.66-0.73 GB with half (measured, tests/integration/test_grpc_hardening.py's load).
    """
    return settings.grpc_message_budget_bytes or max(decode_budget // 2, settings.grpc_max_message_bytes)


def image_bytes(settings: Settings) -> int:
    """What the largest accepted PNG needs at full size, rendered: the least budget that serves every size."""
    return render_bytes(decode_bytes("png", settings.max_image_pixels), settings.max_image_pixels)


def render_bytes(nbytes: int, pixels: int) -> int:
    """A decode's ``nbytes`` plus the canvas a render of its ``pixels`` draws on."""
    return nbytes + pixels * RENDER_BYTES_PER_PIXEL


@dataclass(eq=False)
class Charge:
    """Bytes held in the budget until :meth:`release` (idempotent; from any thread)."""

    budget: ByteBudget
    nbytes: int
    released: bool = field(default=False)
    reclaimable: bool = field(default=False)  # a buffered stream frame's (made and released on the loop)

    def release(self) -> None:
        if not self.released:
            self.released = True
            if self.reclaimable:
                self.budget._reclaimable.pop(self, None)
            self.budget._give_back(self.nbytes)

    def shrink(self, nbytes: int) -> None:
        """Hold only ``nbytes`` from now on (no more than now): the rest goes back at once."""
        if not self.released and 0 <= nbytes < self.nbytes:
            freed, self.nbytes = self.nbytes - nbytes, nbytes
            self.budget._give_back(freed)


class ByteBudget:
    """Bytes in flight, bounded by ``limit``; waiters are served in arrival order.

    Args:
        limit: the bound, in bytes.
        capacity, in_flight: the gauges that show the bound and the bytes held (none: not shown).
    """

    def __init__(self, limit: int, *, capacity: Gauge | None = None, in_flight: Gauge | None = None) -> None:
        self.limit = limit
        self.used = 0
        self.released = 0  # bytes given back since the start (a burst's end shows in it)
        self._lock = threading.Lock()  # guards used, released and _waiting: decode threads charge and release too
        self._waiting = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()  # only touched on the event loop
        self._reclaimable: dict[Charge, Callable[[], None]] = {}  # oldest first; only touched on the event loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = in_flight or Gauge("unregistered_bytes_in_flight", "", registry=None)
        if capacity is not None:
            capacity.set(limit)
        self._in_flight.set(0)

    @property
    def waiting(self) -> int:
        return self._waiting

    def check(self, nbytes: int) -> None:
        """Raises: PayloadTooLargeError: ``nbytes`` is more than the whole budget (it could never be had)."""
        if nbytes > self.limit:
            raise PayloadTooLargeError(
                f"decoding this image needs {nbytes} bytes, over the decode memory budget of {self.limit} bytes "
                "(POSE_DECODE_BUDGET_BYTES)"
            )

    def try_charge(self, nbytes: int) -> Charge | None:
        """Hold ``nbytes`` now if they fit and nobody is waiting (any thread, never waits); None otherwise."""
        with self._lock:
            if self._waiting or self.used + nbytes > self.limit:
                return None
            self.used += nbytes
            self._in_flight.set(self.used)
        return Charge(self, nbytes)

    def hold(self, nbytes: int, reclaim: Callable[[], None]) -> Charge | None:
        """Hold ``nbytes`` as a reclaimable charge (a buffered stream frame), or None when they cannot be had now.

        Older reclaimable charges are reclaimed to make room (oldest first), but never while
        someone waits: waiters come first. On the event loop.

        Args:
            reclaim: called (on the loop) when the charge is taken back to make room for other
                work; the charge is released right after it.
        """
        if nbytes > self.limit or self._waiting:
            return None
        charge = self.try_charge(nbytes)
        while charge is None and self._reclaimable and not self._waiting:
            self._reclaim_oldest()
            charge = self.try_charge(nbytes)
        if charge is not None:
            charge.reclaimable = True
            self._reclaimable[charge] = reclaim
        return charge

    async def charge(self, nbytes: int, deadline: float) -> Charge:
        """Hold ``nbytes``, waiting behind earlier charges until ``deadline`` (``time.monotonic()``; on the loop).

        Raises:
            PayloadTooLargeError: more than the whole budget.
            DeadlineExceededError: the deadline passed while waiting.
        """
        self.check(nbytes)
        charge = self.try_charge(nbytes)
        if charge is not None:
            return charge
        self._loop = asyncio.get_running_loop()
        granted = self._loop.create_future()
        entry = (nbytes, granted)
        with self._lock:
            self._waiting += 1
        self._waiters.append(entry)
        self._wake()  # what was returned between the try and the queueing
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                await granted
        except BaseException as exc:
            if granted.done() and not granted.cancelled():
                self._give_back(nbytes)  # granted, but the waiter is leaving
            else:
                if entry in self._waiters:  # (a cancelled one may have been passed over by _wake already)
                    self._waiters.remove(entry)
                    with self._lock:
                        self._waiting -= 1
                self._wake()  # the head may have left: the next ones may fit now
            if isinstance(exc, TimeoutError):
                raise DeadlineExceededError("the request's deadline passed while waiting for decode memory") from None
            raise
        return Charge(self, nbytes)

    def _give_back(self, nbytes: int) -> None:
        with self._lock:
            self.used -= nbytes
            self.released += nbytes
            self._in_flight.set(self.used)
            waiting = self._waiting
        if waiting and self._loop is not None:  # the waiters are woken on the loop, whoever returned the bytes
            with contextlib.suppress(RuntimeError):  # the loop has closed: the process is ending
                self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        """Grant the waiters at the head that fit now, reclaiming buffered frames for them (on the loop)."""
        while self._waiters:
            nbytes, granted = self._waiters[0]
            with self._lock:
                fits = granted.done() or self.used + nbytes <= self.limit
                if fits:
                    self._waiters.popleft()
                    self._waiting -= 1
                    if granted.done():  # a waiter that has left (its cleanup finds it gone)
                        continue
                    self.used += nbytes
                    self._in_flight.set(self.used)
            if fits:
                granted.set_result(None)
            elif self._reclaimable:
                self._reclaim_oldest()
            else:
                return

    def _reclaim_oldest(self) -> None:
        """Take back the oldest reclaimable charge: its owner drops what it held, then the bytes return."""
        charge, reclaim = next(iter(self._reclaimable.items()))
        del self._reclaimable[charge]
        reclaim()
        charge.release()


class DecodeBudget(ByteBudget):
    """Bytes of decoded pixels (and buffered stream frames) in flight, bounded by ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit, capacity=metrics.DECODE_BUDGET_BYTES, in_flight=metrics.DECODE_BYTES_IN_FLIGHT)
