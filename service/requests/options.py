"""Pose options, validated, every bound declared once: every transport validates into :class:`PoseOptions`.

HTTP extends it with its presentation options (``api/http/schemas.py``), gRPC fills it
from the ``Options`` message (``api/grpc/messages.py``), the CLI from its flags. The
names and help texts are the wire's (``service/wire/options.py``); the request layer
turns it into the engine's ``EstimateOptions``.
"""

from __future__ import annotations

import json
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from service.errors import InvalidOptionsError
from service.wire.options import MAX_PEOPLE, OPTION_HELP, boxes_in_text, check_box_count

Box = Annotated[list[float], Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in image pixels")]


class PoseOptions(BaseModel):
    """What to estimate and how; None means the service's or the model's default."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = Field(None, max_length=200, description=OPTION_HELP["model"])
    detector: str | None = Field(None, max_length=200, description=OPTION_HELP["detector"])
    boxes: list[Box] | None = Field(None, max_length=MAX_PEOPLE, description=OPTION_HELP["boxes"])
    max_people: int | None = Field(None, ge=1, le=MAX_PEOPLE, description=OPTION_HELP["max_people"])
    bbox_threshold: float | None = Field(None, ge=0.0, le=1.0, description=OPTION_HELP["bbox_threshold"])
    keypoint_threshold: float | None = Field(None, ge=0.0, le=1000.0, description=OPTION_HELP["keypoint_threshold"])
    flip_test: bool | None = Field(None, description=OPTION_HELP["flip_test"])

    @field_validator("boxes", mode="before")
    @classmethod
    def _boxes_from_json(cls, value: Any) -> Any:
        if isinstance(value, str | bytes):
            brackets = value.count("[") if isinstance(value, str) else value.count(b"[")
            check_box_count(boxes_in_text(brackets))
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"boxes must be JSON like [[x1,y1,x2,y2]]: {exc.msg}") from None
        return value


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
