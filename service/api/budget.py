"""The decode memory budget: decoded pixels in flight, all requests and streams together, are bounded.

A request charges the peak bytes its decode will hold (``ImageProbe.decode_bytes``) before
decoding; a charge that does not fit waits, first come first served, until earlier ones
are returned or its deadline passes. One image that needs more than the whole budget is
refused at once (413). Lives on the event loop; :meth:`Charge.release` is called there
(decode threads hand it over with ``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from service import metrics
from service.config import Settings, memory_limit
from service.errors import DeadlineExceededError, PayloadTooLargeError
from service.vision.image import DECODE_BYTES_PER_PIXEL

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
    return settings.max_image_pixels * (DECODE_BYTES_PER_PIXEL["png"] + RENDER_BYTES_PER_PIXEL)


@dataclass(eq=False)
class Charge:
    """Bytes held in the budget until :meth:`release` (idempotent; on the event loop)."""

    budget: DecodeBudget
    nbytes: int
    released: bool = field(default=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.budget._give_back(self.nbytes)


class DecodeBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        metrics.DECODE_BUDGET_BYTES.set(limit)
        metrics.DECODE_BYTES_IN_FLIGHT.set(0)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def charge(self, nbytes: int, deadline: float) -> Charge:
        """Hold ``nbytes``, waiting behind earlier charges until ``deadline`` (``time.monotonic()``).

        Raises:
            PayloadTooLargeError: more than the whole budget.
            DeadlineExceededError: the deadline passed while waiting.
        """
        if nbytes > self.limit:
            raise PayloadTooLargeError(
                f"decoding this image needs {nbytes} bytes, over the decode memory budget of {self.limit} bytes "
                "(POSE_DECODE_BUDGET_BYTES)"
            )
        if not self._waiters and self.used + nbytes <= self.limit:
            self._take(nbytes)
            return Charge(self, nbytes)
        granted = asyncio.get_running_loop().create_future()
        entry = (nbytes, granted)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                await granted
        except BaseException as exc:
            if granted.done() and not granted.cancelled():
                self._give_back(nbytes)  # granted, but the waiter is leaving
            else:
                self._waiters.remove(entry)
                self._wake()  # the head may have left: the next ones may fit now
            if isinstance(exc, TimeoutError):
                raise DeadlineExceededError("the request's deadline passed while waiting for decode memory") from None
            raise
        return Charge(self, nbytes)

    def _take(self, nbytes: int) -> None:
        self.used += nbytes
        metrics.DECODE_BYTES_IN_FLIGHT.set(self.used)

    def _give_back(self, nbytes: int) -> None:
        self.used -= nbytes
        metrics.DECODE_BYTES_IN_FLIGHT.set(self.used)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.used + self._waiters[0][0] <= self.limit:
            nbytes, granted = self._waiters.popleft()
            if not granted.done():
                self._take(nbytes)
                granted.set_result(None)
