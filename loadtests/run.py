"""``make loadtest``: the service on loopback under Locust (headless), a summary, and the SLO verdict.

    python loadtests/run.py [--users N] [--duration S] [--queue-size N] [--shedding]

1. prepares JPEGs of mixed sizes and people counts (the COCO photos of ../shared/assets
   where present, and drawn scenes from 320x240 to 1920x1080);
2. starts ``python -m service`` on free loopback ports over the benchmark's repository
   (synthetic RTMPose-m, the real RTMDet-nano of ../shared/assets where present, as
   ``make bench``; ``--queue-size`` serves a copy whose every model has that ``max_queue_size``);
3. runs Locust headless for ``LOADTEST_DURATION`` seconds with ``LOADTEST_USERS`` users,
   writing its CSV files and HTML report under ``loadtests/results/<time>/``;
4. prints a summary and exits 1 when an SLO fails: the failure ratio above
   ``LOADTEST_MAX_FAILURE_RATIO`` (0), a p99 above ``LOADTEST_P99_MS`` (10000), any 5xx
   other than 503/504 or any gRPC INTERNAL/UNKNOWN in the service's own metrics, or a
   service that is not healthy and ready right after.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench import POSE, prepare_repository  # noqa: E402
from tests.helpers import start_server  # noqa: E402

COCO = ROOT.parent / "shared" / "assets" / "coco4"
LOCUST = ROOT / ".loadtest-venv" / "bin" / "locust"
SIZES = ((320, 240), (640, 480), (1280, 720), (1920, 1080))


def prepare_images(folder: Path) -> list[str]:
    """JPEGs to send: the real COCO photos where present, and drawn scenes of every size with 0-5 figures."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for path in sorted(COCO.glob("*.jpg")) if COCO.exists() else []:
        shutil.copy(path, folder / path.name)
        names.append(path.name)
    rng = np.random.default_rng(0)
    for width, height in SIZES:
        for people in (0, 2, 5):
            image = np.full((height, width, 3), rng.integers(40, 200, 3), np.uint8)
            for _ in range(people):  # upright figures: a head and a body
                w = int(rng.integers(width // 12, width // 6))
                x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height // 3))
                color = tuple(int(c) for c in rng.integers(0, 255, 3))
                cv2.ellipse(image, (x + w // 2, y + w // 2), (w // 3, w // 2), 0, 0, 360, color, -1)
                cv2.rectangle(image, (x, y + w), (x + w, min(height - 1, y + 4 * w)), color, -1)
            name = f"scene-{width}x{height}-{people}.jpg"
            cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            names.append(name)
    return names


def repository_with_queue(source: Path, target: Path, queue_size: int) -> Path:
    """A copy of ``source`` (model files linked, not copied) whose every model has ``max_queue_size``."""
    for config in source.glob("*/config.toml"):
        model = target / config.parent.name
        model.mkdir(parents=True, exist_ok=True)
        text = re.sub(r"(?m)^max_queue_size = \d+", f"max_queue_size = {queue_size}", config.read_text())
        (model / "config.toml").write_text(text)
        for version in (p for p in config.parent.iterdir() if p.is_dir() and p.name.isdigit()):
            (model / version.name).mkdir(exist_ok=True)
            for item in version.iterdir():
                link = model / version.name / item.name
                if not link.exists():
                    link.symlink_to(item.resolve())
    return target


def server_errors(url: str) -> dict[str, float]:
    """Answers that are the service's fault: HTTP 5xx other than 503/504, gRPC INTERNAL/UNKNOWN."""
    out: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        match = re.match(r'pose_requests_total\{code="([^"]+)",endpoint="([^"]+)",protocol="([^"]+)"\} (\S+)', line)
        if not match:
            continue
        code, endpoint, protocol, value = match.groups()
        bad = (protocol == "http" and code.startswith("5") and code not in ("503", "504")) or code in (
            "INTERNAL", "UNKNOWN")  # fmt: skip
        if bad and float(value) > 0:
            out[f"{protocol} {endpoint} {code}"] = float(value)
    return out


def read_stats(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def summarize(rows: list[dict[str, str]]) -> str:
    lines = [f"{'type':8} {'name':28} {'requests':>9} {'failures':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}"]
    for row in rows:
        lines.append(f"{row['Type']:8} {row['Name'][:28]:28} {row['Request Count']:>9} {row['Failure Count']:>9} "
                     f"{float(row['Requests/s']):7.2f} {row['50%']:>8} {row['99%']:>8}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loadtests/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=int(os.environ.get("LOADTEST_USERS", "10")))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("LOADTEST_DURATION", "60")))
    parser.add_argument("--spawn-rate", type=float, default=float(os.environ.get("LOADTEST_SPAWN_RATE", "2")))
    parser.add_argument("--queue-size", type=int, default=int(os.environ.get("LOADTEST_QUEUE_SIZE", "0")))
    parser.add_argument("--shedding", action="store_true", default=os.environ.get("LOADTEST_SHEDDING") == "1",
                        help="overload on purpose: 429/503/504 are expected, 5xx are not")  # fmt: skip
    args = parser.parse_args(argv)
    max_failure_ratio = float(os.environ.get("LOADTEST_MAX_FAILURE_RATIO", "0"))
    p99_limit_ms = float(os.environ.get("LOADTEST_P99_MS", "10000"))
    if not LOCUST.exists():
        print(f"{LOCUST} is missing: run `make loadtest` (it creates the Locust environment)", file=sys.stderr)
        return 2

    out = ROOT / "loadtests" / "results" / time.strftime("%Y%m%d-%H%M%S")
    images = prepare_images(out / "images")
    repository, detector = prepare_repository(ROOT / ".bench" / "repository")
    repository = repository.root.resolve()
    print(f"models: synthetic {POSE} + {detector}", flush=True)
    if args.queue_size:
        repository = repository_with_queue(repository, out / "repository", args.queue_size)
    # a queue smaller than POSE_MAX_PEOPLE refuses to start (it could not hold one image's crops): cap the people
    # at what the locustfile asks for
    people = {"POSE_MAX_PEOPLE": os.environ.get("LOADTEST_MAX_PEOPLE", "6")} if args.queue_size else {}
    server = start_server(repository, out / "server.log", timeout=180, POSE_LOG_LEVEL="WARNING", POSE_MODEL=POSE,
                          POSE_DETECTOR="rtmdet-nano", **people)  # fmt: skip
    try:
        env = {**os.environ, "LOADTEST_IMAGES": str(out / "images"), "LOADTEST_GRPC_TARGET": str(server.grpc_target),
               "LOADTEST_SHEDDING": "1" if args.shedding else "0"}  # fmt: skip
        command = [str(LOCUST), "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless", "--users",
                   str(args.users), "--spawn-rate", str(args.spawn_rate), "--run-time", f"{args.duration}s",
                   "--host", server.url, "--csv", str(out / "locust"), "--html", str(out / "report.html"),
                   "--only-summary", "--stop-timeout", "30", "--exit-code-on-error", "0"]  # fmt: skip
        print(f"locust: {args.users} users for {args.duration} s against {server.url} and {server.grpc_target}; "
              f"{len(images)} images; results in {out}", flush=True)  # fmt: skip
        subprocess.run(command, env=env, check=True, cwd=ROOT)
        healthy = httpx.get(server.url + "/healthz", timeout=10).status_code == 200
        ready = httpx.get(server.url + "/readyz", timeout=10).status_code == 200
        errors = server_errors(server.url)
    finally:
        code = server.stop()

    rows = read_stats(out / "locust_stats.csv")
    total = next(r for r in rows if r["Name"] == "Aggregated")
    requests, failures = int(total["Request Count"]), int(total["Failure Count"])
    ratio = failures / max(1, requests)
    measured = [r for r in rows if r["Name"] != "Aggregated" and not r["Name"].startswith(("shed", "stream dropped"))]
    slow = {
        r["Name"]: float(r["99%"]) for r in measured if r["99%"] not in ("N/A", "") and float(r["99%"]) > p99_limit_ms
    }
    verdict = {
        "requests": requests, "failures": failures, "failure_ratio": ratio, "max_failure_ratio": max_failure_ratio,
        "p99_limit_ms": p99_limit_ms, "over_p99": slow, "server_errors": errors, "healthy_after": healthy,
        "ready_after": ready, "server_exit_code": code, "users": args.users, "duration_s": args.duration,
        "queue_size": args.queue_size or None, "shedding": args.shedding,
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(verdict, indent=2))
    print(summarize(rows))
    print(json.dumps(verdict, indent=2))
    failed = ratio > max_failure_ratio or slow or errors or not healthy or not ready or code != 0
    print(f"\n{'FAIL' if failed else 'PASS'}: report {out / 'report.html'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
