"""Person detectors: RTMDet and YOLOX with the official export I/O (mmdeploy ``dets``/``labels`` or raw YOLOX)."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from service.models.schema import DetectorOutput
from service.models.synth.eager import calibration_batch
from service.models.synth.graph import Graph
from service.models.synth.metadata import synthetic_metadata
from service.models.synth.postprocess import NmsConfig, multiclass_nms
from service.models.synth.rtmdet import RTMDET_SPECS, rtmdet_dense
from service.models.synth.yolox import NUM_CLASSES, STRIDES, YOLOX_SPECS, yolox_dense, yolox_raw

RTMDET_NMS = NmsConfig(iou_threshold=0.6)  # person configs' test_cfg: score 0.05, IoU 0.6, 100 per image
YOLOX_NMS = NmsConfig(iou_threshold=0.65)  # YOLOX test_cfg IoU 0.65
RTMDET_CLASSES = 1  # the person (and hand) RTMDet configs set num_classes=1
CALIBRATION_MAX_SIDE = 320  # detectors accept any size: calibrate at most at 320x320 to keep builds fast
DETS_BOX_DIM = "dets_dim_2"  # the real RTMDet-nano export leaves dets' last axis symbolic as well

DETECTOR_ARCHS: tuple[str, ...] = (*RTMDET_SPECS, *YOLOX_SPECS)


def check_detector_input(arch: str, input_size: tuple[int, int], output_format: DetectorOutput) -> None:
    """Raise ValueError for an unknown arch, a bad input size or a raw output on a non-YOLOX arch."""
    if arch not in DETECTOR_ARCHS:
        raise ValueError(f"cannot synthesize detector arch {arch!r}; supported: {', '.join(DETECTOR_ARCHS)}")
    width, height = input_size
    if width % 32 or height % 32 or width <= 0 or height <= 0:
        raise ValueError(f"{arch}: input_size (width, height) must be positive multiples of 32, got {input_size}")
    if output_format is DetectorOutput.YOLOX_RAW and arch not in YOLOX_SPECS:
        raise ValueError(f"{arch}: output_format 'yolox_raw' exists only for YOLOX archs")


def build_detector(
    arch: str,
    input_size: tuple[int, int],
    seed: int = 0,
    output_format: DetectorOutput = DetectorOutput.DETS,
    *,
    materialize: bool = True,
) -> onnx.ModelProto:
    """An RTMDet / YOLOX detector with the official export's I/O and seeded random weights.

    Args:
        arch: ``rtmdet-{nano,tiny,s,m,l,x}`` or ``yolox-{nano,tiny,s,m,l,x}``.
        input_size: (width, height), multiples of 32; the ``dets`` graph accepts any
            size (dynamic axes) and is only calibrated at this one.
        seed: weight seed.
        output_format: ``dets``: mmdeploy end2end I/O, ``input [batch, 3, height, width]``
            -> ``dets [batch, num_dets, 5]`` + ``labels [batch, num_dets]`` with NMS in the graph;
            ``yolox_raw``: the Megvii export, ``images [1, 3, H, W]`` -> ``output [1, A, 85]``.
        materialize: False declares parameter shapes only (for counting; cannot run).

    Raises:
        ValueError: unknown arch, bad input size, or ``yolox_raw`` for RTMDet.
    """
    output_format = DetectorOutput(output_format)
    check_detector_input(arch, input_size, output_format)
    width, height = input_size
    g = Graph(seed, materialize=materialize)
    raw_pixels = arch in YOLOX_SPECS  # YOLOX takes 0-255 pixels, RTMDet normalised ones
    meta = synthetic_metadata(arch, seed)
    # the same calibration for both output formats: the same arch and seed give the same weights
    calibration = calibration_batch(
        min(CALIBRATION_MAX_SIDE, width), min(CALIBRATION_MAX_SIDE, height), raw_pixels=raw_pixels
    )
    if output_format is DetectorOutput.YOLOX_RAW:
        g.feed("images", calibration)
        out = yolox_raw(g, "images", YOLOX_SPECS[arch])
        anchors = sum((width // s) * (height // s) for s in STRIDES)
        inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, height, width])]
        outputs = [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, anchors, 5 + NUM_CLASSES])]
        return g.model(arch, inputs, outputs, meta)
    g.feed("input", calibration)
    if arch in RTMDET_SPECS:
        boxes, scores = rtmdet_dense(g, "input", RTMDET_SPECS[arch], RTMDET_CLASSES)
        dets, labels = multiclass_nms(g, boxes, scores, RTMDET_CLASSES, RTMDET_NMS)
    else:
        boxes, scores = yolox_dense(g, "input", YOLOX_SPECS[arch])
        dets, labels = multiclass_nms(g, boxes, scores, NUM_CLASSES, YOLOX_NMS)
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])]
    outputs = [
        helper.make_tensor_value_info(dets, TensorProto.FLOAT, ["batch", "num_dets", DETS_BOX_DIM]),
        helper.make_tensor_value_info(labels, TensorProto.INT64, ["batch", "num_dets"]),
    ]
    return g.model(arch, inputs, outputs, meta)
