"""Exported-graph building blocks: Conv+BN folded into one biased Conv, SiLU as x*Sigmoid(x).

These mirror what ``torch.onnx.export`` produces for mmcv's ``ConvModule``,
``DepthwiseSeparableConvModule`` and friends after BatchNorm folding. Every
function takes the input tensor name and channel count explicitly and returns
the output tensor name; shapes are ``[N, C, H, W]`` throughout.

BatchNorm is folded with real statistics: a ConvModule draws its kernel, runs it
on the calibration batch (:mod:`.eager`), and folds a BN whose running mean and
variance are the measured per-channel ones, with gamma ~ ``PRE_ACT_STD`` and a
small beta. Pre-activations therefore have a realistic spread at any depth, as
in a trained network. Scale factors are quantized to 1/64 octave so tiny
floating-point differences between machines cannot change the bytes.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from service.models.synth.eager import conv2d
from service.models.synth.graph import Graph

Act = Literal["silu", "relu", "none"]

PRE_ACT_STD = 8.0  # BN gamma: wide enough that SiLU acts near-homogeneously (ReLU-like)
GAMMA_SPREAD = 0.1  # relative spread of gamma across channels
BETA_STD = 0.1  # BN beta
ATTENTION_GATE = 0.75  # typical Hardsigmoid gate of the synthesized ChannelAttention
_STEPS = 64.0  # quantization: 1/64 octave for scales, 1/64 std for means


def quantize_scale(v: np.ndarray | float) -> np.ndarray:
    """Round positive factors to the nearest 1/64 octave (machine-independent bytes)."""
    return np.exp2(np.round(np.log2(np.asarray(v, dtype=np.float64)) * _STEPS) / _STEPS)


def activation(g: Graph, x: str, act: Act, hint: str) -> str:
    """SiLU (``x * Sigmoid(x)``, as exported), ReLU or identity.

    ``x`` must be a pre-activation nothing else reads: its calibration value is dropped.
    """
    if act == "silu":
        sigmoid = g.op("Sigmoid", [x], f"{hint}.sigmoid")
        y = g.op("Mul", [x, sigmoid], f"{hint}.silu")
        g.forget(x, sigmoid)
        return y
    if act == "relu":
        y = g.op("Relu", [x], f"{hint}.relu")
        g.forget(x)
        return y
    return x


def emit_conv(
    g: Graph,
    x: str,
    w: np.ndarray | None,
    b: np.ndarray | None,
    shape: tuple[int, int, int, int],
    hint: str,
    *,
    stride: int = 1,
    groups: int = 1,
    bias: bool = True,
    weight_name: str | None = None,
) -> str:
    """Emit one ``Conv`` node (padding ``k // 2``) for kernel ``w`` of ``shape`` and bias ``b``; evaluate it."""
    k = shape[-1]
    w_name = weight_name or g.param(f"{hint}.weight", w, shape)
    inputs = [x, w_name]
    if bias:
        inputs.append(g.param(f"{hint}.bias", b, (shape[0],)))
    pad = k // 2
    y = g.op(
        "Conv", inputs, hint, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=groups,
        dilations=[1, 1],
    )  # fmt: skip
    xv = g.value(x)
    if xv is not None and w is not None:
        out = conv2d(xv, w, stride, pad, groups)
        g.set_value(y, out + b[None, :, None, None] if b is not None else out)
    return y


def conv(
    g: Graph,
    x: str,
    cin: int,
    cout: int,
    k: int,
    hint: str,
    *,
    stride: int = 1,
    groups: int = 1,
    bias: bool = True,
    std_out: float = 1.0,
    bias_std: float = 0.1,
    bias_mean: float = 0.0,
    center: bool = False,
) -> str:
    """A plain ``Conv`` without BN, scaled so its outputs have std ~``std_out`` on the calibration batch.

    Args:
        center: subtract each output channel's calibration mean through the bias,
            so outputs centre on ``bias_mean`` (a prediction layer's learned prior).
    """
    fan_in = cin // groups * k * k
    std = std_out / (math.sqrt(fan_in) * float(quantize_scale(g.rms(x))))
    shape = (cout, cin // groups, k, k)
    w = g.draw_normal(shape, std)
    b = g.draw_normal((cout,), bias_std, bias_mean) if bias else None
    xv = g.value(x)
    if center and b is not None and w is not None and xv is not None:
        mean = conv2d(xv, w, stride, k // 2, groups).mean(axis=(0, 2, 3), dtype=np.float64)
        b = (b - np.round(mean * _STEPS) / _STEPS).astype(np.float32)
    return emit_conv(g, x, w, b, shape, hint, stride=stride, groups=groups, bias=bias)


def fold_bn(
    raw: np.ndarray | None, gamma: np.ndarray, beta: np.ndarray, fallback_rms: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scale, shift) of the BN folded onto ``raw [N, C, H, W]`` (the bias-free conv output).

    The layer's pre-activations get RMS ~``gamma`` on the calibration batch:
    ``scale_c = gamma_c / rms(raw)``, ``shift_c = beta_c``. The statistics are
    the whole layer's rather than per channel: per-channel mean subtraction on a
    small calibration batch makes random networks hypersensitive to the input
    distribution (a real photo would then blow activations up by orders of
    magnitude), whereas one scale per layer keeps the map close to homogeneous.
    """
    rms = fallback_rms if raw is None else float(np.sqrt(np.mean(np.square(raw, dtype=np.float64))))
    scale = quantize_scale(np.abs(gamma) / max(rms, 1e-6))
    return scale.astype(np.float32), beta.astype(np.float32)


def conv_module(
    g: Graph,
    x: str,
    cin: int,
    cout: int,
    k: int,
    hint: str,
    *,
    stride: int = 1,
    groups: int = 1,
    act: Act = "silu",
    damp: float = 1.0,
    zero_dc: bool = False,
) -> str:
    """mmcv ``ConvModule`` (Conv, BN, act) with BN folded: a biased Conv then the activation.

    Args:
        damp: factor on gamma, < 1 for branches added to an identity.
        zero_dc: make every filter sum to zero, like the edge detectors a trained
            first layer learns: the output then ignores image brightness.
    """
    shape = (cout, cin // groups, k, k)
    fan_in = cin // groups * k * k
    w = g.draw_normal(shape, 1.0 / math.sqrt(fan_in))
    if zero_dc and w is not None:
        w = w - w.mean(axis=(1, 2, 3), keepdims=True)
    gamma = g.draw_normal((cout,), PRE_ACT_STD * damp * GAMMA_SPREAD, PRE_ACT_STD * damp)
    beta = g.draw_normal((cout,), BETA_STD)
    b = None
    if w is not None and gamma is not None and beta is not None:
        xv = g.value(x)
        raw = conv2d(xv, w, stride, k // 2, groups) if xv is not None else None
        scale, b = fold_bn(raw, gamma, beta, fallback_rms=g.rms(x))
        w = w * scale[:, None, None, None]
    y = emit_conv(g, x, w, b, shape, hint, stride=stride, groups=groups)
    return activation(g, y, act, hint)


def dw_separable(
    g: Graph, x: str, cin: int, cout: int, k: int, hint: str, *, stride: int = 1, act: Act = "silu", damp: float = 1.0
) -> str:
    """mmcv ``DepthwiseSeparableConvModule``: depthwise kxk ConvModule, then pointwise 1x1 ConvModule."""
    y = conv_module(g, x, cin, cin, k, f"{hint}.depthwise_conv", stride=stride, groups=cin, act=act)
    return conv_module(g, y, cin, cout, 1, f"{hint}.pointwise_conv", act=act, damp=damp)


def conv_or_dw(
    g: Graph, x: str, cin: int, cout: int, k: int, hint: str, *, depthwise: bool, stride: int = 1, damp: float = 1.0
) -> str:
    """``DepthwiseSeparableConvModule if use_depthwise else ConvModule``, as mmdet writes it."""
    if depthwise:
        return dw_separable(g, x, cin, cout, k, hint, stride=stride, damp=damp)
    return conv_module(g, x, cin, cout, k, hint, stride=stride, damp=damp)


def channel_attention(g: Graph, x: str, channels: int, hint: str) -> str:
    """mmdet ``ChannelAttention``: GlobalAveragePool, biased 1x1 Conv, Hardsigmoid, scale the input.

    The fc bias is centred so the gates sit around ``ATTENTION_GATE``.
    """
    pooled = g.op("GlobalAveragePool", [x], f"{hint}.pool")
    bias_mean = (ATTENTION_GATE - 0.5) * 6.0
    fc = conv(g, pooled, channels, channels, 1, f"{hint}.fc", std_out=0.5, bias_std=0.3, bias_mean=bias_mean)
    gate = g.op("HardSigmoid", [fc], f"{hint}.act", alpha=1.0 / 6.0, beta=0.5)
    return g.op("Mul", [x, gate], f"{hint}.out")


def spp_bottleneck(g: Graph, x: str, cin: int, cout: int, hint: str, kernels: tuple[int, ...] = (5, 9, 13)) -> str:
    """mmdet ``SPPBottleneck``: 1x1 to cin/2, concat with parallel stride-1 max pools, 1x1 to cout."""
    mid = cin // 2
    y = conv_module(g, x, cin, mid, 1, f"{hint}.conv1")
    pools = [
        g.op("MaxPool", [y], f"{hint}.pool{k}", kernel_shape=[k, k], strides=[1, 1], pads=[k // 2] * 4) for k in kernels
    ]
    cat = g.op("Concat", [y, *pools], f"{hint}.cat", axis=1)
    return conv_module(g, cat, mid * (len(kernels) + 1), cout, 1, f"{hint}.conv2")


def upsample2x(g: Graph, x: str, hint: str) -> str:
    """``nn.Upsample(scale_factor=2, mode='nearest')`` as exported at opset 11."""
    roi = g.fconst([])
    scales = g.fconst([1.0, 1.0, 2.0, 2.0])
    return g.op(
        "Resize", [x, roi, scales], hint, mode="nearest", coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )  # fmt: skip


def shared_conv_modules(g: Graph, xs: list[str], cin: int, cout: int, k: int, hint: str) -> list[str]:
    """ConvModules that share one kernel but keep separate BNs (RTMDetSepBNHead ``share_conv=True``).

    The shared kernel is one initializer used by every level's Conv; each level's
    BN stays explicit as a per-channel ``Mul`` and ``Add`` (its weight and bias),
    so the parameter count is PyTorch's: one kernel plus 2 * cout per level.

    Args:
        xs: one ``[N, cin, H_l, W_l]`` input per level.

    Returns:
        ``[N, cout, H_l, W_l]`` per level, after SiLU.
    """
    shape = (cout, cin, k, k)
    w = g.draw_normal(shape, 1.0 / math.sqrt(cin * k * k))
    w_name = g.param(f"{hint}.conv.weight", w, shape)
    outs = []
    for level, x in enumerate(xs):
        name = f"{hint}.bn{level}"
        gamma = g.draw_normal((cout,), PRE_ACT_STD * GAMMA_SPREAD, PRE_ACT_STD)
        beta = g.draw_normal((cout,), BETA_STD)
        raw = emit_conv(g, x, w, None, shape, f"{name}.conv", bias=False, weight_name=w_name)
        scale = shift = None
        if gamma is not None and beta is not None:
            scale, shift = fold_bn(g.value(raw), gamma, beta, fallback_rms=g.rms(x))
            scale, shift = scale.reshape(1, cout, 1, 1), shift.reshape(1, cout, 1, 1)
        scaled = g.op("Mul", [raw, g.param(f"{name}.weight", scale, (1, cout, 1, 1))], f"{name}.scale")
        y = g.op("Add", [scaled, g.param(f"{name}.bias", shift, (1, cout, 1, 1))], f"{name}.shift")
        g.forget(raw, scaled)
        outs.append(activation(g, y, "silu", name))
    return outs
