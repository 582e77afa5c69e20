"""Parameter and FLOP counts of any ONNX model, the way OpenMMLab publishes them.

OpenMMLab's model zoos report "FLOPs" from ``mmengine.analysis`` (fvcore's
counter): one multiply-add counts as one FLOP, convolutions and matrix
products count, element-wise ops do not. On an exported graph BatchNorm is
already folded into the convolutions, so counting ``Conv``, ``ConvTranspose``,
``Gemm`` and ``MatMul`` multiply-adds reproduces the published figures (see
docs/synthesis.md for the comparison). Shapes come from ONNX shape inference,
so any model works, including dynamic-axis exports once an input shape is given.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TypeGuard

import onnx
from onnx import TensorProto, helper, shape_inference

logger = logging.getLogger(__name__)

_SMALL = 4096  # initializers up to this many elements keep their data for shape inference (reshape targets...)


def count_params(model: onnx.ModelProto) -> int:
    """Number of elements stored in the model's initializers (each counted once, even when shared).

    Constant tensors an exporter stores as initializers (reshape targets, NMS
    thresholds) are included: they are a few dozen elements.
    """
    return sum(math.prod(init.dims) for init in model.graph.initializer)


def _shape_model(model: onnx.ModelProto, input_shape: Sequence[int] | None) -> onnx.ModelProto:
    """A light copy for shape inference: big initializers become typed graph inputs, the first input is fixed."""
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = []
    first = True
    for value in graph.input:
        if value.name in inits:
            continue
        if first:
            elem = value.type.tensor_type.elem_type or TensorProto.FLOAT
            shape = list(input_shape) if input_shape is not None else _declared_shape(value)
            value = helper.make_tensor_value_info(value.name, elem, shape)
        first = False
        inputs.append(value)
    small = []
    for init in graph.initializer:
        if math.prod(init.dims) <= _SMALL and (init.raw_data or _has_typed_data(init)):
            small.append(init)
        else:
            inputs.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    light = helper.make_graph(list(graph.node), graph.name, inputs, list(graph.output), initializer=small)
    return helper.make_model(light, opset_imports=list(model.opset_import), ir_version=max(model.ir_version, 4))


def _declared_shape(value: onnx.ValueInfoProto) -> list[int | str]:
    """The declared input shape with a symbolic batch axis read as 1 (other symbolic axes stay symbolic)."""
    dims: list[int | str] = []
    for i, d in enumerate(value.type.tensor_type.shape.dim):
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        else:
            dims.append(1 if i == 0 else d.dim_param or f"unk_{i}")
    return dims


def _has_typed_data(t: TensorProto) -> bool:
    return bool(t.float_data or t.int64_data or t.int32_data or t.double_data)


def _shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Static dims of every tensor ONNX shape inference can resolve (None for unknown dims)."""
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, list[int | None]] = {}
    values = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    for value in values:
        t = value.type.tensor_type
        if not t.HasField("shape"):
            continue
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    for init in inferred.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _known(shape: list[int | None] | None) -> TypeGuard[list[int]]:
    return shape is not None and all(d is not None for d in shape)


def _node_flops(node: onnx.NodeProto, shapes: dict[str, list[int | None]]) -> int | None:
    """Multiply-adds of one node; 0 for uncounted ops, None when a needed shape is unknown."""
    op = node.op_type
    if op not in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
        return 0
    out = shapes.get(node.output[0])
    a = shapes.get(node.input[0])
    b = shapes.get(node.input[1])
    if not (_known(out) and _known(a) and _known(b)):
        return None
    if op == "Conv":
        return math.prod(out) * math.prod(b[1:])  # per output element: Cin / groups * kernel
    if op == "ConvTranspose":
        return math.prod(a) * math.prod(b[1:])  # weight [Cin, Cout / groups, k...]: per input element
    if op == "MatMul":
        return math.prod(out) * (a[-1] if len(a) > 1 else a[0])
    trans_a = next((helper.get_attribute_value(x) for x in node.attribute if x.name == "transA"), 0)
    return math.prod(out) * (a[0] if trans_a else a[-1])


def count_flops(model: onnx.ModelProto, input_shape: Sequence[int] | None = None) -> int:
    """Multiply-adds of one forward pass, as OpenMMLab publishes "FLOPs".

    Args:
        model: any ONNX model.
        input_shape: shape for the first graph input, e.g. ``(1, 3, 256, 192)``;
            by default its declared shape with a symbolic batch read as 1 (so it is
            required when the spatial axes are symbolic, as in detector exports).

    Raises:
        ValueError: a Conv/MatMul/Gemm shape stays unknown (give ``input_shape``).
    """
    shapes = _shapes(_shape_model(model, input_shape))
    total = 0
    for node in model.graph.node:
        flops = _node_flops(node, shapes)
        if flops is None:
            raise ValueError(
                f"cannot count FLOPs: the shape around {node.op_type} node {node.name or node.output[0]!r} is unknown; "
                "pass input_shape=(N, C, H, W)"
            )
        total += flops
    return total
