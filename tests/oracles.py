"""Oracle ONNX models for tests: tiny graphs whose outputs are computed from the pixels.

No weights, nothing trained: each model reads its input tensor and answers what a
perfect model would, so a test can draw an image and know the right answer.

- :func:`pose_oracle`: keypoint k sits at the brightest spot of input channel
  ``channels[k]`` of the (normalised) crop; SimCC outputs peak there.
- :func:`constant_pose_model`: always the same SimCC bins and peak values.
- :func:`detector_oracle`: one detection per intensity band: the box of the pixels
  of one channel whose raw (un-normalised) value lies in the band.
- :func:`install_model` (and the ``install_*`` shortcuts) put a model into a model
  repository folder, so it loads like any other.
- :func:`draw_marker` / :func:`draw_person`: draw what the oracles look for.

Precision probe (``probe=True``): the input goes through an identity 1x1 convolution
first (and SimCC outputs through an identity matrix product last). In fp32 these are
exact no-ops; a runtime that lowers precision where a network computes (OpenVINO bf16
runs convolutions and matrix products in bf16, and what follows them) then carries the
pixels and the outputs in that precision, as it would a real model's. Without them an
oracle has nothing such a runtime would lower, and a bf16 test would prove nothing.

Channel indices are indices into the network input: for a pose model fed RGB
(``to_rgb = true``) channel 0 is red; for a detector fed BGR channel 0 is blue.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tomli_w
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from service.models.schema import ModelConfig
from service.vision.keypoints import KEYPOINT_SETS

OPSET = 17
IR_VERSION = 8  # old enough for every onnxruntime the project supports
RTMPOSE_MEAN, RTMPOSE_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)  # RGB order
RTMDET_MEAN, RTMDET_STD = (103.53, 116.28, 123.675), (57.375, 57.12, 58.395)  # BGR order
PAD_VALUE = 114  # the letterbox pad: keep detector bands away from it
BANDS = ((130.0, 160.0), (175.0, 205.0), (220.0, 255.0))  # up to three people per image, told apart by blue level
POSE_FIELDS: dict[str, Any] = {"task": "pose", "family": "rtmpose", "keypoints": "coco17", "input_size": (192, 256),
                               "mean": RTMPOSE_MEAN, "std": RTMPOSE_STD, "to_rgb": True}  # fmt: skip


class _Graph:
    """A small helper to add nodes and constants with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, value: Any, dtype: type = np.float32) -> str:
        name = f"c{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name=name))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        self._count += 1
        name = out or f"{op_type.lower()}{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], **attrs))
        return name

    def stem(self, x: str, probe: bool) -> str:
        """``x`` itself, or through an identity 1x1 convolution when ``probe``."""
        return self.op("Conv", x, self.const(np.eye(3).reshape(3, 3, 1, 1))) if probe else x

    def head(self, x: str, length: int, out: str, probe: bool) -> str:
        """Name ``x`` as output ``out``, through an identity matrix product when ``probe``."""
        if probe:
            return self.op("MatMul", x, self.const(np.eye(length)), out=out)
        return self.op("Identity", x, out=out)

    def model(self, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "oracle", inputs, outputs, initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
        onnx.checker.check_model(model, full_check=True)
        return model


def _input(width: int | str = "width", height: int | str = "height") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, height, width])


def _split_ratio(split_ratio: float) -> int:
    if split_ratio != int(split_ratio) or split_ratio < 1:
        raise ValueError(f"oracles support whole split ratios, got {split_ratio}")
    return int(split_ratio)


