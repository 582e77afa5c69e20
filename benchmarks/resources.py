"""CPU use and peak memory of the processes a row loads, read from ``/proc`` (Linux).

A :class:`Meter` wraps each measured interval of one configuration (several intervals
when configurations are measured in turns) and reports, over all of them:

- ``cores``: CPU seconds (user + system, every thread) of the process doing the inference
  (the server, the rtmlib worker, or the benchmark itself for in-process rows) per second
  of wall time: 2.0 is both cores of this machine busy;
- ``client_cores``: the same for the load generator (this benchmark process), where it
  is another process;
- ``peak_mib``: the inference process's peak resident memory (``VmHWM``) during the
  intervals: the peak is reset (``/proc/PID/clear_refs`` 5) at the start of each one.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

logger = logging.getLogger("benchmarks")
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    cores: float  # CPU seconds per wall second of the inference process
    client_cores: float | None  # the same for the load generator, when it is another process
    peak_mib: float | None  # peak resident memory of the inference process (VmHWM)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15 of proc(5))


def peak_rss_mib(pid: int) -> float | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def reset_peak(pid: int) -> bool:
    """Set ``pid``'s VmHWM to its current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Meter:
    """Accumulates CPU and wall time over ``with meter:`` intervals; the peak memory is the highest seen."""

    def __init__(self, pid: int, client_pid: int | None = None) -> None:
        self.pid, self.client_pid = pid, client_pid
        self.cpu = self.client_cpu = self.wall = 0.0
        self.peak: float | None = None
        self._start: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._peak_reset = True

    def __enter__(self) -> Meter:
        self._peak_reset = reset_peak(self.pid) and self._peak_reset
        client = cpu_seconds(self.client_pid) if self.client_pid else 0.0
        self._start = (time.perf_counter(), cpu_seconds(self.pid), client)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        t0, cpu0, client0 = self._start
        self.wall += time.perf_counter() - t0
        self.cpu += cpu_seconds(self.pid) - cpu0
        if self.client_pid:
            self.client_cpu += cpu_seconds(self.client_pid) - client0
        peak = peak_rss_mib(self.pid)
        if peak is not None:
            self.peak = max(peak, self.peak or 0.0)

    def usage(self) -> Usage | None:
        if self.wall <= 0:
            return None
        if not self._peak_reset:
            logger.warning("could not reset the peak memory of %d: its peak is since its start", self.pid)
        client = self.client_cpu / self.wall if self.client_pid else None
        return Usage(self.cpu / self.wall, client, self.peak)
