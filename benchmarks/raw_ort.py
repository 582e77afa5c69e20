"""The ceiling: the models alone in ONNX Runtime, in a tight loop, with every core."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from benchmarks.stats import Rate, loop, summarize

GPU_PROVIDERS = {
    "CUDA EP": [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"],
    "TensorRT EP fp16": [
        ("TensorrtExecutionProvider", {"device_id": 0, "trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                       "trt_engine_cache_path": ".bench/trt_cache"}),
        ("CUDAExecutionProvider", {"device_id": 0}),
        "CPUExecutionProvider",
    ],
}  # fmt: skip


def gpu_variants() -> dict[str, list]:  # type: ignore[type-arg]
    """The GPU providers this onnxruntime can use (none on a CPU build; TensorRT only where its libraries load,
    as the service decides: ``service.engine.session.usable_providers``)."""
    from service.engine.session import usable_providers

    available = usable_providers()
    return {label: providers for label, providers in GPU_PROVIDERS.items()
            if (providers[0][0] if isinstance(providers[0], tuple) else providers[0]) in available}  # fmt: skip


def session(path: Path, threads: int, providers: list | None = None) -> ort.InferenceSession:  # type: ignore[type-arg]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=providers or ["CPUExecutionProvider"])


def pose_rates(
    path: Path,
    input_size: tuple[int, int],
    batches: list[int],
    seconds: float,
    threads: int,
    providers: list | None = None,  # type: ignore[type-arg]
    label: str = "",
) -> list[Rate]:
    """crops/s of the pose model at each batch size (random normalised input)."""
    sess = session(path, threads, providers)
    used = sess.get_providers()[0]  # what really runs, not what was asked for
    name = sess.get_inputs()[0].name
    width, height = input_size
    rates = []
    for batch in batches:
        x = np.random.default_rng(0).standard_normal((batch, 3, height, width)).astype(np.float32)
        latencies, wall = loop(lambda x=x: sess.run(None, {name: x}), seconds)
        title = f"raw ORT pose batch {batch}" + (f" ({label})" if label else "")
        rates.append(summarize(title, latencies, wall, batch * len(latencies), "crops/s", used if label else ""))
    return rates


def detector_rate(path: Path, side: int, seconds: float, threads: int) -> Rate:
    """images/s of the detector at batch 1."""
    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((1, 3, side, side)).astype(np.float32)
    latencies, wall = loop(lambda: sess.run(None, {name: x}), seconds)
    return summarize("raw ORT detector batch 1", latencies, wall, len(latencies), "images/s")


def sequence_rate(det_path: Path, det_side: int, pose_path: Path, pose_size: tuple[int, int], people: int,
                  seconds: float, threads: int) -> Rate:  # fmt: skip
    """The same work as one pipeline request, without the service: detector batch 1 then pose batch ``people``.

    Sessions use the service's own CPU options (spinning off), so the difference to the
    pipeline's latency at concurrency 1 is what the service adds: queueing, pre/post, hand-offs.
    """
    from service.engine.session import cpu_options

    det = ort.InferenceSession(str(det_path), cpu_options(threads, spinning=False), providers=["CPUExecutionProvider"])
    pose = ort.InferenceSession(
        str(pose_path), cpu_options(threads, spinning=False), providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    x_det = rng.standard_normal((1, 3, det_side, det_side)).astype(np.float32)
    width, height = pose_size
    x_pose = rng.standard_normal((people, 3, height, width)).astype(np.float32)
    det_in, pose_in = det.get_inputs()[0].name, pose.get_inputs()[0].name

    def one() -> None:
        det.run(None, {det_in: x_det})
        pose.run(None, {pose_in: x_pose})

    latencies, wall = loop(one, seconds)
    return summarize(f"raw ORT detector b1 + pose b{people}", latencies, wall, len(latencies), "images/s",
                     "service session options, no service")  # fmt: skip
