"""Top-down pose models: RTMPose (CSPNeXt + RTMCCHead) and RTMW (CSPNeXt + CSPNeXtPAFPN + RTMWHead)."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from service.models.synth.cspnext import SCALES, cspnext, stage_channels
from service.models.synth.eager import calibration_batch
from service.models.synth.graph import Graph
from service.models.synth.metadata import synthetic_metadata
from service.models.synth.pafpn import pafpn
from service.models.synth.rtmcc_head import rtmcc_head
from service.models.synth.rtmw_head import rtmw_head

SIMCC_SPLIT_RATIO = 2.0
RTMW_NECK_BLOCKS = 2  # num_csp_blocks of the rtmw-{m,l,x} configs

POSE_ARCHS: dict[str, str] = {
    **{f"rtmpose-{s}": s for s in ("t", "s", "m", "l", "x")},
    **{f"rtmw-{s}": s for s in ("m", "l", "x")},
}


def check_pose_input(arch: str, input_size: tuple[int, int]) -> None:
    """Raise ValueError unless ``arch`` is a pose arch and both sides of ``input_size`` are multiples of 32."""
    if arch not in POSE_ARCHS:
        raise ValueError(f"cannot synthesize pose arch {arch!r}; supported: {', '.join(POSE_ARCHS)}")
    width, height = input_size
    if width % 32 or height % 32 or width <= 0 or height <= 0:
        raise ValueError(f"{arch}: input_size (width, height) must be positive multiples of 32, got {input_size}")


def build_pose(
    arch: str, num_keypoints: int, input_size: tuple[int, int], seed: int = 0, *, materialize: bool = True
) -> onnx.ModelProto:
    """An RTMPose / RTMW model with the official export's I/O and seeded random weights.

    Args:
        arch: ``rtmpose-{t,s,m,l,x}`` or ``rtmw-{m,l,x}``.
        num_keypoints: K.
        input_size: (width, height), multiples of 32.
        seed: weight seed.
        materialize: False declares parameter shapes only (for counting; cannot run).

    Returns:
        Input ``input [batch, 3, H, W]``; outputs ``simcc_x [batch, K, 2W]`` and
        ``simcc_y [batch, K, 2H]``.

    Raises:
        ValueError: unknown arch, bad input size or keypoint count.
    """
    check_pose_input(arch, input_size)
    if num_keypoints < 1:
        raise ValueError(f"{arch}: num_keypoints must be >= 1, got {num_keypoints}")
    width, height = input_size
    scale = SCALES[POSE_ARCHS[arch]]
    channels = stage_channels(scale)
    g = Graph(seed, materialize=materialize)
    g.feed("input", calibration_batch(width, height))
    feats = cspnext(g, "input", scale)
    if arch.startswith("rtmw-"):
        neck = pafpn(g, feats, channels[1:], num_csp_blocks=RTMW_NECK_BLOCKS, block="cspnext")
        simcc_x, simcc_y = rtmw_head(g, neck[1], neck[2], channels[-1], num_keypoints, input_size)
    else:
        simcc_x, simcc_y = rtmcc_head(g, feats[-1], channels[-1], num_keypoints, input_size)
    r = SIMCC_SPLIT_RATIO
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, height, width])]
    outputs = [
        helper.make_tensor_value_info(simcc_x, TensorProto.FLOAT, ["batch", num_keypoints, int(width * r)]),
        helper.make_tensor_value_info(simcc_y, TensorProto.FLOAT, ["batch", num_keypoints, int(height * r)]),
    ]
    return g.model(arch, inputs, outputs, synthetic_metadata(arch, seed))