def pose_oracle(
    input_size: tuple[int, int], channels: Sequence[int], *, split_ratio: float = 2.0, probe: bool = False
) -> onnx.ModelProto:
    """A pose "model" whose keypoint k is the brightest spot of input channel ``channels[k]``.

    Per keypoint: the column profile (max over rows) and the row profile (max over
    columns) of its channel, shifted to a minimum of 0 and divided by their maximum;
    each input pixel becomes ``split_ratio`` bins, the first one highest. So the SimCC
    argmax is ``split_ratio * (x, y)`` of the brightest pixel (first on ties), the
    score 1 where the channel has any contrast and 0 where it is flat (keypoint
    invisible). Draw smooth peaked markers (:func:`draw_marker`): a flat disc makes
    a plateau whose first column wins.

    Args:
        input_size: Network input (w, h).
        channels: Input channel read by each keypoint; K = len(channels).
        split_ratio: SimCC bins per pixel (a whole number).
        probe: Also check a runtime's reduced precision (module docstring).

    Returns:
        Model with input ``input`` [batch, 3, h, w] and outputs ``simcc_x``
        [batch, K, w * r], ``simcc_y`` [batch, K, h * r].
    """
    width, height = input_size
    ratio = _split_ratio(split_ratio)
    k = len(channels)
    g = _Graph()
    planes = g.op("Gather", g.stem("input", probe), g.const(list(channels), np.int64), axis=1)  # [N, K, h, w]
    offsets = g.const(-1e-4 * np.arange(ratio))  # block of r bins per pixel, the first the highest
    for name, reduce_axis in (("simcc_x", 2), ("simcc_y", 3)):
        profile = g.op("ReduceMax", planes, axes=[reduce_axis], keepdims=0)  # [N, K, side]
        shifted = g.op("Sub", profile, g.op("ReduceMin", profile, axes=[-1], keepdims=1))
        top = g.op("Add", g.op("ReduceMax", shifted, axes=[-1], keepdims=1), g.const(1e-6))
        unit = g.op("Div", shifted, top)
        bins = g.op("Add", g.op("Unsqueeze", unit, g.const([-1], np.int64)), offsets)  # [N, K, side, r]
        length = (width if name == "simcc_x" else height) * ratio
        g.head(g.op("Reshape", bins, g.const([0, 0, -1], np.int64)), length, name, probe)
    outputs = [
        helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, ["batch", k, width * ratio]),
        helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, ["batch", k, height * ratio]),
    ]
    return g.model([_input(width, height)], outputs)


def constant_pose_model(
    input_size: tuple[int, int],
    x_bins: Sequence[int],
    y_bins: Sequence[int],
    *,
    x_peaks: float | Sequence[float] = 0.9,
    y_peaks: float | Sequence[float] = 0.8,
    background: float = 0.0,
    split_ratio: float = 2.0,
    probe: bool = False,
) -> onnx.ModelProto:
    """A pose "model" that ignores its input: keypoint k peaks at bins (x_bins[k], y_bins[k]).

    Args:
        input_size: Network input (w, h).
        x_bins: (K,) argmax bin of ``simcc_x`` per keypoint, in [0, w * r).
        y_bins: (K,) argmax bin of ``simcc_y`` per keypoint, in [0, h * r).
        x_peaks: Value at the x bin (one value or K), must exceed ``background``.
        y_peaks: Value at the y bin (one value or K).
        background: Value everywhere else.
        split_ratio: SimCC bins per pixel (a whole number).
        probe: Also check a runtime's reduced precision (module docstring).

    Returns:
        Model with input ``input`` [batch, 3, h, w] and outputs ``simcc_x`` [batch, K, w * r],
        ``simcc_y`` [batch, K, h * r].
    """
    width, height = input_size
    ratio = _split_ratio(split_ratio)
    k = len(x_bins)
    g = _Graph()
    batch = g.op("Shape", g.stem("input", probe), start=0, end=1)
    outputs = []
    for name, bins, peaks, length in (
        ("simcc_x", x_bins, x_peaks, width * ratio),
        ("simcc_y", y_bins, y_peaks, height * ratio),
    ):
        table = np.full((1, k, length), background, np.float32)
        table[0, np.arange(k), np.asarray(bins)] = np.broadcast_to(np.asarray(peaks, np.float32), (k,))
        shape = g.op("Concat", batch, g.const([k, length], np.int64), axis=0)
        g.head(g.op("Expand", g.const(table), shape), length, name, probe)
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", k, length]))
    return g.model([_input(width, height)], outputs)


