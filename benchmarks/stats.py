"""Small shared helpers: timing loops and latency summaries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from benchmarks.resources import Usage


@dataclass(frozen=True)
class Rate:
    """Throughput and latency of one measured configuration."""

    name: str
    items_per_s: float  # images/s, or crops/s for raw pose rows
    unit: str
    p50_ms: float
    p99_ms: float
    samples: int
    notes: str = ""
    usage: Usage | None = None  # CPU use and peak memory of the processes (benchmarks/resources.py)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def summarize(name: str, latencies_s: list[float], wall_s: float, items: float, unit: str, notes: str = "") -> Rate:
    lat = np.asarray(latencies_s) * 1000
    return Rate(name, items / wall_s, unit, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                len(latencies_s), notes)  # fmt: skip


def loop(fn: Callable[[], object], seconds: float, warmup: int = 3) -> tuple[list[float], float]:
    """Call ``fn`` repeatedly for ``seconds``; per-call latencies and the wall time."""
    for _ in range(warmup):
        fn()
    latencies: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - t0)
    return latencies, time.perf_counter() - start
