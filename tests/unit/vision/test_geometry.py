"""The whole top-down geometry, end to end, with oracle models run in onnxruntime.

letterbox -> detector -> boxes -> center/scale -> warp -> pose -> decode -> inverse map,
built here from the service.vision functions. The oracles compute their answers from
the pixels (tests/oracles.py), so a marker drawn in the image must come back where it
was drawn, and a constant answer must land where MMPose's inverse transform puts it.

Every runtime the service can serve on runs the same checks: ONNX Runtime, OpenVINO fp32
(same tolerances) and OpenVINO bf16 (where the CPU has it; tolerances measured, see
``Runtime``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from service.devices import Precision, parse_device
from service.engine import openvino_backend
from service.engine.session import InferenceSession
from service.vision.postprocess import decode_simcc, detections_to_boxes, flip_simcc_back, keypoints_to_image
from service.vision.preprocess import (
    bbox_xyxy_to_center_scale,
    fix_aspect_ratio,
    get_warp_matrices,
    letterbox,
    normalize_to_nchw,
    warp_crops,
)
from tests import oracles
from tests.unit.vision import mmpose_reference as ref

# person regions are blue (the detector, fed BGR, reads channel 0); markers are red / green
BANDS = ((200.0, 255.0), (140.0, 180.0))  # clear of each other and of the pad value 114
BAND_VALUES = (230, 160)
RED, GREEN = 2, 1  # BGR indices for drawing
POSE_CHANNELS = (0, 1)  # the pose oracle, fed RGB: keypoint 0 reads red, keypoint 1 reads green


@dataclass(frozen=True)
class Runtime:
    """A backend and precision to run the oracles in, with the score tolerance it meets."""

    name: str
    precision: Precision | None  # None: ONNX Runtime (fp32); else OpenVINO in this precision
    score_rtol: float = 1e-6  # SimCC maxima through the constant model

    def session(self, model: onnx.ModelProto, folder: Path, input_size: tuple[int, int] | None) -> InferenceSession:
        if self.precision is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        folder.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(folder / "model.onnx"))
        session, info = openvino_backend.create_session(
            folder / "model.onnx", parse_device("cpu"), precision=self.precision, threads=1, input_size=input_size
        )
        assert info.precision is self.precision
        return session


HAS_BF16 = Precision.BF16 in openvino_backend.cpu_precisions()
RUNTIMES = [
    pytest.param(Runtime("onnxruntime", None), id="onnxruntime"),
    pytest.param(Runtime("openvino-fp32", Precision.FP32), id="openvino-fp32"),
    # bf16 keeps 8 significant bits: a SimCC maximum of 0.7 comes back as 0.69921875 (rel. error <= 2**-9)
    pytest.param(
        Runtime("openvino-bf16", Precision.BF16, score_rtol=2**-8),
        id="openvino-bf16",
        marks=pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bf16 in OpenVINO (AVX512-BF16 / AMX)"),
    ),
]


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    return request.param


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oracles")


@dataclass
class Chain:
    """The service's top-down pipeline, from the vision functions, for one image."""

    detector: InferenceSession
    pose: InferenceSession
    det_side: int
    pose_size: tuple[int, int]
    det_to_rgb: bool = False
    pose_to_rgb: bool = True

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        canvas, ratio = letterbox(image, (self.det_side, self.det_side))
        batch = normalize_to_nchw(canvas[None], oracles.RTMDET_MEAN, oracles.RTMDET_STD, to_rgb=self.det_to_rgb)
        dets, labels = self.detector.run(None, {"input": batch})
        height, width = image.shape[:2]
        return detections_to_boxes(
            dets[0], labels[0], ratio, (width, height), score_threshold=0.3, person_class=0, max_people=10
        )

    def pose_boxes(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        width, height = self.pose_size
        centers, scales = bbox_xyxy_to_center_scale(boxes, padding=1.25)
        scales = fix_aspect_ratio(scales, width / height)
        crops = warp_crops(image, get_warp_matrices(centers, scales, self.pose_size), self.pose_size)
        batch = normalize_to_nchw(crops, oracles.RTMPOSE_MEAN, oracles.RTMPOSE_STD, to_rgb=self.pose_to_rgb)
        simcc_x, simcc_y = self.pose.run(None, {"input": batch})
        locs, scores = decode_simcc(simcc_x, simcc_y, 2.0)
        return keypoints_to_image(locs, centers, scales, self.pose_size), scores


@pytest.fixture(scope="module")
def detector(runtime: Runtime, models_dir: Path) -> InferenceSession:
    model = oracles.detector_oracle(
        channel=0, bands=BANDS, mean=oracles.RTMDET_MEAN, std=oracles.RTMDET_STD, probe=True
    )
    return runtime.session(model, models_dir / f"detector-{runtime.name}", None)  # any input size


@pytest.fixture(scope="module", params=[(192, 256), (288, 384)], ids=["192x256", "288x384"])
def pose_size(request: pytest.FixtureRequest) -> tuple[int, int]:
    return request.param


@pytest.fixture(scope="module")
def pose(runtime: Runtime, models_dir: Path, pose_size: tuple[int, int]) -> InferenceSession:
    folder = models_dir / f"pose-{runtime.name}-{pose_size[0]}x{pose_size[1]}"
    return runtime.session(oracles.pose_oracle(pose_size, POSE_CHANNELS, probe=True), folder, pose_size)


# (image width, height, people: (box x1, y1, x2, y2, red marker, green marker))
SCENES = {
    "landscape-odd-two-people": (
        641,
        479,
        [((0, 40, 121, 401), (30, 80), (95, 350)), ((380, 150, 561, 411), (470, 200), (400, 390))],
    ),
    "portrait-odd-at-bottom-right": (333, 517, [((170, 201, 333, 517), (300, 230), (190, 500))]),
    "small-odd": (97, 131, [((20, 15, 77, 121), (30, 30), (60, 110))]),
    "large-top-edge": (1203, 801, [((700, 0, 1011, 613), (980, 25), (720, 590))]),
}


def _draw_scene(width: int, height: int, people: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = np.zeros((height, width, 3), np.uint8)
    boxes, markers = [], []
    for (box, red, green), value in zip(people, BAND_VALUES, strict=False):
        boxes.append(oracles.draw_person(image, box, channel=0, value=value))
        oracles.draw_marker(image, red, RED)
        oracles.draw_marker(image, green, GREEN)
        markers.append([red, green])
    return image, np.array(boxes), np.array(markers, np.float64)


@pytest.mark.parametrize("det_side", [320, 640])
@pytest.mark.parametrize("scene", sorted(SCENES))
def test_markers_come_back_through_the_whole_chain(
    detector: InferenceSession, pose: InferenceSession, pose_size: tuple[int, int], det_side: int, scene: str
) -> None:
    width, height, people = SCENES[scene]
    image, drawn_boxes, markers = _draw_scene(width, height, people)
    chain = Chain(detector, pose, det_side, pose_size)

    boxes, box_scores = chain.detect(image)
    assert len(boxes) == len(drawn_boxes)
    order = [int(np.argmin(np.abs(drawn_boxes - box).sum(axis=1))) for box in boxes]
    assert sorted(order) == list(range(len(drawn_boxes)))
    # boxes come back at the drawn pixels, to the letterbox resolution (one letterboxed pixel)
    tolerance = max(width, height) / det_side + 0.5
    np.testing.assert_allclose(boxes, drawn_boxes[order], atol=tolerance)

    keypoints, scores = chain.pose_boxes(image, boxes)
    assert (scores > 0.5).all()
    sizes = (drawn_boxes[order, 2:] - drawn_boxes[order, :2]).max(axis=1)
    errors = np.linalg.norm(keypoints - markers[order], axis=-1)
    assert (errors <= 0.01 * sizes[:, None]).all(), f"errors {errors} px for boxes of {sizes} px"


def test_channel_order_is_checked(
    detector: InferenceSession, pose: InferenceSession, pose_size: tuple[int, int]
) -> None:
    """The pose oracle reads red: fed BGR it finds the blue person instead; the detector fed RGB finds nothing."""
    width, height, people = SCENES["landscape-odd-two-people"]
    image, _, markers = _draw_scene(width, height, people)
    right = Chain(detector, pose, 320, pose_size)
    boxes, _ = right.detect(image)
    assert len(boxes) == 2

    swapped_pose = Chain(detector, pose, 320, pose_size, pose_to_rgb=False)
    keypoints, _ = swapped_pose.pose_boxes(image, boxes)
    order = np.argsort(boxes[:, 0])
    errors = np.linalg.norm(keypoints[order, 0] - markers[:, 0], axis=-1)
    assert (errors > 5.0).all()  # keypoint 0 now reads the blue channel

    swapped_detector = Chain(detector, pose, 320, pose_size, det_to_rgb=True)
    assert len(swapped_detector.detect(image)[0]) == 0


@pytest.mark.parametrize("input_size", [(192, 256), (288, 384), (256, 256)])
def test_constant_bins_land_where_mmpose_inverse_transform_puts_them(
    runtime: Runtime, models_dir: Path, input_size: tuple[int, int]
) -> None:
    width, height = input_size
    x_bins = [0, 1, 7, width, 2 * width - 1]
    y_bins = [2 * height - 1, 0, 101, height, 3]
    x_peaks, y_peaks = [0.9, 0.2, 0.7, 0.0, 0.5], [0.3, 0.8, 0.7, 0.6, -0.1]
    model = oracles.constant_pose_model(
        input_size, x_bins, y_bins, x_peaks=x_peaks, y_peaks=y_peaks, background=-1.0, probe=True
    )
    session = runtime.session(model, models_dir / f"constant-{runtime.name}-{width}x{height}", input_size)
    chain = Chain(detector=None, pose=session, det_side=0, pose_size=input_size)  # type: ignore[arg-type]
    image = np.zeros((480, 641, 3), np.uint8)
    boxes = np.array([[10.0, 20.0, 110.0, 300.0], [-50.0, 400.5, 700.0, 470.0], [300.25, 100.0, 301.0, 101.0]])

    keypoints, scores = chain.pose_boxes(image, boxes)

    np.testing.assert_allclose(scores, np.tile(np.minimum(x_peaks, y_peaks), (3, 1)), rtol=runtime.score_rtol)
    for i, box in enumerate(boxes):
        # MMPose, independently in float64: bbox_xyxy2cs -> _fix_aspect_ratio -> SimCC decode -> inverse
        center, scale = ref.bbox_xyxy2cs(box.astype(np.float64), padding=1.25)
        scale = ref.fix_aspect_ratio(scale[None], width / height)[0]
        bins = np.stack([x_bins, y_bins], axis=-1).astype(np.float64)
        bins[np.minimum(x_peaks, y_peaks) <= 0] = -1.0  # MMPose marks non-positive scores before dividing
        expected = ref.to_image(bins / 2.0, center, scale, input_size)
        np.testing.assert_allclose(keypoints[i], expected, rtol=0, atol=0.01)
        # the same point through MMPose's inverse warp matrix
        inverse = ref.get_warp_matrix(center, scale, 0.0, input_size, inv=True)
        through_matrix = bins / 2.0 @ inverse[:, :2].T + inverse[:, 2]
        np.testing.assert_allclose(keypoints[i], through_matrix, rtol=0, atol=0.01)


def test_flip_test_outputs_turn_back_onto_the_markers(pose: InferenceSession, pose_size: tuple[int, int]) -> None:
    """MMPose flip test: model(flipped input) -> flip_simcc_back -> average with the plain outputs."""
    width, height, people = SCENES["portrait-odd-at-bottom-right"]
    image, boxes, markers = _draw_scene(width, height, people)
    centers, scales = bbox_xyxy_to_center_scale(boxes)
    scales = fix_aspect_ratio(scales, pose_size[0] / pose_size[1])
    crops = warp_crops(image, get_warp_matrices(centers, scales, pose_size), pose_size)
    batch = normalize_to_nchw(crops, oracles.RTMPOSE_MEAN, oracles.RTMPOSE_STD, to_rgb=True)
    plain_x, plain_y = pose.run(None, {"input": batch})
    flipped_x, flipped_y = pose.run(None, {"input": np.ascontiguousarray(batch[..., ::-1])})
    assert np.abs(flipped_x.argmax(-1) - plain_x.argmax(-1)).max() > 10  # the flip really moved the peaks
    back_x, back_y = flip_simcc_back(flipped_x, flipped_y, np.arange(2))  # red and green do not swap
    locs, _ = decode_simcc((plain_x + back_x) * 0.5, (plain_y + back_y) * 0.5, 2.0)
    keypoints = keypoints_to_image(locs, centers, scales, pose_size)
    crop_pixel = scales[0, 0] / pose_size[0]  # MMPose's SimCC flip has no half-bin shift: within a crop pixel
    size = (boxes[0, 2:] - boxes[0, :2]).max()
    assert (np.linalg.norm(keypoints[0] - markers[0], axis=-1) <= crop_pixel + 0.01 * size).all()
