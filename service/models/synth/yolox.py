"""YOLOX (CSPDarknet + YOLOXPAFPN + YOLOXHead), decoded for NMS or raw like the Megvii exports."""

from __future__ import annotations

from dataclasses import dataclass

from service.models.synth.csp import csp_layer
from service.models.synth.dense import decode_yolox, grid_points, to_rows
from service.models.synth.graph import Graph
from service.models.synth.layers import conv, conv_module, conv_or_dw, spp_bottleneck
from service.models.synth.pafpn import pafpn

STRIDES = (8, 16, 32)
STACKED_CONVS = 2
NUM_CLASSES = 80  # Megvii COCO exports and the Human-Art configs (which keep num_classes=80)
# in_channels, out_channels, num_blocks, add_identity, use_spp (mmdet ``CSPDarknet.arch_settings['P5']``)
DARKNET_P5 = (
    (64, 128, 3, True, False),
    (128, 256, 9, True, False),
    (256, 512, 9, True, False),
    (512, 1024, 3, False, True),
)
_BIG = 2**62


@dataclass(frozen=True)
class YoloxSpec:
    """One YOLOX size (mmdet ``configs/yolox``, Megvii ``exps/default``)."""

    deepen: float
    widen: float
    depthwise: bool = False


YOLOX_SPECS: dict[str, YoloxSpec] = {
    "yolox-nano": YoloxSpec(0.33, 0.25, depthwise=True),
    "yolox-tiny": YoloxSpec(0.33, 0.375),
    "yolox-s": YoloxSpec(0.33, 0.5),
    "yolox-m": YoloxSpec(0.67, 0.75),
    "yolox-l": YoloxSpec(1.0, 1.0),
    "yolox-x": YoloxSpec(1.33, 1.25),
}


def focus(g: Graph, x: str, cout: int, hint: str) -> str:
    """``Focus``: space-to-depth by strided slicing (top-left, bottom-left, top-right, bottom-right), then 3x3."""
    patches = []
    for row, col in ((0, 0), (1, 0), (0, 1), (1, 1)):
        patches.append(
            g.op(
                "Slice",
                [x, g.const([row, col]), g.const([_BIG, _BIG]), g.const([2, 3]), g.const([2, 2])],
                f"{hint}.patch{row}{col}",
            )  # fmt: skip
        )
    return conv_module(g, g.op("Concat", patches, f"{hint}.cat", axis=1), 12, cout, 3, f"{hint}.conv", zero_dc=True)


def csp_darknet(g: Graph, x: str, spec: YoloxSpec, hint: str = "backbone") -> list[str]:
    """mmdet ``CSPDarknet`` P5: Focus stem, 4 stages of (3x3 s2 conv, [SPP], CSPLayer of Darknet blocks).

    Returns:
        Stages 2, 3, 4: ``[N, C_i, H / s, W / s]`` for strides 8, 16, 32.
    """
    y = focus(g, x, int(DARKNET_P5[0][0] * spec.widen), f"{hint}.stem")
    outs = []
    for i, (cin, cout, blocks, add_identity, use_spp) in enumerate(DARKNET_P5):
        cin, cout = int(cin * spec.widen), int(cout * spec.widen)
        name = f"{hint}.stage{i + 1}"
        mark = g.evaluated()
        y = conv_or_dw(g, y, cin, cout, 3, f"{name}.0", depthwise=spec.depthwise, stride=2)
        if use_spp:
            y = spp_bottleneck(g, y, cout, cout, f"{name}.1")
        y = csp_layer(
            g, y, cout, cout, f"{name}.{2 if use_spp else 1}", num_blocks=max(round(blocks * spec.deepen), 1),
            add_identity=add_identity, depthwise=spec.depthwise, block="darknet",
        )  # fmt: skip
        g.release_since(mark, keep=[y])
        outs.append(y)
    return outs[1:]


