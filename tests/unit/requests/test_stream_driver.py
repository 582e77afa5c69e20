"""serve_stream, the transport-free stream driver, and the byte budget it buffers frames in: no transport, a real
engine with oracle models, messages handed in as a transport would parse them."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from service import metrics
from service.config import Settings
from service.engine.engine import Engine
from service.errors import (
    BadRequestError,
    InferenceError,
    InvalidOptionsError,
    ShuttingDownError,
    StreamIdleError,
    TooManyStreamsError,
)
from service.requests import PoseRequests, RawPixels
from service.requests.admission import checked_finite
from service.requests.budget import ByteBudget, DecodeBudget
from service.requests.streams import FrameIn, FrameOut, Incoming, StreamParams, StreamRegistry, serve_stream
from service.wire.results import PoseResult
from tests.helpers import install_slow_pose, slow_pose
from tests.oracles import BANDS, install_detector_oracle
from tests.streams import HEAD_CHANNELS, frame, install_tracking_pose, walk

IDLE_S = 0.5


@pytest.fixture
def requests(tmp_path: Path) -> Iterator[PoseRequests]:
    install_tracking_pose(tmp_path, batching={"max_batch_size": 8, "max_queue_delay_ms": 1})
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    # a frame of "slow" takes far longer than the loop takes to hand a stream its messages (tens of microseconds)
    install_slow_pose(tmp_path, "slow", slow_pose(0.05).layers, channels=HEAD_CHANNELS, max_batch_size=1)
    settings = Settings(model_repository=tmp_path, model="pose", detector="det", extra_models=["slow"], warmup=False,
                        max_streams=1, stream_idle_timeout_s=IDLE_S)  # fmt: skip
    layer = PoseRequests(Engine(settings), settings)
    layer.engine.start()
    yield layer
    layer.engine.close(1)
    layer.close()


def raw(boxes: list) -> RawPixels:
    image = frame(boxes)
    return RawPixels(image.tobytes(), image.shape[1], image.shape[0])


PATH = walk((40, 60, 160, 360), (2.0, 0.0), 12)


class Messages:
    """An incoming stream as a transport would hand it over: items in order; ``hold`` keeps it open after them."""

    def __init__(self, items: list[Incoming], *, hold: bool = False) -> None:
        self.items = items
        self.hold = hold
        self.read = 0
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[Incoming]:
        for item in self.items:
            self.read += 1
            yield item
        if self.hold:
            await self.release.wait()


def frames(count: int, **fields: object) -> list[FrameIn]:
    return [FrameIn(i, 0.0, raw([PATH[i]]), **fields) for i in range(count)]  # type: ignore[arg-type]


async def drive(registry: StreamRegistry, messages: Messages, sent: list[FrameOut]) -> None:
    async def send(out: FrameOut) -> None:
        sent.append(out)

    await serve_stream(registry, aiter(messages), send, protocol="test")


def ends(reason: str) -> float:
    return metrics.STREAM_ENDS.labels("test", reason)._value.get()


def test_a_stream_is_answered_in_order_and_ends_when_the_client_does(requests: PoseRequests) -> None:
    sent: list[FrameOut] = []
    ok = ends("ok")
    asyncio.run(drive(StreamRegistry(requests), Messages([StreamParams(max_buffered=12), *frames(6)]), sent))
    assert [o.frame_id for o in sent] == list(range(6))
    assert all(o.error is None and len(o.track_ids) == 1 for o in sent)
    assert ends("ok") - ok == 1


@pytest.mark.parametrize(
    ("first", "error"),
    [
        (None, BadRequestError),  # the client half-closed before its config
        (FrameIn(0, 0.0, raw([PATH[0]])), BadRequestError),
        (BadRequestError("garbled"), BadRequestError),
        (InvalidOptionsError("det_interval: out of range"), InvalidOptionsError),
    ],
)
def test_the_first_message_must_be_a_config(requests: PoseRequests, first: Incoming | None, error: type) -> None:
    registry = StreamRegistry(requests)
    with pytest.raises(error):
        asyncio.run(drive(registry, Messages([] if first is None else [first]), []))
    assert registry.open == 0


def test_a_stream_holds_its_slot_from_the_start_and_its_config_is_awaited_within_the_idle_timeout(
    requests: PoseRequests,
) -> None:
    registry = StreamRegistry(requests)

    async def run() -> float:
        silent = asyncio.create_task(drive(registry, Messages([], hold=True), []))
        while registry.open < 1:
            await asyncio.sleep(0.01)
        with pytest.raises(TooManyStreamsError):  # max_streams = 1: the silent one holds it
            await drive(registry, Messages([StreamParams()]), [])
        start = time.monotonic()
        with pytest.raises(StreamIdleError):
            await silent
        return time.monotonic() - start

    assert asyncio.run(run()) <= IDLE_S + 0.1
    assert registry.open == 0


def test_a_message_that_could_not_be_read_ends_the_stream_at_once(requests: PoseRequests) -> None:
    """The slow model takes a frame long after the garbled message: the stream does not wait for it."""
    registry = StreamRegistry(requests)
    sent: list[FrameOut] = []
    messages = Messages([StreamParams(options={"model": "slow"}), *frames(2), BadRequestError("not a message")],
                        hold=True)  # fmt: skip
    with pytest.raises(BadRequestError, match="not a message"):
        asyncio.run(drive(registry, messages, sent))
    assert len(sent) < 2, "ended without waiting for the frames in flight"
    assert registry.open == 0


def test_a_second_config_is_a_protocol_error(requests: PoseRequests) -> None:
    with pytest.raises(BadRequestError, match="only the first message"):
        asyncio.run(drive(StreamRegistry(requests), Messages([StreamParams(), StreamParams()], hold=True), []))


def test_drain_ends_a_stream_waiting_for_its_config_at_once(requests: PoseRequests) -> None:
    registry = StreamRegistry(requests)

    async def run() -> None:
        silent = asyncio.create_task(drive(registry, Messages([], hold=True), []))
        while registry.open < 1:
            await asyncio.sleep(0.01)
        registry.drain()
        with pytest.raises(ShuttingDownError):
            await asyncio.wait_for(silent, IDLE_S / 2)

    asyncio.run(run())


def test_drain_takes_no_more_frames_drops_what_waits_and_answers_what_is_in_flight(requests: PoseRequests) -> None:
    registry = StreamRegistry(requests)
    sent: list[FrameOut] = []
    config = StreamParams(options={"model": "slow"}, max_in_flight=1, max_buffered=4)
    messages = Messages([config, *frames(4)], hold=True)

    async def run() -> None:
        stream = asyncio.create_task(drive(registry, messages, sent))
        while messages.read < 5:  # the config and four frames taken: one in flight, three waiting
            await asyncio.sleep(0.01)
        requests.close_gate()  # what the process does at SIGTERM, in this order
        registry.drain()
        messages.items.extend(frames(8)[4:])  # sent after SIGTERM: never taken
        with pytest.raises(ShuttingDownError):
            await stream

    asyncio.run(run())
    answered = [o.frame_id for o in sent if not o.drops_only]
    dropped = sorted(i for o in sent for i in o.dropped)
    # drained right after the four frames were taken (no frame of the slow model is done by then): the one in
    # flight is answered, the waiting ones are reported dropped, and nothing sent later is taken
    assert answered == list(range(len(answered)))
    assert answered
    assert dropped == list(range(len(answered), 4))
    assert dropped
    assert messages.read == 5, "nothing was read after the drain"


def test_non_finite_timestamps_fail_their_frame_and_the_track_stays_finite(requests: PoseRequests) -> None:
    stamps = [0.0, 0.033, math.nan, 0.1, math.inf, 0.166]
    items = [FrameIn(i, stamp, raw([PATH[i]])) for i, stamp in enumerate(stamps)]
    sent: list[FrameOut] = []
    asyncio.run(drive(StreamRegistry(requests), Messages([StreamParams(smooth=True, max_buffered=8), *items]), sent))
    assert [o.frame_id for o in sent] == list(range(6))
    for out in sent:
        if out.frame_id in (2, 4):
            assert out.error is not None
            assert out.error.code == "bad_request"
        else:
            assert out.result is not None
            assert np.isfinite(out.result.keypoints).all()
            assert np.isfinite(out.result.boxes).all()


def test_buffered_frames_are_held_in_the_decode_budget_and_the_oldest_goes_when_it_is_full(
    requests: PoseRequests,
) -> None:
    """Each raw 640x480 frame is 921,600 bytes: a budget of 3 MB holds three waiting frames, whatever max_buffered."""
    requests.budget = DecodeBudget(3_000_000)
    registry = StreamRegistry(requests)
    sent: list[FrameOut] = []
    config = StreamParams(options={"model": "slow"}, max_in_flight=1, max_buffered=256)
    messages = Messages([config, *frames(10)], hold=True)

    async def run() -> None:
        stream = asyncio.create_task(drive(registry, messages, sent))
        while messages.read < 11:
            await asyncio.sleep(0.01)
        assert requests.budget.used <= requests.budget.limit
        messages.release.set()  # the client half-closes: what was taken is answered or reported
        await stream

    asyncio.run(run())
    answered = [o.frame_id for o in sent if not o.drops_only]
    dropped = sorted(i for o in sent for i in o.dropped)
    assert sorted(answered + dropped) == list(range(10))
    assert answered[0] == 0
    assert len(dropped) >= 10 - 1 - 3, "no more than the budget's worth of frames waited"
    assert dropped == list(range(1, len(dropped) + 1)), "the oldest waiting frames went first"
    assert requests.budget.used == 0


# -- the budget alone ------------------------------------------------------------------------------------------------


def budget(limit: int) -> ByteBudget:
    return ByteBudget(limit, capacity=metrics.GRPC_MESSAGE_BUDGET_BYTES, in_flight=metrics.GRPC_MESSAGE_BYTES_IN_FLIGHT)


def test_holds_give_way_oldest_first_to_new_holds_and_to_waiting_charges() -> None:
    async def run() -> None:
        bytes_ = budget(100)
        dropped: list[str] = []
        first = bytes_.hold(40, lambda: dropped.append("first"))
        second = bytes_.hold(40, lambda: dropped.append("second"))
        assert first is not None
        assert second is not None
        third = bytes_.hold(40, lambda: dropped.append("third"))  # 120 > 100: the oldest hold goes
        assert third is not None
        assert dropped == ["first"]
        assert first.released
        charge = await bytes_.charge(90, time.monotonic() + 1)  # a decode does not wait behind buffered frames
        assert dropped == ["first", "second", "third"]
        assert bytes_.hold(20, lambda: None) is None  # no room left and nothing to reclaim
        charge.release()
        assert bytes_.used == 0

    asyncio.run(run())


def test_a_charge_shrinks_to_what_it_holds() -> None:
    bytes_ = budget(100)
    charge = bytes_.try_charge(80)
    assert charge is not None
    assert bytes_.try_charge(30) is None
    charge.shrink(10)  # the message turned out small
    assert bytes_.used == 10
    assert bytes_.try_charge(30) is not None
    charge.release()
    charge.shrink(0)  # released: nothing more happens
    assert bytes_.used == 30
    assert bytes_.released == 80


def test_no_answer_carries_a_non_finite_number() -> None:
    def result(score: float) -> PoseResult:
        return PoseResult(
            width=10, height=10, pose_model="p", detector="d", keypoint_set="coco17", weights="custom",
            boxes=np.zeros((1, 4), np.float32), bbox_scores=np.ones(1, np.float32),
            scores=np.array([score], np.float32), keypoints=np.zeros((1, 17, 3), np.float32),
        )  # fmt: skip

    assert checked_finite(result(0.5)).scores[0] == 0.5
    for bad in (math.nan, math.inf):
        with pytest.raises(InferenceError, match="non-finite scores"):
            checked_finite(result(bad))
