"""``config.toml`` of a model folder, parsed into a frozen, typed model.

Unknown keys and bad values are rejected with an error that names the file and
the field (``ModelConfigError``).
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.devices import Backend, Precision, parse_device
from service.vision.keypoints import KEYPOINT_SETS, KeypointSet

CONFIG_FILE = "config.toml"


class ModelConfigError(ValueError):
    """A model folder's config or ONNX file does not satisfy the repository contract."""


class Task(StrEnum):
    POSE = "pose"
    DETECT = "detect"


class Weights(StrEnum):
    OFFICIAL = "official"  # published OpenMMLab weights (pulled or imported)
    SYNTHETIC = "synthetic"  # architecture-exact, seeded random weights: keypoints are meaningless
    CUSTOM = "custom"  # a user's own export (not from the registry)


class DetectorOutput(StrEnum):
    DETS = "dets"  # mmdeploy end2end: dets [N,D,5] + labels [N,D], NMS in the graph
    YOLOX_RAW = "yolox_raw"  # raw YOLOX head [N,A,5+C] (Megvii exports): grid decode + NMS in numpy


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchingConfig(_Strict):
    """How the model's Batcher forms batches (Triton's dynamic batcher, in items)."""

    max_batch_size: int = Field(32, ge=1, le=1024)
    max_queue_delay_ms: float = Field(2.0, ge=0.0, le=10_000.0)
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = Field(1024, ge=1, le=1_000_000)
    pad_to_preferred: bool | None = Field(
        None, description="Pad batches up to the next preferred size; None = on for CUDA/TensorRT, off on CPU."
    )

    @model_validator(mode="after")
    def _preferred_within_max(self) -> Self:
        sizes = self.preferred_batch_sizes
        if any(s < 1 or s > self.max_batch_size for s in sizes):
            raise ValueError(
                f"preferred_batch_sizes {list(sizes)} must lie in 1..max_batch_size ({self.max_batch_size})"
            )
        if list(sizes) != sorted(set(sizes)):
            raise ValueError(f"preferred_batch_sizes {list(sizes)} must be strictly increasing")
        return self


class InstancesConfig(_Strict):
    """How many sessions serve the model, where, with which runtime and in which precision."""

    count: int = Field(1, ge=1, le=64)
    device: str = "auto"
    threads: int = Field(0, ge=0, le=256, description="Intra-op threads per CPU instance; 0 = automatic.")
    backend: Backend = Field(Backend.ONNXRUNTIME, description="onnxruntime | openvino (CPU; the openvino extra).")
    precision: Precision = Field(
        Precision.FP32, description="fp32 (exact) | bf16 | fp16 | auto (the fastest the backend and device have)."
    )

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        parse_device(value)
        return value


class SourceConfig(_Strict):
    """Where the weights came from; ``sha256`` is the installed model.onnx's."""

    registry: str | None = None
    url: str | None = None
    member: str | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class ModelConfig(_Strict):
    """One model folder's ``config.toml``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    task: Task
    family: Literal["rtmpose", "rtmw", "rtmdet", "yolox"]
    weights: Weights = Weights.CUSTOM
    version: int | None = Field(None, ge=1, description="Version folder to serve; None = the highest present.")
    input_size: tuple[int, int] = Field(description="Network input (width, height).")
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    to_rgb: bool = False

    # pose models
    keypoints: str | None = None
    simcc_split_ratio: float = Field(2.0, gt=0.0)
    bbox_padding: float = Field(1.25, gt=0.0, le=10.0)
    flip_test: bool = False

    # detectors
    output_format: DetectorOutput = DetectorOutput.DETS
    person_class: int = Field(0, ge=0)
    score_threshold: float = Field(0.3, ge=0.0, le=1.0)
    nms_iou_threshold: float = Field(0.65, gt=0.0, le=1.0)

    batching: BatchingConfig = BatchingConfig()
    instances: InstancesConfig = InstancesConfig()
    source: SourceConfig = SourceConfig()

    @field_validator("input_size")
    @classmethod
    def _size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 8 or max(value) > 4096:
            raise ValueError(f"input_size (width, height) must lie in 8..4096, got {list(value)}")
        return value

    @field_validator("std")
    @classmethod
    def _std(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s <= 0 for s in value):
            raise ValueError(f"std must be positive, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _task_fields(self) -> Self:
        if self.task is Task.POSE:
            if self.keypoints is None:
                raise ValueError("pose models need 'keypoints' (one of: " + ", ".join(KEYPOINT_SETS) + ")")
            if self.keypoints not in KEYPOINT_SETS:
                raise ValueError(f"unknown keypoints {self.keypoints!r}; known: " + ", ".join(KEYPOINT_SETS))
        elif self.family in ("rtmpose", "rtmw"):
            raise ValueError(f"family {self.family!r} is a pose family but task is 'detect'")
        return self

    @property
    def keypoint_set(self) -> KeypointSet:
        """A pose model's keypoint set (the validator guarantees one); AttributeError for a detector."""
        if self.keypoints is None:
            raise AttributeError(f"{self.name} is a detector: it has no keypoints")
        return KEYPOINT_SETS[self.keypoints]

    @property
    def num_keypoints(self) -> int:
        return self.keypoint_set.num_keypoints

    def to_toml_dict(self) -> dict[str, Any]:
        """Plain dict for ``tomli_w``: enums as strings, tuples as lists, unset optionals left out."""
        data = self.model_dump(mode="json", exclude_none=True)
        if self.task is Task.DETECT:
            for key in ("keypoints", "simcc_split_ratio", "bbox_padding", "flip_test"):
                data.pop(key, None)
        else:
            for key in ("output_format", "person_class", "score_threshold", "nms_iou_threshold"):
                data.pop(key, None)
        return data


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: field '{field}': {message}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], path: Path) -> ModelConfig:
    """Validate an already-parsed TOML document; errors name ``path`` and the field."""
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as exc:
        raise ModelConfigError(_format_errors(path, exc)) from None


def load_config(path: Path) -> ModelConfig:
    """Read and validate ``config.toml``.

    Raises:
        ModelConfigError: unreadable TOML, unknown keys or bad values (message names file and field).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelConfigError(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelConfigError(f"{path}: not valid TOML: {exc}") from None
    config = parse_config(data, path)
    if config.name != path.parent.name:
        raise ModelConfigError(
            f"{path}: field 'name': {config.name!r} differs from its folder name {path.parent.name!r}"
        )
    return config
