"""The WebSocket stream's wire (service/wire/websocket.py) and the server's messages (api/http/stream_messages.py)."""

from __future__ import annotations

import json
import math
import struct
from http import HTTPStatus

import numpy as np
import pytest

from service.api.http import stream_messages
from service.errors import BadRequestError, InvalidOptionsError, QueueFullError
from service.requests.images import EncodedImage
from service.requests.streams import FrameOut
from service.wire import websocket as wire
from service.wire.results import PoseResult


def test_a_frame_is_a_16_byte_little_endian_header_then_the_image() -> None:
    message = wire.pack_frame(2**64 - 1, 1.5, b"JPEG")
    assert message == struct.pack("<Qd", 2**64 - 1, 1.5) + b"JPEG"
    assert wire.unpack_header(message) == (2**64 - 1, 1.5)
    frame = stream_messages.frame_from(message)
    assert (frame.frame_id, frame.timestamp, frame.image) == (2**64 - 1, 1.5, EncodedImage(b"JPEG"))


def test_a_frame_shorter_than_its_header_is_a_protocol_error_and_a_nan_timestamp_an_in_band_one() -> None:
    with pytest.raises(BadRequestError, match="16-byte header"):
        stream_messages.frame_from(b"\x00" * 15)
    frame = stream_messages.frame_from(wire.pack_frame(3, math.nan, b"JPEG"))
    assert isinstance(frame.image, BadRequestError)
    assert frame.timestamp == 0.0


@pytest.mark.parametrize("key", ["k", "s3cr3t/+=", "ключ", "a" * 200])
def test_any_key_round_trips_through_a_subprotocol_token(key: str) -> None:
    entry = wire.bearer_subprotocol(key)
    assert all(c.isalnum() or c in "-_." for c in entry), entry  # an RFC 7230 token
    assert wire.bearer_from_subprotocols(["pose.v1", entry]) == key


def test_no_or_a_malformed_bearer_entry_is_no_key() -> None:
    assert wire.bearer_from_subprotocols(["pose.v1"]) is None
    assert wire.bearer_from_subprotocols(["bearer.!!"]) is None


@pytest.mark.parametrize(
    ("status", "code", "close"),
    [
        (HTTPStatus.BAD_REQUEST, "bad_request", 1008),
        (HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_options", 1008),
        (HTTPStatus.REQUEST_TIMEOUT, "stream_idle", 1008),
        (HTTPStatus.TOO_MANY_REQUESTS, "too_many_streams", 1013),
        (HTTPStatus.SERVICE_UNAVAILABLE, "not_ready", 1013),
        (HTTPStatus.SERVICE_UNAVAILABLE, "shutting_down", 1001),
        (HTTPStatus.INTERNAL_SERVER_ERROR, "internal", 1011),
    ],
)
def test_close_codes(status: HTTPStatus, code: str, close: int) -> None:
    assert wire.close_code(status, code) == close


def test_the_config_is_a_json_object_of_stream_params() -> None:
    params = stream_messages.stream_params_from('{"det_interval": 5, "smoothing": {"beta": 0.1}, "options": {}}')
    assert (params.det_interval, params.smoothing.beta) == (5, 0.1)
    assert stream_messages.stream_params_from("{}") == stream_messages.stream_params_from('{"smooth": false}')
    with pytest.raises(InvalidOptionsError, match="boxes"):
        stream_messages.stream_params_from(json.dumps({"options": {"boxes": [[0, 0, 1, 1]] * 2000}}))
    with pytest.raises(BadRequestError, match="characters"):
        stream_messages.stream_params_from(" " * (stream_messages.MAX_CONFIG_CHARS + 1))


def test_an_answer_is_the_native_person_plus_its_track_id() -> None:
    keypoints = np.zeros((2, 17, 3), np.float32)
    keypoints[..., 2] = 0.9
    boxes = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32)
    result = PoseResult(640, 480, "pose", "det", "coco17", "official", boxes, np.array([0.9, 0.8], np.float32),
                        np.array([0.7, 0.6], np.float32), keypoints, {"pose": 1.0})  # fmt: skip
    out = FrameOut(4, result=result, track_ids=np.array([3, 9]), detected=True, dropped=(2,), keypoint_threshold=0.3)
    answer = stream_messages.answer(out)
    assert [p["track_id"] for p in answer["people"]] == [3, 9]
    assert answer["people"][0]["bbox"] == [1, 2, 3, 4]
    assert all(answer["people"][0]["visible"])
    assert (answer["frame_id"], answer["dropped_frame_ids"], answer["width"], answer["model"]["keypoints"]) == (
        4, [2], 640, "coco17")  # fmt: skip
    failed = stream_messages.answer(FrameOut(5, error=QueueFullError("no room")))
    assert failed["error"] == {"code": "queue_full", "message": "no room"}
    assert (failed["people"], failed["width"], failed["model"]) == ([], None, None)
    json.dumps(answer)  # plain JSON types only
