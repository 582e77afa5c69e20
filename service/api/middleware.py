"""Pure ASGI middleware: request ids, access log and request metrics; body size limit."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.api.errors import error_json
from service.api.observe import record_request, request_id_from
from service.errors import PayloadTooLargeError
from service.logs import request_id

UNMEASURED = frozenset({"/metrics", "/healthz", "/readyz"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class ObservabilityMiddleware:
    """Gives every request an id (``X-Request-ID`` in and out), counts and times it, logs one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(_header(scope, b"x-request-id"))
        token = request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        start = time.perf_counter()
        measured = scope["path"] not in UNMEASURED
        if measured:
            metrics.REQUESTS_IN_PROGRESS.labels("http").inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            if measured:
                metrics.REQUESTS_IN_PROGRESS.labels("http").dec()
                record_request("http", endpoint, str(status), elapsed, f"{scope['method']} {scope['path']}")
            request_id.reset(token)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: from Content-Length at once, or while a chunked body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_error(send, 413, "too_large", f"request body of {declared} bytes exceeds {limit} bytes")
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = error_json(code, message)
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
