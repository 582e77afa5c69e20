"""The machine line every benchmark result carries: CPU, the flags that matter, cores, runtimes, providers."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import onnxruntime as ort

from service.config import cpu_count
from service.engine.session import usable_providers

# what decides which kernels ONNX Runtime and OpenVINO can use on x86
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if flags and model:
                break
    except OSError:
        pass
    return model, flags


def openvino_version() -> tuple[str | None, list[str]]:
    """OpenVINO's version and what it finds the CPU can do (``FP32 BF16 ...``); (None, []) without it."""
    try:
        import openvino

        from service.engine.openvino_backend import core
    except ImportError:
        return None, []
    return openvino.__version__.split("-")[0], list(core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def describe() -> dict[str, Any]:
    """The machine as a record (every results JSON has it under ``machine``)."""
    model, flags = _cpuinfo()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    openvino, capabilities = openvino_version()
    return {
        "cpu_model": model,
        "cpu_flags": [f for f in FLAGS if f in flags],
        "cpus": cpu_count(),
        "memory_gib": round(memory, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": usable_providers(),
        "openvino": openvino,
        "openvino_cpu_capabilities": capabilities,
    }


def line(record: dict[str, Any]) -> str:
    """One line: ``AMD EPYC, 2 CPUs (avx2 avx512f avx512_bf16), 23.5 GiB; onnxruntime 1.32.0 [CPU...]; ...``."""
    providers = ", ".join(p.removesuffix("ExecutionProvider") for p in record["onnxruntime_providers"])
    openvino = (
        f"; openvino {record['openvino']} ({' '.join(record['openvino_cpu_capabilities'])})"
        if record["openvino"]
        else ""
    )
    return (f"{record['cpu_model']}, {record['cpus']} CPUs ({' '.join(record['cpu_flags']) or 'no AVX2'}), "
            f"{record['memory_gib']} GiB; onnxruntime {record['onnxruntime']} ({providers}){openvino}; "
            f"Python {record['python']}")  # fmt: skip
