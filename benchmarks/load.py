"""Load generators: the in-process Pipeline, HTTP, gRPC unary, gRPC and WebSocket streams, with N concurrent submitters.

Every generator keeps its submitters busy (a closed loop) and measures a **steady window**:
it opens once every submitter has had an answer (so the queues hold what this concurrency
holds, not the first wave) and at least ``ramp`` seconds have passed, and closes
``seconds`` later; calls still in flight then are awaited. Latencies are those of the calls
that end inside the window. Throughput counts each call by the share of its lifetime that
falls inside the window (a call half inside counts one half): the service answers in
batches, so whole calls counted at the window's edges would move the rate by a batch
(8 images in 3 s at concurrency 8), where shares do not. This makes short windows
measured in turns (benchmarks/turns.py) as fair as one long run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from benchmarks.stats import Rate, summarize
from service.engine.engine import Engine
from service.engine.pipeline import EstimateOptions
from service.vision.image import DecodedImage


@dataclass
class Samples:
    """What one or more windows of one configuration saw."""

    latencies_s: list[float]  # one per call (or stream frame) that ended inside the windows
    wall_s: float  # the windows' length
    calls: float  # calls (frames) counted by their share inside the windows
    people: float  # people found (crops, for pose on given boxes), counted the same way
    dropped: int = 0  # stream frames dropped

    def __add__(self, other: Samples) -> Samples:
        return Samples(self.latencies_s + other.latencies_s, self.wall_s + other.wall_s, self.calls + other.calls,
                       self.people + other.people, self.dropped + other.dropped)  # fmt: skip


class Window:
    """Opens once ``warm_calls`` calls have ended and ``ramp`` seconds have passed; closes ``seconds`` later."""

    def __init__(self, seconds: float, ramp: float, warm_calls: int) -> None:
        self.seconds, self.warm_calls = seconds, warm_calls
        self.ramp_until = time.perf_counter() + ramp
        self.opened: float | None = None
        self.ended = 0
        self.calls: list[tuple[float, float, int]] = []  # (start, end, people) of every call
        self.dropped = 0

    def open(self) -> bool:
        """True while submitters should keep calling."""
        return self.opened is None or time.perf_counter() < self.opened + self.seconds

    def record(self, started: float, people: int) -> None:
        now = time.perf_counter()
        self.ended += 1
        self.calls.append((started, now, people))
        if self.opened is None and self.ended >= self.warm_calls and now >= self.ramp_until:
            self.opened = now

    @property
    def samples(self) -> Samples:
        assert self.opened is not None, "the window never opened"
        begin, end = self.opened, self.opened + self.seconds
        latencies, calls, people = [], 0.0, 0.0
        for t0, t1, found in self.calls:
            if begin <= t1 < end:
                latencies.append(t1 - t0)
            share = max(0.0, min(t1, end) - max(t0, begin)) / max(t1 - t0, 1e-9)
            calls += share
            people += share * found
        return Samples(latencies, self.seconds, calls, people, self.dropped)


async def _drive(call: Callable[[object], Awaitable[int]], items: Sequence[object], concurrency: int,
                 seconds: float, ramp: float) -> Samples:  # fmt: skip
    """``concurrency`` submitters call ``call(item)`` back to back (it returns the people found)."""
    window = Window(seconds, ramp, concurrency)

    async def submitter(offset: int) -> None:
        i = offset
        while window.open():
            t0 = time.perf_counter()
            window.record(t0, await call(items[i % len(items)]))
            i += 1

    await asyncio.gather(*(submitter(k) for k in range(concurrency)))
    return window.samples


def pipeline_rate(
    engine: Engine, images: list[DecodedImage], concurrency: int, seconds: float, max_people: int
) -> Rate:
    options = EstimateOptions(max_people=max_people)

    async def call(image: DecodedImage) -> int:
        result = await engine.pipeline.estimate(image, options, deadline=time.monotonic() + 60)
        return len(result.boxes)

    s = asyncio.run(_drive(call, images, concurrency, seconds, min(2.0, seconds)))  # type: ignore[arg-type]
    return summarize(f"pipeline in process, concurrency {concurrency}", s.latencies_s, s.wall_s, s.calls, "images/s",
                     f"{s.people / max(1, s.calls):.2f} people/image")  # fmt: skip


def http_samples(url: str, jpegs: list[bytes], concurrency: int, max_people: int, seconds: float, ramp: float
                 ) -> Samples:  # fmt: skip
    """``POST /v1/pose`` with the JPEG bytes (decode included) from httpx clients."""
    work = [(jpeg, {"max_people": max_people}) for jpeg in jpegs]
    return _post_samples(url, work, concurrency, seconds, ramp)


def _post_samples(url: str, work: list[tuple[bytes, dict[str, Any]]], concurrency: int, seconds: float, ramp: float
                  ) -> Samples:  # fmt: skip
    """``POST /v1/pose`` of each (JPEG bytes, query parameters) from ``concurrency`` httpx clients."""

    async def run() -> Samples:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def call(item: tuple[bytes, dict[str, Any]]) -> int:
                data, params = item
                response = await client.post("/v1/pose", params=params, content=data,
                                             headers={"Content-Type": "image/jpeg"})  # fmt: skip
                response.raise_for_status()
                return len(response.json()["people"])

            return await _drive(call, work, concurrency, seconds, ramp)  # type: ignore[arg-type]

    return asyncio.run(run())


def grpc_samples(target: str, jpegs: list[bytes], concurrency: int, max_people: int, seconds: float, ramp: float
                 ) -> Samples:  # fmt: skip
    """``Estimate`` over one grpc.aio channel (HTTP/2 multiplexes the concurrent calls), JPEG bytes as sent."""
    import grpc

    from service.wire._proto.pose.v1 import pose_pb2 as pb
    from service.wire._proto.pose.v1 import pose_pb2_grpc

    async def run() -> Samples:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pose_pb2_grpc.PoseServiceStub(channel)
            options = pb.Options(max_people=max_people)

            async def call(data: bytes) -> int:
                response = await stub.Estimate(pb.EstimateRequest(image=pb.Image(encoded=data), options=options),
                                               timeout=120)  # fmt: skip
                return len(response.people)

            return await _drive(call, jpegs, concurrency, seconds, ramp)  # type: ignore[arg-type]

    return asyncio.run(run())


def stream_samples(target: str, jpegs: list[bytes], streams: int, det_interval: int, max_people: int,
                   seconds: float, ramp: float, in_flight: int = 2) -> Samples:  # fmt: skip
    """``streams`` concurrent ``Stream`` calls, each keeping ``in_flight`` frames unanswered (a client as fast as the
    service, so nothing should be dropped); a latency per answered frame, from its send to its answer."""
    import grpc

    from service.wire._proto.pose.v1 import pose_pb2 as pb
    from service.wire._proto.pose.v1 import pose_pb2_grpc

    config = pb.StreamConfig(options=pb.Options(max_people=max_people), det_interval=det_interval,
                             max_in_flight=in_flight, max_buffered=in_flight)  # fmt: skip
    window = Window(seconds, ramp, streams * in_flight)

    async def one(stub: pose_pb2_grpc.PoseServiceStub, offset: int) -> None:
        call = stub.Stream()
        await call.write(pb.StreamRequest(config=config))
        sent: dict[int, float] = {}
        frame_id = 0

        async def send() -> None:
            nonlocal frame_id
            data = jpegs[(offset + frame_id) % len(jpegs)]
            sent[frame_id] = time.perf_counter()
            await call.write(pb.StreamRequest(frame=pb.Frame(frame_id=frame_id, image=pb.Image(encoded=data))))
            frame_id += 1

        for _ in range(in_flight):
            await send()
        while sent:
            answer = await call.read()
            if answer is grpc.aio.EOF:
                break
            window.dropped += len(answer.dropped_frame_ids)
            for lost in answer.dropped_frame_ids:
                sent.pop(lost, None)
            if answer.drops_only:
                continue
            window.record(sent.pop(answer.frame_id), len(answer.people))
            if window.open():
                await send()
        await call.done_writing()

    async def run() -> Samples:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pose_pb2_grpc.PoseServiceStub(channel)
            await asyncio.gather(*(one(stub, k) for k in range(streams)))
        return window.samples

    return asyncio.run(run())


def ws_stream_samples(url: str, jpegs: list[bytes], streams: int, det_interval: int, max_people: int,
                      seconds: float, ramp: float, in_flight: int = 2) -> Samples:  # fmt: skip
    """:func:`stream_samples` over the WebSocket (``/v1/stream``): the same config, frames, window and client loop;
    one connection per stream (WebSockets do not multiplex), JSON answers instead of protobuf."""
    from websockets.asyncio.client import connect

    from service.wire.websocket import pack_frame

    config = json.dumps({"options": {"max_people": max_people}, "det_interval": det_interval,
                         "max_in_flight": in_flight, "max_buffered": in_flight})  # fmt: skip
    window = Window(seconds, ramp, streams * in_flight)
    target = url.replace("http://", "ws://") + "/v1/stream"

    async def one(offset: int) -> None:
        async with connect(target, proxy=None, max_size=None, compression=None) as ws:
            await ws.send(config)
            sent: dict[int, float] = {}
            frame_id = 0

            async def send() -> None:
                nonlocal frame_id
                data = jpegs[(offset + frame_id) % len(jpegs)]
                sent[frame_id] = time.perf_counter()
                await ws.send(pack_frame(frame_id, 0.0, data))
                frame_id += 1

            for _ in range(in_flight):
                await send()
            while sent:
                answer = json.loads(await ws.recv())
                if "frame_id" not in answer:
                    raise RuntimeError(f"the stream ended: {answer}")
                window.dropped += len(answer["dropped_frame_ids"])
                for lost in answer["dropped_frame_ids"]:
                    sent.pop(lost, None)
                if answer["drops_only"]:
                    continue
                window.record(sent.pop(answer["frame_id"]), len(answer["people"]))
                if window.open():
                    await send()
            await ws.send(b"")  # no more frames

    async def run() -> Samples:
        await asyncio.gather(*(one(k) for k in range(streams)))
        return window.samples

    return asyncio.run(run())


def pose_on_boxes_samples(engine: Engine, images: list[DecodedImage], boxes: list[np.ndarray], concurrency: int,
                          seconds: float, ramp: float) -> Samples:  # fmt: skip
    """The pose model alone (the detector skipped): each request brings its image's boxes; people are crops."""
    work = list(zip(images, boxes, strict=True))

    async def call(item: tuple[DecodedImage, np.ndarray]) -> int:
        image, given = item
        result = await engine.pipeline.estimate(image, EstimateOptions(boxes=given), deadline=time.monotonic() + 60)
        return len(result.boxes)

    return asyncio.run(_drive(call, work, concurrency, seconds, ramp))  # type: ignore[arg-type]


def http_boxes_samples(url: str, jpegs: list[bytes], boxes: list[np.ndarray], concurrency: int, seconds: float,
                       ramp: float) -> Samples:  # fmt: skip
    """POST /v1/pose?boxes=[[...]] with the JPEG bytes (decode included); people are crops."""
    work = [(jpeg, {"boxes": json.dumps(np.round(b, 2).tolist())}) for jpeg, b in zip(jpegs, boxes, strict=True)]
    return _post_samples(url, work, concurrency, seconds, ramp)
