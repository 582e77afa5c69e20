"""``make bench`` on a machine whose onnxruntime has a GPU provider (onnxruntime-gpu): the GPU rows.

Only where ``raw_ort.gpu_variants()`` finds CUDA (or TensorRT whose libraries load); the
CPU rows stay on the CPU (``device = "cpu"``) so the CPU table means the same everywhere.

- raw ONNX Runtime: the pose model alone at batch 1..64 on each GPU provider;
- measured in turns: the service's pose stage on the given boxes in process (``device = "cuda"``)
  at concurrency 8 and 64, rtmlib pose on the same boxes on its CUDA provider (one crop per
  ``session.run``: its batch-1 loop; ``.bench-venv`` needs onnxruntime-gpu for it, else the row
  says the provider it fell back to and no ratio is given), and ``python -m service`` with
  ``POSE_DEVICE=cuda`` over HTTP and gRPC at concurrency 1, 8 and 32.

Issue 14's target: cross-request batching at >= 10x rtmlib's batch-1 CUDA loop in crops/s
(``gpu_pose_on_boxes_c64_over_rtmlib_cuda``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys

from benchmarks import load, raw_ort, rtmlib_env, turns
from benchmarks.backends import Inputs, given_boxes
from benchmarks.resources import Meter
from benchmarks.stats import Rate
from benchmarks.turns import Turn
from service.config import Settings
from service.engine.engine import Engine


def run(inputs: Inputs, providers: dict[str, list], levels: list[int], *, rtmlib: bool = True,  # type: ignore[type-arg]
        rounds: int = 2) -> tuple[list[Rate], dict[str, float], dict[str, Rate]]:  # fmt: skip
    """The GPU rows, their ratios, and the rows measured in turns by key."""
    rows = [rate for label, chosen in providers.items()
            for rate in raw_ort.pose_rates(inputs.pose_path, inputs.pose_size, [1, 8, 16, 32, 64],
                                           inputs.seconds / 2, inputs.threads, chosen, label)]  # fmt: skip
    with contextlib.ExitStack() as stack:
        settings = Settings(model_repository=inputs.repo_root, model="rtmpose-m", detector="rtmdet-nano",
                            log_level="WARNING", device="cuda")  # fmt: skip
        engine = Engine(settings)
        engine.start()
        stack.callback(engine.close, 5)
        boxes = given_boxes(engine, inputs.images, inputs.max_people)
        configs: dict[str, Turn] = {}
        for level in (8, 64):
            measure = functools.partial(load.pose_on_boxes_samples, engine, inputs.images, boxes, level)
            configs[f"in process c{level}"] = Turn(f"GPU pose on boxes in process, c{level}", "crops/s",
                                                   "decoded images", measure, Meter(os.getpid()))  # fmt: skip
        rtmlib_provider = None
        if rtmlib and rtmlib_env.available():
            boxes_file = inputs.repo_root.parent / "boxes-gpu.json"
            boxes_file.write_text(json.dumps([b.tolist() for b in boxes]))
            worker = rtmlib_env.Worker(inputs.det_path, inputs.pose_path, inputs.paths, inputs.max_people, "--boxes",
                                       str(boxes_file), "--device", "cuda")  # fmt: skip
            stack.callback(worker.close)
            rtmlib_provider = worker.provider

            def rtmlib(seconds: float, ramp: float) -> load.Samples:
                data = worker.measure(seconds)
                return load.Samples(data["latencies_s"], data["wall_s"], data["images"], data["crops"])

            notes = f"batch 1, JPEG decode, {worker.provider}"
            configs["rtmlib cuda"] = Turn("rtmlib pose on boxes, device cuda", "crops/s", notes, rtmlib,
                                          Meter(worker.pid))  # fmt: skip
        server = _server(inputs)
        stack.callback(server.stop)
        jpegs = [p.read_bytes() for p in inputs.paths]
        assert server.grpc_target is not None
        target, people = server.grpc_target, inputs.max_people
        for level in levels:
            meter = functools.partial(Meter, server.process.pid, os.getpid())
            configs[f"http {level}"] = Turn(
                f"GPU HTTP /v1/pose, concurrency {level}", "images/s", "JPEG decode included",
                functools.partial(load.http_samples, server.url, jpegs, level, people), meter())  # fmt: skip
            configs[f"grpc {level}"] = Turn(
                f"GPU gRPC Estimate, concurrency {level}", "images/s", "JPEG decode included",
                functools.partial(load.grpc_samples, target, jpegs, level, people), meter())  # fmt: skip
        rates = turns.in_turns(configs, inputs.seconds, rounds)
    ratios = {}
    if rtmlib_provider == "CUDAExecutionProvider":
        ratios["gpu_pose_on_boxes_c64_over_rtmlib_cuda"] = (
            rates["in process c64"].items_per_s / rates["rtmlib cuda"].items_per_s
        )
    return rows + list(rates.values()), ratios, rates


def _server(inputs: Inputs):  # -> tests.helpers.Server
    sys.path.insert(0, str(rtmlib_env.ROOT))
    from tests.helpers import start_server

    return start_server(inputs.repo_root, inputs.repo_root.parent / "server-gpu.log", timeout=300,
                        POSE_MODEL="rtmpose-m", POSE_DETECTOR="rtmdet-nano", POSE_LOG_LEVEL="WARNING",
                        POSE_DEVICE="cuda")  # fmt: skip
