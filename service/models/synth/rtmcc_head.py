"""RTMPose's SimCC head (mmpose ``RTMCCHead``) and its pieces: ScaleNorm, Linear, the GAU block.

Token tensors are ``[N, K, D]``: one token per keypoint.
"""

from __future__ import annotations

import math

from service.models.synth.graph import Graph
from service.models.synth.layers import activation, conv

GAU_HIDDEN = 256  # gau_cfg.hidden_dims in every RTMPose / RTMW config
GAU_S = 128  # gau_cfg.s
GAU_EXPANSION = 2  # gau_cfg.expansion_factor
SCALE_NORM_EPS = 1e-5


def linear(g: Graph, x: str, din: int, dout: int, hint: str) -> str:
    """``nn.Linear(din, dout, bias=False)`` on ``[..., din]`` as exported: a MatMul with a ``[din, dout]`` weight."""
    w = g.normal(f"{hint}.weight", (din, dout), 1.0 / math.sqrt(din))
    return g.op("MatMul", [x, w], hint)


def scale_norm(g: Graph, x: str, dim: int, hint: str) -> str:
    """mmpose ``ScaleNorm``: ``x / max(||x||_2 * dim^-0.5, eps) * g`` over the last axis."""
    norm = g.op("ReduceL2", [x], f"{hint}.norm", axes=[-1], keepdims=1)
    norm = g.op("Mul", [norm, g.fconst(dim**-0.5)], f"{hint}.scaled")
    norm = g.op("Max", [norm, g.fconst(SCALE_NORM_EPS)], f"{hint}.clamp")
    y = g.op("Div", [x, norm], f"{hint}.div")
    return g.op("Mul", [y, g.filled(f"{hint}.g", (1,), 1.0)], hint)


def gau(g: Graph, x: str, dim: int, hint: str) -> str:
    """``RTMCCBlock`` (Gated Attention Unit, self-attention, SiLU, no relative bias, no RoPE).

    Args:
        x: tokens ``[N, K, dim]``.

    Returns:
        ``[N, K, dim]``: ``x * res_scale + o(u * (relu(q k^T / sqrt(s))^2 v))``.
    """
    e = int(dim * GAU_EXPANSION)
    y = scale_norm(g, x, dim, f"{hint}.ln")
    uv = activation(g, linear(g, y, dim, 2 * e + GAU_S, f"{hint}.uv"), "silu", f"{hint}.uv")
    u, v, base = g.op_n("Split", [uv], 3, f"{hint}.split", axis=2, split=[e, e, GAU_S])
    # [N, K, 1, s] * gamma [2, s] + beta [2, s] -> [N, K, 2, s]
    base = g.op("Unsqueeze", [base], f"{hint}.base", axes=[2])
    base = g.op("Mul", [base, g.normal(f"{hint}.gamma", (2, GAU_S), 1.0)], f"{hint}.base_scaled")
    base = g.op("Add", [base, g.normal(f"{hint}.beta", (2, GAU_S), 0.5)], f"{hint}.base_shifted")
    q, k = g.op_n("Split", [base], 2, f"{hint}.qk_split", axis=2, split=[1, 1])
    q = g.op("Squeeze", [q], f"{hint}.q", axes=[2])
    k = g.op("Squeeze", [k], f"{hint}.k", axes=[2])
    qk = g.op("MatMul", [q, g.op("Transpose", [k], f"{hint}.kT", perm=[0, 2, 1])], f"{hint}.qk")
    qk = g.op("Relu", [g.op("Div", [qk, g.fconst(math.sqrt(GAU_S))], f"{hint}.qk_scaled")], f"{hint}.qk_relu")
    kernel = g.op("Mul", [qk, qk], f"{hint}.kernel")
    y = g.op("Mul", [u, g.op("MatMul", [kernel, v], f"{hint}.attn")], f"{hint}.gated")
    y = linear(g, y, e, dim, f"{hint}.o")
    shortcut = g.op("Mul", [x, g.filled(f"{hint}.res_scale.scale", (dim,), 1.0)], f"{hint}.res_scale")
    return g.op("Add", [shortcut, y], f"{hint}.out")


def flatten_tokens(g: Graph, x: str, hint: str) -> str:
    """``torch.flatten(x, 2)``: ``[N, K, h, w]`` -> ``[N, K, h * w]`` (batch kept dynamic)."""
    return g.op("Reshape", [x, g.const([0, 0, -1])], hint)


def simcc_outputs(g: Graph, tokens: str, input_size: tuple[int, int], split_ratio: float, hint: str) -> tuple[str, str]:
    """GAU, then the two SimCC classifiers.

    Args:
        tokens: ``[N, K, GAU_HIDDEN]``.
        input_size: network input (width, height).

    Returns:
        ``simcc_x [N, K, W * r]`` and ``simcc_y [N, K, H * r]``.
    """
    y = gau(g, tokens, GAU_HIDDEN, f"{hint}.gau")
    wx, wy = int(input_size[0] * split_ratio), int(input_size[1] * split_ratio)
    wx_w = g.normal(f"{hint}.cls_x.weight", (GAU_HIDDEN, wx), 1.0 / math.sqrt(GAU_HIDDEN))
    wy_w = g.normal(f"{hint}.cls_y.weight", (GAU_HIDDEN, wy), 1.0 / math.sqrt(GAU_HIDDEN))
    return g.op("MatMul", [y, wx_w], "simcc_x"), g.op("MatMul", [y, wy_w], "simcc_y")


def rtmcc_head(
    g: Graph,
    feat: str,
    in_channels: int,
    num_keypoints: int,
    input_size: tuple[int, int],
    *,
    split_ratio: float = 2.0,
    kernel_size: int = 7,
    hint: str = "head",
) -> tuple[str, str]:
    """mmpose ``RTMCCHead``: 7x7 conv to K maps, flatten, ScaleNorm + Linear to 256, GAU, SimCC Linears.

    Args:
        feat: last backbone level ``[N, in_channels, H / 32, W / 32]``.
        input_size: network input (width, height).

    Returns:
        ``simcc_x [N, K, W * r]`` and ``simcc_y [N, K, H * r]``.
    """
    w32, h32 = input_size[0] // 32, input_size[1] // 32
    y = conv(g, feat, in_channels, num_keypoints, kernel_size, f"{hint}.final_layer")
    y = flatten_tokens(g, y, f"{hint}.flatten")
    y = scale_norm(g, y, w32 * h32, f"{hint}.mlp.0")
    y = linear(g, y, w32 * h32, GAU_HIDDEN, f"{hint}.mlp.1")
    return simcc_outputs(g, y, input_size, split_ratio, hint)