def yolox_levels(g: Graph, image: str, spec: YoloxSpec) -> list[tuple[str, str, str, str]]:
    """Backbone, neck and head: per level ``(feat, reg [B,4,h,w], obj [B,1,h,w], cls [B,C,h,w])`` (raw logits)."""
    channels = [int(c * spec.widen) for c in (256, 512, 1024)]
    feat_c = int(256 * spec.widen)
    feats = csp_darknet(g, image, spec)
    feats = pafpn(
        g, feats, channels, num_csp_blocks=max(round(3 * spec.deepen), 1), block="darknet", depthwise=spec.depthwise,
        out_channels=feat_c, out_kernel=1,
    )  # fmt: skip
    levels = []
    for level, feat in enumerate(feats):
        cls_feat = reg_feat = feat
        for i in range(STACKED_CONVS):
            name = f"bbox_head.multi_level_cls_convs.{level}.{i}"
            cls_feat = conv_or_dw(g, cls_feat, feat_c, feat_c, 3, name, depthwise=spec.depthwise)
        for i in range(STACKED_CONVS):
            name = f"bbox_head.multi_level_reg_convs.{level}.{i}"
            reg_feat = conv_or_dw(g, reg_feat, feat_c, feat_c, 3, name, depthwise=spec.depthwise)
        head = "bbox_head.multi_level_conv"
        cls = conv(g, cls_feat, feat_c, NUM_CLASSES, 1, f"{head}_cls.{level}", std_out=0.8, bias_mean=-4.0, center=True)
        reg = conv(g, reg_feat, feat_c, 4, 1, f"{head}_reg.{level}", std_out=0.3, bias_std=0.3, center=True)
        obj = conv(g, reg_feat, feat_c, 1, 1, f"{head}_obj.{level}", std_out=1.0, bias_mean=-3.0, center=True)
        levels.append((feat, reg, obj, cls))
    return levels


def yolox_dense(g: Graph, image: str, spec: YoloxSpec) -> tuple[str, str]:
    """Decoded predictions.

    Returns:
        ``boxes [B, A, 4]`` (x1, y1, x2, y2) and ``scores [B, A, 80]`` = sigmoid(cls) * sigmoid(obj).
    """
    boxes, scores = [], []
    for level, ((feat, reg, obj, cls), stride) in enumerate(zip(yolox_levels(g, image, spec), STRIDES, strict=True)):
        points = grid_points(g, feat, stride, f"priors.{level}")
        boxes.append(decode_yolox(g, points, to_rows(g, reg, 4, f"rows.reg.{level}"), stride, f"boxes.{level}"))
        cls_p = g.op("Sigmoid", [to_rows(g, cls, NUM_CLASSES, f"rows.cls.{level}")], f"cls_prob.{level}")
        obj_p = g.op("Sigmoid", [to_rows(g, obj, 1, f"rows.obj.{level}")], f"obj_prob.{level}")
        scores.append(g.op("Mul", [cls_p, obj_p], f"scores.{level}"))
    return g.op("Concat", boxes, "boxes", axis=1), g.op("Concat", scores, "scores", axis=1)


def yolox_raw(g: Graph, image: str, spec: YoloxSpec, output: str = "output") -> str:
    """Megvii export head output ``[B, A, 5 + 80]``: raw reg (dx, dy, log w, log h), sigmoid obj, sigmoid cls."""
    rows = []
    for level, (_, reg, obj, cls) in enumerate(yolox_levels(g, image, spec)):
        obj_p = g.op("Sigmoid", [obj], f"obj_prob.{level}")
        cls_p = g.op("Sigmoid", [cls], f"cls_prob.{level}")
        cat = g.op("Concat", [reg, obj_p, cls_p], f"pred.{level}", axis=1)
        rows.append(g.op("Reshape", [cat, g.const([0, 5 + NUM_CLASSES, -1])], f"pred_flat.{level}"))
    return g.op("Transpose", [g.op("Concat", rows, "pred_all", axis=2)], output, perm=[0, 2, 1])
