"""The Pipeline's public steps (detect, queue_poses / pose_from_boxes) that a tracker composes itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.engine.engine import Engine
from service.engine.pipeline import EstimateOptions, clip_boxes
from service.errors import InvalidOptionsError, ShuttingDownError, UnknownModelError
from service.models.schema import Task
from service.vision.image import decode_image
from tests.oracles import BANDS, install_detector_oracle, install_pose_oracle
from tests.unit.engine.test_pipeline import FAR, decoded, scene, start_engine


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


def test_detect_then_pose_from_boxes_is_estimate(engine: Engine) -> None:
    image = decoded(scene(PEOPLE))

    async def steps() -> tuple:
        deadline = time.monotonic() + FAR
        found = await engine.pipeline.detect(image, deadline=deadline)
        posed = await engine.pipeline.pose_from_boxes(image, found.boxes, found.scores, deadline=deadline)
        whole = await engine.pipeline.estimate(image, EstimateOptions(), deadline=deadline)
        return found, posed, whole

    found, posed, whole = asyncio.run(steps())
    assert len(found.boxes) == 2
    np.testing.assert_array_equal(posed.boxes, whole.boxes)
    np.testing.assert_array_equal(posed.keypoints, whole.keypoints)
    np.testing.assert_array_equal(posed.scores, whole.scores)
    assert posed.detector is None  # no detector ran inside pose_from_boxes
    assert whole.detector == "det"


def test_pose_from_boxes_clips_and_carries_the_callers_scores(engine: Engine) -> None:
    image = decoded(scene(PEOPLE))
    boxes = np.array([[20, 40, 180, 420], [250, -50, 390, 310]], np.float32)  # the second pokes out at the top
    scores = np.array([0.42, 0.77], np.float32)
    result = asyncio.run(engine.pipeline.pose_from_boxes(image, boxes, scores, deadline=time.monotonic() + FAR))
    np.testing.assert_array_equal(result.boxes[1], [250, 0, 390, 310])
    np.testing.assert_array_equal(result.bbox_scores, scores)
    for i, (_, marker) in enumerate(PEOPLE):
        assert np.abs(result.keypoints[i, :, :2] - marker).max() <= 3.6
    with pytest.raises(InvalidOptionsError, match="2 boxes but 1 box scores"):
        engine.pipeline.queue_poses(image, boxes, scores[:1], deadline=time.monotonic() + FAR)


def test_detect_reports_original_pixels_of_a_downscaled_decode(engine: Engine) -> None:
    big = cv2.resize(scene(PEOPLE), (2560, 1920), interpolation=cv2.INTER_NEAREST)  # 4x the scene
    ok, data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 98])
    assert ok
    image = decode_image(data.tobytes(), max_pixels=10**8, min_long_side=640)
    assert image.scale == 4
    found = asyncio.run(engine.pipeline.detect(image, deadline=time.monotonic() + FAR))
    order = np.argsort(found.boxes[:, 0])
    np.testing.assert_allclose(found.boxes[order], np.array([p[0] for p in PEOPLE]) * 4, atol=8)


def test_models_and_admission(engine: Engine) -> None:
    assert engine.pipeline.model(None, Task.POSE).name == "pose"
    assert engine.pipeline.model(None, Task.DETECT).name == "det"
    with pytest.raises(UnknownModelError, match="is a detect model"):
        engine.pipeline.model("det", Task.POSE)
    with engine.pipeline.admit():
        assert engine.pipeline.inflight == 1
    engine.pipeline.stop_accepting()
    with pytest.raises(ShuttingDownError), engine.pipeline.admit():
        pass
