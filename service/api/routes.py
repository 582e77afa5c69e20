"""The HTTP routes. Engine and settings come from ``app.state`` (set by ``create_app``)."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service import metrics
from service.api import formats, intake
from service.api.errors import error_body, error_response, to_pose_error
from service.api.openapi import BATCH_BODY, ERROR_RESPONSES, POSE_BODY
from service.api.schemas import (
    BatchResponse,
    CocoResult,
    HealthResponse,
    ModelsResponse,
    OutputFormat,
    PoseOptions,
    PoseQuery,
    PoseResponse,
)
from service.config import Settings
from service.engine.engine import Engine
from service.engine.pipeline import EstimateOptions, PoseResult
from service.errors import BadRequestError, InvalidOptionsError, NotReadyError, UnauthorizedError
from service.errors import UnsupportedMediaTypeError as UnsupportedMediaType
from service.vision.image import DecodedImage, decode_image

_bearer = HTTPBearer(auto_error=False, description="Needed only when POSE_API_KEYS is set.")


def get_engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def authorize(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Bearer-token check when POSE_API_KEYS is set (constant-time comparison)."""
    if not settings.api_keys:
        return
    token = (credentials.credentials if credentials else "").encode()
    if not any(hmac.compare_digest(token, key.encode()) for key in settings.api_keys):
        raise UnauthorizedError("missing or invalid bearer token")


def not_ready_reason(engine: Engine) -> str:
    state = engine.state
    if state.closing:
        return "shutting down"
    if state.error:
        return f"model loading failed: {state.error}"
    return "loading and warming up models"


def require_ready(engine: EngineDep) -> None:
    if not engine.state.ready:
        raise NotReadyError(not_ready_reason(engine))


api = APIRouter(dependencies=[Depends(authorize)])
ops = APIRouter(tags=["operations"])


async def _estimate(
    engine: Engine, settings: Settings, data: bytes, options: PoseOptions, deadline: float
) -> tuple[DecodedImage, PoseResult]:
    start = time.perf_counter()
    min_side = None if options.render or not settings.decode_min_side else settings.decode_min_side
    image = await run_in_threadpool(decode_image, data, max_pixels=settings.max_image_pixels, min_long_side=min_side)
    decode_s = time.perf_counter() - start
    metrics.STAGE_DURATION.labels("decode", "none").observe(decode_s)
    boxes = None if options.boxes is None else np.asarray(options.boxes, np.float32).reshape(-1, 4)
    request = EstimateOptions(
        model=options.model, detector=options.detector, boxes=boxes, max_people=options.max_people,
        bbox_threshold=options.bbox_threshold, flip_test=options.flip_test,
    )  # fmt: skip
    result = await engine.pipeline.estimate(image, request, deadline=deadline)
    result.timing_ms["decode"] = decode_s * 1000
    return image, result


def _keypoint_threshold(options: PoseOptions, settings: Settings) -> float:
    return options.keypoint_threshold if options.keypoint_threshold is not None else settings.keypoint_threshold


@api.post(
    "/v1/pose",
    summary="Estimate every person's keypoints in one image",
    response_model=PoseResponse | list[CocoResult],
    responses={200: {"content": {"image/jpeg": {}}}, **ERROR_RESPONSES},
    openapi_extra=POSE_BODY,
    dependencies=[Depends(require_ready)],
    tags=["pose"],
)
async def pose(
    request: Request, query: Annotated[PoseQuery, Query()], engine: EngineDep, settings: SettingsDep
) -> Response:
    start = time.perf_counter()
    deadline = intake.deadline(request, settings.request_timeout_s)
    images, body = await intake.read_images(request, max_files=1)
    if len(images) != 1:
        raise BadRequestError(f"/v1/pose takes one image, got {len(images)}: use /v1/pose/batch")
    options = intake.merge_options(query, body, accept=request.headers.get("accept", ""))
    image, result = await _estimate(engine, settings, images[0], options, deadline)
    threshold = _keypoint_threshold(options, settings)
    headers = {"X-Pose-Weights": result.weights}
    with metrics.stage_timer("encode", result.pose_model):
        if options.render:
            jpeg = formats.render_jpeg(image.bgr, result, keypoint_threshold=threshold)
            return Response(jpeg, media_type="image/jpeg", headers=headers)
        if options.format is OutputFormat.COCO:
            return JSONResponse(formats.coco(result, image_id=options.image_id), headers=headers)
        result.timing_ms["total"] = (time.perf_counter() - start) * 1000
        return JSONResponse(formats.native(result, keypoint_threshold=threshold), headers=headers)


@api.post(
    "/v1/pose/batch",
    summary="Estimate keypoints in several images: one result (or error) per image, in order",
    response_model=BatchResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=BATCH_BODY,
    dependencies=[Depends(require_ready)],
    tags=["pose"],
)
async def pose_batch(
    request: Request, query: Annotated[PoseQuery, Query()], engine: EngineDep, settings: SettingsDep
) -> Response:
    deadline = intake.deadline(request, settings.request_timeout_s)
    if intake.content_type(request) != "multipart/form-data":
        raise UnsupportedMediaType("/v1/pose/batch takes multipart/form-data with one 'files' part per image")
    images, body = await intake.read_images(request, max_files=settings.max_batch_images)
    options = intake.merge_options(query, body)
    if options.render:
        raise InvalidOptionsError("render is not available for batches: use /v1/pose per image")
    threshold = _keypoint_threshold(options, settings)

    async def one(index: int, data: bytes) -> Any:
        try:
            _, result = await _estimate(engine, settings, data, options, deadline)
        except Exception as exc:
            error = to_pose_error(exc)
            if error is None:
                raise
            return error_body(error.code, error.message)
        if options.format is OutputFormat.COCO:
            return formats.coco(result, image_id=options.image_id + index)
        return formats.native(result, keypoint_threshold=threshold)

    return JSONResponse({"results": await asyncio.gather(*(one(i, d) for i, d in enumerate(images)))})


@api.get("/v1/models", response_model=ModelsResponse, responses=ERROR_RESPONSES, tags=["models"],
         summary="Served models: weights, provider, device, instances, batching")  # fmt: skip
async def models(engine: EngineDep) -> dict[str, Any]:
    return {"models": engine.describe()}


@ops.get("/healthz", response_model=HealthResponse, summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@ops.get("/readyz", response_model=HealthResponse, responses={503: ERROR_RESPONSES[503]},
         summary="Readiness: every model loaded and warmed up")  # fmt: skip
async def readyz(engine: EngineDep) -> Response:
    if engine.state.ready:
        return JSONResponse({"status": "ready"})
    return error_response(NotReadyError(not_ready_reason(engine)))


@ops.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}},
         summary="Prometheus metrics")  # fmt: skip
async def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
