"""The Engine and its Pipeline on real threads and real ORT sessions, with oracle models."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client import REGISTRY

from service.engine.engine import Engine
from service.engine.pipeline import EstimateOptions, PoseResult
from service.errors import (
    DeadlineExceededError,
    InferenceError,
    InvalidOptionsError,
    QueueFullError,
    UnknownModelError,
)
from service.models.schema import ModelConfigError
from service.vision.image import DecodedImage, decode_image
from tests.helpers import FAR, decoded, metric, start_engine, wait_for
from tests.oracles import (
    BANDS,
    POSE_FIELDS,
    draw_scene,
    install_detector_oracle,
    install_model,
    install_pose_oracle,
    poisoned_pose_oracle,
    pose_oracle,
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    install_pose_oracle(tmp_path, "pose", batching={"max_batch_size": 16, "max_queue_delay_ms": 5})
    install_detector_oracle(tmp_path, "det", bands=BANDS, batching={"max_batch_size": 8, "max_queue_delay_ms": 5})
    return tmp_path


@pytest.fixture
def engine(repo: Path) -> Engine:
    engine = start_engine(repo)
    yield engine
    engine.close(1)


scene = draw_scene


def run(
    engine: Engine, image: DecodedImage, options: EstimateOptions | None = None, timeout: float = FAR
) -> PoseResult:
    return asyncio.run(
        engine.pipeline.estimate(image, options or EstimateOptions(), deadline=time.monotonic() + timeout)
    )


def test_people_and_keypoints_come_back_where_they_were_drawn(engine: Engine) -> None:
    people = [((40, 60, 160, 400), (100, 200)), ((260, 40, 380, 300), (300, 120)), ((460, 100, 600, 460), (530, 380))]
    result = run(engine, decoded(scene(people)))
    assert result.width == 640
    assert result.height == 480
    assert result.detector == "det"
    assert result.pose_model == "pose"
    assert result.keypoint_set == "coco17"
    order = np.argsort(result.boxes[:, 0])
    np.testing.assert_allclose(result.boxes[order], [p[0] for p in people], atol=1.0)
    for i, (box, marker) in zip(order, people, strict=True):
        size = max(box[2] - box[0], box[3] - box[1])
        err = np.abs(result.keypoints[i, :, :2] - marker).max()
        assert err <= 0.01 * size, f"keypoints {result.keypoints[i, 0]} vs marker {marker}"
        assert result.keypoints[i, :, 2].min() > 0.99
    np.testing.assert_allclose(result.bbox_scores, 0.9, atol=1e-5)
    np.testing.assert_allclose(result.scores, 0.9, atol=1e-4)  # bbox score x mean keypoint score (1.0)
    assert set(result.timing_ms) == {"detect", "pose"}


def test_two_hundred_concurrent_requests_each_get_their_own_answer(engine: Engine) -> None:
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(200):
        x, y = int(rng.integers(0, 400)), int(rng.integers(0, 200))
        w, h = int(rng.integers(80, 200)), int(rng.integers(120, 260))
        marker = (x + w * rng.uniform(0.3, 0.7), y + h * rng.uniform(0.3, 0.7))
        cases.append(((x, y, x + w, y + h), marker))
    images = [decoded(scene([case])) for case in cases]
    batches_before = metric(REGISTRY, "pose_batch_size_count", model="pose")
    rows_before = metric(REGISTRY, "pose_batch_size_sum", model="pose")

    async def all_at_once() -> list[PoseResult]:
        deadline = time.monotonic() + FAR
        return await asyncio.gather(
            *(engine.pipeline.estimate(im, EstimateOptions(), deadline=deadline) for im in images)
        )

    results = asyncio.run(all_at_once())
    for (box, marker), result in zip(cases, results, strict=True):
        assert len(result.boxes) == 1
        np.testing.assert_allclose(result.boxes[0], box, atol=1.0)
        size = max(box[2] - box[0], box[3] - box[1])
        assert np.abs(result.keypoints[0, :, :2] - marker).max() <= 0.01 * size
    batches = metric(REGISTRY, "pose_batch_size_count", model="pose") - batches_before
    rows = metric(REGISTRY, "pose_batch_size_sum", model="pose") - rows_before
    assert rows == 200
    assert batches < 200, "crops of different requests must share batches"


def test_given_boxes_skip_the_detector(engine: Engine) -> None:
    image = decoded(scene([((40, 60, 160, 400), (100, 200))]))
    before = metric(REGISTRY, "pose_items_total", model="det")
    result = run(engine, image, EstimateOptions(boxes=np.array([[30, 50, 170, 410]], np.float32)))
    assert metric(REGISTRY, "pose_items_total", model="det") == before
    assert result.detector is None
    np.testing.assert_allclose(result.bbox_scores, [1.0])
    assert np.abs(result.keypoints[0, :, :2] - (100, 200)).max() <= 3.6


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ([[np.nan, 0, 10, 10]], "finite"),
        ([[0, 0, 10, np.inf]], "finite"),
        ([[10, 10, 5, 50]], "x2 > x1"),
        ([[-1, 0, 10, 10]], "inside the 640x480 image"),
        ([[0, 0, 641, 10]], "inside the 640x480 image"),
        ([[1, 2, 3]], "x1, y1, x2, y2"),
    ],
)
def test_bad_boxes_are_invalid_options(engine: Engine, boxes: list, message: str) -> None:
    image = decoded(scene([]))
    with pytest.raises(InvalidOptionsError, match=message):
        run(engine, image, EstimateOptions(boxes=np.array(boxes, np.float32)))


def test_empty_boxes_mean_nobody(engine: Engine) -> None:
    result = run(engine, decoded(scene([])), EstimateOptions(boxes=np.zeros((0, 4), np.float32)))
    assert result.keypoints.shape == (0, 17, 3)


def test_unknown_models(engine: Engine) -> None:
    image = decoded(scene([]))
    with pytest.raises(UnknownModelError, match=r"model 'nope' is not served; served pose models: \['pose'\]"):
        run(engine, image, EstimateOptions(model="nope"))
    with pytest.raises(UnknownModelError, match="'det' is a detect model, not a pose model"):
        run(engine, image, EstimateOptions(model="det"))
    with pytest.raises(UnknownModelError, match="'pose' is a pose model, not a detect model"):
        run(engine, image, EstimateOptions(detector="pose"))


def test_max_people_and_threshold(engine: Engine) -> None:
    people = [((40, 60, 160, 400), (100, 200)), ((260, 40, 380, 300), (300, 120)), ((460, 100, 600, 460), (530, 380))]
    image = decoded(scene(people))
    assert len(run(engine, image, EstimateOptions(max_people=2)).boxes) == 2
    assert len(run(engine, image, EstimateOptions(bbox_threshold=0.95)).boxes) == 0


def test_flip_test_runs_two_rows_per_crop_and_agrees(engine: Engine) -> None:
    image = decoded(scene([((40, 60, 160, 400), (100, 200))]))
    plain = run(engine, image)
    rows_before = metric(REGISTRY, "pose_batch_size_sum", model="pose")
    flipped = run(engine, image, EstimateOptions(flip_test=True))
    assert metric(REGISTRY, "pose_batch_size_sum", model="pose") - rows_before == 2
    assert np.abs(flipped.keypoints[..., :2] - plain.keypoints[..., :2]).max() <= 1.0


def test_dct_downscaled_jpeg_answers_in_original_pixels(engine: Engine) -> None:
    image = scene([((400, 300, 1400, 1900), (900, 1000))], size=(2000, 2000))
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 98])
    assert ok
    small = decode_image(jpeg.tobytes(), max_pixels=10**8, min_long_side=500)
    assert small.scale == 4
    result = run(engine, small)
    np.testing.assert_allclose(result.boxes[0], (400, 300, 1400, 1900), atol=8)
    assert np.abs(result.keypoints[0, :, :2] - (900, 1000)).max() <= 0.01 * 1600


def test_an_expired_request_fails_and_its_item_never_runs(engine: Engine) -> None:
    image = decoded(scene([((40, 60, 160, 400), (100, 200))]))
    rejected = metric(REGISTRY, "pose_rejected_total", reason="deadline")
    ran = metric(REGISTRY, "pose_items_total", model="det")
    with pytest.raises(DeadlineExceededError):
        run(engine, image, timeout=0.000001)
    wait_for(lambda: metric(REGISTRY, "pose_rejected_total", reason="deadline") > rejected,
             "the expired detector item was never failed")  # the instance finds it expired  # fmt: skip
    assert metric(REGISTRY, "pose_rejected_total", reason="deadline") == rejected + 1
    assert metric(REGISTRY, "pose_items_total", model="det") == ran, "an expired item must not run"


def test_a_pose_queue_that_cannot_hold_one_image_is_refused_at_start_up(tmp_path: Path) -> None:
    install_pose_oracle(tmp_path, "pose", batching={"max_batch_size": 1, "max_queue_size": 2, "max_queue_delay_ms": 0})
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    with pytest.raises(ModelConfigError, match=r"max_queue_size = 2 cannot hold the crops of one image .*= 3\)"):
        start_engine(tmp_path, max_people=3)


def test_queue_room_is_reserved_all_or_none_and_returned(tmp_path: Path) -> None:
    install_pose_oracle(tmp_path, "pose", batching={"max_batch_size": 1, "max_queue_size": 3, "max_queue_delay_ms": 0})
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    engine = start_engine(tmp_path, max_people=2)
    pipeline = engine.pipeline
    try:
        two_boxes = np.tile(np.array([[10, 10, 100, 100]], np.float32), (2, 1))
        held = pipeline.reserve(EstimateOptions(boxes=two_boxes))
        with pytest.raises(QueueFullError, match="queue full"):
            pipeline.reserve(EstimateOptions())  # up to 2 crops: only 1 of 3 is free
        assert (pipeline.room.reserved("pose"), pipeline.room.reserved("det")) == (2, 0), "all or none"
        one = pipeline.reserve(EstimateOptions(max_people=1))
        assert (pipeline.room.reserved("pose"), pipeline.room.reserved("det")) == (3, 1)
        for reservation in (held, one, one):  # release is idempotent
            reservation.release()
        assert pipeline.room.reserved("pose") == 0
        with pytest.raises(InvalidOptionsError, match="at most 2 boxes"):
            pipeline.reserve(EstimateOptions(boxes=np.tile(two_boxes, (2, 1))))
    finally:
        engine.close(1)


def test_a_failing_batch_fails_its_requests_and_the_instance_recovers(tmp_path: Path) -> None:
    install_model(tmp_path, "pose", poisoned_pose_oracle(), **POSE_FIELDS)
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    engine = start_engine(tmp_path)
    try:
        poison = scene([((40, 60, 160, 400), (100, 200))])
        poison[100:110, 60:70, 1] = 255
        with pytest.raises(InferenceError, match="pose: inference failed"):
            run(engine, decoded(poison))
        healthy = run(engine, decoded(scene([((40, 60, 160, 400), (100, 200))])))
        assert np.abs(healthy.keypoints[0, :, :2] - (100, 200)).max() <= 3.6
    finally:
        engine.close(1)


def test_static_batch_model_runs_in_chunks(tmp_path: Path) -> None:
    model = pose_oracle((192, 256), [0] * 17)
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    install_model(tmp_path, "pose", model, **POSE_FIELDS)
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    engine = start_engine(tmp_path)
    try:
        assert engine.describe()[0]["static_batch"] == 1
        people = [((40, 60, 160, 400), (100, 200)), ((260, 40, 380, 300), (300, 120))]
        result = run(engine, decoded(scene(people)), EstimateOptions(flip_test=True))  # 2 rows per item, 1 per run
        assert len(result.boxes) == 2
        order = np.argsort(result.boxes[:, 0])
        for i, (_, marker) in zip(order, people, strict=True):
            assert np.abs(result.keypoints[i, :, :2] - marker).max() <= 3.6
    finally:
        engine.close(1)


def test_describe_and_model_info(engine: Engine) -> None:
    described = {m["name"]: m for m in engine.describe()}
    assert described["pose"]["provider"] == "CPUExecutionProvider"
    assert described["pose"]["weights"] == "custom"
    assert described["pose"]["batching"]["max_batch_size"] == 16
    assert described["det"]["task"] == "detect"
    assert metric(REGISTRY, "pose_model_info", model="pose", version="1", weights="custom",
                  provider="CPUExecutionProvider", fallback="true", backend="onnxruntime", precision="fp32",
                  precision_fallback="false") == 1  # fmt: skip


def test_a_lone_request_does_not_wait_for_the_pose_queue_delay(tmp_path: Path) -> None:
    install_pose_oracle(tmp_path, "pose", batching={"max_batch_size": 16, "max_queue_delay_ms": 10_000})
    install_detector_oracle(tmp_path, "det", bands=BANDS, batching={"max_batch_size": 8, "max_queue_delay_ms": 0})
    engine = start_engine(tmp_path)
    try:
        image = decoded(scene([((40, 60, 160, 400), (100, 200))]))
        start = time.monotonic()
        result = run(engine, image)
        # nothing else is in detection, so no crop can join: no waiting (it would wait the whole 10 s delay)
        assert time.monotonic() - start < 5
        assert len(result.boxes) == 1
    finally:
        engine.close(1)
