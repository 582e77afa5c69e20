"""The oracle models themselves: outputs from the pixels, dynamic shapes, and loading through the repository."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.models.repository import ModelRepository
from tests import oracles


def _run(model: object, batch: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    return session.run(None, {"input": batch})


def test_pose_oracle_peaks_at_the_brightest_pixel_of_each_channel() -> None:
    batch = np.full((3, 3, 64, 48), -2.0, np.float32)
    batch[0, 0, 10, 20] = 1.0
    batch[0, 1, 63, 0] = 1.0
    batch[1, 0, 5, 47] = 1.0  # channel 1 of image 1 is flat: invisible
    simcc_x, simcc_y = _run(oracles.pose_oracle((48, 64), [0, 1, 0]), batch)
    assert simcc_x.shape == (3, 3, 96)
    assert simcc_y.shape == (3, 3, 128)
    np.testing.assert_array_equal(simcc_x[:2].argmax(-1), [[40, 0, 40], [94, 0, 94]])
    np.testing.assert_array_equal(simcc_y[:2].argmax(-1), [[20, 126, 20], [10, 0, 10]])
    np.testing.assert_allclose(simcc_x.max(-1), [[1, 1, 1], [1, 0, 1], [0, 0, 0]], atol=1e-4)


def test_detector_oracle_boxes_each_band_at_any_input_size() -> None:
    model = oracles.detector_oracle(channel=0, bands=[(200, 255), (140, 180)], scores=[0.9, 0.6], label=3)
    image = np.zeros((2, 3, 90, 130), np.float32)
    image[0, 0, 20:70, 10:41] = 230  # band 0: pixels x 10..40, y 20..69
    image[0, 0, 0:30, 100:130] = 160  # band 1, touching the top and right edges
    image[0, 1, 20:70, 10:41] = 160  # another channel: ignored
    image[1, 0, 40:43, 60:63] = 230  # 3 x 3: the smallest region that survives the one-pixel erosion
    image[1, 0, 80:82, 0:2] = 160  # 2 x 2: a seam, dropped
    dets, labels = _run(model, image)
    np.testing.assert_allclose(dets[0], [[10, 20, 41, 70, 0.9], [100, 0, 130, 30, 0.6]], atol=1e-6)
    np.testing.assert_allclose(dets[1], [[60, 40, 63, 43, 0.9], [0, 0, 0, 0, 0]], atol=1e-6)
    assert labels.dtype == np.int64
    assert (labels == 3).all()


def test_oracles_install_and_load_through_the_model_repository(tmp_path: Path) -> None:
    oracles.install_pose_oracle(tmp_path, keypoints="coco17", input_size=(288, 384))
    oracles.install_detector_oracle(tmp_path, bands=((200, 255),), side=640)
    model = oracles.constant_pose_model((192, 256), [0] * 17, [1] * 17)
    oracles.install_model(
        tmp_path, "constant", model, task="pose", family="rtmpose", keypoints="coco17", input_size=(192, 256)
    )
    repository = ModelRepository(tmp_path)
    assert repository.names() == ["constant", "detector-oracle", "pose-oracle"]
    pose = repository.load("pose-oracle")
    assert pose.config.to_rgb
    assert pose.config.input_size == (288, 384)
    assert pose.version == 1
    detector = repository.load("detector-oracle")
    assert not detector.config.to_rgb
    assert detector.config.mean == oracles.RTMDET_MEAN
    assert repository.load("constant").config.num_keypoints == 17


def test_the_precision_probe_is_an_exact_no_op_in_fp32() -> None:
    rng = np.random.default_rng(3)
    pose_batch = rng.standard_normal((2, 3, 64, 48)).astype(np.float32)
    det_batch = rng.integers(0, 255, (2, 3, 90, 130)).astype(np.float32)
    pairs = [
        (lambda **kw: oracles.pose_oracle((48, 64), [0, 1, 2], **kw), pose_batch),
        (lambda **kw: oracles.constant_pose_model((48, 64), [3, 90], [0, 127], x_peaks=[0.3, 0.7], **kw), pose_batch),
        (lambda **kw: oracles.detector_oracle(channel=0, bands=[(200, 255), (140, 180)], **kw), det_batch),
    ]
    for build, batch in pairs:
        plain, probed = _run(build(), batch), _run(build(probe=True), batch)
        assert any(node.op_type == "Conv" for node in build(probe=True).graph.node)
        for p, q in zip(plain, probed, strict=True):
            np.testing.assert_array_equal(p, q)
