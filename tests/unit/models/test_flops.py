"""Parameter and FLOP counting on hand-made graphs and on the real RTMDet-nano export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from service.models.flops import count_flops, count_params

RTMDET_NANO_PARAMS = 985_960  # every initializer element of the real export
RTMDET_NANO_GFLOPS = 0.31  # model_zoo.md section 2 (320x320)


def _model(nodes: list[onnx.NodeProto], inputs: list, outputs: list, inits: list[onnx.TensorProto]) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "t", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name=name)


def test_conv_counts_one_multiply_add_per_kernel_tap_and_output() -> None:
    # 3x3 stride-2 conv 8 -> 16 channels on 32x32 (pad 1): out 16x16x16, 8*9 taps each
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    m = _model(
        [conv],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_weight("w", 16, 8, 3, 3), _weight("b", 16)],
    )
    assert count_flops(m, (1, 8, 32, 32)) == 16 * 16 * 16 * 8 * 9
    assert count_flops(m, (2, 8, 32, 32)) == 2 * 16 * 16 * 16 * 8 * 9
    assert count_params(m) == 16 * 8 * 9 + 16


def test_grouped_conv_counts_only_its_group_channels() -> None:
    dw = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[5, 5], pads=[2, 2, 2, 2], group=8)
    m = _model(
        [dw],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_weight("w", 8, 1, 5, 5)],
    )
    assert count_flops(m) == 8 * 10 * 10 * 25


def test_matmul_and_gemm_count_the_reduced_dimension() -> None:
    mm = helper.make_node("MatMul", ["x", "w"], ["y"])  # [2, 17, 48] @ [48, 256]
    gemm = helper.make_node("Gemm", ["a", "b"], ["z"], transA=1)  # a [64, 10] -> A^T [10, 64] @ [64, 5]
    m = _model(
        [mm, gemm],
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 17, 48]),
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [64, 10]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
        ],
        [_weight("w", 48, 256), _weight("b", 64, 5)],
    )
    assert count_flops(m) == 2 * 17 * 256 * 48 + 10 * 5 * 64


def test_elementwise_ops_are_not_counted_and_shared_weights_count_once() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1"], kernel_shape=[1, 1]),
        helper.make_node("Conv", ["c1", "w"], ["c2"], kernel_shape=[1, 1]),  # the same initializer again
        helper.make_node("Sigmoid", ["c2"], ["s"]),
        helper.make_node("Mul", ["c2", "s"], ["y"]),
    ]
    m = _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_weight("w", 4, 4, 1, 1)],
    )
    assert count_flops(m) == 2 * (4 * 8 * 8 * 4)
    assert count_params(m) == 16


def test_dynamic_input_needs_a_shape() -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])
    m = _model(
        [conv],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_weight("w", 8, 3, 3, 3)],
    )
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(m)


def test_real_rtmdet_nano_export(rtmdet_nano_onnx: Path) -> None:
    model = onnx.load(str(rtmdet_nano_onnx))
    assert count_params(model) == RTMDET_NANO_PARAMS
    gflops = count_flops(model, (1, 3, 320, 320)) / 1e9
    assert gflops == pytest.approx(RTMDET_NANO_GFLOPS, rel=0.10)
    # multiply-adds scale with the image area and the batch
    assert count_flops(model, (2, 3, 640, 640)) == pytest.approx(8 * gflops * 1e9, rel=0.01)
