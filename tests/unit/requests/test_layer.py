"""The transport-neutral request layer on a real engine with oracle models (no server)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.config import Settings
from service.engine.engine import Engine
from service.errors import (
    BadImageError,
    BadRequestError,
    DeadlineExceededError,
    InvalidOptionsError,
    NotReadyError,
    PayloadTooLargeError,
    ShuttingDownError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from service.requests import EncodedImage, PoseRequests, RawPixels
from service.requests.options import PoseOptions, parse_options
from tests.oracles import BANDS, draw_scene, install_detector_oracle, install_pose_oracle

SCENE = draw_scene([((40, 60, 160, 400), (100, 200))])


@pytest.fixture
def requests(tmp_path: Path) -> PoseRequests:
    install_pose_oracle(tmp_path, "pose")
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    settings = Settings(model_repository=tmp_path, model="pose", detector="det", warmup=False, api_keys=["k1", "k2"],
                        max_image_pixels=1_000_000)  # fmt: skip
    layer = PoseRequests(Engine(settings), settings)
    yield layer
    layer.engine.close(1)
    layer.close()


def test_bearer_tokens(requests: PoseRequests) -> None:
    requests.authorize("Bearer k2")
    requests.authorize("bearer k1")
    for value in (None, "", "k1", "Bearer", "Bearer k3", "Basic k1", "Bearer k1x"):
        with pytest.raises(UnauthorizedError):
            requests.authorize(value)


def test_the_gate_follows_the_engine_and_the_shutdown(requests: PoseRequests) -> None:
    with pytest.raises(NotReadyError, match="loading and warming up models"):
        requests.check_open()
    requests.engine.start()
    requests.check_open()
    requests.engine.begin_shutdown()
    assert requests.not_ready_reason() == "shutting down"
    assert not requests.engine.state.ready
    before = time.monotonic()
    requests.close_gate()
    requests.check_open(arrived=before)  # a frame a stream took before the gate closed is still let in
    with pytest.raises(ShuttingDownError):
        requests.check_open()  # what arrives now is not
    requests.end_admitted()
    with pytest.raises(ShuttingDownError):
        requests.check_open(arrived=before)  # the grace period is over: nothing is let in


def test_not_ready_comes_before_a_bad_timeout(requests: PoseRequests) -> None:
    async def scenario() -> None:
        async with requests.admit(0.0):
            pass

    with pytest.raises(NotReadyError):
        asyncio.run(scenario())
    requests.engine.start()
    with pytest.raises(BadRequestError):
        asyncio.run(scenario())


@pytest.mark.parametrize("timeout", [0.0, -1.0, 0.009, float("nan"), float("inf"), 3601.0])
def test_deadline_bounds(requests: PoseRequests, timeout: float) -> None:
    with pytest.raises(BadRequestError, match=r"\[0.01, 3600\]"):
        requests.deadline(timeout)


def test_deadline_default(requests: PoseRequests) -> None:
    assert abs(requests.deadline(None) - (time.monotonic() + requests.settings.request_timeout_s)) < 1.0


def test_options_bounds_are_one_declaration() -> None:
    assert parse_options(PoseOptions, {"boxes": "[[1, 2, 3, 4]]"}).boxes == [[1, 2, 3, 4]]
    for bad in ({"max_people": 0}, {"bbox_threshold": 1.5}, {"boxes": [[1, 2, 3]]}, {"colour": "red"}):
        with pytest.raises(InvalidOptionsError):
            parse_options(PoseOptions, bad)


def test_raw_bgr_raw_rgb_and_encoded_give_the_same_answer(requests: PoseRequests) -> None:
    requests.engine.start()
    ok, png = cv2.imencode(".png", SCENE)
    assert ok
    height, width = SCENE.shape[:2]
    inputs = [EncodedImage(png.tobytes()), RawPixels(SCENE.tobytes(), width, height),
              RawPixels(np.ascontiguousarray(SCENE[..., ::-1]).tobytes(), width, height, rgb=True)]  # fmt: skip

    async def all_three() -> list:
        return [await requests.estimate(i, PoseOptions()) for i in inputs]

    answers = asyncio.run(all_three())
    for done in answers:
        np.testing.assert_array_equal(done.result.keypoints, answers[0].result.keypoints)
        assert {"decode", "detect", "pose", "total"} <= set(done.result.timing_ms)
        assert done.keypoint_threshold == 0.3
    assert answers[1].image.format == "raw"


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (EncodedImage(b""), BadImageError),
        (EncodedImage(b"GIF87a?"), BadImageError),
        (EncodedImage(b"plain text"), UnsupportedMediaTypeError),
        (RawPixels(b"\0" * 11, 2, 2), BadImageError),
        (RawPixels(b"\0" * 3, 1, 1), BadImageError),
        (RawPixels(b"", 2000, 1000), PayloadTooLargeError),  # over max_image_pixels before the length check
    ],
)
def test_image_errors_become_pose_errors(requests: PoseRequests, image: object, error: type) -> None:
    requests.engine.start()

    async def decode() -> None:
        async with requests.admit() as admission:
            await admission.decode(image)  # type: ignore[arg-type]

    with pytest.raises(error):
        asyncio.run(decode())


def test_a_deadline_that_passes_while_decoding(requests: PoseRequests) -> None:
    requests.engine.start()
    ok, png = cv2.imencode(".png", SCENE)

    async def scenario() -> None:
        async with requests.admit(deadline=time.monotonic()) as admission:
            await admission.estimate(EncodedImage(png.tobytes()), PoseOptions())

    with pytest.raises(DeadlineExceededError, match="deadline passed while decoding"):
        asyncio.run(scenario())


def test_shutdown_closes_the_gate_drains_what_it_let_in_then_closes_the_engine(requests: PoseRequests) -> None:
    requests.engine.start()
    ok, png = cv2.imencode(".png", SCENE)
    image = EncodedImage(png.tobytes())

    async def scenario() -> tuple[list, Exception]:
        tasks = [asyncio.create_task(requests.estimate(image, PoseOptions(max_people=4))) for _ in range(20)]
        while requests.admitted < 20:  # every one is through the gate
            await asyncio.sleep(0)
        requests.close_gate()
        with pytest.raises(ShuttingDownError, match="shutting down") as refused:
            await requests.estimate(image, PoseOptions())
        assert await requests.wait_idle(30)
        return await asyncio.gather(*tasks), refused.value

    results, _ = asyncio.run(scenario())
    assert len(results) == 20
    for done in results:
        assert np.abs(done.result.keypoints[0, :, :2] - (100, 200)).max() <= 3.6
    requests.engine.close(1)
    assert not requests.engine.state.ready
