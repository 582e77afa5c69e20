"""WebSocket camera streams (``/v1/stream``): a thin transport over the request layer's stream driver.

The same :func:`~service.requests.streams.serve_stream` as gRPC's ``Stream`` (the slot from
the start, the config within the idle timeout, tracking, ``det_interval``, drop-oldest in
the buffer and the decode budget, in-band frame errors, smoothing, the shutdown drain), in
the same :class:`~service.requests.streams.StreamRegistry` (``POSE_MAX_STREAMS`` counts
both transports). This module only speaks WebSocket (the wire is
``service/wire/websocket.py``, the messages ``stream_messages.py``):

1. the handshake: the key (``Authorization`` header, or a ``bearer.<base64url>``
   subprotocol) is checked before anything else is read or answered (401, as an HTTP
   answer: no WebSocket is opened); then the ``Origin`` (a browser's) must be this host's or
   one of POSE_CORS_ORIGINS (403), and a subprotocol list must offer ``pose.v1`` (400);
2. accepted (echoing ``pose.v1`` when offered); the service must serve (else one JSON error
   and 1013 / 1001);
3. the first message, text, within POSE_STREAM_IDLE_TIMEOUT_S: the config (a bad one: one
   JSON error, then 1008); then binary frames, read as fast as they come (the session drops
   the oldest waiting when the client is faster than the service); text where a frame
   belongs, or a message shorter than the header, ends the stream (1008); an empty binary
   message ends the input (answers still come, then 1000);
4. answers in frame order as they are ready; on shutdown a stream reads no more, drops
   what waits (reported), answers what is in flight, then gets ``shutting_down`` and 1001.

Request metrics with ``protocol="websocket"``, endpoint ``/v1/stream``; the code label is the
HTTP status of a refused handshake ("401"), the close code the service sent ("1000",
"1008", ...), or "499" when the client went away first.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from http import HTTPStatus
from urllib.parse import urlsplit

from fastapi import WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from service import metrics
from service.api.http import stream_messages
from service.api.http.errors import error_body, error_response
from service.api.observe import internal_message, record_request, request_id_from, unhandled
from service.errors import BadRequestError, CallEndedError, PoseError
from service.inflight import InFlight
from service.logs import request_id
from service.requests.layer import PoseRequests
from service.requests.streams import FrameOut, Incoming, StreamRegistry, serve_stream
from service.wire import websocket as wire

logger = logging.getLogger(__name__)

ENDPOINT = "/v1/stream"
CLIENT_CLOSED = "499"


class _ClientGoneError(CallEndedError):
    """The client closed the connection (or it broke, or sent a message over the size limit): nothing more can be
    sent."""

    def __init__(self, code: int) -> None:
        super().__init__(f"client closed with {code}")
        self.close_code = code


class WebSocketStreams:
    """Every WebSocket stream of the app: the endpoint, and shutdown's drain."""

    def __init__(self, requests: PoseRequests, registry: StreamRegistry) -> None:
        self.requests = requests
        self.registry = registry
        self.in_flight = InFlight(metrics.REQUESTS_IN_PROGRESS.labels("websocket"))

    async def endpoint(self, websocket: WebSocket) -> None:
        """One stream, handshake to close: request id, metrics and the access line around :meth:`_serve`."""
        started = time.perf_counter()
        token = request_id.set(request_id_from(websocket.headers.get("x-request-id")))
        status = CLIENT_CLOSED  # unless _serve says otherwise (it is cancelled only when the server cuts it)
        try:
            with self.in_flight.entered():
                status = await self._serve(websocket)
        finally:
            record_request("websocket", ENDPOINT, status, time.perf_counter() - started, f"WS {ENDPOINT}")
            request_id.reset(token)

    async def _serve(self, websocket: WebSocket) -> str:
        """Returns the status to record (see the module's docstring)."""
        refusal = self._handshake_refusal(websocket)
        if refusal is not None:
            await websocket.send_denial_response(refusal)
            return str(refusal.status_code)
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=wire.SUBPROTOCOL if offered else None)
        try:
            await self._stream(websocket)
        except _ClientGoneError as gone:
            return str(gone.close_code) if gone.close_code == wire.MESSAGE_TOO_BIG else CLIENT_CLOSED
        except WebSocketDisconnect:
            return CLIENT_CLOSED
        except PoseError as error:
            return await _close_with(websocket, error)
        except Exception as exc:
            message = unhandled(exc)
            return await _close_with(websocket, PoseError(message), logged=True)
        await websocket.close(wire.NORMAL)
        return str(wire.NORMAL)

    def _handshake_refusal(self, websocket: WebSocket) -> JSONResponse | None:
        """The HTTP answer that refuses the handshake (None: go on). The key comes first: nothing else is answered
        to a client without it."""
        offered = websocket.scope.get("subprotocols") or []
        authorization = websocket.headers.get("authorization")
        if authorization is None:
            key = wire.bearer_from_subprotocols(offered)
            authorization = None if key is None else f"Bearer {key}"
        try:
            self.requests.authorize(authorization)
        except PoseError as error:
            return error_response(error)
        origin = websocket.headers.get("origin")
        if origin is not None and not _origin_allowed(origin, websocket.headers.get("host"), self.requests):
            return JSONResponse(error_body("forbidden", f"origin {origin} may not open streams (POSE_CORS_ORIGINS)"),
                                status_code=HTTPStatus.FORBIDDEN)  # fmt: skip
        if offered and wire.SUBPROTOCOL not in offered:
            message = f"offer the subprotocol {wire.SUBPROTOCOL!r} (and, for auth, 'bearer.<base64url key>')"
            return error_response(BadRequestError(message))
        return None

    async def _stream(self, websocket: WebSocket) -> None:
        """The stream, from the accepted connection to the end of its input (see serve_stream).

        Raises:
            PoseError: the stream ends with this error (sent, then the close).
            _ClientGoneError: the client went away.
        """

        async def send(out: FrameOut) -> None:
            try:
                await websocket.send_text(json.dumps(stream_messages.answer(out)))
            except WebSocketDisconnect as gone:
                raise _ClientGoneError(gone.code) from None

        await serve_stream(self.registry, _incoming(websocket), send, protocol="websocket")

    def drain(self) -> None:
        """Shutdown: every stream ends once it has answered what it took (the registry's drain; the process drains
        it at SIGTERM already)."""
        self.registry.drain()


