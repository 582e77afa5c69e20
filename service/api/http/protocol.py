"""uvicorn's HTTP/1.1 protocol (httptools) with read timeouts and protocol errors in the one error shape.

What happens before a request reaches the app, where slow clients and malformed bytes are met:

- **header timeout**: a connection has ``POSE_HTTP_HEADER_TIMEOUT_S`` from its first byte (or
  from being opened) to finish a request's headers; then it gets 408 ``request_timeout``
  and is closed (a connection that never sent a byte is closed silently). The body's own
  timeout is the app's (``middleware.ClientMiddleware``), which answers it in full;
- **a body that goes on dripping after the answer** (the request was refused before its
  body was read) is cut ``POSE_HTTP_BODY_TIMEOUT_S`` after the headers;
- **malformed requests** (bad request line, header or framing, a URL over the parser's
  limit) get 400 ``bad_request`` as JSON instead of uvicorn's plain text;
- **a request head over** ``MAX_HEAD_BYTES`` (the parser has no limit of its own on
  headers) gets 431 ``too_large`` and the connection is closed.

Idle keep-alive connections are closed by uvicorn itself (``POSE_HTTP_KEEPALIVE_TIMEOUT_S``).

WebSockets (``/v1/stream``) run on uvicorn's protocol over the websockets library, without
that library's wire-level debug lines (:class:`QuietWebSocketProtocol`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from service.api.http.errors import error_json
from service.config import Settings
from service.errors import BadRequestError, PayloadTooLargeError, RequestTimeoutError

MAX_HEAD_BYTES = 1024 * 1024  # request line and headers; counted per read, so a read's body bytes may count too
LINGER_S = 2.0  # after an error answer: bytes still arriving are read and dropped this long, then the socket closes


class TimedHttpProtocol(HttpToolsProtocol):
    """One client connection (``http_protocol`` sets the timeouts)."""

    header_timeout_s = 10.0
    body_timeout_s = 60.0

    def connection_made(  # type: ignore[override]  # uvicorn's signature: Transport, not asyncio's BaseTransport
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self._timer: asyncio.TimerHandle | None = None
        self._in_request = False  # bytes of a request's head have arrived, not yet all of it
        self._head_bytes = 0
        self._lingering = False
        self._arm(self.header_timeout_s, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        super().data_received(data)
        if self._in_request:  # the head is still incomplete after these bytes
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._disarm()
                message = f"the request line and headers exceed {MAX_HEAD_BYTES} bytes"
                self._answer_and_close(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, PayloadTooLargeError.code, message)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_request = True
        self._head_bytes = 0
        self._arm(self.header_timeout_s, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._in_request = False
        self._arm(self.body_timeout_s, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        self._answer_and_close(HTTPStatus.BAD_REQUEST, BadRequestError.code, f"malformed HTTP request: {msg}")

    def _headers_too_slow(self) -> None:
        if not self._in_request:  # opened, never used: nobody to answer
            self.transport.close()
            return
        message = f"the request headers did not arrive within {self.header_timeout_s:g} s"
        self._answer_and_close(HTTPStatus.REQUEST_TIMEOUT, RequestTimeoutError.code, message)

    def _body_too_slow(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.response_complete:  # answered, but the body still drips in
            self.transport.close()
        # else the app is reading the body and answers 408 itself (ClientMiddleware)

    def _answer_and_close(self, status: HTTPStatus, code: str, message: str) -> None:
        if self.transport.is_closing():
            return
        body = error_json(code, message)
        head = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body),
                 b"connection: close\r\n\r\n"]  # fmt: skip
        self.transport.write(b"".join(head) + body)
        # closing now would reset a connection the client still writes to, and the reset can discard the answer
        # before the client reads it: read and drop what comes for a while (a "lingering close") instead
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def _arm(self, seconds: float, callback: Callable[[], object]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def http_protocol(settings: Settings) -> type[TimedHttpProtocol]:
    """The protocol class for uvicorn's ``http`` option, with the settings' timeouts."""
    attributes = {"header_timeout_s": settings.http_header_timeout_s, "body_timeout_s": settings.http_body_timeout_s}
    return type("TimedHttpProtocol", (TimedHttpProtocol,), attributes)


class QuietWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol without the websockets library's wire-level debug lines.

    At DEBUG that library logs every handshake header, and the ``Authorization`` header and
    the ``bearer.`` subprotocol carry the API key (and every frame, which is only noise).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn.debug = False
