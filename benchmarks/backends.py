"""``make bench``, backends: ONNX Runtime fp32 beside OpenVINO fp32 and bf16, and rtmlib on each backend.

On the same model files, images and person boxes:

- raw OpenVINO: the pose model alone at each batch size, per precision (raw ORT rows come from bench.py);
- the pipeline in process on each OpenVINO variant (detector + pose, concurrency 8);
- pose on given boxes (the detector skipped) in process and over HTTP, concurrency 8, every variant:
  the service's pose stage as a user who brings boxes sees it;
- rtmlib pose-only on the same boxes (JPEG decode included) with ``backend="onnxruntime"`` and
  ``"openvino"`` (rtmlib compiles with OpenVINO's defaults: bf16 where the CPU has it), and
  rtmlib's RTMDet + RTMPose loop on OpenVINO.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
import time
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


def _rtmlib(name: str, data: dict | None, unit_crops: bool, notes: str) -> list[Rate]:
    if data is None:
        return []
    items = data["crops"] if unit_crops else data["images"]
    return [summarize(name, data["latencies_s"], data["wall_s"], items, "crops/s" if unit_crops else "images/s",
                      notes)]  # fmt: skip


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


def run(inputs: Inputs, concurrency: int, with_http: bool) -> tuple[list[Rate], dict[str, float]]:
    """Every backend row at ``concurrency``; the rows and the issue's ratios."""
    variants = [ORT_FP32, *openvino_variants()]
    rows: list[Rate] = []
    for variant in variants[1:]:
        rows += raw_openvino.pose_rates(inputs.pose_path, inputs.pose_size, sorted({1, inputs.max_people, 8, 16, 32}),
                                        inputs.seconds / 2, inputs.threads, variant.precision)  # fmt: skip

    boxes: list[np.ndarray] = []
    on_boxes: dict[Variant, Rate] = {}
    for variant in variants:
        settings = Settings(model_repository=inputs.repo_root, model="rtmpose-m", detector="rtmdet-nano",
                            log_level="WARNING", backend=variant.backend, precision=variant.precision)  # fmt: skip
        engine = Engine(settings)
        engine.start()
        try:
            if not boxes:  # from ONNX Runtime fp32: the same boxes for every row
                boxes = given_boxes(engine, inputs.images, inputs.max_people)
            if variant != ORT_FP32:  # (the ONNX Runtime pipeline rows are bench.py's)
                rate = load.pipeline_rate(engine, inputs.images, concurrency, inputs.seconds, inputs.max_people)
                rows.append(dataclasses.replace(rate, name=f"pipeline in process, c{concurrency}, {variant.label}"))
            on_boxes[variant] = load.pose_on_boxes_rate(engine, inputs.images, boxes, concurrency, inputs.seconds,
                                                        variant.label)  # fmt: skip
            rows.append(on_boxes[variant])
        finally:
            engine.close(5)

    boxes_file = inputs.repo_root.parent / "boxes.json"
    boxes_file.write_text(json.dumps([b.tolist() for b in boxes]))
    common = (inputs.det_path, inputs.pose_path, inputs.paths, inputs.seconds, inputs.max_people)
    rtmlib_rows: dict[str, Rate] = {}
    for backend in ("onnxruntime", "openvino"):
        found = _rtmlib(f"rtmlib pose on boxes, {backend}", rtmlib_env.run(*common, "--backend", backend,
                        "--boxes", str(boxes_file)), True, "one crop per call, JPEG decode included")  # fmt: skip
        if found:
            rtmlib_rows[backend] = found[0]
            rows += found
    rows += _rtmlib("rtmlib RTMDet + RTMPose loop, openvino", rtmlib_env.run(*common, "--backend", "openvino"), False,
                    "one crop per call")  # fmt: skip

    http: dict[Variant, Rate] = {}
    if with_http:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.integration.server import start_server

        jpegs = [p.read_bytes() for p in inputs.paths]
        for variant in variants:
            env = {"POSE_MODEL": "rtmpose-m", "POSE_DETECTOR": "rtmdet-nano", "POSE_LOG_LEVEL": "WARNING",
                   "POSE_BACKEND": variant.backend.value, "POSE_PRECISION": variant.precision.value}  # fmt: skip
            server = start_server(inputs.repo_root, inputs.repo_root.parent / f"server-{variant.key}.log", **env)
            try:
                http[variant] = load.http_boxes_rate(server.url, jpegs, boxes, concurrency, inputs.seconds,
                                                     variant.label)  # fmt: skip
                rows.append(http[variant])
            finally:
                server.stop()
    return rows, _ratios(on_boxes, http, rtmlib_rows)


def _ratios(on_boxes: dict[Variant, Rate], http: dict[Variant, Rate], rtmlib_rows: dict[str, Rate]) -> dict[str, float]:
    """The issue's targets: OpenVINO bf16 over ONNX Runtime fp32 (pose stage), service over rtmlib + OpenVINO."""
    ratios: dict[str, float] = {}
    base = on_boxes.get(ORT_FP32)
    for variant, rate in on_boxes.items():
        if base and variant != ORT_FP32:
            ratios[f"pose_stage_{variant.key}_over_onnxruntime_fp32"] = rate.items_per_s / base.items_per_s
    rtmlib_ov = rtmlib_rows.get("openvino")
    if rtmlib_ov:
        for variant, rate in on_boxes.items():
            ratios[f"pose_on_boxes_in_process_{variant.key}_over_rtmlib_openvino"] = (
                rate.items_per_s / rtmlib_ov.items_per_s
            )
        for variant, rate in http.items():
            ratios[f"pose_on_boxes_http_{variant.key}_over_rtmlib_openvino"] = rate.items_per_s / rtmlib_ov.items_per_s
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
