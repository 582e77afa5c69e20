"""``make bench``: raw ONNX Runtime, the in-process pipeline, the service over HTTP and gRPC, and rtmlib, in one run.

Same models (synthetic RTMPose-m 256x192; the real RTMDet-nano from ../shared/assets
when present, else a synthetic one) and the same images (real COCO val2017 photos
when present) for every row. Prints a table and writes JSON under benchmarks/results/.

    python -m benchmarks.bench [--seconds 8] [--no-http] [--no-rtmlib]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from benchmarks import backends, load, raw_ort, rtmlib_env
from benchmarks.stats import Rate, summarize
from service.config import Settings, WeightsPolicy, cpu_count
from service.engine.engine import Engine
from service.engine.pipeline import EstimateOptions
from service.models.install import ensure, import_file
from service.models.repository import ModelRepository
from service.vision.image import decode_image

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
REAL_DETECTOR = ASSETS / "weights" / "rtmdet-nano-person.onnx"
COCO = ASSETS / "coco4"
POSE, DETECTOR = "rtmpose-m", "rtmdet-nano"
logger = logging.getLogger("benchmarks")


def prepare_repository(root: Path) -> tuple[ModelRepository, str]:
    repo = ModelRepository(root)
    ensure(repo, POSE, WeightsPolicy.SYNTHETIC, progress=False)
    if REAL_DETECTOR.exists():
        installed = repo.existing_config(DETECTOR)
        if installed is None or installed.weights.value != "official":
            import_file(repo, DETECTOR, REAL_DETECTOR)
        detector = "real RTMDet-nano (shared/assets)"
    else:
        ensure(repo, DETECTOR, WeightsPolicy.SYNTHETIC, progress=False)
        detector = "synthetic RTMDet-nano"
    return repo, detector


def load_images(engine: Engine, max_people: int) -> tuple[list[Path], str]:
    """The photos in which the detector finds at least ``max_people`` people (all photos if none qualifies)."""
    if COCO.exists():
        paths = sorted(COCO.glob("*.jpg"))
        source = "COCO val2017 (shared/assets/coco4)"
    else:
        out = ROOT / ".bench" / "images"
        out.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        paths = []
        for i in range(4):
            path = out / f"noise-{i}.jpg"
            cv2.imwrite(str(path), rng.integers(0, 255, (480, 640, 3), np.uint8))
            paths.append(path)
        source = "random 640x480 JPEGs (no shared assets)"
    crowded = []
    for path in paths:
        image = decode_image(path.read_bytes(), max_pixels=10**9)
        result = asyncio.run(engine.pipeline.estimate(image, EstimateOptions(max_people=max_people),
                                                      deadline=time.monotonic() + 60))  # fmt: skip
        if len(result.boxes) >= max_people:
            crowded.append(path)
    return (crowded or paths), source


def rtmlib_rate(repo: ModelRepository, paths: list[Path], seconds: float, max_people: int) -> Rate | None:
    data = rtmlib_env.run(repo.load(DETECTOR).onnx_path, repo.load(POSE).onnx_path, paths, seconds, max_people)
    if data is None:
        return None
    notes = f"{data['crops'] / data['images']:.2f} people/image, one crop per session.run"
    return summarize("rtmlib RTMDet + RTMPose loop", data["latencies_s"], data["wall_s"], data["images"], "images/s",
                     notes)  # fmt: skip


def service_rates(
    repo_root: Path,
    paths: list[Path],
    seconds: float,
    http_levels: list[int],
    grpc_levels: list[int],
    max_people: int,
    stream_levels: list[int],
    det_intervals: list[int],
) -> tuple[list[Rate], list[Rate], list[Rate]]:
    """``python -m service`` on loopback, loaded over HTTP, gRPC unary, then gRPC streams (one server, same JPEGs)."""
    sys.path.insert(0, str(ROOT))
    from tests.integration.server import start_server

    log = ROOT / ".bench" / "server.log"
    server = start_server(repo_root, log, POSE_MODEL=POSE, POSE_DETECTOR=DETECTOR, POSE_LOG_LEVEL="WARNING")
    try:
        jpegs = [p.read_bytes() for p in paths]
        http = [load.http_rate(server.url, jpegs, c, seconds, max_people) for c in http_levels]
        assert server.grpc_target is not None
        grpc = [load.grpc_rate(server.grpc_target, jpegs, c, seconds, max_people) for c in grpc_levels]
        streams = [load.stream_rate(server.grpc_target, jpegs, n, interval, seconds, max_people)
                   for interval in det_intervals for n in stream_levels]  # fmt: skip
        return http, grpc, streams
    finally:
        server.stop()


def table(rows: list[Rate]) -> str:
    lines = [f"{'configuration':48} {'rate':>9} {'unit':9} {'p50 ms':>8} {'p99 ms':>8}  notes"]
    for r in rows:
        lines.append(f"{r.name:48} {r.items_per_s:9.2f} {r.unit:9} {r.p50_ms:8.1f} {r.p99_ms:8.1f}  {r.notes}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per row")
    parser.add_argument("--max-people", type=int, default=4)
    parser.add_argument("--pipeline-concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--http-concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--grpc-concurrency", type=int, nargs="+", default=[8])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8], help="concurrent Stream calls")
    parser.add_argument("--det-intervals", type=int, nargs="+", default=[1, 5], help="stream det_interval values")
    parser.add_argument("--no-http", action="store_true", help="skip the service rows (HTTP and gRPC)")
    parser.add_argument("--no-rtmlib", action="store_true")
    parser.add_argument("--no-openvino", action="store_true", help="skip the backend rows (benchmarks/backends.py)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    threads = cpu_count()

    repo_root = ROOT / ".bench" / "repository"
    repo, detector_kind = prepare_repository(repo_root)
    pose_model, det_model = repo.load(POSE), repo.load(DETECTOR)

    # 1. the ceiling: each model alone, every core
    pose_raw = raw_ort.pose_rates(pose_model.onnx_path, pose_model.config.input_size,
                                  sorted({1, args.max_people, 8, 16, 32}), args.seconds / 2, threads)  # fmt: skip
    det_raw = raw_ort.detector_rate(det_model.onnx_path, det_model.config.input_size[0], args.seconds / 2, threads)
    gpu_raw = [rate for label, providers in raw_ort.gpu_variants().items()
               for rate in raw_ort.pose_rates(pose_model.onnx_path, pose_model.config.input_size, [1, 8, 16, 32, 64],
                                              args.seconds / 2, threads, providers, label)]  # fmt: skip
    best_pose = max(pose_raw, key=lambda r: r.items_per_s)
    sequence = raw_ort.sequence_rate(det_model.onnx_path, det_model.config.input_size[0], pose_model.onnx_path,
                                     pose_model.config.input_size, args.max_people, args.seconds, threads)  # fmt: skip

    # 2. the pipeline in process
    settings = Settings(model_repository=repo_root, model=POSE, detector=DETECTOR, log_level="WARNING")
    engine = Engine(settings)
    engine.start()
    paths, image_source = load_images(engine, args.max_people)
    images = [decode_image(p.read_bytes(), max_pixels=10**9) for p in paths]
    pipeline = [load.pipeline_rate(engine, images, c, args.seconds, args.max_people)
                for c in args.pipeline_concurrency]  # fmt: skip
    engine.close(5)
    people = float(pipeline[0].notes.split()[0])
    ceiling = 1.0 / (people / best_pose.items_per_s + 1.0 / det_raw.items_per_s)

    # 3. rtmlib on the same files and images, 4. the service over HTTP and gRPC
    rtmlib = None if args.no_rtmlib else rtmlib_rate(repo, paths, args.seconds, args.max_people)
    http, grpc, streams = (
        ([], [], [])
        if args.no_http
        else service_rates(
            repo_root,
            paths,
            args.seconds,
            args.http_concurrency,
            args.grpc_concurrency,
            args.max_people,
            args.streams,
            args.det_intervals,
        )
    )
    # 5. backends: OpenVINO fp32 / bf16 beside ONNX Runtime, rtmlib on each (benchmarks/backends.py)
    backend_rows: list[Rate] = []
    if not args.no_openvino:
        inputs = backends.Inputs(repo_root, det_model.onnx_path, pose_model.onnx_path, pose_model.config.input_size,
                                 paths, images, args.max_people, args.seconds, threads)  # fmt: skip
        backend_rows, backend_ratios = backends.run(inputs, 8, with_http=not args.no_http)

    best_pipeline = max(pipeline, key=lambda r: r.items_per_s)
    c1 = next((r for r in pipeline if r.name.endswith("concurrency 1")), None)
    ratios: dict[str, float] = {
        "ceiling_images_per_s": ceiling,
        "pipeline_over_ceiling": best_pipeline.items_per_s / ceiling,
    }
    if c1:
        ratios["pipeline_added_p50_ms_at_concurrency_1"] = c1.p50_ms - sequence.p50_ms
    if rtmlib:
        ratios["pipeline_over_rtmlib"] = best_pipeline.items_per_s / rtmlib.items_per_s
    for protocol, rates in (("http", http), ("grpc", grpc)):
        for rate in rates:
            level = rate.name.rsplit(" ", 1)[-1]
            ratios[f"{protocol}_c{level}_over_ceiling"] = rate.items_per_s / ceiling
            if rtmlib:
                ratios[f"{protocol}_c{level}_over_rtmlib"] = rate.items_per_s / rtmlib.items_per_s

    unary_c8 = next((r for r in grpc if r.name.endswith("concurrency 8")), None)
    for rate in streams:
        if unary_c8 and rate.name.startswith("gRPC Stream x8,"):
            interval = rate.name.rsplit(" ", 1)[-1]
            ratios[f"stream_x8_det{interval}_over_grpc_c8"] = rate.items_per_s / unary_c8.items_per_s

    if backend_rows:
        ratios |= backend_ratios
    rows = [*pose_raw, *gpu_raw, det_raw, sequence, *pipeline, *([rtmlib] if rtmlib else []), *http, *grpc, *streams,
            *backend_rows]  # fmt: skip
    print(f"\nmodels: synthetic {POSE} 192x256 + {detector_kind}; images: {image_source}, {len(paths)} used, "
          f"max_people {args.max_people}; {threads} CPUs; onnxruntime {ort.__version__}"
          f"{backends.versions()}\n")  # fmt: skip
    print(table(rows))
    print()
    for key, value in ratios.items():
        print(f"{key:52} {value:8.3f}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record = {
        "when": stamp, "machine": platform.platform(), "cpus": threads, "cpu_model": _cpu_model(),
        "onnxruntime": ort.__version__, "providers": ort.get_available_providers(), "seconds": args.seconds,
        "openvino": backends.versions().removeprefix("; openvino ") or None,
        "models": {"pose": f"synthetic {POSE}", "detector": detector_kind}, "images": [p.name for p in paths],
        "rows": [r.as_dict() for r in rows], "ratios": ratios,
    }  # fmt: skip
    (out / f"bench-{stamp}.json").write_text(json.dumps(record, indent=2))
    print(f"\nwritten: {out / f'bench-{stamp}.json'}")
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
