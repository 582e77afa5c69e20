"""HTTP API (FastAPI): the application factory.

A thin adapter over the request layer (``requests.py``): routes in ``routes.py``, body
forms in ``intake.py``, middleware in ``middleware.py``. The engine's start and stop
belong to the process (``server.py``), not to this app. Every error leaves as
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import __version__
from service.api.http.errors import error_body, error_response
from service.api.http.middleware import (
    BodyLimitMiddleware,
    ClientMiddleware,
    FullGateMiddleware,
    ObservabilityMiddleware,
)
from service.api.http.page import page
from service.api.http.routes import api, ops
from service.api.http.websocket import ENDPOINT as STREAM_ENDPOINT
from service.api.http.websocket import WebSocketStreams
from service.api.observe import unhandled
from service.config import Settings
from service.engine.engine import Engine
from service.errors import (
    BadRequestError,
    InvalidOptionsError,
    PayloadTooLargeError,
    PoseError,
    UnsupportedMediaTypeError,
)
from service.requests.layer import PoseRequests
from service.requests.streams import StreamRegistry

logger = logging.getLogger(__name__)


def create_app(requests: PoseRequests, streams: StreamRegistry | None = None) -> FastAPI:
    """The FastAPI application over the request layer (the engine is started and stopped by its owner).

    Args:
        streams: the process's open streams (shared with gRPC, so POSE_MAX_STREAMS counts both); a new one if None.
    """
    settings = requests.settings
    app = FastAPI(
        title="RTMPose Service",
        version=__version__,
        description="Multi-person 2D pose estimation (RTMPose family) from ONNX models, with dynamic batching.",
    )
    app.state.requests = requests
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["*"], expose_headers=["X-Request-ID"])  # fmt: skip
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ClientMiddleware, body_timeout_s=settings.http_body_timeout_s)
    app.add_middleware(FullGateMiddleware, requests=requests, paths=frozenset({"/v1/pose", "/v1/pose/batch"}))
    app.add_middleware(ObservabilityMiddleware)
    app.include_router(api)
    app.include_router(ops)
    app.include_router(page)
    app.state.websocket_streams = websockets = WebSocketStreams(requests, streams or StreamRegistry(requests))
    app.add_api_websocket_route(STREAM_ENDPOINT, websockets.endpoint, name="stream")
    for kind in (RequestValidationError, StarletteHTTPException, PoseError, Exception):
        # Exception: the 500 of last resort (Starlette then re-raises it)
        app.add_exception_handler(kind, _error_response)
    return app


# Starlette's own errors (routing, multipart limits) in the one error shape
_STARLETTE_CODES = {400: BadRequestError.code, 404: "not_found", 405: "method_not_allowed",
                    413: PayloadTooLargeError.code, 415: UnsupportedMediaTypeError.code}  # fmt: skip


async def _error_response(request: Request, exc: Exception) -> Response:
    """Every error in the one shape: ours as they say, FastAPI's 422, Starlette's by status, anything else 500."""
    if isinstance(exc, PoseError):
        return error_response(exc)
    if isinstance(exc, RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in exc.errors()]
        return error_response(InvalidOptionsError("; ".join(parts)))
    if isinstance(exc, StarletteHTTPException):
        status = exc.status_code
        code = _STARLETTE_CODES.get(status, BadRequestError.code if status < 500 else PoseError.code)
        return JSONResponse(error_body(code, str(exc.detail)), status_code=status, headers=exc.headers)
    return JSONResponse(error_body("internal", unhandled(exc)), status_code=500)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI schema of the app, with default settings (no model is loaded)."""
    settings = Settings()
    requests = PoseRequests(Engine(settings), settings)
    try:
        return create_app(requests).openapi()
    finally:
        requests.close()
