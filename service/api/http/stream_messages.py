"""WebSocket stream messages -> the request layer's stream types, and answers -> JSON (the server's side).

The wire itself (frame header, subprotocols, close codes) is ``service/wire/websocket.py``,
which clients share. This is the WebSocket twin of ``service/api/grpc/messages.py``.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from service.errors import BadRequestError, PoseError
from service.requests.images import EncodedImage
from service.requests.options import parse_options
from service.requests.streams import FrameIn, FrameOut, StreamParams
from service.wire import formats
from service.wire.options import boxes_in_text, check_box_count
from service.wire.websocket import FRAME_HEADER, unpack_header

MAX_CONFIG_CHARS = 256 * 1024  # a config with MAX_PEOPLE boxes is ~50 KB of JSON


def stream_params_from(text: str) -> StreamParams:
    """The first message, a JSON object with ``StreamConfig``'s fields (``{}``: every default), validated.

    Raises:
        BadRequestError: not a JSON object, or longer than MAX_CONFIG_CHARS.
        InvalidOptionsError: an unknown field, or a value out of range.
    """
    if len(text) > MAX_CONFIG_CHARS:
        raise BadRequestError(f"the stream's config message is over {MAX_CONFIG_CHARS} characters")
    check_box_count(boxes_in_text(text.count("[")))  # before a million boxes become Python lists
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"the first message must be the stream's config as a JSON object: {exc.msg}") from None
    if not isinstance(values, dict):
        raise BadRequestError("the first message must be the stream's config as a JSON object, e.g. {}")
    return parse_options(StreamParams, values)


def frame_from(message: bytes) -> FrameIn:
    """A binary frame message as the stream's input; a frame whose timestamp is not finite carries its error.

    Raises:
        BadRequestError: shorter than the 16-byte header: there is no frame id to answer it with.
    """
    try:
        frame_id, timestamp = unpack_header(message)
    except struct.error:
        raise BadRequestError(
            f"a frame message starts with a {FRAME_HEADER.size}-byte header (uint64 frame_id, float64 timestamp, "
            f"little-endian); got {len(message)} bytes"
        ) from None
    image: EncodedImage | PoseError = EncodedImage(message[FRAME_HEADER.size :])
    if not math.isfinite(timestamp):
        image, timestamp = BadRequestError(f"frame {frame_id}: the timestamp must be finite, got {timestamp}"), 0.0
    return FrameIn(frame_id=frame_id, timestamp=timestamp, image=image)


def answer(out: FrameOut) -> dict[str, Any]:
    """One frame's answer: HTTP's native person plus ``track_id``, the drops since the last answer, the error."""
    message: dict[str, Any] = {
        "frame_id": out.frame_id,
        "people": [],
        "dropped_frame_ids": list(out.dropped),
        "detected": out.detected,
        "error": None if out.error is None else {"code": out.error.code, "message": out.error.message},
        "width": None,
        "height": None,
        "model": None,
        "timing_ms": {},
        "drops_only": out.drops_only,
    }
    if out.result is not None and out.track_ids is not None:
        native = formats.native(out.result, out.visible)
        for person, track_id in zip(native["people"], out.track_ids.tolist(), strict=True):
            person["track_id"] = track_id
        message.update(people=native["people"], width=out.result.width, height=out.result.height,
                       model=native["model"], timing_ms=native["timing_ms"])  # fmt: skip
    return message


def error_message(code: str, message: str) -> str:
    """A stream-level error, the one message before the close: HTTP's error shape."""
    return json.dumps({"error": {"code": code, "message": message}})
