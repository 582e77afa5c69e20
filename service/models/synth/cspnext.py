"""CSPNeXt P5 backbone (mmdet ``CSPNeXt``), used by RTMPose, RTMW and RTMDet."""

from __future__ import annotations

from dataclasses import dataclass

from service.models.synth.csp import csp_layer
from service.models.synth.graph import Graph
from service.models.synth.layers import conv_module, conv_or_dw, spp_bottleneck

# in_channels, out_channels, num_blocks, add_identity, use_spp (mmdet ``CSPNeXt.arch_settings['P5']``)
P5 = ((64, 128, 3, True, False), (128, 256, 6, True, False), (256, 512, 6, True, False), (512, 1024, 3, False, True))


@dataclass(frozen=True)
class Scale:
    """Depth and width multipliers of one model size."""

    deepen: float
    widen: float


# mmdet/mmpose configs: tiny 0.167/0.375, s 0.33/0.5, m 0.67/0.75, l 1/1, x 1.33/1.25; nano 0.33/0.25
SCALES: dict[str, Scale] = {
    "nano": Scale(0.33, 0.25),
    "t": Scale(0.167, 0.375),
    "s": Scale(0.33, 0.5),
    "m": Scale(0.67, 0.75),
    "l": Scale(1.0, 1.0),
    "x": Scale(1.33, 1.25),
}


def stage_channels(scale: Scale) -> list[int]:
    """Output channels of stages 1..4 for ``scale``."""
    return [int(out * scale.widen) for _, out, _, _, _ in P5]


def cspnext(g: Graph, x: str, scale: Scale, *, depthwise: bool = False, hint: str = "backbone") -> list[str]:
    """The CSPNeXt P5 backbone (channel attention on, expand ratio 0.5, SPP in stage 4).

    Args:
        x: image ``[N, 3, H, W]``.

    Returns:
        Outputs of stages 2, 3 and 4: ``[N, C_i, H / s, W / s]`` for strides 8, 16, 32
        and ``C_i = stage_channels(scale)[1:]``.
    """
    stem = int(P5[0][0] * scale.widen // 2)
    y = conv_module(g, x, 3, stem, 3, f"{hint}.stem.0", stride=2, zero_dc=True)
    y = conv_module(g, y, stem, stem, 3, f"{hint}.stem.1")
    y = conv_module(g, y, stem, int(P5[0][0] * scale.widen), 3, f"{hint}.stem.2")
    outs = []
    for i, (cin, cout, blocks, add_identity, use_spp) in enumerate(P5):
        cin, cout = int(cin * scale.widen), int(cout * scale.widen)
        num_blocks = max(round(blocks * scale.deepen), 1)
        name = f"{hint}.stage{i + 1}"
        mark = g.evaluated()
        y = conv_or_dw(g, y, cin, cout, 3, f"{name}.0", depthwise=depthwise, stride=2)
        if use_spp:
            y = spp_bottleneck(g, y, cout, cout, f"{name}.1")
        y = csp_layer(
            g, y, cout, cout, f"{name}.{2 if use_spp else 1}", num_blocks=num_blocks, add_identity=add_identity,
            depthwise=depthwise, block="cspnext", channel_attention_on=True,
        )  # fmt: skip
        g.release_since(mark, keep=[y])
        outs.append(y)
    return outs[1:]
