"""RTMDet (CSPNeXt + CSPNeXtPAFPN + RTMDetSepBNHead) with box decoding and NMS in the graph."""

from __future__ import annotations

from dataclasses import dataclass

from service.models.synth.cspnext import SCALES, cspnext, stage_channels
from service.models.synth.dense import decode_distances, grid_points, to_rows
from service.models.synth.graph import Graph
from service.models.synth.layers import conv, conv_or_dw, shared_conv_modules
from service.models.synth.pafpn import pafpn

STRIDES = (8, 16, 32)
STACKED_CONVS = 2
CLS_PRIOR_LOGIT = -5.5  # a few anchors per photo above 0.3, a few dozen above 0.05
REG_DISTANCE = 3.0  # box sides ~3 strides from the prior point


@dataclass(frozen=True)
class RTMDetSpec:
    """One RTMDet size (mmdet ``configs/rtmdet`` and mmpose's person/hand configs)."""

    scale: str
    channels: int  # neck out_channels = head in/feat channels
    csp_blocks: int
    exp_on_reg: bool
    share_conv: bool
    depthwise: bool = False


RTMDET_SPECS: dict[str, RTMDetSpec] = {
    "rtmdet-nano": RTMDetSpec("nano", 64, 1, exp_on_reg=False, share_conv=False, depthwise=True),
    "rtmdet-tiny": RTMDetSpec("t", 96, 1, exp_on_reg=False, share_conv=True),
    "rtmdet-s": RTMDetSpec("s", 128, 1, exp_on_reg=False, share_conv=True),
    "rtmdet-m": RTMDetSpec("m", 192, 2, exp_on_reg=True, share_conv=True),
    "rtmdet-l": RTMDetSpec("l", 256, 3, exp_on_reg=True, share_conv=True),
    "rtmdet-x": RTMDetSpec("x", 320, 4, exp_on_reg=True, share_conv=True),
}


def _stacked(g: Graph, feats: list[str], spec: RTMDetSpec, branch: str) -> list[str]:
    """The 2 stacked 3x3 ConvModules of one branch on every level."""
    c = spec.channels
    if spec.share_conv:
        for i in range(STACKED_CONVS):
            feats = shared_conv_modules(g, feats, c, c, 3, f"bbox_head.{branch}_convs.{i}")
        return feats
    outs = []
    for level, x in enumerate(feats):
        for i in range(STACKED_CONVS):
            x = conv_or_dw(g, x, c, c, 3, f"bbox_head.{branch}_convs.{level}.{i}", depthwise=spec.depthwise)
        outs.append(x)
    return outs


def rtmdet_dense(g: Graph, image: str, spec: RTMDetSpec, num_classes: int) -> tuple[str, str]:
    """Backbone, neck, head and decoding.

    Args:
        image: ``[B, 3, H, W]`` (H, W multiples of 32).

    Returns:
        ``boxes [B, A, 4]`` (x1, y1, x2, y2 in input pixels) and ``scores [B, A, C]``
        (sigmoid), with A = sum over strides s of (H / s) * (W / s).
    """
    scale = SCALES[spec.scale]
    channels = stage_channels(scale)[1:]
    feats = cspnext(g, image, scale, depthwise=spec.depthwise)
    feats = pafpn(
        g, feats, channels, num_csp_blocks=spec.csp_blocks, block="cspnext", depthwise=spec.depthwise,
        out_channels=spec.channels,
    )  # fmt: skip
    cls_feats = _stacked(g, feats, spec, "cls")
    reg_feats = _stacked(g, feats, spec, "reg")
    c = spec.channels
    boxes, scores = [], []
    for level, (feat, cls_feat, reg_feat, stride) in enumerate(zip(feats, cls_feats, reg_feats, STRIDES, strict=True)):
        logits = conv(
            g, cls_feat, c, num_classes, 1, f"bbox_head.rtm_cls.{level}", std_out=1.5, bias_std=0.3,
            bias_mean=CLS_PRIOR_LOGIT, center=True,
        )  # fmt: skip
        if spec.exp_on_reg:
            reg = conv(g, reg_feat, c, 4, 1, f"bbox_head.rtm_reg.{level}", std_out=0.2, bias_mean=1.1, center=True)
            reg = g.op("Exp", [reg], f"bbox_head.rtm_reg.{level}.exp")
        else:
            reg = conv(
                g, reg_feat, c, 4, 1, f"bbox_head.rtm_reg.{level}", std_out=0.6, bias_mean=REG_DISTANCE, center=True
            )
        dist = g.op("Mul", [reg, g.fconst(float(stride))], f"bbox_head.reg_dist.{level}")
        points = grid_points(g, feat, stride, f"priors.{level}")
        boxes.append(decode_distances(g, points, to_rows(g, dist, 4, f"rows.reg.{level}"), f"boxes.{level}"))
        scores.append(g.op("Sigmoid", [to_rows(g, logits, num_classes, f"rows.cls.{level}")], f"scores.{level}"))
    return g.op("Concat", boxes, "boxes", axis=1), g.op("Concat", scores, "scores", axis=1)
