"""Load generators: the in-process Pipeline and the HTTP service, with N concurrent submitters."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np

from benchmarks.stats import Rate, summarize
from service.engine.engine import Engine
from service.engine.pipeline import EstimateOptions
from service.vision.image import DecodedImage


async def _drive(call, images: list, concurrency: int, seconds: float) -> tuple[list[float], float, int]:  # noqa: ANN001
    """``concurrency`` workers call ``call(image)`` back to back for ``seconds``; latencies, wall, people."""
    latencies: list[float] = []
    people = 0
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal people
        i = offset
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            found = await call(images[i % len(images)])  # (not `people += await ...`: that reads before awaiting)
            latencies.append(time.perf_counter() - t0)
            people += found
            i += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies, time.perf_counter() - start, people


def pipeline_rate(
    engine: Engine, images: list[DecodedImage], concurrency: int, seconds: float, max_people: int
) -> Rate:
    options = EstimateOptions(max_people=max_people)

    async def call(image: DecodedImage) -> int:
        result = await engine.pipeline.estimate(image, options, deadline=time.monotonic() + 60)
        return len(result.boxes)

    async def run() -> tuple[list[float], float, int]:
        await _drive(call, images, concurrency, min(2.0, seconds))  # warm the queues and caches
        return await _drive(call, images, concurrency, seconds)

    latencies, wall, people = asyncio.run(run())
    notes = f"{people / max(1, len(latencies)):.2f} people/image"
    return summarize(f"pipeline in process, concurrency {concurrency}", latencies, wall, len(latencies), "images/s",
                     notes)  # fmt: skip


def http_rate(url: str, jpegs: list[bytes], concurrency: int, seconds: float, max_people: int) -> Rate:
    async def run() -> tuple[list[float], float, int]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def call(data: bytes) -> int:
                response = await client.post("/v1/pose", params={"max_people": max_people}, content=data,
                                             headers={"Content-Type": "image/jpeg"})  # fmt: skip
                response.raise_for_status()
                return len(response.json()["people"])

            await _drive(call, jpegs, concurrency, min(2.0, seconds))
            return await _drive(call, jpegs, concurrency, seconds)

    latencies, wall, people = asyncio.run(run())
    notes = f"{people / max(1, len(latencies)):.2f} people/image, JPEG decode included"
    return summarize(f"HTTP /v1/pose, concurrency {concurrency}", latencies, wall, len(latencies), "images/s", notes)


def grpc_rate(target: str, jpegs: list[bytes], concurrency: int, seconds: float, max_people: int) -> Rate:
    """``Estimate`` over one grpc.aio channel (HTTP/2 multiplexes the concurrent calls), JPEG bytes as sent."""
    import grpc

    from service.api._proto.pose.v1 import pose_pb2 as pb
    from service.api._proto.pose.v1 import pose_pb2_grpc

    async def run() -> tuple[list[float], float, int]:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pose_pb2_grpc.PoseServiceStub(channel)
            options = pb.Options(max_people=max_people)

            async def call(data: bytes) -> int:
                response = await stub.Estimate(pb.EstimateRequest(image=pb.Image(encoded=data), options=options),
                                               timeout=120)  # fmt: skip
                return len(response.people)

            await _drive(call, jpegs, concurrency, min(2.0, seconds))
            return await _drive(call, jpegs, concurrency, seconds)

    latencies, wall, people = asyncio.run(run())
    notes = f"{people / max(1, len(latencies)):.2f} people/image, JPEG decode included"
    return summarize(f"gRPC Estimate, concurrency {concurrency}", latencies, wall, len(latencies), "images/s", notes)


def stream_rate(
    target: str, jpegs: list[bytes], streams: int, det_interval: int, seconds: float, max_people: int, window: int = 2
) -> Rate:
    """``streams`` concurrent ``Stream`` calls, each keeping ``window`` frames unanswered (a client as fast as the
    service, so nothing is dropped); rate = answered frames per second over all streams, latency per frame."""
    import grpc

    from service.api._proto.pose.v1 import pose_pb2 as pb
    from service.api._proto.pose.v1 import pose_pb2_grpc

    config = pb.StreamConfig(options=pb.Options(max_people=max_people), det_interval=det_interval,
                             max_in_flight=window, max_buffered=window)  # fmt: skip

    async def one(stub: pose_pb2_grpc.PoseServiceStub, offset: int, stop: float, out: list[float]) -> tuple[int, int]:
        call = stub.Stream()
        await call.write(pb.StreamRequest(config=config))
        sent: dict[int, float] = {}
        frame_id, people, dropped = 0, 0, 0

        async def send() -> None:
            nonlocal frame_id
            data = jpegs[(offset + frame_id) % len(jpegs)]
            sent[frame_id] = time.perf_counter()
            await call.write(pb.StreamRequest(frame=pb.Frame(frame_id=frame_id, image=pb.Image(encoded=data))))
            frame_id += 1

        for _ in range(window):
            await send()
        while sent:
            answer = await call.read()
            if answer is grpc.aio.EOF:
                break
            dropped += len(answer.dropped_frame_ids)
            for lost in answer.dropped_frame_ids:
                sent.pop(lost, None)
            if answer.drops_only:
                continue
            out.append(time.perf_counter() - sent.pop(answer.frame_id))
            people += len(answer.people)
            if time.perf_counter() < stop:
                await send()
        await call.done_writing()
        return people, dropped

    async def run(duration: float) -> tuple[list[float], float, int, int]:
        latencies: list[float] = []
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pose_pb2_grpc.PoseServiceStub(channel)
            start = time.perf_counter()
            counts = await asyncio.gather(*(one(stub, k, start + duration, latencies) for k in range(streams)))
            return latencies, time.perf_counter() - start, sum(c[0] for c in counts), sum(c[1] for c in counts)

    asyncio.run(run(min(2.0, seconds)))  # warm up
    latencies, wall, people, dropped = asyncio.run(run(seconds))
    notes = f"{people / max(1, len(latencies)):.2f} people/frame, {dropped} dropped, JPEG decode included"
    return summarize(f"gRPC Stream x{streams}, det_interval {det_interval}", latencies, wall, len(latencies),
                     "frames/s", notes)  # fmt: skip


Samples = tuple[list[float], float, int]  # latencies (s), wall time (s), items


def add(a: Samples, b: Samples) -> Samples:
    """Two measurements of one configuration as one (slices taken in turns with other configurations)."""
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def pose_on_boxes_samples(
    engine: Engine, images: list[DecodedImage], boxes: list[np.ndarray], concurrency: int, seconds: float, warm: bool
) -> Samples:
    """The pose model alone (the detector skipped): each request brings its image's boxes; items are crops."""
    work = list(zip(images, boxes, strict=True))

    async def call(item: tuple[DecodedImage, np.ndarray]) -> int:
        image, given = item
        result = await engine.pipeline.estimate(image, EstimateOptions(boxes=given), deadline=time.monotonic() + 60)
        return len(result.boxes)

    async def run() -> Samples:
        if warm:
            await _drive(call, work, concurrency, min(2.0, seconds))
        return await _drive(call, work, concurrency, seconds)

    return asyncio.run(run())


def http_boxes_samples(
    url: str, jpegs: list[bytes], boxes: list[np.ndarray], concurrency: int, seconds: float, warm: bool
) -> Samples:
    """POST /v1/pose?boxes=[[...]] with the JPEG bytes (decode included); items are crops."""
    work = [(jpeg, json.dumps(np.round(b, 2).tolist())) for jpeg, b in zip(jpegs, boxes, strict=True)]

    async def run() -> Samples:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def call(item: tuple[bytes, str]) -> int:
                data, given = item
                response = await client.post("/v1/pose", params={"boxes": given}, content=data,
                                             headers={"Content-Type": "image/jpeg"})  # fmt: skip
                response.raise_for_status()
                return len(response.json()["people"])

            if warm:
                await _drive(call, work, concurrency, min(2.0, seconds))
            return await _drive(call, work, concurrency, seconds)

    return asyncio.run(run())
