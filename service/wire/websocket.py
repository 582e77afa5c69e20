"""The WebSocket stream's wire (``/v1/stream``): frame header, subprotocols, close codes. No server runtime.

- The first message is text: the stream's config as JSON (``StreamConfig``'s fields).
- Each frame is one binary message: :data:`FRAME_HEADER` (``uint64 frame_id``, ``float64
  timestamp`` in seconds, little-endian, 16 bytes) then the encoded image. An empty binary
  message says "no more frames" (gRPC's half-close): the service answers what it took, then
  closes with 1000.
- Each answer is one text message, JSON, in frame order; a stream-level error is one
  ``{"error": {"code", "message"}}`` message followed by the close (:func:`close_code`).
- Auth: ``Authorization: Bearer <key>`` on the handshake, or, for browsers (which cannot
  set headers), the subprotocol list ``["pose.v1", "bearer.<base64url(key)>"]``
  (:func:`bearer_subprotocol`); the service answers with ``pose.v1``. The key never goes
  into the URL.
"""

from __future__ import annotations

import base64
import binascii
import struct
from http import HTTPStatus

__all__ = [
    "BEARER_PREFIX",
    "FRAME_HEADER",
    "SUBPROTOCOL",
    "bearer_from_subprotocols",
    "bearer_subprotocol",
    "close_code",
    "pack_frame",
    "unpack_header",
]

FRAME_HEADER = struct.Struct("<Qd")  # frame_id, timestamp (seconds; 0 = the arrival time)
SUBPROTOCOL = "pose.v1"
BEARER_PREFIX = "bearer."

# RFC 6455 close codes (section 7.4.1) and the IANA registry's 1012-1014
NORMAL = 1000
GOING_AWAY = 1001  # the service is shutting down: reconnect to another instance
POLICY_VIOLATION = 1008  # a bad config, a bad message, a bad key, an idle stream
MESSAGE_TOO_BIG = 1009  # a message over the size limit (sent by the WebSocket layer itself)
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013  # too many streams, not ready: retry later


def pack_frame(frame_id: int, timestamp: float, image: bytes) -> bytes:
    """One frame message: the header, then the encoded image (JPEG, PNG, WebP)."""
    return FRAME_HEADER.pack(frame_id, timestamp) + image


def unpack_header(message: bytes) -> tuple[int, float]:
    """``(frame_id, timestamp)`` of a frame message (its image is ``message[FRAME_HEADER.size:]``).

    Raises:
        struct.error: the message is shorter than the header.
    """
    frame_id, timestamp = FRAME_HEADER.unpack_from(message)
    return int(frame_id), float(timestamp)


def bearer_subprotocol(key: str) -> str:
    """The subprotocol entry that carries ``key`` (base64url without padding: any key fits a token)."""
    return BEARER_PREFIX + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def bearer_from_subprotocols(offered: list[str]) -> str | None:
    """The key of the first ``bearer.`` entry of the offered subprotocols (None: none, or not base64url)."""
    for entry in offered:
        if entry.startswith(BEARER_PREFIX):
            encoded = entry.removeprefix(BEARER_PREFIX)
            try:
                padded = encoded + "=" * (-len(encoded) % 4)
                return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return None
    return None


def close_code(status: HTTPStatus, code: str) -> int:
    """The close code that follows a stream-level error (its HTTP status and ``error.code``; the JSON says which)."""
    if code == "shutting_down":
        return GOING_AWAY
    if status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE):
        return TRY_AGAIN_LATER
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return INTERNAL_ERROR
    return POLICY_VIOLATION