def detector_oracle(
    *,
    channel: int,
    bands: Sequence[tuple[float, float]] = ((128.0, 255.0),),
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    scores: float | Sequence[float] = 0.9,
    label: int = 0,
    probe: bool = False,
) -> onnx.ModelProto:
    """A detector "model": detection d is the box of the pixels of ``channel`` whose value lies in ``bands[d]``.

    The input is un-normalised (``x * std + mean``) back to 0-255 first. Each band's
    mask is eroded by one pixel (3x3) before taking its extent, then the box is grown
    by that pixel again: this drops the one-pixel seams that bilinear resizing leaves
    between differently coloured regions (so regions narrower than 3 pixels are not
    seen). A region of pixels ``x0..x1`` gives the box ``[x0, x1 + 1]`` (box edges on
    pixel borders, as mmdet). An empty band gives score 0 and a zero box.

    Args:
        channel: Input channel to read (0 = blue for a detector fed BGR).
        bands: (lo, hi) inclusive value ranges, one detection each; keep them clear of
            the letterbox pad value 114 and of each other.
        mean: (3,) normalisation mean the service applies (to undo it).
        std: (3,) normalisation std.
        scores: Score of each non-empty detection (one value or one per band).
        label: Class id of every detection.
        probe: Also check a runtime's reduced precision (module docstring).

    Returns:
        Model with input ``input`` [batch, 3, height, width] (any size) and outputs
        ``dets`` [batch, D, 5] float32 and ``labels`` [batch, D] int64, D = len(bands).
    """
    count = len(bands)
    score_values = np.broadcast_to(np.asarray(scores, np.float32), (count,))
    g = _Graph()
    plane = g.op("Gather", g.stem("input", probe), g.const([channel], np.int64), axis=1)  # [N, 1, H, W]
    raw = g.op("Add", g.op("Mul", plane, g.const(std[channel])), g.const(mean[channel]))
    boxes = []
    for (lo, hi), score in zip(bands, score_values, strict=True):
        inside = g.op("And", g.op("GreaterOrEqual", raw, g.const(lo)), g.op("LessOrEqual", raw, g.const(hi)))
        # erosion = -maxpool(-mask), with outside-the-image counted as "not in the band"
        negated = g.op("Neg", g.op("Cast", inside, to=TensorProto.FLOAT))
        padded = g.op("Pad", negated, g.const([0, 0, 1, 1, 0, 0, 1, 1], np.int64), g.const(0.0))
        mask = g.op("Neg", g.op("MaxPool", padded, kernel_shape=[3, 3]))
        cols = g.op("ReduceMax", mask, axes=[1, 2], keepdims=0)  # [N, W]
        rows = g.op("ReduceMax", mask, axes=[1, 3], keepdims=0)  # [N, H]
        edges = [
            g.op("ArgMax", cols, axis=1, keepdims=1),
            g.op("ArgMax", rows, axis=1, keepdims=1),
            g.op("ArgMax", cols, axis=1, keepdims=1, select_last_index=1),
            g.op("ArgMax", rows, axis=1, keepdims=1, select_last_index=1),
        ]
        corners = g.op("Cast", g.op("Concat", *edges, axis=1), to=TensorProto.FLOAT)  # [N, 4]
        box = g.op("Add", corners, g.const([-1.0, -1.0, 2.0, 2.0]))  # undo the erosion, far edge + 1
        found = g.op("ReduceMax", cols, axes=[1], keepdims=1)  # [N, 1]: 1 if the band is present
        det = g.op("Concat", g.op("Mul", box, found), g.op("Mul", found, g.const([score])), axis=1)
        boxes.append(g.op("Unsqueeze", det, g.const([1], np.int64)))  # [N, 1, 5]
    g.op("Concat", *boxes, axis=1, out="dets")
    batch = g.op("Shape", "input", start=0, end=1)
    shape = g.op("Concat", batch, g.const([count], np.int64), axis=0)
    g.op("Expand", g.const(np.full((1, count), label), np.int64), shape, out="labels")
    outputs = [
        helper.make_tensor_value_info("dets", TensorProto.FLOAT, ["batch", count, 5]),
        helper.make_tensor_value_info("labels", TensorProto.INT64, ["batch", count]),
    ]
    return g.model([_input()], outputs)


