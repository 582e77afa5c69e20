"""HTTP API (FastAPI): the application factory.

A thin adapter over the engine: routes in ``routes.py``, request intake in
``intake.py``, middleware in ``middleware.py``. Every error leaves as
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import __version__
from service.api.errors import error_body, error_response, to_pose_error
from service.api.middleware import BodyLimitMiddleware, ObservabilityMiddleware
from service.api.routes import api, ops
from service.config import Settings
from service.engine.engine import Engine
from service.errors import InvalidOptionsError, PoseError
from service.logs import request_id
from service.vision.image import ImageError

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings, engine: Engine, *, on_load_failure: Callable[[BaseException], None] | None = None
) -> FastAPI:
    """The FastAPI application over ``engine``; its lifespan loads the models in the background and closes them.

    Args:
        on_load_failure: called (on the event loop) if the models fail to load, e.g. to stop the server.
    """

    def loaded(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        logger.error("model loading failed: %s", task.exception())
        if on_load_failure is not None:
            on_load_failure(task.exception())  # type: ignore[arg-type]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(asyncio.to_thread(engine.start))
        loading.add_done_callback(loaded)
        try:
            yield
        finally:
            if not loading.done():
                await asyncio.wait([loading])
            await asyncio.to_thread(engine.close, settings.shutdown_grace_s)

    app = FastAPI(
        title="RTMPose Service",
        version=__version__,
        description="Multi-person 2D pose estimation (RTMPose family) from ONNX models, with dynamic batching.",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["*"], expose_headers=["X-Request-ID"])  # fmt: skip
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware)
    app.include_router(api)
    app.include_router(ops)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PoseError, _pose_error)
    app.add_exception_handler(ImageError, _pose_error)
    app.add_exception_handler(Exception, _pose_error)  # the 500 of last resort (Starlette then re-raises it)
    return app


async def _pose_error(request: Request, exc: Exception) -> Response:
    error = to_pose_error(exc)
    if error is None:
        rid = request_id.get()
        logger.exception("unhandled error (request id %s)", rid, exc_info=exc)
        return JSONResponse(error_body("internal", f"internal error (request id {rid})"), status_code=500)
    return error_response(error)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in exc.errors()]
    return error_response(InvalidOptionsError("; ".join(parts)))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI schema of the app, with default settings (no model is loaded)."""
    settings = Settings()
    return create_app(settings, Engine(settings)).openapi()
