"""The Pipeline's public steps (detect, queue_poses, pose_step) that requests and stream frames share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.engine.engine import Engine
from service.engine.pipeline import Detections, EstimateOptions, clip_boxes
from service.errors import InvalidOptionsError, UnknownModelError
from service.models.schema import Task
from service.vision.image import decode_image
from tests.helpers import FAR, decoded, start_engine
from tests.oracles import BANDS, draw_scene, install_detector_oracle, install_pose_oracle


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    install_pose_oracle(tmp_path, "pose", batching={"max_batch_size": 16, "max_queue_delay_ms": 5})
    install_detector_oracle(tmp_path, "det", bands=BANDS, batching={"max_batch_size": 8, "max_queue_delay_ms": 5})
    engine = start_engine(tmp_path)
    yield engine
    engine.close(1)


PEOPLE = [((40, 60, 160, 400), (100, 200)), ((260, 40, 380, 300), (300, 120))]


def test_clip_boxes_keeps_every_box_and_its_index() -> None:
    boxes = np.array([[-20, -10, 50, 60], [600, 400, 700, 500], [700, 10, 800, 20], [10, 10, 10, 10]], np.float32)
    clipped = clip_boxes(boxes, 640, 480)
    np.testing.assert_array_equal(clipped[0], [0, 0, 50, 60])
    np.testing.assert_array_equal(clipped[1], [600, 400, 640, 480])
    np.testing.assert_array_equal(clipped[2], [639, 10, 640, 20])  # wholly outside: a 1-pixel box on the border
    np.testing.assert_array_equal(clipped[3], [10, 10, 11, 11])  # empty: one pixel
    assert (clipped[:, 2] > clipped[:, 0]).all()
    assert (clipped[:, 3] > clipped[:, 1]).all()
    with pytest.raises(InvalidOptionsError, match="finite"):
        clip_boxes(np.array([[0, 0, np.nan, 4]], np.float32), 640, 480)


def test_detect_then_queue_poses_is_estimate(engine: Engine) -> None:
    image = decoded(draw_scene(PEOPLE))

    async def steps() -> tuple:
        deadline = time.monotonic() + FAR
        found = await engine.pipeline.detect(image, deadline=deadline)
        posed = await engine.pipeline.queue_poses(image, found.boxes, found.scores, deadline=deadline).result()
        whole = await engine.pipeline.estimate(image, EstimateOptions(), deadline=deadline)
        return found, posed, whole

    found, posed, whole = asyncio.run(steps())
    assert len(found.boxes) == 2
    np.testing.assert_array_equal(posed.boxes, whole.boxes)
    np.testing.assert_array_equal(posed.keypoints, whole.keypoints)
    np.testing.assert_array_equal(posed.scores, whole.scores)
    assert posed.detector is None  # no detector was named to the result
    assert whole.detector == "det"


def test_pose_step_plans_from_the_detections_and_gives_back_the_room_not_needed(engine: Engine) -> None:
    """The one step of requests and stream frames: the plan sees the detections, the room shrinks to its boxes."""
    image = decoded(draw_scene(PEOPLE))
    pipeline = engine.pipeline
    pose, detector = pipeline.model(None, Task.POSE), pipeline.model(None, Task.DETECT)
    seen: list[int | None] = []

    def first_box_only(found: Detections | None) -> Detections:
        seen.append(None if found is None else len(found.boxes))
        assert found is not None
        return Detections(found.boxes[:1], found.scores[:1])

    async def step() -> tuple:
        reservation = pipeline.reserve(EstimateOptions(max_people=5))
        held = (pipeline.room.reserved("pose"), pipeline.room.reserved("det"))
        result, plan = await pipeline.pose_step(image, first_box_only, pose=pose, detector=detector,
                                                deadline=time.monotonic() + FAR, reservation=reservation)  # fmt: skip
        after = (pipeline.room.reserved("pose"), pipeline.room.reserved("det"))
        reservation.release()
        return held, after, result, plan

    held, after, result, plan = asyncio.run(step())
    assert seen == [2]
    assert held == (5, 1)
    assert after == (1, 0)  # the detector has answered, one crop is queued
    assert len(result.boxes) == 1
    assert result.detector == "det"
    assert "detect" in result.timing_ms
    np.testing.assert_array_equal(result.boxes, plan.boxes)

    def tracks(found: Detections | None) -> Detections:
        assert found is None  # no detector this time: the plan has its own boxes
        return Detections(np.array([[40, 60, 160, 400]], np.float32), np.array([0.5], np.float32))

    result, _ = asyncio.run(pipeline.pose_step(image, tracks, pose=pose, detector=None,
                                               deadline=time.monotonic() + FAR))  # fmt: skip
    assert result.detector is None
    assert "detect" not in result.timing_ms
    np.testing.assert_array_equal(result.bbox_scores, [0.5])


def test_queue_poses_clips_and_carries_the_callers_scores(engine: Engine) -> None:
    image = decoded(draw_scene(PEOPLE))
    boxes = np.array([[20, 40, 180, 420], [250, -50, 390, 310]], np.float32)  # the second pokes out at the top
    scores = np.array([0.42, 0.77], np.float32)
    pending = engine.pipeline.queue_poses(image, boxes, scores, deadline=time.monotonic() + FAR)
    result = asyncio.run(pending.result())
    np.testing.assert_array_equal(result.boxes[1], [250, 0, 390, 310])
    np.testing.assert_array_equal(result.bbox_scores, scores)
    for i, (_, marker) in enumerate(PEOPLE):
        assert np.abs(result.keypoints[i, :, :2] - marker).max() <= 3.6
    with pytest.raises(InvalidOptionsError, match="2 boxes but 1 box scores"):
        engine.pipeline.queue_poses(image, boxes, scores[:1], deadline=time.monotonic() + FAR)


def test_detect_reports_original_pixels_of_a_downscaled_decode(engine: Engine) -> None:
    big = cv2.resize(draw_scene(PEOPLE), (2560, 1920), interpolation=cv2.INTER_NEAREST)  # 4x the scene
    ok, data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 98])
    assert ok
    image = decode_image(data.tobytes(), max_pixels=10**8, min_long_side=640)
    assert image.scale == 4
    found = asyncio.run(engine.pipeline.detect(image, deadline=time.monotonic() + FAR))
    order = np.argsort(found.boxes[:, 0])
    np.testing.assert_allclose(found.boxes[order], np.array([p[0] for p in PEOPLE]) * 4, atol=8)


def test_models(engine: Engine) -> None:
    assert engine.pipeline.model(None, Task.POSE).name == "pose"
    assert engine.pipeline.model(None, Task.DETECT).name == "det"
    with pytest.raises(UnknownModelError, match="is a detect model"):
        engine.pipeline.model("det", Task.POSE)
