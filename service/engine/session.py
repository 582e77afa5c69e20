"""Inference sessions: the runtime behind one model instance, on a device, in a precision; no silent fallback.

Runners see only :class:`InferenceSession` (ONNX Runtime's ``run`` signature); which
runtime answers is the model's ``backend``: ONNX Runtime here, OpenVINO in
``openvino_backend.py`` (an optional dependency, imported only when asked for).

Devices (ONNX Runtime): ``auto`` takes TensorRT (engine cache) when its provider is
installed, else CUDA, else CPU with a warning. An explicit ``cuda``/``cuda:N`` that cannot
be had is an error: a GPU node that silently serves from its CPU is worse than one that
fails to start.

Precision: ``fp32``, the default, is exact on every backend. ONNX Runtime lowers it only
through TensorRT (``fp16``); OpenVINO runs ``bf16``/``fp16`` where the CPU has them. An
explicit precision that cannot be had is an error; ``auto`` takes the fastest one that
can be had and reports when that is plain fp32.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from service.devices import Backend, Device, Precision

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


class InferenceSession(Protocol):
    """What a runner calls, whatever the runtime: ONNX Runtime's ``InferenceSession.run``."""

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch; the outputs named (all, in model order, for None), as new arrays."""
        ...


class DeviceUnavailableError(RuntimeError):
    """An explicitly requested device cannot be used."""


class BackendUnavailableError(DeviceUnavailableError):
    """An explicitly requested backend or precision cannot be had (not installed, or the CPU lacks it)."""


@dataclass(frozen=True)
class SessionInfo:
    """What a session really runs on (read back from the session, not from the request)."""

    provider: str  # the ONNX Runtime execution provider, or "OpenVINO:CPU"
    device: str  # "cpu" or "cuda:N"
    threads: int  # intra-op threads (CPU only; 0 on GPU)
    fallback: str | None  # why we are not on the device asked for, or None
    backend: Backend = Backend.ONNXRUNTIME
    precision: Precision = Precision.FP32  # never AUTO: what really runs
    precision_fallback: str | None = None  # why `auto` runs fp32, or None


ProviderList = list[str | tuple[str, dict[str, Any]]]


@functools.cache
def usable_providers() -> list[str]:
    """ONNX Runtime's providers, without TensorRT when TensorRT's own libraries cannot load.

    onnxruntime-gpu lists TensorRT whenever it ships the provider library, even where
    libnvinfer is missing (the GPU image has none); a session asked for it then fails
    over to CUDA and CPU *without our provider options* (device_id among them), so we do
    not ask for it where it cannot load.
    """
    available = ort.get_available_providers()
    if TENSORRT in available:
        library = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_tensorrt.so"
        try:
            ctypes.CDLL(str(library))
        except OSError as exc:
            logger.info("TensorRT provider left out: its libraries do not load (%s)", exc)
            available = [p for p in available if p != TENSORRT]
    return available


def _gpu_providers(available: list[str], index: int, trt_cache: Path, *, fp16: bool) -> ProviderList:
    providers: ProviderList = []
    if TENSORRT in available:
        trt_cache.mkdir(parents=True, exist_ok=True)
        providers.append(
            (
                TENSORRT,
                {
                    "device_id": index,
                    "trt_fp16_enable": fp16,
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


def open_session(
    path: Path,
    device: Device,
    *,
    backend: Backend,
    precision: Precision,
    threads: int,
    trt_cache: Path,
    spinning: bool = False,
    input_size: tuple[int, int] | None = None,
) -> tuple[InferenceSession, SessionInfo]:
    """Open ``path`` with ``backend`` on ``device`` in ``precision``: one session per model instance.

    Args:
        input_size: (w, h) every batch has; OpenVINO compiles for it (the batch stays dynamic).

    Raises:
        DeviceUnavailableError: an explicit device is not usable.
        BackendUnavailableError: the backend is not installed, or cannot run the explicit precision here.
    """
    if backend is Backend.OPENVINO:
        try:
            from service.engine import openvino_backend  # optional dependency: only where asked for
        except ImportError as exc:
            raise BackendUnavailableError(
                f"{path}: backend openvino asked for, but OpenVINO is not installed ({exc}). "
                "Install the openvino extra (pip install 'rtmpose-service[openvino]') or set backend = \"onnxruntime\"."
            ) from None
        return openvino_backend.create_session(path, device, precision=precision, threads=threads,
                                               input_size=input_size)  # fmt: skip
    return create_session(path, device, threads=threads, trt_cache=trt_cache, spinning=spinning, precision=precision)


def _ort_precision_refusal(path: Path, device: Device, precision: Precision, available: list[str]) -> str | None:
    """Why ONNX Runtime cannot run the explicit ``precision`` on ``device``, or None."""
    if precision is Precision.BF16:
        return (f"{path}: precision bf16 asked for, but onnxruntime runs fp32 (and fp16 only through TensorRT). "
                "Set backend = \"openvino\" (the openvino extra) on a CPU with AVX512-BF16 or AMX, or precision = "
                "\"fp32\" / \"auto\".")  # fmt: skip
    if precision is Precision.FP16 and (device.kind == "cpu" or TENSORRT not in available):
        return (f"{path}: precision fp16 asked for, but onnxruntime runs fp16 only through the TensorRT provider on "
                f"a GPU (device {device}, providers installed: {available}). Install onnxruntime-gpu with TensorRT, "
                "set backend = \"openvino\" on a CPU with AMX-FP16, or precision = \"fp32\" / \"auto\".")  # fmt: skip
    return None


def create_session(
    path: Path,
    device: Device,
    *,
    threads: int,
    trt_cache: Path,
    spinning: bool = False,
    precision: Precision = Precision.FP32,
) -> tuple[ort.InferenceSession, SessionInfo]:
    """Open ``path`` in ONNX Runtime on ``device``.

    TensorRT builds fp16 engines for ``precision`` fp16 and auto, fp32 ones otherwise;
    every other provider runs fp32.

    Raises:
        DeviceUnavailableError: an explicit ``cuda:N`` is not usable.
        BackendUnavailableError: an explicit bf16, or fp16 without TensorRT.
    """
    available = usable_providers()
    refusal = _ort_precision_refusal(path, device, precision, available)
    if refusal:
        raise BackendUnavailableError(refusal)
    options = cpu_options(threads, spinning=spinning)
    wants_gpu = device.kind in ("cuda", "auto")
    has_gpu_provider = CUDA in available
    if device.kind == "cuda" and not has_gpu_provider:
        raise DeviceUnavailableError(
            f"{path}: device {device} requested but onnxruntime has no CUDA provider (installed: {available}). "
            "Install the gpu extra (onnxruntime-gpu) or set the device to cpu/auto."
        )
    providers: ProviderList = [CPU]
    trt_fp16 = precision in (Precision.FP16, Precision.AUTO)
    if wants_gpu and has_gpu_provider:
        providers = [*_gpu_providers(available, device.index, trt_cache, fp16=trt_fp16), CPU]
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    used = session.get_providers()[0]
    on_gpu = used in (CUDA, TENSORRT)
    if device.kind == "cuda" and not on_gpu:
        raise DeviceUnavailableError(
            f"{path}: device {device} requested but the session runs on {used}: no usable GPU at index {device.index}"
        )
    if precision is Precision.FP16 and used != TENSORRT:
        raise BackendUnavailableError(
            f"{path}: precision fp16 asked for, but the TensorRT provider did not start (the session runs on {used}). "
            'Set precision = "fp32" / "auto".'
        )
    fallback = None
    if wants_gpu and not on_gpu:
        reason = "no CUDA provider installed" if not has_gpu_provider else "the CUDA provider failed to start"
        fallback = f"device {device} asked for a GPU but runs on CPU ({reason})"
    runs_fp16 = used == TENSORRT and trt_fp16
    precision_fallback = None
    if precision is Precision.AUTO and not runs_fp16:
        precision_fallback = (
            f"precision auto runs fp32: onnxruntime lowers precision only through TensorRT (this session runs on "
            f"{used}; backend openvino runs bf16 on CPUs that have it)"
        )
    info = SessionInfo(
        provider=used,
        device=f"cuda:{device.index}" if on_gpu else "cpu",
        threads=0 if on_gpu else threads,
        fallback=fallback,
        backend=Backend.ONNXRUNTIME,
        precision=Precision.FP16 if runs_fp16 else Precision.FP32,
        precision_fallback=precision_fallback,
    )
    return session, info
