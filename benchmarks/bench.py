"""``make bench``: raw ONNX Runtime, the in-process pipeline, the service over HTTP and gRPC, and rtmlib, in one run.

Same models (synthetic RTMPose-m 256x192; the real RTMDet-nano from ../shared/assets
when present, else a synthetic one) and the same images (real COCO val2017 photos
when present) for every row. Prints the machine, a table and the ratios, writes
``benchmarks/results/bench-<time>.json`` and, with matplotlib (``.bench-venv``), a
``.png`` beside it: throughput and p99 latency against concurrency.

    python -m benchmarks.bench [--seconds 6] [--no-http] [--no-rtmlib] [--no-openvino]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import httpx
import numpy as np

from benchmarks import backends, gpu, load, machine, raw_ort, rtmlib_env, turns
from benchmarks.resources import Meter
from benchmarks.stats import Rate
from benchmarks.turns import Turn
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


@dataclasses.dataclass
class ServiceRows:
    http: list[Rate]
    grpc: list[Rate]
    streams: list[Rate]
    websockets: list[Rate]
    models: list[dict[str, object]]  # GET /v1/models: what the server really runs (provider, precision, weights)


def service_rates(repo_root: Path, paths: list[Path], seconds: float, http_levels: list[int], grpc_levels: list[int],
                  max_people: int, stream_levels: list[int], det_intervals: list[int], rounds: int = 2
                  ) -> ServiceRows:  # fmt: skip
    """``python -m service`` on loopback under HTTP, gRPC unary, gRPC and WebSocket streams, the same JPEGs, in turns.

    Every configuration gets ``rounds`` windows of ``seconds / rounds``, in turns with the others. Each row
    carries the server's CPU use and peak memory and the load generator's (this process's) CPU use.
    """
    sys.path.insert(0, str(ROOT))
    from tests.helpers import start_server

    log = ROOT / ".bench" / "server.log"
    server = start_server(repo_root, log, POSE_MODEL=POSE, POSE_DETECTOR=DETECTOR, POSE_LOG_LEVEL="WARNING",
                          POSE_DEVICE="cpu")  # fmt: skip
    try:
        models = httpx.get(server.url + "/v1/models", timeout=10).json()["models"]
        jpegs = [p.read_bytes() for p in paths]
        assert server.grpc_target is not None
        grpc_target = server.grpc_target

        def turn(name: str, unit: str, measure: Callable[[float, float], load.Samples]) -> Turn:
            return Turn(name, unit, "JPEG decode included", measure, Meter(server.process.pid, os.getpid()))

        configs = {
            **{f"http {c}": turn(f"HTTP /v1/pose, concurrency {c}", "images/s",
                                 functools.partial(load.http_samples, server.url, jpegs, c, max_people))
               for c in http_levels},
            **{f"grpc {c}": turn(f"gRPC Estimate, concurrency {c}", "images/s",
                                 functools.partial(load.grpc_samples, grpc_target, jpegs, c, max_people))
               for c in grpc_levels},
            **{f"stream {n} {i}": turn(f"gRPC Stream x{n}, det_interval {i}", "frames/s",
                                       functools.partial(load.stream_samples, grpc_target, jpegs, n, i, max_people))
               for i in det_intervals for n in stream_levels},
            **{f"ws {n} {i}": turn(f"WebSocket stream x{n}, det_interval {i}", "frames/s",
                                   functools.partial(load.ws_stream_samples, server.url, jpegs, n, i, max_people))
               for i in det_intervals for n in stream_levels},
        }  # fmt: skip
        rates = turns.in_turns(configs, seconds, rounds) if configs else {}
        by_kind = [[r for k, r in rates.items() if k.startswith(kind)] for kind in ("http", "grpc", "stream", "ws")]
        return ServiceRows(*by_kind, models=models)
    finally:
        server.stop()


def table(rows: list[Rate]) -> str:
    """The rows as text; ``cores``: CPU seconds per second of the process that infers (the server, rtmlib, or this
    process in process), ``client``: of the load generator, ``MiB``: the inferring process's peak RSS in the row."""
    lines = [f"{'configuration':48} {'rate':>8} {'unit':9} {'p50 ms':>8} {'p99 ms':>8} {'cores':>5} {'client':>6} "
             f"{'MiB':>5}  notes"]  # fmt: skip
    for r in rows:
        u = r.usage
        cores = f"{u.cores:5.2f}" if u else f"{'':5}"
        client = f"{u.client_cores:6.2f}" if u and u.client_cores is not None else f"{'':6}"
        peak = f"{u.peak_mib:5.0f}" if u and u.peak_mib is not None else f"{'':5}"
        lines.append(f"{r.name:48} {r.items_per_s:8.2f} {r.unit:9} {r.p50_ms:8.1f} {r.p99_ms:8.1f} {cores} {client} "
                     f"{peak}  {r.notes}")  # fmt: skip
    return "\n".join(lines)


def _level(rate: Rate) -> int:
    """The concurrency in a row's name ("..., concurrency 8", "gRPC Stream x8, ...", "WebSocket stream x8, ...")."""
    for prefix in ("gRPC Stream x", "WebSocket stream x"):
        if rate.name.startswith(prefix):
            return int(rate.name.removeprefix(prefix).split(",")[0])
    return int(rate.name.rsplit(" ", 1)[-1])


def series(pipeline: list[Rate], service: ServiceRows, in_turns: dict[str, Rate], gpu_rates: dict[str, Rate]
           ) -> dict[str, list[dict[str, float]]]:  # fmt: skip
    """What the plot draws: rate and p99 against concurrency, per way of calling."""
    groups: dict[str, list[Rate]] = {"pipeline in process": pipeline, "HTTP /v1/pose": service.http,
                                     "gRPC Estimate": service.grpc}  # fmt: skip
    for kind, name in (("http", "GPU HTTP /v1/pose"), ("grpc", "GPU gRPC Estimate")):
        groups[name] = [rate for key, rate in gpu_rates.items() if key.startswith(kind)]
    for rate in service.streams:
        groups.setdefault(f"gRPC Stream, det_interval {rate.name.rsplit(' ', 1)[-1]}", []).append(rate)
    for rate in service.websockets:
        groups.setdefault(f"WebSocket stream, det_interval {rate.name.rsplit(' ', 1)[-1]}", []).append(rate)
    for key, name in (("rtmlib loop", "rtmlib RTMDet + RTMPose"), ("rtmlib loop spinning off", "rtmlib, spinning off")):
        if key in in_turns:
            groups[name] = [dataclasses.replace(in_turns[key], name=f"{name}, concurrency 1")]
    return {name: [{"concurrency": _level(r), "rate": r.items_per_s, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms}
                   for r in rates] for name, rates in groups.items() if rates}  # fmt: skip


def ratios_of(ceiling: float, pipeline: list[Rate], sequence: Rate, service: ServiceRows, in_turns: dict[str, Rate]
              ) -> dict[str, float]:  # fmt: skip
    """Every ratio the issues ask for, from this run's rows."""
    best = max(pipeline, key=lambda r: r.items_per_s)
    ratios = {"ceiling_images_per_s": ceiling, "pipeline_over_ceiling": best.items_per_s / ceiling}
    c1 = next((r for r in pipeline if _level(r) == 1), None)
    if c1:
        ratios["pipeline_added_p50_ms_at_concurrency_1"] = c1.p50_ms - sequence.p50_ms
    rtmlib, no_spin = in_turns.get("rtmlib loop"), in_turns.get("rtmlib loop spinning off")
    if rtmlib:
        ratios["pipeline_over_rtmlib"] = best.items_per_s / rtmlib.items_per_s
    if no_spin:
        ratios["pipeline_over_rtmlib_spinning_off"] = best.items_per_s / no_spin.items_per_s
    http = {_level(r): r for r in service.http}
    for protocol, rates in (("http", service.http), ("grpc", service.grpc)):
        for rate in rates:
            level = _level(rate)
            ratios[f"{protocol}_c{level}_over_ceiling"] = rate.items_per_s / ceiling
            if rtmlib:
                ratios[f"{protocol}_c{level}_over_rtmlib"] = rate.items_per_s / rtmlib.items_per_s
            if protocol == "grpc" and level in http:
                ratios[f"grpc_c{level}_over_http_c{level}"] = rate.items_per_s / http[level].items_per_s
    unary_c8 = next((r for r in service.grpc if _level(r) == 8), None)
    for rate in service.streams:
        if unary_c8 and _level(rate) == 8:
            interval = rate.name.rsplit(" ", 1)[-1]
            ratios[f"stream_x8_det{interval}_over_grpc_c8"] = rate.items_per_s / unary_c8.items_per_s
    return ratios | websocket_ratios(service)


def websocket_ratios(service: ServiceRows) -> dict[str, float]:
    """WebSocket streams over gRPC streams of the same count and det_interval: frames/s, and frames per second of
    server CPU (on a shared machine the server gets a different share of the cores in each window)."""
    ratios = {}
    grpc_streams = {(_level(r), r.name.rsplit(" ", 1)[-1]): r for r in service.streams}
    for rate in service.websockets:
        level, interval = _level(rate), rate.name.rsplit(" ", 1)[-1]
        grpc_rate = grpc_streams.get((level, interval))
        if grpc_rate is None:
            continue
        key = f"ws_x{level}_det{interval}_over_grpc_stream_x{level}_det{interval}"
        ratios[key] = rate.items_per_s / grpc_rate.items_per_s
        if rate.usage and grpc_rate.usage and rate.usage.cores and grpc_rate.usage.cores:
            per_core = (rate.items_per_s / rate.usage.cores) / (grpc_rate.items_per_s / grpc_rate.usage.cores)
            ratios[f"{key}_per_server_core"] = per_core
    return ratios


def plot(result: Path) -> Path | None:
    """The PNG beside ``result`` (benchmarks/plot.py in .bench-venv, which has matplotlib); None without it."""
    python = rtmlib_env.BENCH_VENV / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run([str(python), str(ROOT / "benchmarks" / "plot.py"), str(result)], capture_output=True,
                          text=True)  # fmt: skip
    if done.returncode != 0:
        logger.warning("no plot: %s", done.stderr.strip().splitlines()[-1:])
        return None
    return result.with_suffix(".png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measuring time per row")
    parser.add_argument("--max-people", type=int, default=4)
    parser.add_argument("--pipeline-concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--http-concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--grpc-concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8],
                        help="concurrent streams (gRPC Stream calls, WebSocket streams)")  # fmt: skip
    parser.add_argument("--det-intervals", type=int, nargs="+", default=[1, 5], help="stream det_interval values")
    parser.add_argument("--no-http", action="store_true", help="skip the service rows (HTTP and gRPC)")
    parser.add_argument("--no-rtmlib", action="store_true")
    parser.add_argument("--no-openvino", action="store_true", help="skip the OpenVINO rows (benchmarks/backends.py)")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU rows (benchmarks/gpu.py)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    threads = cpu_count()
    started = time.perf_counter()
    phases: dict[str, float] = {}  # seconds each part took (to see where make bench's time goes)
    last = [started]

    def phase(name: str) -> None:
        now = time.perf_counter()
        phases[name], last[0] = round(now - last[0], 1), now

    host = machine.describe()

    repo_root = ROOT / ".bench" / "repository"
    repo, detector_kind = prepare_repository(repo_root)
    pose_model, det_model = repo.load(POSE), repo.load(DETECTOR)
    own = os.getpid()

    # 1. the ceiling: each model alone, every core
    pose_raw = raw_ort.pose_rates(pose_model.onnx_path, pose_model.config.input_size,
                                  sorted({1, args.max_people, 8, 16, 32}), args.seconds / 2, threads)  # fmt: skip
    det_raw = raw_ort.detector_rate(det_model.onnx_path, det_model.config.input_size[0], args.seconds / 2, threads)
    best_pose = max(pose_raw, key=lambda r: r.items_per_s)
    sequence = raw_ort.sequence_rate(det_model.onnx_path, det_model.config.input_size[0], pose_model.onnx_path,
                                     pose_model.config.input_size, args.max_people, args.seconds, threads)  # fmt: skip

    phase("models and raw ONNX Runtime")

    # 2. the pipeline in process
    settings = Settings(model_repository=repo_root, model=POSE, detector=DETECTOR, log_level="WARNING", device="cpu")
    engine = Engine(settings)
    engine.start()
    paths, image_source = load_images(engine, args.max_people)
    images = [decode_image(p.read_bytes(), max_pixels=10**9) for p in paths]
    pipeline = []
    for level in args.pipeline_concurrency:
        with Meter(own) as meter:
            rate = load.pipeline_rate(engine, images, level, args.seconds, args.max_people)
        pipeline.append(dataclasses.replace(rate, usage=meter.usage()))
    engine.close(5)
    people = float(pipeline[0].notes.split()[0])
    ceiling = 1.0 / (people / best_pose.items_per_s + 1.0 / det_raw.items_per_s)

    phase("pipeline in process")

    # 3. the service over HTTP, gRPC unary, gRPC and WebSocket streams
    service = ServiceRows([], [], [], [], []) if args.no_http else service_rates(
        repo_root, paths, args.seconds, args.http_concurrency, args.grpc_concurrency, args.max_people, args.streams,
        args.det_intervals)  # fmt: skip
    phase("service")
    # 4. in turns: pose on the same boxes (service, rtmlib), rtmlib's loop with and without spinning, OpenVINO
    inputs = backends.Inputs(repo_root, det_model.onnx_path, pose_model.onnx_path, pose_model.config.input_size,
                             paths, images, args.max_people, args.seconds, threads)  # fmt: skip
    block = backends.run(inputs, 8, with_http=not args.no_http, openvino=not args.no_openvino,
                         rtmlib=not args.no_rtmlib)  # fmt: skip
    phase("pose on boxes, rtmlib, OpenVINO")
    # 5. the GPU rows, where this onnxruntime has a GPU provider (benchmarks/gpu.py)
    providers = {} if args.no_gpu else raw_ort.gpu_variants()
    gpu_rows, gpu_ratios, gpu_rates = (
        gpu.run(inputs, providers, args.grpc_concurrency, rtmlib=not args.no_rtmlib) if providers else ([], {}, {})
    )
    phase("GPU")

    ratios = ratios_of(ceiling, pipeline, sequence, service, block.rates) | block.ratios | gpu_ratios
    rows = [*pose_raw, det_raw, sequence, *pipeline, *service.http, *service.grpc, *service.streams,
            *service.websockets, *block.rows, *gpu_rows]  # fmt: skip
    served = "; ".join(f"{m['name']}: {m['weights']} weights, {m['backend']} {m['precision']} on {m['provider']}"
                       for m in service.models)  # fmt: skip
    models_line = (f"models: synthetic {POSE} 192x256 (pose) + {detector_kind}; images: {image_source}, "
                   f"{len(paths)} used, max_people {args.max_people}")  # fmt: skip
    print(f"\nmachine: {machine.line(host)}\n{models_line}\nservice: {served or 'not run'}\n")
    print(table(rows))
    print()
    for key, value in ratios.items():
        print(f"{key:64} {value:8.3f}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record = {
        "when": stamp, "command": " ".join(["python -m benchmarks.bench", *(sys.argv[1:] if argv is None else argv)]),
        "machine": host, "machine_line": machine.line(host), "models_line": models_line, "seconds": args.seconds,
        "models": {"pose": f"synthetic {POSE}", "detector": detector_kind}, "service_models": service.models,
        "images": [p.name for p in paths], "rows": [r.as_dict() for r in rows], "ratios": ratios,
        "series": series(pipeline, service, block.rates, gpu_rates), "wall_s": time.perf_counter() - started,
        "phases_s": phases,
    }  # fmt: skip
    result = out / f"bench-{stamp}.json"
    result.write_text(json.dumps(record, indent=2))
    print(f"\nseconds per part: {phases}")
    print(f"written: {result}" + (f", {png}" if (png := plot(result)) else " (no plot: make bench's .bench-venv "
                                                                               "has matplotlib)"))  # fmt: skip
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
