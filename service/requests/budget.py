"""The decode memory budget: decoded pixels in flight, all requests and streams together, are bounded.

A unit of work charges the peak bytes its decode will hold (``ImageProbe.decode_bytes``)
before decoding. The decode thread that has just read the header tries first
(:meth:`DecodeBudget.try_charge`, never waiting, so the usual decode is one thread hop);
when the charge does not fit now, the request waits on the event loop
(:meth:`DecodeBudget.charge`), first come first served, until earlier charges are
returned or its deadline passes. One image that needs more than the whole budget is
refused at once (413). Charges may be returned from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field

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


def image_bytes(settings: Settings) -> int:
    """What the largest accepted PNG needs at full size, rendered: the least budget that serves every size."""
    return render_bytes(decode_bytes("png", settings.max_image_pixels), settings.max_image_pixels)


def render_bytes(nbytes: int, pixels: int) -> int:
    """A decode's ``nbytes`` plus the canvas a render of its ``pixels`` draws on."""
    return nbytes + pixels * RENDER_BYTES_PER_PIXEL


@dataclass(eq=False)
class Charge:
    """Bytes held in the budget until :meth:`release` (idempotent; from any thread)."""

    budget: DecodeBudget
    nbytes: int
    released: bool = field(default=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.budget._give_back(self.nbytes)


class DecodeBudget:
    """Bytes of decoded pixels in flight, bounded by ``limit``; waiters are served in arrival order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()  # guards used and _waiting: decode threads charge and release too
        self._waiting = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()  # only touched on the event loop
        self._loop: asyncio.AbstractEventLoop | None = None
        metrics.DECODE_BUDGET_BYTES.set(limit)
        metrics.DECODE_BYTES_IN_FLIGHT.set(0)

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
            metrics.DECODE_BYTES_IN_FLIGHT.set(self.used)
        return Charge(self, nbytes)

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
            metrics.DECODE_BYTES_IN_FLIGHT.set(self.used)
            waiting = self._waiting
        if waiting and self._loop is not None:  # the waiters are woken on the loop, whoever returned the bytes
            with contextlib.suppress(RuntimeError):  # the loop has closed: the process is ending
                self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        """Grant the waiters at the head that fit now (on the loop)."""
        while self._waiters:
            nbytes, granted = self._waiters[0]
            with self._lock:
                if self.used + nbytes > self.limit:
                    return
                self._waiters.popleft()
                self._waiting -= 1
                if granted.done():
                    continue
                self.used += nbytes
                metrics.DECODE_BYTES_IN_FLIGHT.set(self.used)
            granted.set_result(None)
