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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import load, raw_openvino, rtmlib_env
from benchmarks.stats import Rate, summarize
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


def versions() -> str:
    """ "; openvino VERSION (CPU capabilities)" for the machine line, or "" without openvino."""
    try:
        from service.engine.openvino_backend import core
    except ImportError:
        return ""
    import openvino

    capabilities = core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return f"; openvino {openvino.__version__.split('-')[0]} (CPU: {' '.join(capabilities)})"


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
                        log_level="WARNING", backend=variant.backend, precision=variant.precision)  # fmt: skip
    engine = Engine(settings)
    engine.start()
    return engine


def _in_turns(measure: dict[str, Callable[[float, bool], load.Samples]], seconds: float, rounds: int
              ) -> dict[str, load.Samples]:  # fmt: skip
    """Each configuration ``rounds`` times for ``seconds / rounds``, in turns: a load that drifts (other
    processes on the same cores) then weighs on every configuration alike, and their ratios stay fair."""
    total: dict[str, load.Samples] = {}
    for turn in range(rounds):
        for key, fn in measure.items():
            got = fn(seconds / rounds, turn == 0)
            total[key] = load.add(total[key], got) if key in total else got
    return total


def _rtmlib_measure(worker: rtmlib_env.Worker) -> Callable[[float, bool], load.Samples]:
    def measure(seconds: float, warm: bool) -> load.Samples:  # (the worker warmed up when it loaded)
        data = worker.measure(seconds)
        return data["latencies_s"], data["wall_s"], data["crops"]

    return measure


def run(inputs: Inputs, concurrency: int, with_http: bool, rounds: int = 4) -> tuple[list[Rate], dict[str, float]]:
    """Every backend row at ``concurrency``; the rows and the issue's ratios.

    The rows the ratios compare (pose on boxes in process and over HTTP, rtmlib on the same
    boxes) are measured in one block, in turns: every engine, server and rtmlib worker is
    loaded first, then each gets ``rounds`` slices of ``2 * seconds / rounds``.
    """
    variants = [ORT_FP32, *openvino_variants()]
    rows: list[Rate] = []
    for variant in variants[1:]:
        rows += raw_openvino.pose_rates(inputs.pose_path, inputs.pose_size, sorted({1, inputs.max_people, 8, 16, 32}),
                                        inputs.seconds / 2, inputs.threads, variant.precision)  # fmt: skip

    with contextlib.ExitStack() as stack:
        engines = {}
        for variant in variants:
            engines[variant] = _engine(inputs, variant)
            stack.callback(engines[variant].close, 5)
        boxes = given_boxes(engines[ORT_FP32], inputs.images, inputs.max_people)  # the same boxes for every row
        for variant in variants[1:]:  # (the ONNX Runtime pipeline rows are bench.py's)
            rate = load.pipeline_rate(engines[variant], inputs.images, concurrency, inputs.seconds, inputs.max_people)
            rows.append(dataclasses.replace(rate, name=f"pipeline in process, c{concurrency}, {variant.label}"))
        measure = {
            f"in process {v.key}": functools.partial(
                load.pose_on_boxes_samples, engines[v], inputs.images, boxes, concurrency
            )  # fmt: skip
            for v in variants
        }
        common = (inputs.det_path, inputs.pose_path, inputs.paths)
        if rtmlib_env.available():
            boxes_file = inputs.repo_root.parent / "boxes.json"
            boxes_file.write_text(json.dumps([b.tolist() for b in boxes]))
            for backend in ("onnxruntime", "openvino"):
                worker = rtmlib_env.Worker(*common, inputs.max_people, "--backend", backend, "--boxes", str(boxes_file))
                stack.callback(worker.close)
                measure[f"rtmlib {backend}"] = _rtmlib_measure(worker)
        if with_http:
            jpegs = [p.read_bytes() for p in inputs.paths]
            for v in variants:
                server = _server(inputs, v)
                stack.callback(server.stop)
                measure[f"HTTP {v.key}"] = functools.partial(load.http_boxes_samples, server.url, jpegs, boxes,
                                                             concurrency)  # fmt: skip
        samples = _in_turns(measure, 2 * inputs.seconds, rounds)

    loop = rtmlib_env.run(*common, inputs.seconds, inputs.max_people, "--backend", "openvino")
    if loop:
        rows.append(summarize("rtmlib RTMDet + RTMPose loop, openvino", loop["latencies_s"], loop["wall_s"],
                              loop["images"], "images/s", "one crop per call"))  # fmt: skip

    turns = f"{rounds} slices in turns"
    named = {
        **{f"in process {v.key}": (f"pose on boxes in process, {v.label}, c{concurrency}",
                                   f"decoded images, {turns}") for v in variants},
        "rtmlib onnxruntime": ("rtmlib pose on boxes, onnxruntime", f"one crop per call, JPEG decode, {turns}"),
        "rtmlib openvino": ("rtmlib pose on boxes, openvino", f"one crop per call, JPEG decode, {turns}"),
        **{f"HTTP {v.key}": (f"pose on boxes over HTTP, {v.label}, c{concurrency}",
                             f"JPEG decode included, {turns}") for v in variants},
    }  # fmt: skip
    rates = {key: summarize(name, *samples[key], "crops/s", notes)
             for key, (name, notes) in named.items() if key in samples}  # fmt: skip
    rows += rates.values()
    return rows, _ratios(rates, variants)


def _server(inputs: Inputs, variant: Variant):  # -> tests.integration.server.Server
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.integration.server import start_server

    env = {"POSE_MODEL": "rtmpose-m", "POSE_DETECTOR": "rtmdet-nano", "POSE_LOG_LEVEL": "WARNING",
           "POSE_BACKEND": variant.backend.value, "POSE_PRECISION": variant.precision.value}  # fmt: skip
    return start_server(inputs.repo_root, inputs.repo_root.parent / f"server-{variant.key}.log", grpc=False, **env)


def _ratios(rates: dict[str, Rate], variants: list[Variant]) -> dict[str, float]:
    """The issue's targets: OpenVINO over ONNX Runtime fp32 (the pose stage), the service over rtmlib + OpenVINO."""
    ratios: dict[str, float] = {}
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
    repo, _ = prepare_repository(repo_root)
    engine = Engine(Settings(model_repository=repo_root, model=POSE, detector=DETECTOR, log_level="WARNING"))
    engine.start()
    paths, _ = load_images(engine, args.max_people)
    engine.close(5)
    pose = repo.load(POSE)
    images = [decode_image(p.read_bytes(), max_pixels=10**9) for p in paths]
    inputs = Inputs(repo_root, repo.load(DETECTOR).onnx_path, pose.onnx_path, pose.config.input_size, paths, images,
                    args.max_people, args.seconds, cpu_count())  # fmt: skip
    rows, ratios = run(inputs, 8, with_http=not args.no_http)
    print(f"\n{versions().removeprefix('; ')}\n")
    print(table(rows))
    print()
    for key, value in ratios.items():
        print(f"{key:64} {value:8.3f}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record = {"when": stamp, "openvino": versions(), "rows": [r.as_dict() for r in rows], "ratios": ratios}
    (out / f"backends-{stamp}.json").write_text(json.dumps(record, indent=2))
    print(f"\nwritten: {out / f'backends-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