def poisoned_pose_oracle() -> onnx.ModelProto:
    """The pose oracle, except that ORT fails at run time on a batch holding a saturated green pixel."""
    model = pose_oracle((192, 256), [0] * 17)
    graph = model.graph
    for node in graph.node:
        node.output[:] = [f"{o}_clean" if o == "simcc_x" else o for o in node.output]
    impossible = 4_718_599  # more elements than any batch has: the Reshape below cannot succeed
    nodes = [
        helper.make_node("Gather", ["input", "green_idx"], ["green"], axis=1),
        helper.make_node("ReduceMax", ["green"], ["green_max"], keepdims=0),
        helper.make_node("Greater", ["green_max", "threshold"], ["poisoned"]),
        helper.make_node("Cast", ["poisoned"], ["poisoned_i"], to=TensorProto.INT64),
        helper.make_node("Mul", ["poisoned_i", "width_minus_one"], ["extra"]),
        helper.make_node("Add", ["extra", "one"], ["width"]),
        helper.make_node("Concat", ["minus_one", "width"], ["shape"], axis=0),
        helper.make_node("Reshape", ["input", "shape"], ["reshaped"]),
        helper.make_node("ReduceSum", ["reshaped"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["simcc_x_clean", "nothing"], ["simcc_x"]),
    ]
    constants = {
        "green_idx": np.array([1], np.int64), "threshold": np.array(2.4, np.float32),
        "width_minus_one": np.array([impossible - 1], np.int64), "one": np.array([1], np.int64),
        "minus_one": np.array([-1], np.int64), "zero": np.array(0.0, np.float32),
    }  # fmt: skip
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in constants.items())
    graph.node.extend(nodes)
    return model


def slow_pose_oracle(
    input_size: tuple[int, int], channels: Sequence[int], *, layers: int, width: int = 64
) -> onnx.ModelProto:
    """:func:`pose_oracle` plus real work whose result is multiplied by zero.

    The answers are the oracle's; the cost is that of a small network: a 4x4 stride-4
    convolution of the crop into ``width`` channels (multiplied by zero), then ``layers``
    3x3 convolutions of ``width`` channels at that quarter size, about
    ``layers * width**2 * 9 * h * w / 16`` multiply-adds per crop. The layers share one
    weight, so the file stays small and the memory a batch needs does not grow with
    ``layers``: the cost is set by ``layers`` alone. ``tests.helpers.slow_pose`` picks
    ``layers`` from this machine's measured speed, for tests that need work to take
    time (shutdown under load, readiness during warm-up, deadlines, full queues).
    """
    model = pose_oracle(input_size, channels)
    graph = model.graph
    for node in graph.node:
        node.output[:] = [f"{o}_fast" if o == "simcc_x" else o for o in node.output]
    rng = np.random.default_rng(0)
    stem = rng.standard_normal((width, 3, 4, 4)).astype(np.float32)
    weight = (rng.standard_normal((width, width, 3, 3)) / np.sqrt(9 * width)).astype(np.float32)
    graph.initializer.extend(
        [
            numpy_helper.from_array(stem, "slow_stem"),
            numpy_helper.from_array(weight, "slow_weight"),
            numpy_helper.from_array(np.array(0.0, np.float32), "slow_zero"),
        ]
    )
    nodes = [
        helper.make_node("Conv", ["input", "slow_stem"], ["slow_strided"], strides=[4, 4]),
        helper.make_node("Mul", ["slow_strided", "slow_zero"], ["slow_0"]),  # zeros: nothing can overflow
    ]
    for i in range(layers):
        nodes.append(helper.make_node("Conv", [f"slow_{i}", "slow_weight"], [f"slow_{i + 1}"], pads=[1, 1, 1, 1]))
    nodes += [
        helper.make_node("ReduceSum", [f"slow_{layers}"], ["slow_total"], keepdims=0),
        helper.make_node("Mul", ["slow_total", "slow_zero"], ["slow_nothing"]),
        helper.make_node("Add", ["simcc_x_fast", "slow_nothing"], ["simcc_x"]),
    ]
    graph.node.extend(nodes)
    return model