async def _incoming(websocket: WebSocket) -> AsyncIterator[Incoming]:
    """The stream's messages as the driver takes them: the config (text), then frames (binary, each with its header);
    an empty binary message ends the input; a disconnect, or a message of the wrong kind, is the error it is."""
    first = True
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            yield _ClientGoneError(message.get("code", 1005))
            return
        text, data = message.get("text"), message.get("bytes")
        if first and text is not None:
            yield _config(text)
        elif data is None:
            yield BadRequestError("a frame must be one binary message (16-byte header, then the image)")
        elif not data:  # the client's "no more frames"
            return
        else:
            try:
                yield stream_messages.frame_from(data)
            except BadRequestError as error:
                yield error
        first = False


def _config(text: str) -> Incoming:
    try:
        return stream_messages.stream_params_from(text)
    except PoseError as error:
        return error


def _origin_allowed(origin: str, host: str | None, requests: PoseRequests) -> bool:
    """A browser's page may open a stream when it was served by this host, or its origin is in POSE_CORS_ORIGINS."""
    allowed = requests.settings.cors_origins
    return "*" in allowed or origin in allowed or (host is not None and urlsplit(origin).netloc == host)


async def _close_with(websocket: WebSocket, error: PoseError, *, logged: bool = False) -> str:
    """Send ``error`` as the stream's last message and close with its code; returns the code (as a status)."""
    code = wire.close_code(error.http_status, error.code)
    message = error.message
    if error.http_status >= HTTPStatus.INTERNAL_SERVER_ERROR and not logged:
        logger.error("ending a stream with %s: %s", error.code, message)
        message = internal_message(message)
    if websocket.application_state is WebSocketState.CONNECTED:
        try:
            await websocket.send_text(stream_messages.error_message(error.code, message))
            # a close reason is at most 123 bytes: the JSON message above says it all
            await websocket.close(code, error.code)
        except WebSocketDisconnect:
            return CLIENT_CLOSED
    return str(code)
