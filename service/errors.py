"""The service's typed errors. Each carries its HTTP status and the JSON ``error.code``.

A leaf module (imports nothing of the package) so that ``engine`` and ``api`` share
one set of errors; ``api/errors.py`` maps them (and ``vision``'s image errors) onto
HTTP responses and gRPC status codes in one place.
"""

from __future__ import annotations

from http import HTTPStatus


class PoseError(Exception):
    """Base of every error a client may see; subclasses set only the two attributes."""

    http_status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    code: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(PoseError):
    http_status = HTTPStatus.BAD_REQUEST
    code = "bad_request"


class BadImageError(BadRequestError):
    """The bytes are an image format we read, but corrupt, truncated or too small."""

    code = "invalid_image"


class UnauthorizedError(PoseError):
    http_status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"


class PayloadTooLargeError(PoseError):
    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "too_large"


class UnsupportedMediaTypeError(PoseError):
    http_status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"


class InvalidOptionsError(PoseError):
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_options"


class UnknownModelError(PoseError):
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "unknown_model"


class QueueFullError(PoseError):
    http_status = HTTPStatus.TOO_MANY_REQUESTS
    code = "queue_full"


class NotReadyError(PoseError):
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "not_ready"


class ShuttingDownError(PoseError):
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "shutting_down"


class DeadlineExceededError(PoseError):
    http_status = HTTPStatus.GATEWAY_TIMEOUT
    code = "deadline_exceeded"


class InferenceError(PoseError):
    """The runtime failed on a batch; the items of that batch get it, the instance keeps serving."""

    http_status = HTTPStatus.INTERNAL_SERVER_ERROR
    code = "inference_failed"
