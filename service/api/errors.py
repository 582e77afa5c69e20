"""One error shape for every API: ``{"error": {"code", "message"}}``.

``PoseError`` subclasses carry their status; image errors from ``vision`` are mapped
here; anything unexpected is logged with the request id and answered as a generic 500.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi.responses import JSONResponse

from service.errors import BadImageError, PayloadTooLargeError, PoseError, UnsupportedMediaTypeError
from service.logs import request_id
from service.vision.image import ImageError, ImageTooLargeError, InvalidImageError, UnsupportedImageTypeError

logger = logging.getLogger(__name__)

_IMAGE_ERRORS: dict[type[ImageError], type[PoseError]] = {
    InvalidImageError: BadImageError,
    ImageTooLargeError: PayloadTooLargeError,
    UnsupportedImageTypeError: UnsupportedMediaTypeError,
}

RETRY_AFTER_S = {HTTPStatus.TOO_MANY_REQUESTS: 1, HTTPStatus.SERVICE_UNAVAILABLE: 5}


def to_pose_error(exc: Exception) -> PoseError | None:
    """The client-facing error for ``exc``, or None when it is a bug (answered as a 500)."""
    if isinstance(exc, PoseError):
        return exc
    if isinstance(exc, ImageError):
        pose_type = next((p for i, p in _IMAGE_ERRORS.items() if isinstance(exc, i)), BadImageError)
        return pose_type(str(exc))
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