def install_model(repo_root: Path, name: str, model: onnx.ModelProto, **config_fields: Any) -> Path:
    """Write ``repo_root/name/config.toml`` and ``repo_root/name/1/model.onnx``.

    Args:
        repo_root: Model repository folder.
        name: Model (and folder) name.
        model: The ONNX model.
        **config_fields: Fields of :class:`service.models.schema.ModelConfig` besides ``name``.

    Returns:
        The model folder.
    """
    config = ModelConfig(name=name, **config_fields)
    folder = Path(repo_root) / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "1" / "model.onnx"))
    (folder / "config.toml").write_text(tomli_w.dumps(config.to_toml_dict()), encoding="utf-8")
    return folder


def install_pose_oracle(
    repo_root: Path,
    name: str = "pose-oracle",
    *,
    keypoints: str = "coco17",
    channels: Sequence[int] | None = None,
    input_size: tuple[int, int] = (192, 256),
    **config_fields: Any,
) -> Path:
    """Install a :func:`pose_oracle` with RTMPose's normalisation (RGB); channels default to all red."""
    count = KEYPOINT_SETS[keypoints].num_keypoints
    model = pose_oracle(input_size, channels if channels is not None else [0] * count)
    fields: dict[str, Any] = {"task": "pose", "family": "rtmpose", "keypoints": keypoints, "input_size": input_size}
    fields |= {"mean": RTMPOSE_MEAN, "std": RTMPOSE_STD, "to_rgb": True}
    return install_model(repo_root, name, model, **(fields | config_fields))


def install_detector_oracle(
    repo_root: Path,
    name: str = "detector-oracle",
    *,
    channel: int = 0,
    bands: Sequence[tuple[float, float]] = ((128.0, 255.0),),
    side: int = 320,
    **config_fields: Any,
) -> Path:
    """Install a :func:`detector_oracle` with RTMDet's normalisation (BGR); channel 0 is blue."""
    model = detector_oracle(channel=channel, bands=bands, mean=RTMDET_MEAN, std=RTMDET_STD)
    fields: dict[str, Any] = {"task": "detect", "family": "rtmdet", "input_size": (side, side)}
    fields |= {"mean": RTMDET_MEAN, "std": RTMDET_STD, "to_rgb": False}
    return install_model(repo_root, name, model, **(fields | config_fields))


def draw_marker(
    image: NDArray[np.uint8], center: tuple[float, float], channel: int, *, sigma: float = 3.0, peak: int = 255
) -> None:
    """Raise one channel (BGR index) of ``image`` in place by a Gaussian blob peaking at ``center``.

    Smooth and single-peaked, so the blob's brightest pixel stays at its centre after
    resampling (a :func:`pose_oracle` finds it there).
    """
    x, y = center
    radius = int(np.ceil(4 * sigma))
    x0, x1 = max(0, int(x) - radius), min(image.shape[1], int(x) + radius + 2)
    y0, y1 = max(0, int(y) - radius), min(image.shape[0], int(y) + radius + 2)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    blob = peak * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    region = image[y0:y1, x0:x1, channel]
    region[...] = np.clip(np.maximum(region, np.round(blob)), 0, 255).astype(np.uint8)


def draw_person(
    image: NDArray[np.uint8], box: tuple[int, int, int, int], channel: int, value: int
) -> tuple[float, float, float, float]:
    """Fill the pixels ``x1..x2-1, y1..y2-1`` of one channel (BGR index) with ``value``.

    Returns:
        The box (x1, y1, x2, y2), edges on pixel borders: what :func:`detector_oracle` reports.
    """
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2, channel] = value
    return float(x1), float(y1), float(x2), float(y2)


Person = tuple[tuple[int, int, int, int], tuple[float, float]]  # (box x1, y1, x2, y2), (marker x, y)


def draw_scene(people: Sequence[Person], size: tuple[int, int] = (640, 480)) -> NDArray[np.uint8]:
    """A black BGR image with up to three people for :func:`detector_oracle` with :data:`BANDS`
    (blue boxes of increasing level) each holding one red marker for a :func:`pose_oracle`
    reading channel 0 after the RGB swap.

    Args:
        people: (box, marker) per person, at most ``len(BANDS)``.
        size: Image (w, h).
    """
    image = np.zeros((size[1], size[0], 3), np.uint8)
    for (box, marker), (lo, hi) in zip(people, BANDS, strict=False):
        draw_person(image, box, channel=0, value=int((lo + hi) / 2))
        draw_marker(image, marker, channel=2)
    return image
