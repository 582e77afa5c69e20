"""The stream state machine without any transport: a real engine with oracle models, frames offered directly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from service.config import Settings
from service.engine.engine import Engine
from service.errors import BadImageError, StreamIdleError, TooManyStreamsError
from service.requests import EncodedImage, PoseRequests
from service.requests.streams import FrameIn, FrameOut, StreamParams, StreamRegistry
from tests.helpers import install_slow_pose
from tests.oracles import BANDS, install_detector_oracle
from tests.streams import HEAD_CHANNELS, frame, install_tracking_pose, walk


@pytest.fixture
def requests(tmp_path: Path) -> Iterator[PoseRequests]:
    install_tracking_pose(tmp_path, batching={"max_batch_size": 8, "max_queue_delay_ms": 1})
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    install_slow_pose(tmp_path, "slow", 4, channels=HEAD_CHANNELS, max_batch_size=1)
    settings = Settings(model_repository=tmp_path, model="pose", detector="det", extra_models=["slow"], warmup=False,
                        max_streams=1, stream_idle_timeout_s=0.5)  # fmt: skip
    layer = PoseRequests(Engine(settings), settings)
    layer.engine.start()
    yield layer
    layer.engine.close(1)
    layer.close()


def encoded(boxes: list) -> EncodedImage:
    ok, data = cv2.imencode(".png", frame(boxes))
    assert ok
    return EncodedImage(data.tobytes())


async def collect(session, frames: list[FrameIn]) -> list[FrameOut]:
    for f in frames:
        session.offer(f)
    session.close_input()
    return [out async for out in session.results()]


def test_a_burst_is_answered_in_order_with_the_oldest_waiting_frames_dropped(requests: PoseRequests) -> None:
    images = [encoded([box]) for box in walk((40, 60, 160, 360), (2.0, 0.0), 10)]
    params = StreamParams(max_in_flight=1, max_buffered=2, options={"model": "slow"})

    async def run() -> list[FrameOut]:
        async with StreamRegistry(requests).session(params) as session:
            return await collect(session, [FrameIn(i, 0.0, image) for i, image in enumerate(images)])

    outs = asyncio.run(run())
    answered = [o.frame_id for o in outs if not o.drops_only]
    dropped = [i for o in outs for i in o.dropped]
    # all ten offered at once: frame 0 starts, 1..9 push through a buffer of two: 8 and 9 wait, 1..7 drop
    assert answered == [0, 8, 9]
    assert sorted(dropped) == list(range(1, 8))
    assert outs[0].dropped == tuple(range(1, 8))  # dropped while frame 0 ran: reported on its answer
    assert len({int(o.track_ids[0]) for o in outs if o.result is not None}) == 1


def test_bad_frames_are_answered_in_band_and_the_stream_goes_on(requests: PoseRequests) -> None:
    path = walk((40, 60, 160, 360), (1.0, 0.0), 5)
    frames = [FrameIn(i, 0.0, encoded([box])) for i, box in enumerate(path)]
    frames[2] = FrameIn(2, 0.0, EncodedImage(b"\xff\xd8\xff garbage"))
    frames[3] = FrameIn(3, 0.0, BadImageError("the request has no image"))

    async def run() -> list[FrameOut]:
        async with StreamRegistry(requests).session(StreamParams(max_buffered=10)) as session:
            return await collect(session, frames)

    outs = asyncio.run(run())
    assert [o.frame_id for o in outs] == [0, 1, 2, 3, 4]
    assert outs[2].error is not None and outs[2].error.code == "invalid_image"  # noqa: PT018
    assert outs[3].error is not None and "no image" in outs[3].error.message  # noqa: PT018
    assert [len(o.track_ids) for o in outs if o.error is None] == [1, 1, 1]


def test_idle_streams_end_and_slots_are_bounded(requests: PoseRequests) -> None:
    registry = StreamRegistry(requests)

    async def run() -> None:
        async with registry.session(StreamParams()) as session:
            with pytest.raises(TooManyStreamsError):
                async with registry.session(StreamParams()):
                    pass
            with pytest.raises(StreamIdleError):
                async for _ in session.results():
                    pass
        assert registry.open == 0

    asyncio.run(run())
