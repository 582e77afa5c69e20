"""Pure ASGI middleware: request ids, access log and request metrics; the client's side; body size limit."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.api.http.errors import error_response
from service.api.observe import record_request, request_id_from
from service.errors import PayloadTooLargeError, QueueFullError, RequestTimeoutError, UnauthorizedError
from service.logs import request_id

logger = logging.getLogger(__name__)

UNMEASURED = frozenset({"/metrics", "/healthz", "/readyz"})
CLIENT_CLOSED = 499  # nginx's status for "the client closed the connection before the answer": logs and metrics only


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
            if scope["state"].get("client_gone"):
                status = CLIENT_CLOSED
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or scope["state"].get("endpoint", "unmatched")
            if measured:
                metrics.REQUESTS_IN_PROGRESS.labels("http").dec()
                record_request("http", endpoint, str(status), elapsed, f"{scope['method']} {scope['path']}")
            request_id.reset(token)


class ClientMiddleware:
    """The client's side of a request: its body must arrive in time, and its going away cancels the work.

    - The whole body must arrive within ``body_timeout_s`` of the headers, else the
      request ends with 408 ``request_timeout`` and the connection is closed.
    - Once the body is in, a background read waits for the client to hang up; if it does
      before the answer, the request's task is cancelled (its queued model work is
      skipped), and the request is logged as a client disconnect (status 499), never 500.
      A hang-up in the middle of the body (Starlette's ClientDisconnect) counts the same.
    """

    def __init__(self, app: ASGIApp, body_timeout_s: float) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = _Client(receive, send, self.body_timeout_s)
        watcher = asyncio.create_task(client.watch(), name="client watch")
        try:
            await self.app(scope, client.receive, client.send)
        except (asyncio.CancelledError, ClientDisconnect):
            if not client.gone.is_set():
                raise  # cancelled by the server (shutdown), not by the client
            client.task.uncancel()
            scope["state"]["client_gone"] = True
            logger.info("client disconnected before the answer: %s %s", scope["method"], scope["path"])
        finally:
            watcher.cancel()


class _Client:
    """One request's connection as :class:`ClientMiddleware` sees it."""

    def __init__(self, receive: Receive, send: Send, body_timeout_s: float) -> None:
        self._receive = receive
        self._send = send
        self._body_timeout_s = body_timeout_s
        self._body_end = asyncio.get_running_loop().time() + body_timeout_s
        self._body_in = asyncio.Event()
        self.gone = asyncio.Event()
        self._answered = False
        task = asyncio.current_task()
        if task is None:  # ASGI servers run each request in a task
            raise RuntimeError("ClientMiddleware must run inside an asyncio task")
        self.task = task

    async def receive(self) -> Message:
        if self._body_in.is_set():  # nothing more will come but the hang-up
            await self.gone.wait()
            return {"type": "http.disconnect"}
        try:
            async with asyncio.timeout_at(self._body_end):
                message = await self._receive()
        except TimeoutError:
            raise RequestTimeoutError(f"the request body did not arrive within {self._body_timeout_s:g} s") from None
        if message["type"] == "http.disconnect":
            self.gone.set()
        elif not message.get("more_body", False):
            self._body_in.set()
        return message

    async def watch(self) -> None:
        """Once the body is in: wait for the hang-up (the server's receive returns it) and cancel the request."""
        await self._body_in.wait()
        message = await self._receive()  # also returns once the answer is complete: then it is no hang-up
        if message["type"] == "http.disconnect" and not self._answered:
            self.gone.set()
            self.task.cancel()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._answered = True
        await self._send(message)


class FullGateMiddleware:
    """Under overload, refuse pose requests before routing and parsing: the cheapest 429 there is.

    When no pose queue has room for even one more crop (``Pipeline.full``), no pose request
    can be admitted whatever its options, so it gets the same 429 ``queue_full`` that
    admission would give, without routing, dependencies or query parsing (about a third
    of the cost). Requests without a valid bearer token go on, to get their 401.
    """

    def __init__(self, app: ASGIApp, requests: Any, paths: frozenset[str]) -> None:
        self.app = app
        self.requests = requests  # PoseRequests (not imported: the request layer imports this package's peers)
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.paths
            and self.requests.engine.pipeline.full()
        ):
            try:
                self.requests.authorize(_header(scope, b"authorization"))
            except UnauthorizedError:
                pass
            else:
                metrics.REJECTED.labels("admission").inc()
                scope["state"]["endpoint"] = scope["path"]  # no route matched yet: name it for the metrics
                refusal = QueueFullError("every pose queue's room is promised to admitted requests; retry later")
                await error_response(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
            too_large = PayloadTooLargeError(f"request body of {declared} bytes exceeds {limit} bytes")
            await error_response(too_large)(scope, receive, send)
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
