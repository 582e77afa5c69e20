"""Pose options, declared once with their bounds: every transport validates into :class:`PoseOptions`.

HTTP extends it with its presentation options (``schemas.py``), gRPC fills it from the
``Options`` message (``protobuf.py``), the CLI from its flags.
"""

from __future__ import annotations

import argparse
import json
import typing
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from service.engine.pipeline import EstimateOptions
from service.errors import InvalidOptionsError

Box = Annotated[list[float], Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in image pixels")]
MAX_BOXES = 1000  # the most boxes any request may carry (POSE_MAX_PEOPLE, at most 1000, caps it further)
_BRACKET_SLACK = 2 + 2 * 200  # the list's own and a nested one's, and those a model name could hold


def check_box_count(at_most: int) -> None:
    """Refuse a box list that may hold more than MAX_BOXES boxes, before it is parsed or converted.

    Args:
        at_most: an upper bound of the list's length (:func:`boxes_in_text` for text).

    Raises:
        InvalidOptionsError: over MAX_BOXES.
    """
    if at_most > MAX_BOXES:
        raise InvalidOptionsError(f"boxes: at most {MAX_BOXES} boxes per image, the request holds up to {at_most}")


def boxes_in_text(brackets: int) -> int:
    """The most boxes JSON text with ``brackets`` opening brackets can hold: one ``[`` per box, a few others.

    Counting brackets is a linear scan, far cheaper than parsing, and stops million-box and
    deeply nested lists before any parser sees them.
    """
    return max(0, brackets - _BRACKET_SLACK)


class PoseOptions(BaseModel):
    """What to estimate and how; None means the service's or the model's default."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = Field(None, max_length=200, description="Pose model to use (default: POSE_MODEL).")
    detector: str | None = Field(None, max_length=200, description="Person detector (default: POSE_DETECTOR).")
    boxes: list[Box] | None = Field(None, max_length=MAX_BOXES, description="Person boxes: skips the detector.")
    max_people: int | None = Field(None, ge=1, le=1000, description="Keep at most this many detections (by score).")
    bbox_threshold: float | None = Field(None, ge=0.0, le=1.0, description="Detector score threshold.")
    keypoint_threshold: float | None = Field(
        None, ge=0.0, le=1000.0, description="Score above which a keypoint counts as visible (default 0.3)."
    )
    flip_test: bool | None = Field(None, description="Also run the mirrored crop and average (2x the pose cost).")

    @field_validator("boxes", mode="before")
    @classmethod
    def _boxes_from_json(cls, value: Any) -> Any:
        if isinstance(value, str | bytes):
            check_box_count(boxes_in_text(value.count("[" if isinstance(value, str) else b"[")))
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"boxes must be JSON like [[x1,y1,x2,y2]]: {exc.msg}") from None
        return value

    def estimate_options(self) -> EstimateOptions:
        """The engine's view of these options (boxes as an (M, 4) float32 array)."""
        boxes = None if self.boxes is None else np.asarray(self.boxes, np.float32).reshape(-1, 4)
        return EstimateOptions(model=self.model, detector=self.detector, boxes=boxes, max_people=self.max_people,
                               bbox_threshold=self.bbox_threshold, flip_test=self.flip_test)  # fmt: skip


def validation_message(exc: ValidationError) -> str:
    """One line per pydantic error: ``field.path: message``."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())


M = typing.TypeVar("M", bound=BaseModel)


def parse_options(model: type[M], values: dict[str, Any]) -> M:
    """Validate ``values`` into ``model`` (PoseOptions, a transport's extension of it, StreamParams).

    Raises:
        InvalidOptionsError: a value out of range, of the wrong type, or an unknown option.
    """
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidOptionsError(validation_message(exc)) from None


def add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--boxes``, ``--max-people``, ... one flag per :class:`PoseOptions` field (the CLI, the client)."""
    for name, field in PoseOptions.model_fields.items():
        flag = "--" + name.replace("_", "-")
        kind = next(t for t in typing.get_args(field.annotation) if t is not type(None))
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=field.description)
        elif name == "boxes":
            parser.add_argument(flag, help="person boxes as JSON [[x1,y1,x2,y2],...]: skips the detector")
        else:
            parser.add_argument(flag, type=kind, help=field.description)


def option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`PoseOptions` fields given on the command line (see :func:`add_option_arguments`)."""
    return {name: getattr(args, name) for name in PoseOptions.model_fields if getattr(args, name) is not None}
