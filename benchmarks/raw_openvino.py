"""The pose model alone in OpenVINO, compiled as the service compiles it (openvino_backend), in a tight loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.stats import Rate, loop, summarize
from service.devices import Precision, parse_device


def pose_rates(
    path: Path, input_size: tuple[int, int], batches: list[int], seconds: float, threads: int, precision: Precision
) -> list[Rate]:
    """crops/s of the pose model at each batch size (random normalised input)."""
    from service.engine import openvino_backend  # optional dependency

    session, info = openvino_backend.create_session(path, parse_device("cpu"), precision=precision, threads=threads,
                                                    input_size=input_size)  # fmt: skip
    width, height = input_size
    rates = []
    for batch in batches:
        x = np.random.default_rng(0).standard_normal((batch, 3, height, width)).astype(np.float32)
        latencies, wall = loop(lambda x=x: session.run(None, {"input": x}), seconds)
        rates.append(summarize(f"raw OpenVINO pose batch {batch} ({info.precision})", latencies, wall,
                               batch * len(latencies), "crops/s", "service compile options"))  # fmt: skip
    return rates
