"""Admission, the decode budget and the end of the grace period, on a real engine with oracle models."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2
import pytest

from service.config import Settings
from service.engine.engine import Engine
from service.errors import (
    DeadlineExceededError,
    InvalidOptionsError,
    PayloadTooLargeError,
    QueueFullError,
    ShuttingDownError,
)
from service.requests import EncodedImage, PoseRequests
from service.requests.budget import DecodeBudget, budget_bytes, image_bytes
from service.requests.options import PoseOptions
from service.wire.options import boxes_in_text, check_box_count
from tests.oracles import BANDS, draw_scene, install_detector_oracle, install_pose_oracle

SCENE = draw_scene([((40, 60, 160, 400), (100, 200))])


@pytest.fixture
def requests(tmp_path: Path) -> PoseRequests:
    install_pose_oracle(tmp_path, "pose", batching={"max_queue_size": 8, "max_batch_size": 4})
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    settings = Settings(model_repository=tmp_path, model="pose", detector="det", warmup=False, max_people=4)
    layer = PoseRequests(Engine(settings), settings)
    layer.engine.start()
    yield layer
    layer.engine.close(1)
    layer.close()


def far() -> float:
    return time.monotonic() + 30


def test_admission_holds_queue_room_until_the_block_ends(requests: PoseRequests) -> None:
    room = requests.engine.pipeline.room

    async def scenario() -> None:
        async with requests.admit(deadline=far()) as first, requests.admit(deadline=far()) as second:
            assert room.reserved("pose") == 0  # nothing is held before the options are known
            first.reserve(PoseOptions())
            second.reserve(PoseOptions())
            assert room.reserved("pose") == 8
            assert requests.engine.pipeline.full()
            with pytest.raises(QueueFullError):
                async with requests.admit(deadline=far()) as third:
                    third.reserve(PoseOptions(max_people=1))
        assert room.reserved("pose") == room.reserved("det") == 0
        async with requests.admit(deadline=far()) as admission:
            admission.reserve(PoseOptions(max_people=1))
            assert admission.widen(PoseOptions(max_people=1), 20) == 7  # 8 crops of room in all
            admission.reserve(PoseOptions(max_people=2))  # 8 slots of 2 crops do not fit: none is kept
        assert room.reserved("pose") == 0

    with pytest.raises(QueueFullError):
        asyncio.run(scenario())
    assert requests.engine.pipeline.room.reserved("pose") == 0


def test_the_end_of_the_grace_period_ends_admitted_work_with_shutting_down(requests: PoseRequests) -> None:
    async def scenario() -> None:
        async def held() -> None:
            async with requests.admit(deadline=far()):
                await asyncio.sleep(30)

        task = asyncio.create_task(held())
        while not requests.admitted:  # the task has entered the gate
            await asyncio.sleep(0)
        assert requests.end_admitted() == 1
        with pytest.raises(ShuttingDownError, match="grace period ended"):
            await task
        with pytest.raises(ShuttingDownError):
            async with requests.admit(deadline=far()):
                pass

    asyncio.run(scenario())


def test_decoded_pixels_are_charged_until_the_admission_ends(requests: PoseRequests) -> None:
    ok, png = cv2.imencode(".png", SCENE)
    assert ok

    async def scenario() -> None:
        async with requests.admit(deadline=far()) as admission:
            image = await admission.decode(EncodedImage(png.tobytes()))
            assert requests.budget.used == image.width * image.height * 10  # PNG: 10 bytes per pixel
        assert requests.budget.used == 0

    asyncio.run(scenario())


def test_the_budget_serves_charges_in_order_within_their_deadlines() -> None:
    async def scenario() -> None:
        budget = DecodeBudget(100)
        first = await budget.charge(60, far())
        with pytest.raises(DeadlineExceededError, match="waiting for decode memory"):
            await budget.charge(50, time.monotonic() + 0.05)
        waiting = asyncio.create_task(budget.charge(50, far()))
        small = asyncio.create_task(budget.charge(10, far()))  # fits now, but waits its turn behind the 50
        while budget.waiting < 2:  # both tasks have queued
            await asyncio.sleep(0)
        assert budget.try_charge(1) is None  # nobody jumps the queue, not even from a decode thread
        first.release()
        second, third = await waiting, await small
        assert budget.used == 60
        second.release()
        third.release()
        third.release()  # idempotent
        assert budget.used == 0
        with pytest.raises(PayloadTooLargeError, match="decode memory budget"):
            await budget.charge(101, far())

    asyncio.run(scenario())


def test_a_budget_smaller_than_one_image_is_refused() -> None:
    settings = Settings(max_image_pixels=1_000_000)
    assert budget_bytes(settings) >= image_bytes(settings)
    with pytest.raises(ValueError, match="cannot hold the decode of one image"):
        budget_bytes(Settings(max_image_pixels=1_000_000, decode_budget_bytes=image_bytes(settings) - 1))


def test_box_lists_are_bounded_before_parsing() -> None:
    text = "[" + ",".join(["[1,2,3,4]"] * 1000) + "]"
    check_box_count(boxes_in_text(text.count("[")))  # 1000 boxes pass
    with pytest.raises(InvalidOptionsError, match="at most 1000 boxes"):
        check_box_count(boxes_in_text(("[" * 2000).count("[")))
    with pytest.raises(InvalidOptionsError):
        check_box_count(1001)  # gRPC: the list's length


def test_room_shrinks_to_the_crops_found_once_the_detector_has_answered(requests: PoseRequests) -> None:
    """Admission reserves the worst case (max_people crops); after detection only what was found stays held."""
    room = requests.engine.pipeline.room
    ok, png = cv2.imencode(".png", SCENE)  # one person
    held: list[int] = []

    async def scenario() -> None:
        async with requests.admit(deadline=far()) as admission:
            admission.reserve(PoseOptions())
            assert room.reserved("pose") == 4  # max_people
            assert room.reserved("det") == 1
            done = await admission.estimate(EncodedImage(png.tobytes()), PoseOptions())
            assert len(done.result.boxes) == 1
            held.extend([room.reserved("pose"), room.reserved("det")])
            async with requests.admit(deadline=far()) as other:  # room for another worst case: 1 + 4 <= 8
                other.reserve(PoseOptions())

    asyncio.run(scenario())
    assert held == [1, 0]
    assert room.reserved("pose") == room.reserved("det") == 0
