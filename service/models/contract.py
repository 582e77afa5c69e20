"""Check an ONNX file against its config: the repository's I/O contract.

- pose: one input ``[N,3,H,W]`` float32; outputs ``simcc_x [N,K,W*r]`` and
  ``simcc_y [N,K,H*r]`` (r = ``simcc_split_ratio``).
- detector (``dets``): input ``[N,3,S,S]``; outputs ``dets [N,D,5]`` and ``labels [N,D]``.
- detector (``yolox_raw``): one output ``[N,A,5+C]``.

Static dimensions must match; symbolic ones (``dim_param``) are accepted and
checked again at warm-up. The batch axis is either dynamic or a fixed size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from service.models.schema import DetectorOutput, ModelConfig, ModelConfigError, Task

Dim = int | str  # an int for a fixed size, the dim_param (or "?") for a symbolic one

_FLOAT = onnx.TensorProto.FLOAT


@dataclass(frozen=True)
class TensorSpec:
    name: str
    elem_type: int
    shape: tuple[Dim, ...]


@dataclass(frozen=True)
class ModelIO:
    """Inputs, outputs and metadata of an ONNX file, read once at load."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    metadata: dict[str, str]

    @property
    def static_batch(self) -> int | None:
        """The fixed batch size, or None when the batch axis is dynamic."""
        dim = self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else "?"
        return dim if isinstance(dim, int) and dim > 0 else None

    def output(self, name: str) -> TensorSpec:
        return next(o for o in self.outputs if o.name == name)


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor = value.type.tensor_type
    dims: list[Dim] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return TensorSpec(value.name, int(tensor.elem_type), tuple(dims))


def read_io(path: Path) -> ModelIO:
    """Read the graph inputs (minus initializers), outputs and metadata of an ONNX file.

    Raises:
        ModelConfigError: the file is missing or not a valid ONNX model.
    """
    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise ModelConfigError(f"{path}: no such file") from None
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ModelConfigError(f"{path}: not a valid ONNX model ({type(exc).__name__}: {exc})") from None
    initializers = {i.name for i in model.graph.initializer}
    inputs = tuple(_spec(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(_spec(v) for v in model.graph.output)
    metadata = {p.key: p.value for p in model.metadata_props}
    return ModelIO(inputs=inputs, outputs=outputs, metadata=metadata)


def _fits(dim: Dim, expected: int) -> bool:
    return not isinstance(dim, int) or dim == expected


def _check_input(io: ModelIO, config: ModelConfig, fail: _Fail) -> None:
    if len(io.inputs) != 1:
        fail(f"expects exactly 1 input, found {len(io.inputs)}: {[i.name for i in io.inputs]}")
    spec = io.inputs[0]
    if spec.elem_type != _FLOAT:
        fail(f"input '{spec.name}' must be float32, found {onnx.TensorProto.DataType.Name(spec.elem_type)}")
    if len(spec.shape) != 4:
        fail(f"input '{spec.name}' must have rank 4 [N,3,H,W], found shape {list(spec.shape)}")
    width, height = config.input_size
    _, channels, h, w = spec.shape
    if not _fits(channels, 3):
        fail(f"input '{spec.name}' must have 3 channels, found shape {list(spec.shape)}")
    if not (_fits(h, height) and _fits(w, width)):
        fail(
            f"input '{spec.name}' is {w}x{h} (WxH) but config input_size is {width}x{height}: "
            "fix input_size in config.toml or export at that size"
        )


def _check_batch(io: ModelIO, fail: _Fail) -> None:
    batch = io.inputs[0].shape[0]
    for out in io.outputs:
        if out.shape and isinstance(batch, int) and isinstance(out.shape[0], int) and out.shape[0] != batch:
            fail(f"output '{out.name}' batch {out.shape[0]} differs from input batch {batch}")


def _check_pose(io: ModelIO, config: ModelConfig, fail: _Fail) -> None:
    names = [o.name for o in io.outputs]
    for required in ("simcc_x", "simcc_y"):
        if required not in names:
            fail(f"pose models must have outputs 'simcc_x' and 'simcc_y', found {names}")
    width, height = config.input_size
    ratio = config.simcc_split_ratio
    keypoints = config.num_keypoints
    for name, side in (("simcc_x", width), ("simcc_y", height)):
        spec = io.output(name)
        expected = round(side * ratio)
        if len(spec.shape) != 3:
            fail(f"output '{name}' must have rank 3 [N,K,L], found shape {list(spec.shape)}")
        if not _fits(spec.shape[1], keypoints):
            fail(f"output '{name}' has {spec.shape[1]} keypoints but '{config.keypoints}' has {keypoints}")
        if not _fits(spec.shape[2], expected):
            fail(
                f"output '{name}' has width {spec.shape[2]} but input side {side} x simcc_split_ratio {ratio} "
                f"= {expected}"
            )


def _check_detector(io: ModelIO, config: ModelConfig, fail: _Fail) -> None:
    names = [o.name for o in io.outputs]
    if config.output_format is DetectorOutput.DETS:
        if "dets" not in names or "labels" not in names:
            fail(f"detectors must have outputs 'dets' and 'labels' (output_format 'dets'), found {names}")
        dets, labels = io.output("dets"), io.output("labels")
        if len(dets.shape) != 3 or not _fits(dets.shape[2], 5):
            fail(f"output 'dets' must be [N,D,5] (x1,y1,x2,y2,score), found {list(dets.shape)}")
        if len(labels.shape) != 2:
            fail(f"output 'labels' must be [N,D], found {list(labels.shape)}")
        return
    if len(io.outputs) != 1:
        fail(f"output_format 'yolox_raw' expects 1 output [N,A,5+C], found {names}")
    raw = io.outputs[0]
    if len(raw.shape) != 3 or (isinstance(raw.shape[2], int) and raw.shape[2] < 6):
        fail(f"output '{raw.name}' must be [N,A,5+C] with C >= 1 classes, found {list(raw.shape)}")


class _Fail:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, message: str) -> None:
        raise ModelConfigError(f"{self.path}: {message}")


def validate(path: Path, config: ModelConfig) -> ModelIO:
    """Check ``path`` against ``config``; return its I/O description.

    Raises:
        ModelConfigError: naming the file and what differs from the contract.
    """
    io = read_io(path)
    fail = _Fail(path)
    _check_input(io, config, fail)
    _check_batch(io, fail)
    if config.task is Task.POSE:
        _check_pose(io, config, fail)
    else:
        _check_detector(io, config, fail)
    declared = io.metadata.get("weights")
    if declared == "synthetic" and config.weights != "synthetic":
        fail(f"the ONNX metadata marks these weights synthetic but config.toml says weights = '{config.weights}'")
    return io
