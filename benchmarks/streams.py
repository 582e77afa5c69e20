"""The stream rows of ``make bench`` alone, with more windows in turns: gRPC Stream and WebSocket streams beside
unary gRPC Estimate at concurrency 8, on the same server, models and JPEGs as ``make bench``.

On a shared machine one ``make bench`` gives each row two 3 s windows, and the server's share of the cores moves
from one window to the next; more, shorter turns average that out. Writes ``benchmarks/results/streams-<time>.json``.

    python -m benchmarks.streams [--seconds 24] [--rounds 8] [--streams 8] [--det-intervals 1 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from benchmarks import bench, machine
from service.config import Settings
from service.engine.engine import Engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.streams", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=24.0, help="measuring time per row, over all rounds")
    parser.add_argument("--rounds", type=int, default=8, help="windows per row, in turns")
    parser.add_argument("--max-people", type=int, default=4)
    parser.add_argument("--streams", type=int, nargs="+", default=[8])
    parser.add_argument("--det-intervals", type=int, nargs="+", default=[1, 5])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    repo_root = bench.ROOT / ".bench" / "repository"
    _, detector_kind = bench.prepare_repository(repo_root)
    engine = Engine(Settings(model_repository=repo_root, model=bench.POSE, detector=bench.DETECTOR,
                             log_level="WARNING", device="cpu"))  # fmt: skip
    engine.start()
    paths, image_source = bench.load_images(engine, args.max_people)
    engine.close(5)
    service = bench.service_rates(repo_root, paths, args.seconds, [], [8], args.max_people, args.streams,
                                  args.det_intervals, rounds=args.rounds)  # fmt: skip
    rows = [*service.grpc, *service.streams, *service.websockets]
    ratios = bench.websocket_ratios(service)
    host = machine.describe()
    print(
        f"\nmachine: {machine.line(host)}\nmodels: synthetic {bench.POSE} + {detector_kind}; images: {image_source}\n"
    )
    print(bench.table(rows))
    print()
    for key, value in ratios.items():
        print(f"{key:64} {value:8.3f}")
    out = bench.ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result = out / f"streams-{stamp}.json"
    result.write_text(json.dumps({
        "when": stamp, "command": " ".join(["python -m benchmarks.streams", *(sys.argv[1:] if argv is None else argv)]),
        "machine": host, "machine_line": machine.line(host), "rounds": args.rounds, "seconds": args.seconds,
        "images": [p.name for p in paths], "rows": [r.as_dict() for r in rows], "ratios": ratios,
        "wall_s": time.perf_counter() - started,
    }, indent=2))  # fmt: skip
    print(f"\nwritten: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
