"""Units of work in progress, counted, and a wait for none: what a shutdown waits on (a leaf module)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Gauge


class InFlight:
    """Counts what is inside :meth:`entered` blocks (on one event loop); :meth:`wait_idle` waits until none is.

    Args:
        gauge: a gauge (already labelled) that follows the count, if any.
    """

    def __init__(self, gauge: Gauge | None = None) -> None:
        self._gauge = gauge
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Count one unit for the duration of the block."""
        self.count += 1
        self._idle.clear()
        if self._gauge is not None:
            self._gauge.inc()
        try:
            yield
        finally:
            if self._gauge is not None:
                self._gauge.dec()
            self.count -= 1
            if not self.count:
                self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is in progress; False if ``timeout_s`` ran out first."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True
