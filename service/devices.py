"""Where and how a model runs, as written in configs and settings.

Devices ``cpu``, ``cuda``, ``cuda:N``, ``auto``; backends (the runtime that runs the ONNX
file) and precisions (the arithmetic it runs in).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Backend(StrEnum):
    """The runtime that runs a model's ONNX file."""

    ONNXRUNTIME = "onnxruntime"  # CPU, CUDA, TensorRT (the onnxruntime or onnxruntime-gpu package)
    OPENVINO = "openvino"  # CPU only here (the openvino package: the `openvino` extra)


class Precision(StrEnum):
    """The arithmetic a model runs in. Only ``fp32`` is exact; nothing lowers it unasked."""

    FP32 = "fp32"
    BF16 = "bf16"  # OpenVINO on CPUs with AVX512-BF16 or AMX
    FP16 = "fp16"  # TensorRT; OpenVINO on CPUs with AMX-FP16
    AUTO = "auto"  # the fastest reduced precision the backend and device have, else fp32; logged


_DEVICE = re.compile(r"^(cpu|auto|cuda)(?::(\d+))?$")


@dataclass(frozen=True)
class Device:
    kind: str  # cpu | cuda | auto
    index: int = 0

    def __str__(self) -> str:
        return self.kind if self.kind != "cuda" else f"cuda:{self.index}"


def parse_device(text: str) -> Device:
    """Parse ``cpu`` / ``auto`` / ``cuda`` / ``cuda:N``.

    Raises:
        ValueError: for anything else, with valid examples.
    """
    match = _DEVICE.match(text.strip().lower())
    if not match or (match.group(1) != "cuda" and match.group(2) is not None):
        raise ValueError(f"device must be one of cpu, auto, cuda, cuda:N (e.g. cuda:0), got {text!r}")
    return Device(kind=match.group(1), index=int(match.group(2) or 0))
