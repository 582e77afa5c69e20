"""``make overload``: 200 concurrent HTTP clients against small queues (issue 12's load test).

The real models of ``make bench`` (synthetic RTMPose-m, the real RTMDet-nano where
``../shared/assets`` has it) served by ``python -m service`` on loopback, with small
queues (pose ``max_queue_size`` 32, detector 8; ``max_people`` 4 per request, so at most 8
requests are admitted at once). First the service's best goodput at low concurrency,
then 200 clients at once. Every client sends the COCO photos resized to a width of its
own, so an answer for another client's image would show (a "crossed" answer).

Clients either honour ``Retry-After`` after a 429 (as HTTP clients should) or retry at
once (``--no-backoff``); they start spread over the first second, and what happens in the
first two seconds is not counted. Reported: goodput (200s per second), 5xx, crossed
answers, 429 latency p50/p99 as the client sees it, /healthz latency meanwhile (from
another process), and the targets of the issue. The clients are a minimal HTTP/1.1 client
on asyncio streams: on a machine they share with the server, httpx's ~1 ms per request
would be load of its own.

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


class Connection:
    """A keep-alive HTTP/1.1 connection that posts JPEGs: a minimal client, so that 200 of them cost the
    machine (which they share with the server) little CPU; httpx costs about 1 ms per request."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
        writer.write(head.encode() + body)
        status_line = await reader.readline()
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        payload = await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            writer.close()
            self.streams = None
        return int(status_line.split()[1]), headers, payload


async def drive(url: str, images: list[list[bytes]], seconds: float, backoff: bool, ramp_s: float = 2.0) -> Run:
    """Clients start spread over ``ramp_s`` and run ``ramp_s + seconds``; what ends in the last ``seconds`` counts."""
    run = Run(len(images), seconds, backoff)
    host, port = url.removeprefix("http://").split(":")
    counted = time.monotonic() + ramp_s
    stop = counted + seconds
    path = f"/v1/pose?max_people={MAX_PEOPLE}"

    async def one(index: int) -> None:
        await asyncio.sleep(ramp_s / 2 * index / len(images))
        connection = Connection(host, int(port))
        width, k = 480 + index, 0
        while time.monotonic() < stop:
            start = time.monotonic()
            status, headers, payload = await connection.post(path, images[index][k % len(images[index])])
            took = time.monotonic() - start
            k += 1
            if start < counted:
                if status == 429 and backoff:
                    await asyncio.sleep(float(headers.get("retry-after", "1")))
                continue
            if status == 200:
                run.ok += 1
                run.ok_latencies.append(took)
                run.crossed += json.loads(payload)["image"]["width"] != width
            elif status == 429:
                run.refused += 1
                run.refusal_latencies.append(took)
                if backoff:
                    await asyncio.sleep(float(headers.get("retry-after", "1")))
            elif status >= 500:
                run.server_errors += 1
            else:
                run.other += 1

    await asyncio.gather(*(one(i) for i in range(len(images))))
    return run


def heavy_run(url: str, images: list[list[bytes]], seconds: float, backoff: bool) -> tuple[Run, list[float]]:
    """The 200-client run, with /healthz probed from another process meanwhile (the server loop's own lag)."""
    from tests.helpers import healthz_probe

    probe = healthz_probe(url, seconds + 2, interval_s=0.05)
    run = asyncio.run(drive(url, images, seconds, backoff))
    out, _ = probe.communicate(timeout=120)
    return run, json.loads(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overload", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per run")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8], help="concurrency of the best-goodput runs")
    parser.add_argument("--no-backoff", action="store_true", help="refused clients retry at once")
    parser.add_argument("--env", nargs="*", default=[], help="POSE_X=value settings for the server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(ROOT))
    from tests.helpers import start_server

    source = ROOT / ".bench" / "repository"
    prepare_repository(source)
    repo = small_queue_repository(source, ROOT / ".bench" / "overload-repository")
    env = dict(item.split("=", 1) for item in args.env)
    server = start_server(repo, ROOT / ".bench" / "overload-server.log", POSE_MODEL=POSE, POSE_DETECTOR=DETECTOR,
                          POSE_LOG_LEVEL="WARNING", POSE_MAX_PEOPLE=str(MAX_PEOPLE), timeout=180, **env)  # fmt: skip
    try:
        images = client_images(max(args.clients, *args.levels))
        asyncio.run(drive(server.url, images[:8], 3.0, True))  # warm up
        best = [asyncio.run(drive(server.url, images[:n], args.seconds, True)) for n in args.levels]
        heavy, health = heavy_run(server.url, images[: args.clients], args.seconds, not args.no_backoff)
    finally:
        server.stop()
    top = max(best, key=lambda r: r.goodput)
    refusal_p99 = heavy.summary()["refusal_p99_ms"]
    verdict = {
        "best_goodput_per_s": top.goodput,
        "best_concurrency": top.clients,
        "goodput_ratio": heavy.goodput / top.goodput,
        "healthz_p50_ms_during": float(np.percentile(health, 50) * 1000),
        "healthz_p99_ms_during": float(np.percentile(health, 99) * 1000),
        "targets": {
            "no_5xx": heavy.server_errors == 0,
            "no_crossed_answers": heavy.crossed == 0,
            "refusal_p99_under_100ms": bool(refusal_p99 < 100),
            "goodput_at_least_0.9_of_best": heavy.goodput >= 0.9 * top.goodput,
        },
    }
    report = {"runs": [r.summary() for r in [*best, heavy]], **verdict, "queues": QUEUES, "max_people": MAX_PEOPLE,
              "server_env": args.env, "time": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    for row in report["runs"]:
        print("  ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    print(json.dumps(verdict, indent=2))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"overload-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
