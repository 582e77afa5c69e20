"""In-graph detector post-processing, as mmdeploy's end2end exports do it.

Dense predictions ``boxes [B, A, 4]`` (x1, y1, x2, y2 in input pixels) and
``scores [B, A, C]`` go through a pre-NMS top-k, the standard ONNX
``NonMaxSuppression`` (per class) and a keep-top-k, and come out per image,
padded to a common count D: ``dets [B, D, 5]`` (x1, y1, x2, y2, score) sorted by
score and ``labels [B, D]`` int64. Padding rows are all zero (score 0) with
label -1, and D = min(keep_top_k, total kept over the batch + 1), so D >= 1.
Everything works for any batch size and any input height and width.
"""

from __future__ import annotations

from dataclasses import dataclass

from onnx import TensorProto, helper

from service.models.synth.graph import Graph


@dataclass(frozen=True)
class NmsConfig:
    """Thresholds of the in-graph NMS (mmdeploy ``post_processing`` / the model ``test_cfg``)."""

    score_threshold: float = 0.05
    iou_threshold: float = 0.6
    pre_top_k: int = 5000
    max_per_class: int = 200
    keep_top_k: int = 100


def _dim(g: Graph, x: str, axis: int, hint: str) -> str:
    """``x.shape[axis]`` as a 1-D int64 tensor of one element."""
    return g.op("Slice", [g.op("Shape", [x], f"{hint}.shape"), g.const([axis]), g.const([axis + 1])], hint)


def _min_dim(g: Graph, a: str, limit: int, hint: str) -> str:
    """``min(a, limit)`` for a 1-D int64 ``a`` (opset 11 Min takes floats only)."""
    k = g.const([limit])
    return g.op("Where", [g.op("Less", [a, k], f"{hint}.less"), a, k], hint)


def _gather_rows(g: Graph, x: str, idx: str, width: int | None, hint: str) -> str:
    """Batched gather along axis 1: ``x [B, N, W]`` (or ``[B, N]``) at ``idx [B, k]``."""
    if width is None:
        return g.op("GatherElements", [x, idx], hint, axis=1)
    idx3 = g.op("Unsqueeze", [idx], f"{hint}.idx", axes=[2])
    shape = g.op("Concat", [g.op("Shape", [idx], f"{hint}.idx_shape"), g.const([width])], f"{hint}.shape", axis=0)
    return g.op("GatherElements", [x, g.op("Expand", [idx3, shape], f"{hint}.idx_b")], hint, axis=1)


