"""ONNX Runtime sessions on a device: provider choice, CPU threads, fallback that is never silent.

``auto`` takes TensorRT (fp16, engine cache) when its provider is installed, else CUDA,
else CPU with a warning. An explicit ``cuda``/``cuda:N`` that cannot be had is an error:
a GPU node that silently serves from its CPU is worse than one that fails to start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from service.devices import Device

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


class DeviceUnavailableError(RuntimeError):
    """An explicitly requested device cannot be used."""


@dataclass(frozen=True)
class SessionInfo:
    """What a session really runs on (read back from the session, not from the request)."""

    provider: str
    device: str  # "cpu" or "cuda:N"
    threads: int  # intra-op threads (CPU only; 0 on GPU)
    fallback: str | None  # why we are not on the device asked for, or None


ProviderList = list[str | tuple[str, dict[str, Any]]]


def _gpu_providers(available: list[str], index: int, trt_cache: Path) -> ProviderList:
    providers: ProviderList = []
    if TENSORRT in available:
        trt_cache.mkdir(parents=True, exist_ok=True)
        providers.append(
            (
                TENSORRT,
                {
                    "device_id": index,
                    "trt_fp16_enable": True,
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(trt_cache),
                    "trt_timing_cache_enable": True,
                    "trt_timing_cache_path": str(trt_cache),
                },
            )
        )
    providers.append((CUDA, {"device_id": index}))
    return providers


def cpu_options(threads: int, *, spinning: bool) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning threads burn a core each while they wait for work. With several models
    # sharing the cores (detector + pose), idle spinners steal time from the busy model.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    return options


def create_session(
    path: Path, device: Device, *, threads: int, trt_cache: Path, spinning: bool = False
) -> tuple[ort.InferenceSession, SessionInfo]:
    """Open ``path`` on ``device``.

    Raises:
        DeviceUnavailableError: an explicit ``cuda:N`` is not usable.
    """
    available = ort.get_available_providers()
    options = cpu_options(threads, spinning=spinning)
    wants_gpu = device.kind in ("cuda", "auto")
    has_gpu_provider = CUDA in available
    if device.kind == "cuda" and not has_gpu_provider:
        raise DeviceUnavailableError(
            f"{path}: device {device} requested but onnxruntime has no CUDA provider (installed: {available}). "
            "Install the gpu extra (onnxruntime-gpu) or set the device to cpu/auto."
        )
    providers: ProviderList = [CPU]
    if wants_gpu and has_gpu_provider:
        providers = [*_gpu_providers(available, device.index, trt_cache), CPU]
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    used = session.get_providers()[0]
    on_gpu = used in (CUDA, TENSORRT)
    if device.kind == "cuda" and not on_gpu:
        raise DeviceUnavailableError(
            f"{path}: device {device} requested but the session runs on {used}: no usable GPU at index {device.index}"
        )
    fallback = None
    if wants_gpu and not on_gpu:
        reason = "no CUDA provider installed" if not has_gpu_provider else "the CUDA provider failed to start"
        fallback = f"device {device} asked for a GPU but runs on CPU ({reason})"
    info = SessionInfo(
        provider=used,
        device=f"cuda:{device.index}" if on_gpu else "cpu",
        threads=0 if on_gpu else threads,
        fallback=fallback,
    )
    return session, info
