"""A small ONNX graph builder: unique names, seeded weights, shared constants, eager calibration.

Every synthesized model is built through one :class:`Graph`. Weights come from a
single ``numpy.random.default_rng(seed)`` stream drawn in construction order, so
the same architecture and seed always give the same bytes.

A materialized graph is also evaluated as it is built (:mod:`.eager`) on a
small calibration batch fed with :meth:`Graph.feed`, so layers can fold
BatchNorm with real statistics. With ``materialize=False`` parameters are
declared with their shapes only (no data, no evaluation): the model cannot run,
but parameter counts and FLOPs (both need only shapes) come out identical
without allocating hundreds of megabytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.models.synth.eager import EAGER

OPSET = 11  # what mmdeploy's onnx_config uses for every official export
IR_VERSION = 7
GENERATOR = "rtmpose-service"


class Graph:
    """Accumulates nodes and initializers of one ONNX graph.

    Args:
        seed: seed of the weight stream.
        materialize: fill parameters with data; False declares shapes only.
    """

    def __init__(self, seed: int, *, materialize: bool = True) -> None:
        self.seed = seed
        self.materialize = materialize
        self._model = onnx.ModelProto()  # initializers are written straight into it: no copy of big weights
        self.nodes: list[onnx.NodeProto] = []
        self._rng = np.random.default_rng(seed)
        self._taken: set[str] = set()
        self._consts: dict[tuple[str, tuple[int, ...], bytes], str] = {}
        self._values: dict[str, np.ndarray] = {}

    # names -----------------------------------------------------------------

    def name(self, hint: str) -> str:
        """A graph-unique tensor or node name built from ``hint``."""
        candidate, n = hint, 0
        while candidate in self._taken:
            n += 1
            candidate = f"{hint}_{n}"
        self._taken.add(candidate)
        return candidate

    # calibration values ------------------------------------------------------

    def feed(self, name: str, value: np.ndarray) -> None:
        """Set the calibration value of a graph input (ignored when not materializing)."""
        if self.materialize:
            self._values[name] = value

    def value(self, name: str) -> np.ndarray | None:
        """The calibration value of ``name``, or None where it is not evaluated."""
        return self._values.get(name)

    def set_value(self, name: str, value: np.ndarray | None) -> None:
        """Record the calibration value a builder computed itself (e.g. a calibrated Conv)."""
        if value is not None:
            self._values[name] = value

    def forget(self, *names: str) -> None:
        """Drop calibration values nothing will read again (keeps big builds' memory down)."""
        for name in names:
            self._values.pop(name, None)

    def evaluated(self) -> set[str]:
        """Names that currently have a calibration value (a mark for :meth:`release_since`)."""
        return set(self._values)

    def release_since(self, mark: set[str], keep: Sequence[str]) -> None:
        """Drop the calibration values created after ``mark`` except ``keep`` (a finished module's internals)."""
        for name in [n for n in self._values if n not in mark and n not in keep]:
            del self._values[name]

    def rms(self, name: str) -> float:
        """Root-mean-square of ``name`` on the calibration batch (1.0 where it is not evaluated)."""
        v = self._values.get(name)
        if v is None or v.size == 0:
            return 1.0
        return max(float(np.sqrt(np.mean(np.square(v, dtype=np.float64)))), 1e-6)

    # parameters --------------------------------------------------------------

    def draw_normal(self, shape: Sequence[int], std: float, mean: float = 0.0) -> np.ndarray | None:
        """Draw float32 N(mean, std^2) values from the weight stream (None when not materializing)."""
        if not self.materialize:
            return None
        values = self._rng.standard_normal(tuple(shape), dtype=np.float32)
        values *= np.float32(std)
        if mean:
            values += np.float32(mean)
        return values

    def param(self, hint: str, array: np.ndarray | None, shape: Sequence[int]) -> str:
        """Add a float32 initializer (shape only when ``array`` is None)."""
        name = self.name(hint)
        tensor = self._model.graph.initializer.add()
        tensor.name = name
        tensor.data_type = TensorProto.FLOAT
        tensor.dims.extend(int(d) for d in shape)
        if array is not None:
            if tuple(array.shape) != tuple(shape):
                raise ValueError(f"{name}: array shape {array.shape} differs from declared {tuple(shape)}")
            tensor.raw_data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        return name

    def normal(self, hint: str, shape: Sequence[int], std: float, mean: float = 0.0) -> str:
        """A float32 parameter drawn from N(mean, std^2)."""
        return self.param(hint, self.draw_normal(shape, std, mean), shape)

    def filled(self, hint: str, shape: Sequence[int], value: float) -> str:
        """A float32 parameter with every element ``value`` (e.g. a scale initialised to 1)."""
        array = np.full(tuple(shape), value, dtype=np.float32) if self.materialize else None
        return self.param(hint, array, shape)

    def const(self, value: np.ndarray | Sequence[float] | Sequence[int] | float | int, dtype: type = np.int64) -> str:
        """A small constant, always materialized and shared between identical uses."""
        array: np.ndarray = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            name = self.name("const")
            self._model.graph.initializer.add().CopyFrom(numpy_helper.from_array(array, name=name))
            self._consts[key] = name
            self._values[name] = array
        return self._consts[key]

    def fconst(self, value: np.ndarray | Sequence[float] | float) -> str:
        """A small float32 constant."""
        return self.const(value, np.float32)

    # nodes -------------------------------------------------------------------

    def op(self, op_type: str, inputs: Sequence[str], hint: str | None = None, **attrs: Any) -> str:
        """Append one single-output node; returns its output name."""
        return self.op_n(op_type, inputs, 1, hint, **attrs)[0]

    def op_n(self, op_type: str, inputs: Sequence[str], n_out: int, hint: str | None = None, **attrs: Any) -> list[str]:
        """Append one node with ``n_out`` outputs; returns the output names.

        Single-output nodes of the convolutional ops are evaluated on the
        calibration batch when all their inputs are known.
        """
        base = hint or op_type.lower()
        outputs = [self.name(base if n_out == 1 else f"{base}:{i}") for i in range(n_out)]
        node_name = self.name(f"{op_type}:{base}")
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=node_name, **attrs))
        fn = EAGER.get(op_type)
        if fn is not None and n_out == 1 and all(i in self._values for i in inputs):
            self._values[outputs[0]] = fn([self._values[i] for i in inputs], attrs)
        return outputs

    # model -------------------------------------------------------------------

    def model(
        self,
        name: str,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
        metadata: dict[str, str],
    ) -> onnx.ModelProto:
        """The finished model (opset 11), with ``metadata`` as its metadata_props; the Graph is spent."""
        self._values.clear()
        model, self._model = self._model, onnx.ModelProto()
        model.graph.name = name
        model.graph.node.extend(self.nodes)
        model.graph.input.extend(inputs)
        model.graph.output.extend(outputs)
        model.ir_version = IR_VERSION
        model.producer_name = GENERATOR
        model.opset_import.append(helper.make_opsetid("", OPSET))
        helper.set_model_props(model, metadata)
        return model
