"""The pose options as the wire names them, without validation: names, help, flags, the people cap.

The names and types are the ``pose.v1.Options`` message's (the contract); the bounds are
declared once, where the server validates (``service/requests/options.py``,
``PoseOptions``, whose field descriptions are :data:`OPTION_HELP`). This module imports
neither pydantic nor the server's runtime: the client builds its flags here.
"""

from __future__ import annotations

import argparse
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from service.errors import InvalidOptionsError
from service.wire._proto.pose.v1 import pose_pb2 as pb

MAX_PEOPLE = 1000  # the most people (boxes, crops) one image may ask for; POSE_MAX_PEOPLE caps it further
_BRACKET_SLACK = 2 + 2 * 200  # the list's own and a nested one's, and those a model name could hold

OPTION_HELP = {
    "model": "Pose model to use (default: POSE_MODEL).",
    "detector": "Person detector (default: POSE_DETECTOR).",
    "boxes": "Person boxes, x1, y1, x2, y2 in pixels of the original image: skips the detector.",
    "max_people": "Keep at most this many detections (by score).",
    "bbox_threshold": "Detector score threshold.",
    "keypoint_threshold": "Score above which a keypoint counts as visible (default 0.3).",
    "flip_test": "Also run the mirrored crop and average (2x the pose cost).",
}
OPTION_NAMES = tuple(field.name for field in pb.Options.DESCRIPTOR.fields)
_FLAG_TYPES = {FieldDescriptor.TYPE_STRING: str, FieldDescriptor.TYPE_FLOAT: float, FieldDescriptor.TYPE_UINT32: int}


def check_box_count(at_most: int) -> None:
    """Refuse a box list that may hold more than MAX_PEOPLE boxes, before it is parsed or converted.

    Args:
        at_most: an upper bound of the list's length (:func:`boxes_in_text` for text).

    Raises:
        InvalidOptionsError: over MAX_PEOPLE.
    """
    if at_most > MAX_PEOPLE:
        raise InvalidOptionsError(f"boxes: at most {MAX_PEOPLE} boxes per image, the request holds up to {at_most}")


def boxes_in_text(brackets: int) -> int:
    """The most boxes JSON text with ``brackets`` opening brackets can hold: one ``[`` per box, a few others.

    Counting brackets is a linear scan, far cheaper than parsing, and stops million-box and
    deeply nested lists before any parser sees them.
    """
    return max(0, brackets - _BRACKET_SLACK)


def add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--boxes``, ``--max-people``, ... one flag per ``Options`` field (the CLI, the client)."""
    for field in pb.Options.DESCRIPTOR.fields:
        flag = "--" + field.name.replace("_", "-")
        text = OPTION_HELP[field.name]
        if field.name == "boxes":
            parser.add_argument(flag, help=f"{text} JSON: [[x1,y1,x2,y2],...]")
        elif field.type == FieldDescriptor.TYPE_BOOL:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            parser.add_argument(flag, type=_FLAG_TYPES[field.type], help=text)


def option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line (see :func:`add_option_arguments`); ``boxes`` stays JSON text."""
    return {name: getattr(args, name) for name in OPTION_NAMES if getattr(args, name) is not None}