def multiclass_nms(g: Graph, boxes: str, scores: str, num_classes: int, cfg: NmsConfig) -> tuple[str, str]:
    """Per-class NMS with per-image padded outputs.

    Args:
        boxes: ``[B, A, 4]`` x1, y1, x2, y2.
        scores: ``[B, A, C]`` in [0, 1].

    Returns:
        ``dets [B, D, 5]`` and ``labels [B, D]`` (int64), as described in the module docstring.
    """
    h = "nms"
    c = num_classes
    # pre-NMS top-k by the best class score
    best = g.op("ReduceMax", [scores], f"{h}.best", axes=[-1], keepdims=0)
    k = _min_dim(g, _dim(g, best, 1, f"{h}.num_anchors"), cfg.pre_top_k, f"{h}.pre_k")
    _, top = g.op_n("TopK", [best, k], 2, f"{h}.pre_topk", axis=1, largest=1, sorted=1)
    boxes_k = _gather_rows(g, boxes, top, 4, f"{h}.boxes")
    scores_k = _gather_rows(g, scores, top, c, f"{h}.scores")
    scores_t = g.op("Transpose", [scores_k], f"{h}.scores_t", perm=[0, 2, 1])  # [B, C, k]
    selected = g.op(
        "NonMaxSuppression",
        [
            boxes_k,
            scores_t,
            g.const([cfg.max_per_class]),
            g.fconst([cfg.iou_threshold]),
            g.fconst([cfg.score_threshold]),
        ],
        f"{h}.selected",
    )  # [M, 3]: batch, class, box
    b_idx = g.op("Gather", [selected, g.const(0)], f"{h}.b", axis=1)
    c_idx = g.op("Gather", [selected, g.const(1)], f"{h}.c", axis=1)
    i_idx = g.op("Gather", [selected, g.const(2)], f"{h}.i", axis=1)
    k_scalar = g.op("Squeeze", [k], f"{h}.k", axes=[0])
    # boxes and scores of the kept detections: [M, 4] and [M]
    flat_boxes = g.op("Reshape", [boxes_k, g.const([-1, 4])], f"{h}.flat_boxes")
    row = g.op("Add", [g.op("Mul", [b_idx, k_scalar], f"{h}.b_k"), i_idx], f"{h}.row")
    kept_boxes = g.op("Gather", [flat_boxes, row], f"{h}.kept_boxes", axis=0)
    flat_scores = g.op("Reshape", [scores_t, g.const([-1])], f"{h}.flat_scores")
    bc = g.op("Add", [g.op("Mul", [b_idx, g.const(c)], f"{h}.b_c"), c_idx], f"{h}.bc")
    srow = g.op("Add", [g.op("Mul", [bc, k_scalar], f"{h}.bc_k"), i_idx], f"{h}.srow")
    kept_scores = g.op(
        "Unsqueeze", [g.op("Gather", [flat_scores, srow], f"{h}.kept_s", axis=0)], f"{h}.kept_s1", axes=[1]
    )
    kept = g.op("Concat", [kept_boxes, kept_scores], f"{h}.kept", axis=1)  # [M, 5]
    # scatter to images: [B, M, 5] with rows of other images zeroed
    batch = _dim(g, boxes, 0, f"{h}.batch")
    images = g.op("Range", [g.const(0), g.op("Squeeze", [batch], f"{h}.b0", axes=[0]), g.const(1)], f"{h}.images")
    mask = g.op(
        "Equal",
        [g.op("Unsqueeze", [b_idx], f"{h}.b_row", axes=[0]), g.op("Unsqueeze", [images], f"{h}.img_col", axes=[1])],
        f"{h}.mask",
    )  # [B, M]
    dets_all = g.op(
        "Where",
        [
            g.op("Unsqueeze", [mask], f"{h}.mask3", axes=[2]),
            g.op("Unsqueeze", [kept], f"{h}.kept3", axes=[0]),
            g.fconst(0.0),
        ],
        f"{h}.dets_all",
    )
    labels_all = g.op(
        "Where", [mask, g.op("Unsqueeze", [c_idx], f"{h}.c_row", axes=[0]), g.const(-1)], f"{h}.labels_all"
    )
    # one padding row so that D >= 1 even when nothing is kept
    pad_dets = g.op(
        "ConstantOfShape", [g.op("Concat", [batch, g.const([1, 5])], f"{h}.pad_shape", axis=0)], f"{h}.pad_dets",
        value=_tensor(TensorProto.FLOAT, 0.0),
    )  # fmt: skip
    pad_labels = g.op(
        "ConstantOfShape", [g.op("Concat", [batch, g.const([1])], f"{h}.pad_lshape", axis=0)], f"{h}.pad_labels",
        value=_tensor(TensorProto.INT64, -1),
    )  # fmt: skip
    dets_all = g.op("Concat", [dets_all, pad_dets], f"{h}.dets_padded", axis=1)  # [B, M + 1, 5]
    labels_all = g.op("Concat", [labels_all, pad_labels], f"{h}.labels_padded", axis=1)  # [B, M + 1]
    # keep the top-k per image by score
    score_all = g.op("Gather", [dets_all, g.const(4)], f"{h}.score_all", axis=2)  # [B, M + 1]
    keep = _min_dim(g, _dim(g, score_all, 1, f"{h}.num_kept"), cfg.keep_top_k, f"{h}.keep_k")
    _, order = g.op_n("TopK", [score_all, keep], 2, f"{h}.keep_topk", axis=1, largest=1, sorted=1)
    dets = _gather_rows(g, dets_all, order, 5, "dets")
    labels = _gather_rows(g, labels_all, order, None, "labels")
    return dets, labels


def _tensor(dtype: int, value: float) -> TensorProto:
    """The one-element ``value`` attribute of a ConstantOfShape."""
    return helper.make_tensor("value", dtype, [1], [value])
