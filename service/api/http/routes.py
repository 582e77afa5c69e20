"""The HTTP routes: thin adapters over the request layer (``app.state.requests``, set by ``create_app``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import metrics
from service.api.http import intake
from service.api.http.errors import error_body, error_response
from service.api.http.openapi import BATCH_BODY, ERROR_RESPONSES, POSE_BODY
from service.api.http.schemas import BatchResponse, CocoResult, HealthResponse, ModelsResponse, PoseQuery, PoseResponse
from service.errors import BadRequestError, InvalidOptionsError, NotReadyError, PoseError
from service.errors import UnsupportedMediaTypeError as UnsupportedMediaType
from service.requests import Admission, EncodedImage, PoseRequests
from service.wire import formats
from service.wire.formats import OutputFormat

# declared for the OpenAPI document; the check itself is the request layer's (PoseRequests.authorize)
_bearer = HTTPBearer(auto_error=False, description="Needed only when POSE_API_KEYS is set.")


# dependencies are async: FastAPI runs a plain `def` one in its thread pool, a thread hop per request that
# costs most when the cores are busiest (and refusals must stay fast then)
async def get_requests(request: Request) -> PoseRequests:
    return request.app.state.requests


RequestsDep = Annotated[PoseRequests, Depends(get_requests)]


async def authorize(
    request: Request,
    requests: RequestsDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    requests.authorize(request.headers.get("authorization"))


async def admitted(request: Request, requests: RequestsDep) -> AsyncIterator[Admission]:
    """The request layer's one gate around a pose route (``X-Request-Timeout``: its deadline).

    A dependency, so that its refusal (503 not ready / shutting down) comes before FastAPI's
    422 for the query; scope "function": the admission ends when the route returns, before
    the answer is sent.
    """
    started = time.perf_counter()
    async with requests.admit(intake.timeout_header(request), started=started) as admission:
        yield admission


AdmissionDep = Annotated[Admission, Depends(admitted, scope="function")]


api = APIRouter(dependencies=[Depends(authorize)])
ops = APIRouter(tags=["operations"])


@api.post(
    "/v1/pose",
    summary="Estimate every person's keypoints in one image",
    response_model=PoseResponse | list[CocoResult],
    responses={200: {"content": {"image/jpeg": {}}}, **ERROR_RESPONSES},
    openapi_extra=POSE_BODY,
    tags=["pose"],
)
async def pose(request: Request, admission: AdmissionDep, query: Annotated[PoseQuery, Query()]) -> Response:
    accept = request.headers.get("accept", "")
    options = intake.merge_options(query, {}, accept=accept)
    admission.reserve(options)  # queue room from the query's options: refused (429) before the body is read
    async with admission.within_deadline("reading the request body"):
        images, body = await intake.read_images(request, max_files=1)
    if len(images) != 1:
        raise BadRequestError(f"/v1/pose takes one image, got {len(images)}: use /v1/pose/batch")
    if body:
        options = intake.merge_options(query, body, accept=accept)
        admission.reserve(options)
    done = await admission.estimate(EncodedImage(images[0]), options, full_size=options.render)
    result = done.result
    headers = {"X-Pose-Weights": result.weights}
    with metrics.stage_timer("encode", result.pose_model):
        if options.render:
            jpeg = await asyncio.to_thread(formats.render_jpeg, done.image.bgr, result,
                                           keypoint_threshold=done.keypoint_threshold)  # fmt: skip
            return Response(jpeg, media_type="image/jpeg", headers=headers)
        if options.format is OutputFormat.COCO:
            return JSONResponse(formats.coco(result, image_id=options.image_id), headers=headers)
        return JSONResponse(formats.native(result, done.visible), headers=headers)


@api.post(
    "/v1/pose/batch",
    summary="Estimate keypoints in several images: one result (or error) per image, in order",
    response_model=BatchResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=BATCH_BODY,
    tags=["pose"],
)
async def pose_batch(
    request: Request, admission: AdmissionDep, query: Annotated[PoseQuery, Query()], requests: RequestsDep
) -> Response:
    if intake.content_type(request) != "multipart/form-data":
        raise UnsupportedMediaType("/v1/pose/batch takes multipart/form-data with one 'files' part per image")
    options = intake.merge_options(query, {})
    admission.reserve(options)
    async with admission.within_deadline("reading the request body"):
        images, body = await intake.read_images(request, max_files=requests.settings.max_batch_images)
    if body:
        options = intake.merge_options(query, body)
    if options.render:
        raise InvalidOptionsError("render is not available for batches: use /v1/pose per image")
    if body:
        admission.reserve(options)
    # as many images at once as there is queue room for now (at least one), the rest in turn
    admission.widen(options, len(images) - 1)
    turns = asyncio.Semaphore(admission.slots)

    async def one(index: int, data: bytes) -> Any:
        async with turns:
            try:
                done = await admission.estimate(EncodedImage(data), options)
            except PoseError as error:
                return error_body(error.code, error.message)
            admission.release(done.image)
        if options.format is OutputFormat.COCO:
            return formats.coco(done.result, image_id=options.image_id + index)
        return formats.native(done.result, done.visible)

    return JSONResponse({"results": await asyncio.gather(*(one(i, d) for i, d in enumerate(images)))})


@api.get("/v1/models", response_model=ModelsResponse, responses=ERROR_RESPONSES, tags=["models"],
         summary="Served models: weights, provider, device, instances, batching")  # fmt: skip
async def models(requests: RequestsDep) -> dict[str, Any]:
    return {"models": requests.engine.describe()}


@ops.get("/healthz", response_model=HealthResponse, summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@ops.get("/readyz", response_model=HealthResponse, responses={503: ERROR_RESPONSES[503]},
         summary="Readiness: every model loaded and warmed up")  # fmt: skip
async def readyz(requests: RequestsDep) -> Response:
    if requests.engine.state.ready:
        return JSONResponse({"status": "ready"})
    return error_response(NotReadyError(requests.not_ready_reason()))


@ops.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}},
         summary="Prometheus metrics")  # fmt: skip
async def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
