"""``make bench``, backends: ONNX Runtime fp32 beside OpenVINO fp32 and bf16, and rtmlib on each backend.

On the same model files, images and person boxes:

- raw OpenVINO: the pose model alone at each batch size, per precision (raw ORT rows come from bench.py);
- the pipeline in process on each OpenVINO variant (detector + pose, concurrency 8);
- pose on given boxes (the detector skipped) in process and over HTTP, concurrency 8, every variant:
  the service's pose stage as a user who brings boxes sees it;
- rtmlib pose-only on the same boxes (JPEG decode included) with ``backend="onnxruntime"`` and
  ``"openvino"`` (rtmlib compiles with OpenVINO's defaults: bf16 where the CPU has it), and
  rtmlib's RTMDet + RTMPose loop on OpenVINO.

The rows whose ratios are the targets (pose on boxes in process, over HTTP, rtmlib) are
measured in one block, in turns: every configuration for a slice, then the next, four
rounds, so a load that drifts (other processes on the same cores) weighs on each alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import load, raw_openvino, rtmlib_env, turns
from benchmarks.resources import Meter
from benchmarks.stats import Rate
from benchmarks.turns import Turn
from service.config import Settings
from service.devices import Backend, Precision
from service.engine.engine import Engine
from service.engine.pipeline import EstimateOptions
from service.vision.image import DecodedImage

logger = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class Variant:
    backend: Backend
    precision: Precision

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}"

    @property
    def key(self) -> str:
        return f"{self.backend}_{self.precision}"


ORT_FP32 = Variant(Backend.ONNXRUNTIME, Precision.FP32)


def openvino_variants() -> list[Variant]:
    """OpenVINO fp32, and bf16 where the CPU has it; none without the openvino package."""
    try:
        from service.engine.openvino_backend import cpu_precisions
    except ImportError:
        logger.warning("openvino is not installed: no OpenVINO rows (pip install -e '.[openvino]')")
        return []
    precisions = cpu_precisions()
    return [Variant(Backend.OPENVINO, p) for p in (Precision.FP32, Precision.BF16) if p in precisions]


def given_boxes(engine: Engine, images: list[DecodedImage], max_people: int) -> list[np.ndarray]:
    """The boxes the service's detector finds (top ``max_people``), in original pixels: every row's given boxes."""

    async def detect(image: DecodedImage) -> np.ndarray:
        result = await engine.pipeline.estimate(image, EstimateOptions(max_people=max_people),
                                                deadline=time.monotonic() + 60)  # fmt: skip
        return result.boxes

    return [asyncio.run(detect(image)) for image in images]


@dataclass
class Inputs:
    """What every row shares."""

    repo_root: Path
    det_path: Path
    pose_path: Path
    pose_size: tuple[int, int]
    paths: list[Path]
    images: list[DecodedImage]
    max_people: int
    seconds: float
    threads: int


def _engine(inputs: Inputs, variant: Variant) -> Engine:
    settings = Settings(model_repository=inputs.repo_root, model="rtmpose-m", detector="rtmdet-nano",
                        log_level="WARNING", backend=variant.backend, precision=variant.precision,
                        device="cpu")  # fmt: skip
    engine = Engine(settings)
    engine.start()
    return engine


def _rtmlib(worker: rtmlib_env.Worker) -> Callable[[float, float], load.Samples]:
    def measure(seconds: float, ramp: float) -> load.Samples:  # (no ramp: one loop, warmed up when it loaded)
        data = worker.measure(seconds)
        return load.Samples(data["latencies_s"], data["wall_s"], data["images"], data["crops"])

    return measure


@dataclass
class Result:
    rows: list[Rate]
    ratios: dict[str, float]
    rates: dict[str, Rate]  # the rows measured in turns, by key ("rtmlib loop", "in process onnxruntime_fp32", ...)


class _Block:
    """The configurations measured in turns, each loaded once (engines, rtmlib workers, servers) on one stack."""

    def __init__(self, stack: contextlib.ExitStack, inputs: Inputs, engines: dict[Variant, Engine],
                 boxes: list[np.ndarray]) -> None:  # fmt: skip
        self.stack, self.inputs, self.engines, self.boxes = stack, inputs, engines, boxes
        self.turns: dict[str, Turn] = {}
        self.boxes_file = inputs.repo_root.parent / "boxes.json"
        self.boxes_file.write_text(json.dumps([b.tolist() for b in boxes]))

    def in_process(self, key: str, variant: Variant, level: int) -> None:
        measure = functools.partial(load.pose_on_boxes_samples, self.engines[variant], self.inputs.images,
                                    self.boxes, level)  # fmt: skip
        self.turns[key] = Turn(f"pose on boxes in process, {variant.label}, c{level}", "crops/s", "decoded images",
                               measure, Meter(os.getpid()))  # fmt: skip

    def rtmlib(self, key: str, name: str, notes: str, *options: str, boxes: bool = True) -> None:
        """rtmlib pose on the given boxes (crops/s) or, with ``boxes=False``, its detector + pose loop (images/s)."""
        given = ("--boxes", str(self.boxes_file)) if boxes else ()
        i = self.inputs
        worker = rtmlib_env.Worker(i.det_path, i.pose_path, i.paths, i.max_people, *given, *options)
        self.stack.callback(worker.close)
        unit = "crops/s" if boxes else "images/s"
        self.turns[key] = Turn(name, unit, f"{notes}, {worker.provider}", _rtmlib(worker), Meter(worker.pid))

    def http(self, key: str, variant: Variant, level: int) -> None:
        server = _server(self.inputs, variant)
        self.stack.callback(server.stop)
        jpegs = [p.read_bytes() for p in self.inputs.paths]
        measure = functools.partial(load.http_boxes_samples, server.url, jpegs, self.boxes, level)
        self.turns[key] = Turn(f"pose on boxes over HTTP, {variant.label}, c{level}", "crops/s",
                               "JPEG decode included", measure, Meter(server.process.pid, os.getpid()))  # fmt: skip


def run(inputs: Inputs, concurrency: int, *, with_http: bool, openvino: bool = True, rtmlib: bool = True,
        rounds: int = 3, block_seconds: float | None = None) -> Result:  # fmt: skip
    """The rows measured in turns (pose on given boxes, rtmlib both ways), and the OpenVINO rows.

    The rows whose ratios the issues ask for are measured in one block, in turns: every
    engine, server and rtmlib worker is loaded first, then each gets ``rounds`` slices of
    ``block_seconds / rounds`` (default ``1.5 * seconds``):

    - pose on the same given boxes at ``concurrency``: the service in process and over HTTP on
      ONNX Runtime fp32 (and each OpenVINO variant), rtmlib on ``onnxruntime`` (and ``openvino``);
    - rtmlib's RTMDet + RTMPose loop on ONNX Runtime as users run it (ORT's default session options:
      intra-op spinning on) and with spinning off, the one difference between the two.

    Everything here runs on the CPU (GPU rows: benchmarks/gpu.py).
    """
    variants = [ORT_FP32, *(openvino_variants() if openvino else [])]
    rtmlib = rtmlib and rtmlib_env.available()
    rows: list[Rate] = []
    for variant in variants[1:]:
        rows += raw_openvino.pose_rates(inputs.pose_path, inputs.pose_size, sorted({1, inputs.max_people, 8, 32}),
                                        inputs.seconds / 2, inputs.threads, variant.precision)  # fmt: skip

    with contextlib.ExitStack() as stack:
        engines = {}
        for variant in variants:
            engines[variant] = _engine(inputs, variant)
            stack.callback(engines[variant].close, 5)
        for variant in variants[1:]:  # (the ONNX Runtime pipeline rows are bench.py's)
            with Meter(os.getpid()) as meter:
                rate = load.pipeline_rate(engines[variant], inputs.images, concurrency, inputs.seconds,
                                          inputs.max_people)  # fmt: skip
            rows.append(dataclasses.replace(rate, name=f"pipeline in process, c{concurrency}, {variant.label}",
                                            usage=meter.usage()))  # fmt: skip
        # the same boxes for every row: those the service's ONNX Runtime fp32 detector finds
        block = _Block(stack, inputs, engines, given_boxes(engines[ORT_FP32], inputs.images, inputs.max_people))
        block.in_process(f"in process {ORT_FP32.key}", ORT_FP32, concurrency)
        if rtmlib:
            block.rtmlib("rtmlib onnxruntime", "rtmlib pose on boxes, onnxruntime", "one crop per call, JPEG decode")
            block.rtmlib("rtmlib loop", "rtmlib RTMDet + RTMPose loop", "ORT spinning on (its default)", boxes=False)
            block.rtmlib("rtmlib loop spinning off", "rtmlib loop, ORT spinning off", "intra-op spinning off",
                         "--ort-spinning", "off", boxes=False)  # fmt: skip
        for variant in variants[1:]:
            block.in_process(f"in process {variant.key}", variant, concurrency)
        if rtmlib and len(variants) > 1:
            block.rtmlib("rtmlib openvino", "rtmlib pose on boxes, openvino", "one crop per call, JPEG decode",
                         "--backend", "openvino")  # fmt: skip
        for variant in variants if with_http else []:
            block.http(f"HTTP {variant.key}", variant, concurrency)
        rates = turns.in_turns(block.turns, block_seconds or 1.5 * inputs.seconds, rounds)

    if rtmlib and len(variants) > 1:
        rows.append(_rtmlib_loop(inputs, "openvino"))
    rows += rates.values()
    return Result(rows, _ratios(rates, variants), rates)


def _rtmlib_loop(inputs: Inputs, backend: str) -> Rate:
    """rtmlib's RTMDet + RTMPose loop on ``backend``, alone (not in turns)."""
    with rtmlib_env.Worker(inputs.det_path, inputs.pose_path, inputs.paths, inputs.max_people, "--backend",
                           backend) as worker:  # fmt: skip
        turn = Turn(f"rtmlib RTMDet + RTMPose loop, {backend}", "images/s", "one crop per call", _rtmlib(worker),
                    Meter(worker.pid))  # fmt: skip
        return turns.one(turn, inputs.seconds)


