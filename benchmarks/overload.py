"""``make overload``: 200 concurrent HTTP clients against small queues (issue 12's load test).

The real models of ``make bench`` (synthetic RTMPose-m, the real RTMDet-nano where
``../shared/assets`` has it) served by ``python -m service`` on loopback, with small
queues (pose ``max_queue_size`` 32, detector 8; ``max_people`` 4 per request, so at most 8
requests are admitted at once). First the service's best goodput at low concurrency,
then 200 clients at once. Every client sends the COCO photos resized to a width of its
own, so an answer for another client's image would show (a "crossed" answer).

Clients either honour ``Retry-After`` after a 429 (as HTTP clients should) or retry at
once (``--no-backoff``). Reported: goodput (200s per second), 5xx, crossed answers, 429
latency p50/p99 as the client sees it, and the targets of the issue.

    python -m benchmarks.overload [--seconds 20] [--clients 200] [--no-backoff]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import httpx
import numpy as np

from benchmarks.bench import COCO, DETECTOR, POSE, ROOT, prepare_repository

QUEUES = {POSE: 32, DETECTOR: 8}
MAX_PEOPLE = 4


@dataclass
class Run:
    clients: int
    seconds: float
    backoff: bool
    ok: int = 0
    refused: int = 0
    server_errors: int = 0
    other: int = 0
    crossed: int = 0
    ok_latencies: list[float] = field(default_factory=list)
    refusal_latencies: list[float] = field(default_factory=list)

    @property
    def goodput(self) -> float:
        return self.ok / self.seconds

    def summary(self) -> dict[str, float | int | bool]:
        def pct(values: list[float], q: float) -> float:
            return float(np.percentile(values, q) * 1000) if values else float("nan")

        return {"clients": self.clients, "seconds": self.seconds, "backoff": self.backoff, "ok": self.ok,
                "goodput_per_s": self.goodput, "refused_429": self.refused, "server_errors_5xx": self.server_errors,
                "other": self.other, "crossed": self.crossed, "ok_p50_ms": pct(self.ok_latencies, 50),
                "ok_p99_ms": pct(self.ok_latencies, 99), "refusal_p50_ms": pct(self.refusal_latencies, 50),
                "refusal_p99_ms": pct(self.refusal_latencies, 99)}  # fmt: skip


def small_queue_repository(source: Path, target: Path) -> Path:
    """A copy of the bench repository with small queues (only the configs differ; the ONNX files are linked)."""
    for name, size in QUEUES.items():
        folder = target / name
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(source / name, folder, copy_function=lambda s, d: Path(d).symlink_to(Path(s).resolve()))
        config = folder / "config.toml"
        text = config.read_text()
        config.unlink()  # a link to the source's config: write a file of its own
        config.write_text(text.replace("max_queue_size = 1024", f"max_queue_size = {size}"))
    return target


def client_images(clients: int) -> list[list[bytes]]:
    """Per client: the COCO photos (or a drawn scene) resized to that client's own width, as JPEG."""
    photos = [cv2.imread(str(p)) for p in sorted(COCO.glob("*.jpg"))] or [np.full((480, 640, 3), 90, np.uint8)]
    out = []
    for i in range(clients):
        width = 480 + i  # unique per client
        mine = []
        for photo in photos:
            height = round(photo.shape[0] * width / photo.shape[1])
            ok, data = cv2.imencode(".jpg", cv2.resize(photo, (width, height)), [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            mine.append(data.tobytes())
        out.append(mine)
    return out


async def drive(url: str, images: list[list[bytes]], seconds: float, backoff: bool) -> Run:
    run = Run(len(images), seconds, backoff)
    limits = httpx.Limits(max_connections=len(images), max_keepalive_connections=len(images))
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one(index: int) -> None:
            width, k = 480 + index, 0
            while time.monotonic() < stop:
                start = time.monotonic()
                response = await client.post("/v1/pose", params={"max_people": MAX_PEOPLE},
                                             content=images[index][k % len(images[index])],
                                             headers={"Content-Type": "image/jpeg"})  # fmt: skip
                took = time.monotonic() - start
                k += 1
                if response.status_code == 200:
                    run.ok += 1
                    run.ok_latencies.append(took)
                    run.crossed += response.json()["image"]["width"] != width
                elif response.status_code == 429:
                    run.refused += 1
                    run.refusal_latencies.append(took)
                    if backoff:
                        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                elif response.status_code >= 500:
                    run.server_errors += 1
                else:
                    run.other += 1

        await asyncio.gather(*(one(i) for i in range(len(images))))
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overload", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per run")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8], help="concurrency of the best-goodput runs")
    parser.add_argument("--no-backoff", action="store_true", help="refused clients retry at once")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(ROOT))
    from tests.integration.server import start_server

    source = ROOT / ".bench" / "repository"
    prepare_repository(source)
    repo = small_queue_repository(source, ROOT / ".bench" / "overload-repository")
    server = start_server(repo, ROOT / ".bench" / "overload-server.log", POSE_MODEL=POSE, POSE_DETECTOR=DETECTOR,
                          POSE_LOG_LEVEL="WARNING", POSE_MAX_PEOPLE=str(MAX_PEOPLE), timeout=180)  # fmt: skip
    try:
        images = client_images(max(args.clients, *args.levels))
        asyncio.run(drive(server.url, images[:8], 3.0, True))  # warm up
        best = [asyncio.run(drive(server.url, images[:n], args.seconds, True)) for n in args.levels]
        heavy = asyncio.run(drive(server.url, images[: args.clients], args.seconds, not args.no_backoff))
    finally:
        server.stop()
    top = max(best, key=lambda r: r.goodput)
    refusal_p99 = heavy.summary()["refusal_p99_ms"]
    verdict = {
        "best_goodput_per_s": top.goodput,
        "best_concurrency": top.clients,
        "goodput_ratio": heavy.goodput / top.goodput,
        "targets": {
            "no_5xx": heavy.server_errors == 0,
            "no_crossed_answers": heavy.crossed == 0,
            "refusal_p99_under_100ms": bool(refusal_p99 < 100),
            "goodput_at_least_0.9_of_best": heavy.goodput >= 0.9 * top.goodput,
        },
    }
    report = {"runs": [r.summary() for r in [*best, heavy]], **verdict, "queues": QUEUES, "max_people": MAX_PEOPLE,
              "time": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    for row in report["runs"]:
        print("  ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    print(json.dumps(verdict, indent=2))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"overload-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
