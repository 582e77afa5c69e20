"""OpenVINO on CPU: the model's own model.onnx, compiled once per instance, in an explicit precision.

Imported only when a model asks for ``backend = "openvino"`` (the ``openvino`` extra).
Each instance compiles its own model for the CPU (one stream, ``threads`` inference
threads, the batch dimension left dynamic, the spatial size fixed to the model's input)
and runs it through one infer request on its own thread.

Precision is set with OpenVINO's ``INFERENCE_PRECISION_HINT`` and read back from the
compiled model. OpenVINO's own CPU default is bf16 wherever the CPU has it; this service
asks for fp32 unless told otherwise. An explicit bf16/fp16 needs the CPU capability
(OpenVINO's ``OPTIMIZATION_CAPABILITIES``: ``BF16`` on AVX512-BF16 or AMX, ``FP16`` on
AMX-FP16): without it, start-up fails rather than run something else (asked for f16 on a
CPU without it, OpenVINO itself quietly runs bf16).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import openvino as ov

from service.devices import Backend, Device, Precision
from service.engine.session import BackendUnavailableError, SessionInfo

logger = logging.getLogger(__name__)

_HINTS = {Precision.FP32: "f32", Precision.BF16: "bf16", Precision.FP16: "f16"}
_READ_BACK = {ov.Type.f32: Precision.FP32, ov.Type.bf16: Precision.BF16, ov.Type.f16: Precision.FP16}
_CAPABILITY = {Precision.BF16: "BF16", Precision.FP16: "FP16"}
_NEEDS = {Precision.BF16: "AVX512-BF16 or AMX", Precision.FP16: "AMX-FP16"}
PROVIDER = "OpenVINO:CPU"
CPU_CONFIG: dict[str, object] = {
    "PERFORMANCE_HINT": "LATENCY",  # one stream: each instance runs one batch at a time
    "NUM_STREAMS": 1,
    # Pinning measured no faster here (A/B runs within noise, BENCHMARKS.md), and pinned threads cannot move
    # off cores that other processes (or other pods under a CPU quota, not a cpuset) also pin or load.
    "ENABLE_CPU_PINNING": False,
}


@cache
def core() -> ov.Core:
    """One OpenVINO Core per process (it holds the loaded device plugins)."""
    return ov.Core()


def cpu_precisions() -> set[Precision]:
    """The precisions this CPU runs in OpenVINO: fp32 always, bf16 / fp16 where its capabilities say so."""
    capabilities = core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return {Precision.FP32} | {p for p, name in _CAPABILITY.items() if name in capabilities}


def choose_precision(asked: Precision, available: set[Precision], cpu: str) -> tuple[Precision, str | None]:
    """The precision to compile in, and why ``auto`` runs fp32 (None otherwise).

    ``auto`` prefers bf16 (fp32's range, so no overflow) over fp16.

    Raises:
        BackendUnavailableError: an explicit precision this CPU does not have.
    """
    if asked is Precision.AUTO:
        for reduced in (Precision.BF16, Precision.FP16):
            if reduced in available:
                return reduced, None
        return Precision.FP32, f"precision auto runs fp32: this CPU ({cpu}) has neither bf16 (AVX512-BF16, AMX) " \
                               "nor fp16 (AMX-FP16) in OpenVINO"  # fmt: skip
    if asked not in available:
        raise BackendUnavailableError(
            f"precision {asked} asked for, but OpenVINO cannot run it on this CPU ({cpu}: it needs {_NEEDS[asked]}; "
            f'this one runs {", ".join(sorted(available))}). Set precision = "fp32" or "auto", or run on a CPU '
            "that has it."
        )
    return asked, None


class OpenVINOSession:
    """One compiled model and its infer request: an :class:`~service.engine.session.InferenceSession`.

    Not thread-safe: each model instance (one thread) has its own.
    """

    def __init__(self, compiled: ov.CompiledModel) -> None:
        self.compiled = compiled
        self._request = compiled.create_infer_request()
        self._outputs = list(compiled.outputs)
        self._by_name = {name: port for port in self._outputs for name in port.get_names()}

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        # inputs are read in place (the runner's buffers are C-contiguous float32); outputs are copies
        results = self._request.infer(dict(input_feed), share_inputs=True, share_outputs=False)
        ports = self._outputs if output_names is None else [self._by_name[name] for name in output_names]
        return [results[port] for port in ports]


def _fix_spatial_size(model: ov.Model, input_size: tuple[int, int]) -> None:
    """Fix H and W of the single NCHW input (the batch dimension stays as exported)."""
    (port,) = model.inputs
    shape = port.get_partial_shape()
    width, height = input_size
    model.reshape({port.any_name: ov.PartialShape([shape[0], shape[1], height, width])})


def create_session(
    path: Path, device: Device, *, precision: Precision, threads: int, input_size: tuple[int, int] | None = None
) -> tuple[OpenVINOSession, SessionInfo]:
    """Compile ``path`` for this CPU in ``precision`` with ``threads`` inference threads.

    Args:
        input_size: (w, h) every batch has; None keeps the exported shape.

    Raises:
        BackendUnavailableError: a GPU device, or an explicit precision this CPU lacks.
    """
    if device.kind == "cuda":
        raise BackendUnavailableError(
            f"{path}: device {device} asked for with backend openvino, which runs on CPU here. "
            'Set backend = "onnxruntime" (the gpu extra) for CUDA/TensorRT, or device = "cpu".'
        )
    cpu = core().get_property("CPU", "FULL_DEVICE_NAME")
    try:
        chosen, note = choose_precision(precision, cpu_precisions(), cpu)
    except BackendUnavailableError as exc:
        raise BackendUnavailableError(f"{path}: {exc}") from None
    model = core().read_model(str(path))
    if input_size is not None:
        _fix_spatial_size(model, input_size)
    config = {**CPU_CONFIG, "INFERENCE_PRECISION_HINT": _HINTS[chosen], "INFERENCE_NUM_THREADS": threads}
    compiled = core().compile_model(model, "CPU", config)
    really = _READ_BACK.get(compiled.get_property("INFERENCE_PRECISION_HINT"))
    if really is not chosen:  # never run something other than what is reported
        raise BackendUnavailableError(f"{path}: OpenVINO compiled {really} although {chosen} was asked for")
    if precision is Precision.AUTO:
        logger.info("%s: precision auto runs %s on %s", path, chosen, cpu)
    info = SessionInfo(
        provider=PROVIDER,
        device="cpu",
        threads=int(compiled.get_property("INFERENCE_NUM_THREADS")),
        fallback=None,
        backend=Backend.OPENVINO,
        precision=chosen,
        precision_fallback=note,
    )
    return OpenVINOSession(compiled), info
