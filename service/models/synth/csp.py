"""Cross Stage Partial layers: mmdet ``CSPLayer`` with ``CSPNeXtBlock`` or ``DarknetBottleneck``."""

from __future__ import annotations

from typing import Literal

from service.models.synth.graph import Graph
from service.models.synth.layers import channel_attention, conv_module, conv_or_dw, dw_separable

Block = Literal["cspnext", "darknet"]

RESIDUAL_DAMP = 0.5  # damps a block's last conv where its output is added to the identity


def cspnext_block(g: Graph, x: str, cin: int, cout: int, hint: str, *, add_identity: bool, depthwise: bool) -> str:
    """``CSPNeXtBlock`` (expansion 1.0): 3x3 conv (or DW-separable), then DW-separable 5x5, optional residual."""
    residual = add_identity and cin == cout
    damp = RESIDUAL_DAMP if residual else 1.0
    y = conv_or_dw(g, x, cin, cout, 3, f"{hint}.conv1", depthwise=depthwise)
    y = dw_separable(g, y, cout, cout, 5, f"{hint}.conv2", damp=damp)
    return g.op("Add", [y, x], f"{hint}.add") if residual else y


def darknet_bottleneck(g: Graph, x: str, cin: int, cout: int, hint: str, *, add_identity: bool, depthwise: bool) -> str:
    """``DarknetBottleneck`` (expansion 1.0): 1x1 conv, 3x3 conv (or DW-separable), optional residual."""
    residual = add_identity and cin == cout
    damp = RESIDUAL_DAMP if residual else 1.0
    y = conv_module(g, x, cin, cout, 1, f"{hint}.conv1")
    y = conv_or_dw(g, y, cout, cout, 3, f"{hint}.conv2", depthwise=depthwise, damp=damp)
    return g.op("Add", [y, x], f"{hint}.add") if residual else y


def csp_layer(
    g: Graph,
    x: str,
    cin: int,
    cout: int,
    hint: str,
    *,
    num_blocks: int,
    add_identity: bool,
    depthwise: bool,
    block: Block,
    channel_attention_on: bool = False,
    expand_ratio: float = 0.5,
) -> str:
    """mmdet ``CSPLayer``.

    ``short = 1x1(x)``, ``main = blocks(1x1(x))``, ``cat(main, short)``, optional
    channel attention, then a 1x1 ``final_conv`` to ``cout``.

    Args:
        x: input ``[N, cin, H, W]``.

    Returns:
        ``[N, cout, H, W]``.
    """
    mid = int(cout * expand_ratio)
    mark = g.evaluated()
    short = conv_module(g, x, cin, mid, 1, f"{hint}.short_conv")
    main = conv_module(g, x, cin, mid, 1, f"{hint}.main_conv")
    make = cspnext_block if block == "cspnext" else darknet_bottleneck
    for i in range(num_blocks):
        main = make(g, main, mid, mid, f"{hint}.blocks.{i}", add_identity=add_identity, depthwise=depthwise)
    y = g.op("Concat", [main, short], f"{hint}.cat", axis=1)
    if channel_attention_on:
        y = channel_attention(g, y, 2 * mid, f"{hint}.attention")
    out = conv_module(g, y, 2 * mid, cout, 1, f"{hint}.final_conv")
    g.release_since(mark, keep=[out])
    return out