def _server(inputs: Inputs, variant: Variant):  # -> tests.helpers.Server
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.helpers import start_server

    env = {"POSE_MODEL": "rtmpose-m", "POSE_DETECTOR": "rtmdet-nano", "POSE_LOG_LEVEL": "WARNING",
           "POSE_BACKEND": variant.backend.value, "POSE_PRECISION": variant.precision.value,
           "POSE_DEVICE": "cpu"}  # fmt: skip
    return start_server(inputs.repo_root, inputs.repo_root.parent / f"server-{variant.key}.log", grpc=False, **env)


def _ratios(rates: dict[str, Rate], variants: list[Variant]) -> dict[str, float]:
    """The issues' ratios: the service over rtmlib on the same boxes, rtmlib's loop without spinning over with it
    (issue 14); OpenVINO over ONNX Runtime fp32 (the pose stage), the service over rtmlib + OpenVINO (issue 15)."""
    ratios: dict[str, float] = {}

    def ratio(name: str, top: str, bottom: str) -> None:
        if top in rates and bottom in rates:
            ratios[name] = rates[top].items_per_s / rates[bottom].items_per_s

    ratio("pose_on_boxes_in_process_onnxruntime_fp32_over_rtmlib_onnxruntime", f"in process {ORT_FP32.key}",
          "rtmlib onnxruntime")  # fmt: skip
    ratio("pose_on_boxes_http_onnxruntime_fp32_over_rtmlib_onnxruntime", f"HTTP {ORT_FP32.key}", "rtmlib onnxruntime")
    ratio("rtmlib_loop_spinning_off_over_on", "rtmlib loop spinning off", "rtmlib loop")
    base = rates.get(f"in process {ORT_FP32.key}")
    rtmlib_ov = rates.get("rtmlib openvino")
    for v in variants:
        in_process, http = rates.get(f"in process {v.key}"), rates.get(f"HTTP {v.key}")
        if base and in_process and v != ORT_FP32:
            ratios[f"pose_stage_{v.key}_over_onnxruntime_fp32"] = in_process.items_per_s / base.items_per_s
        if rtmlib_ov and in_process:
            ratios[f"pose_on_boxes_in_process_{v.key}_over_rtmlib_openvino"] = (
                in_process.items_per_s / rtmlib_ov.items_per_s
            )
        if rtmlib_ov and http:
            ratios[f"pose_on_boxes_http_{v.key}_over_rtmlib_openvino"] = http.items_per_s / rtmlib_ov.items_per_s
    return ratios


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.backends``: only these rows, on bench.py's models and images (quicker to repeat)."""
    import argparse

    from benchmarks import machine
    from benchmarks.bench import DETECTOR, POSE, ROOT, load_images, prepare_repository, table
    from service.config import cpu_count
    from service.vision.image import decode_image

    parser = argparse.ArgumentParser(prog="python -m benchmarks.backends", description=main.__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per row")
    parser.add_argument("--max-people", type=int, default=4)
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    repo_root = ROOT / ".bench" / "repository"
    host = machine.describe()
    repo, detector_kind = prepare_repository(repo_root)
    engine = Engine(Settings(model_repository=repo_root, model=POSE, detector=DETECTOR, log_level="WARNING"))
    engine.start()
    paths, _ = load_images(engine, args.max_people)
    engine.close(5)
    pose = repo.load(POSE)
    images = [decode_image(p.read_bytes(), max_pixels=10**9) for p in paths]
    inputs = Inputs(repo_root, repo.load(DETECTOR).onnx_path, pose.onnx_path, pose.config.input_size, paths, images,
                    args.max_people, args.seconds, cpu_count())  # fmt: skip
    result = run(inputs, 8, with_http=not args.no_http)
    models = {"pose": f"synthetic {POSE}", "detector": detector_kind}
    print(f"\nmachine: {machine.line(host)}\nmodels: {models['pose']} + {detector_kind}\n")
    print(table(result.rows))
    print()
    for key, value in result.ratios.items():
        print(f"{key:64} {value:8.3f}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    command = " ".join(["python -m benchmarks.backends", *(sys.argv[1:] if argv is None else argv)])
    record = {"when": stamp, "command": command,
              "machine": host, "machine_line": machine.line(host), "models": models,
              "rows": [r.as_dict() for r in result.rows], "ratios": result.ratios}  # fmt: skip
    (out / f"backends-{stamp}.json").write_text(json.dumps(record, indent=2))
    print(f"\nwritten: {out / f'backends-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
