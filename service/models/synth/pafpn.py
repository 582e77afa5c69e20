"""Path Aggregation FPN necks: ``CSPNeXtPAFPN`` (RTMDet, RTMW) and ``YOLOXPAFPN``.

Both are the same top-down + bottom-up graph of CSP layers (without residuals)
and differ only in the block type and the output convs.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.models.synth.csp import Block, csp_layer
from service.models.synth.graph import Graph
from service.models.synth.layers import conv_module, conv_or_dw, upsample2x


def pafpn(
    g: Graph,
    feats: Sequence[str],
    in_channels: Sequence[int],
    *,
    num_csp_blocks: int,
    block: Block,
    depthwise: bool = False,
    out_channels: int | None = None,
    out_kernel: int = 3,
    hint: str = "neck",
) -> list[str]:
    """Top-down then bottom-up feature fusion over the backbone levels.

    Args:
        feats: backbone levels ``[N, in_channels[i], H / s_i, W / s_i]``, finest first.
        out_channels: channels of the per-level output convs; None leaves them out
            (mmpose's ``CSPNeXtPAFPN(out_channels=None)``).
        out_kernel: 3 for CSPNeXtPAFPN (DW-separable when ``depthwise``), 1 for YOLOXPAFPN.

    Returns:
        One map per level, finest first: ``[N, out_channels or in_channels[i], H / s_i, W / s_i]``.
    """
    n = len(in_channels)
    # top-down path
    inner = [feats[-1]]
    for idx in range(n - 1, 0, -1):
        j = n - 1 - idx
        high = conv_module(g, inner[0], in_channels[idx], in_channels[idx - 1], 1, f"{hint}.reduce_layers.{j}")
        inner[0] = high
        up = upsample2x(g, high, f"{hint}.upsample.{j}")
        cat = g.op("Concat", [up, feats[idx - 1]], f"{hint}.top_down_cat.{j}", axis=1)
        out = csp_layer(
            g, cat, in_channels[idx - 1] * 2, in_channels[idx - 1], f"{hint}.top_down_blocks.{j}",
            num_blocks=num_csp_blocks, add_identity=False, depthwise=depthwise, block=block,
        )  # fmt: skip
        inner.insert(0, out)
    # bottom-up path
    outs = [inner[0]]
    for idx in range(n - 1):
        down = conv_or_dw(
            g, outs[-1], in_channels[idx], in_channels[idx], 3, f"{hint}.downsamples.{idx}", depthwise=depthwise,
            stride=2,
        )  # fmt: skip
        cat = g.op("Concat", [down, inner[idx + 1]], f"{hint}.bottom_up_cat.{idx}", axis=1)
        outs.append(
            csp_layer(
                g,
                cat,
                in_channels[idx] * 2,
                in_channels[idx + 1],
                f"{hint}.bottom_up_blocks.{idx}",
                num_blocks=num_csp_blocks,
                add_identity=False,
                depthwise=depthwise,
                block=block,
            )  # fmt: skip
        )
    if out_channels is None:
        return outs
    results = []
    for i, (out, c) in enumerate(zip(outs, in_channels, strict=True)):
        if out_kernel == 1:
            results.append(conv_module(g, out, c, out_channels, 1, f"{hint}.out_convs.{i}"))
        else:
            results.append(
                conv_or_dw(g, out, c, out_channels, out_kernel, f"{hint}.out_convs.{i}", depthwise=depthwise)
            )
    return results
