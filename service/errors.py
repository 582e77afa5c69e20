"""The service's typed errors. Each class carries its HTTP status, its gRPC status code and its ``error.code``.

A leaf module (imports nothing of the package) so that ``engine`` and ``api`` share one
set of errors. There is no mapping table: HTTP answers ``http_status``, gRPC aborts with
``grpc_code``, both send ``code``. ``vision``'s image errors become these in the request
layer (``service/requests``), the one place images are decoded.
"""

from __future__ import annotations

from http import HTTPStatus

from grpc import StatusCode


class PoseError(Exception):
    """Base of every error a client may see; subclasses set only the class attributes."""

    http_status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    grpc_code: StatusCode = StatusCode.INTERNAL
    code: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(PoseError):
    http_status = HTTPStatus.BAD_REQUEST
    grpc_code = StatusCode.INVALID_ARGUMENT
    code = "bad_request"


class MalformedMessageError(BadRequestError):
    """A request message that is not what the method takes (bytes that are not its protobuf message)."""


class BadImageError(BadRequestError):
    """The bytes are an image format we read, but corrupt, truncated or too small."""

    code = "invalid_image"


class UnauthorizedError(PoseError):
    http_status = HTTPStatus.UNAUTHORIZED
    grpc_code = StatusCode.UNAUTHENTICATED
    code = "unauthorized"


class RequestTimeoutError(PoseError):
    """The client did not send its request (headers or body) in time; HTTP closes the connection after it."""

    http_status = HTTPStatus.REQUEST_TIMEOUT
    grpc_code = StatusCode.DEADLINE_EXCEEDED
    code = "request_timeout"


class PayloadTooLargeError(PoseError):
    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    grpc_code = StatusCode.RESOURCE_EXHAUSTED
    code = "too_large"


class UnsupportedMediaTypeError(PoseError):
    http_status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    grpc_code = StatusCode.INVALID_ARGUMENT
    code = "unsupported_media_type"


class InvalidOptionsError(PoseError):
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY
    grpc_code = StatusCode.INVALID_ARGUMENT
    code = "invalid_options"


class UnknownModelError(PoseError):
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY
    grpc_code = StatusCode.INVALID_ARGUMENT
    code = "unknown_model"


class QueueFullError(PoseError):
    http_status = HTTPStatus.TOO_MANY_REQUESTS
    grpc_code = StatusCode.RESOURCE_EXHAUSTED
    code = "queue_full"


class NotReadyError(PoseError):
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    grpc_code = StatusCode.UNAVAILABLE
    code = "not_ready"


class ShuttingDownError(PoseError):
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    grpc_code = StatusCode.UNAVAILABLE
    code = "shutting_down"


class DeadlineExceededError(PoseError):
    http_status = HTTPStatus.GATEWAY_TIMEOUT
    grpc_code = StatusCode.DEADLINE_EXCEEDED
    code = "deadline_exceeded"


class InferenceError(PoseError):
    """The runtime failed on a batch; the items of that batch get it, the instance keeps serving."""

    http_status = HTTPStatus.INTERNAL_SERVER_ERROR
    grpc_code = StatusCode.INTERNAL
    code = "inference_failed"


class MessageBudgetError(PoseError):
    """The request message bytes in flight (POSE_GRPC_MESSAGE_BUDGET_BYTES) have no room for this call's message."""

    http_status = HTTPStatus.TOO_MANY_REQUESTS
    grpc_code = StatusCode.RESOURCE_EXHAUSTED
    code = "message_budget"


class TooManyStreamsError(PoseError):
    """Every stream slot (POSE_MAX_STREAMS) is taken."""

    http_status = HTTPStatus.TOO_MANY_REQUESTS
    grpc_code = StatusCode.RESOURCE_EXHAUSTED
    code = "too_many_streams"


class CallEndedError(PoseError):
    """The transport ended the call before the service could answer: the client cancelled or went away, or the
    transport refused a message of it (gRPC: a message over POSE_GRPC_MAX_MESSAGE_BYTES). Nobody is left to answer;
    the status only names the end in metrics and logs."""

    http_status = HTTPStatus.BAD_REQUEST  # never sent
    grpc_code = StatusCode.CANCELLED
    code = "cancelled"


class StreamIdleError(PoseError):
    """A stream sent no frame for POSE_STREAM_IDLE_TIMEOUT_S: its state is freed."""

    http_status = HTTPStatus.REQUEST_TIMEOUT
    grpc_code = StatusCode.DEADLINE_EXCEEDED
    code = "stream_idle"
