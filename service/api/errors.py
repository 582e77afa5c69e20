"""One error shape for every API: ``{"error": {"code", "message"}}``, and the HTTP -> gRPC code table.

``PoseError`` subclasses carry their status; image errors from ``vision`` are mapped
here; anything unexpected is logged with the request id and answered as a generic 500.
"""

from __future__ import annotations

import logging
from functools import cache
from http import HTTPStatus

import grpc
from fastapi.responses import JSONResponse

from service.errors import BadRequestError, PayloadTooLargeError, PoseError, UnsupportedMediaTypeError
from service.logs import request_id
from service.vision.image import ImageError, ImageTooLargeError, InvalidImageError, UnsupportedImageTypeError

logger = logging.getLogger(__name__)

_IMAGE_ERRORS: dict[type[ImageError], type[PoseError]] = {
    InvalidImageError: BadRequestError,
    ImageTooLargeError: PayloadTooLargeError,
    UnsupportedImageTypeError: UnsupportedMediaTypeError,
}

RETRY_AFTER_S = {HTTPStatus.TOO_MANY_REQUESTS: 1, HTTPStatus.SERVICE_UNAVAILABLE: 5}


def to_pose_error(exc: Exception) -> PoseError | None:
    """The client-facing error for ``exc``, or None when it is a bug (answered as a 500)."""
    if isinstance(exc, PoseError):
        return exc
    if isinstance(exc, ImageError):
        for image_type, pose_type in _IMAGE_ERRORS.items():
            if isinstance(exc, image_type):
                error = pose_type(str(exc))
                error.code = {InvalidImageError: "invalid_image"}.get(image_type, error.code)
                return error
        return BadRequestError(str(exc))
    return None


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_response(exc: PoseError) -> JSONResponse:
    """The HTTP response for a client-facing error (Retry-After on 429/503, WWW-Authenticate on 401)."""
    headers = {}
    if exc.http_status in RETRY_AFTER_S:
        headers["Retry-After"] = str(RETRY_AFTER_S[exc.http_status])
    if exc.http_status == HTTPStatus.UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    message = exc.message
    if exc.http_status == HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.error("answering 500 %s: %s", exc.code, message)  # with the request id, like every line of it
        message = f"{message} (request id {request_id.get()})"
    return JSONResponse(error_body(exc.code, message), status_code=int(exc.http_status), headers=headers)


@cache
def grpc_status_table() -> dict[HTTPStatus, grpc.StatusCode]:
    """HTTP status -> gRPC status code (as BentoML does), one table for the whole service."""
    return {
        HTTPStatus.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
        HTTPStatus.UNAUTHORIZED: grpc.StatusCode.UNAUTHENTICATED,
        HTTPStatus.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE: grpc.StatusCode.INVALID_ARGUMENT,
        HTTPStatus.UNPROCESSABLE_ENTITY: grpc.StatusCode.INVALID_ARGUMENT,
        HTTPStatus.TOO_MANY_REQUESTS: grpc.StatusCode.RESOURCE_EXHAUSTED,
        HTTPStatus.SERVICE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
        HTTPStatus.GATEWAY_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
        HTTPStatus.INTERNAL_SERVER_ERROR: grpc.StatusCode.INTERNAL,
    }
