"""RTMW's two-level SimCC head (mmpose ``RTMWHead``)."""

from __future__ import annotations

from service.models.synth.graph import Graph
from service.models.synth.layers import conv_module
from service.models.synth.rtmcc_head import GAU_HIDDEN, flatten_tokens, linear, scale_norm, simcc_outputs

PIXEL_SHUFFLE = 2


def rtmw_head(
    g: Graph,
    enc_b: str,
    enc_t: str,
    in_channels: int,
    num_keypoints: int,
    input_size: tuple[int, int],
    *,
    split_ratio: float = 2.0,
    kernel_size: int = 7,
    hint: str = "head",
) -> tuple[str, str]:
    """Fuse the stride-32 and stride-16 maps into K tokens of 256 dims, then GAU and SimCC.

    Top: 7x7 ConvModule(ReLU) to K maps, flatten, ScaleNorm + Linear to 128. Bottom:
    PixelShuffle(2) of the top map, 7x7 ConvModule to ``C/4``, concat with ``enc_b``,
    7x7 ConvModule to K maps, flatten, ScaleNorm + Linear to 128. Tokens are the
    concatenation (256 dims).

    Args:
        enc_b: neck level ``[N, C/2, H / 16, W / 16]``.
        enc_t: neck level ``[N, C, H / 32, W / 32]`` (``C = in_channels``).
        input_size: network input (width, height).

    Returns:
        ``simcc_x [N, K, W * r]`` and ``simcc_y [N, K, H * r]``.
    """
    ps = PIXEL_SHUFFLE
    hw = (input_size[0] // 32) * (input_size[1] // 32)
    half = GAU_HIDDEN // 2

    t = conv_module(g, enc_t, in_channels, num_keypoints, kernel_size, f"{hint}.final_layer", act="relu")
    t = flatten_tokens(g, t, f"{hint}.flatten_t")
    t = linear(g, scale_norm(g, t, hw, f"{hint}.mlp.0"), hw, half, f"{hint}.mlp.1")

    dec = g.op("DepthToSpace", [enc_t], f"{hint}.ps", blocksize=ps, mode="CRD")
    dec = conv_module(g, dec, in_channels // ps**2, in_channels // 4, kernel_size, f"{hint}.conv_dec", act="relu")
    b = g.op("Concat", [dec, enc_b], f"{hint}.cat_b", axis=1)
    b = conv_module(
        g, b, in_channels // ps + in_channels // 4, num_keypoints, kernel_size, f"{hint}.final_layer2", act="relu"
    )
    b = flatten_tokens(g, b, f"{hint}.flatten_b")
    b = linear(g, scale_norm(g, b, hw * ps**2, f"{hint}.mlp2.0"), hw * ps**2, half, f"{hint}.mlp2.1")

    tokens = g.op("Concat", [t, b], f"{hint}.tokens", axis=2)
    return simcc_outputs(g, tokens, input_size, split_ratio, hint)
