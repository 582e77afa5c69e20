"""Tiny ONNX files with chosen input/output declarations, for contract tests (never run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Shape = list[int | str]
FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


def io_model(inputs: list[tuple[str, int, Shape]], outputs: list[tuple[str, int, Shape]]) -> onnx.ModelProto:
    """A valid ONNX model whose graph declares exactly these inputs and outputs."""
    nodes = []
    for name, elem, shape in outputs:
        dims = [d if isinstance(d, int) else 1 for d in shape]
        dtype = helper.tensor_dtype_to_np_dtype(elem)
        value = numpy_helper.from_array(np.zeros(dims, dtype=dtype), name=f"{name}_value")
        nodes.append(helper.make_node("Constant", [], [name], value=value))
    graph = helper.make_graph(
        nodes,
        "io",
        [helper.make_tensor_value_info(n, e, s) for n, e, s in inputs],
        [helper.make_tensor_value_info(n, e, s) for n, e, s in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def pose_io(
    k: int = 17,
    w: int = 192,
    h: int = 256,
    *,
    batch: int | str = "batch",
    names: tuple[str, str] = ("simcc_x", "simcc_y"),
    widths: tuple[int, int] | None = None,
) -> onnx.ModelProto:
    wx, wy = widths or (w * 2, h * 2)
    return io_model(
        [("input", FLOAT, [batch, 3, h, w])],
        [(names[0], FLOAT, [batch, k, wx]), (names[1], FLOAT, [batch, k, wy])],
    )  # fmt: skip


def detector_io(side: int = 320, *, batch: int | str = "batch") -> onnx.ModelProto:
    return io_model(
        [("input", FLOAT, [batch, 3, side, side])],
        [("dets", FLOAT, [batch, "num_dets", 5]), ("labels", INT64, [batch, "num_dets"])],
    )


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
