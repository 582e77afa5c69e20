"""Dense-prediction helpers shared by the RTMDet and YOLOX heads: grid priors, flattening, box decoding.

Priors follow mmdet's ``MlvlPointGenerator(offset=0)``: the point of cell
(i, j) at stride s is (j * s, i * s). They are computed from each feature map's
runtime shape, so the graphs accept any input height and width.
"""

from __future__ import annotations

from onnx import TensorProto

from service.models.synth.graph import Graph


def grid_points(g: Graph, feat: str, stride: int, hint: str) -> str:
    """Prior points of one level: ``feat [B, C, h, w]`` -> ``[h * w, 2]`` (x, y) in input pixels, row-major."""
    shape = g.op("Shape", [feat], f"{hint}.shape")
    h = g.op("Gather", [shape, g.const(2)], f"{hint}.h", axis=0)
    w = g.op("Gather", [shape, g.const(3)], f"{hint}.w", axis=0)
    s = g.fconst(float(stride))
    xs = g.op(
        "Mul",
        [
            g.op(
                "Cast", [g.op("Range", [g.const(0), w, g.const(1)], f"{hint}.xr")], f"{hint}.xf", to=TensorProto.FLOAT
            ),
            s,
        ],
        f"{hint}.xs",
    )
    ys = g.op(
        "Mul",
        [
            g.op(
                "Cast", [g.op("Range", [g.const(0), h, g.const(1)], f"{hint}.yr")], f"{hint}.yf", to=TensorProto.FLOAT
            ),
            s,
        ],
        f"{hint}.ys",
    )
    hw = g.op(
        "Concat", [g.op("Unsqueeze", [h], f"{hint}.h1", axes=[0]), g.op("Unsqueeze", [w], f"{hint}.w1", axes=[0])],
        f"{hint}.hw", axis=0,
    )  # fmt: skip
    gx = g.op("Expand", [g.op("Unsqueeze", [xs], f"{hint}.xrow", axes=[0]), hw], f"{hint}.gx")  # [h, w]
    gy = g.op("Expand", [g.op("Unsqueeze", [ys], f"{hint}.ycol", axes=[1]), hw], f"{hint}.gy")  # [h, w]
    col = g.const([-1, 1])
    gx = g.op("Reshape", [gx, col], f"{hint}.px")
    gy = g.op("Reshape", [gy, col], f"{hint}.py")
    return g.op("Concat", [gx, gy], hint, axis=1)


def to_rows(g: Graph, x: str, channels: int, hint: str) -> str:
    """``[B, C, h, w]`` -> ``[B, h * w, C]`` (one row per prior, row-major like the priors)."""
    t = g.op("Transpose", [x], f"{hint}.nhwc", perm=[0, 2, 3, 1])
    return g.op("Reshape", [t, g.const([0, -1, channels])], hint)


def decode_distances(g: Graph, points: str, dist: str, hint: str) -> str:
    """RTMDet ``distance2bbox``: points ``[A, 2]``, distances ``[B, A, 4]`` (l, t, r, b) -> x1, y1, x2, y2."""
    p4 = g.op("Concat", [points, points], f"{hint}.p4", axis=1)
    signed = g.op("Mul", [dist, g.fconst([-1.0, -1.0, 1.0, 1.0])], f"{hint}.signed")
    return g.op("Add", [p4, signed], hint)


def decode_yolox(g: Graph, points: str, reg: str, stride: int, hint: str) -> str:
    """YOLOX box decoding: ``reg [B, A, 4]`` (dx, dy, log w, log h in grid units) -> x1, y1, x2, y2."""
    dxy, dwh = g.op_n("Split", [reg], 2, f"{hint}.split", axis=2, split=[2, 2])
    s = g.fconst(float(stride))
    center = g.op("Add", [g.op("Mul", [dxy, s], f"{hint}.dxy"), points], f"{hint}.center")
    half = g.op("Mul", [g.op("Exp", [dwh], f"{hint}.wh_exp"), g.fconst(stride / 2.0)], f"{hint}.half")
    x1y1 = g.op("Sub", [center, half], f"{hint}.x1y1")
    x2y2 = g.op("Add", [center, half], f"{hint}.x2y2")
    return g.op("Concat", [x1y1, x2y2], hint, axis=2)
