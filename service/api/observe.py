"""Per-request bookkeeping every transport shares: the request id, request metrics, the access log line."""

from __future__ import annotations

import logging
import re
import uuid

from service import metrics
from service.logs import request_id

access_logger = logging.getLogger("service.access")
logger = logging.getLogger(__name__)

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(given: str | None) -> str:
    """The client's ``x-request-id`` when it is a sane token (1-128 of ``A-Za-z0-9._:-``), else a new one."""
    return given if given and _VALID_ID.match(given) else uuid.uuid4().hex


def record_request(
    protocol: str, endpoint: str, status: str, seconds: float, line: str, *, level: int = logging.INFO, detail: str = ""
) -> None:
    """Count and time one answered request and write its access line (``line``: e.g. "POST /v1/pose").

    Args:
        protocol: "http" or "grpc".
        endpoint: a bounded label: the route template or the gRPC method name.
        status: the HTTP status ("200") or the gRPC code name ("OK", "INVALID_ARGUMENT").
        level: the access line's level (WARNING for what an operator should see, such as garbled messages).
        detail: why it ended so (an error's code and message), added to the line.
    """
    metrics.REQUESTS.labels(protocol, endpoint, status).inc()
    metrics.REQUEST_DURATION.labels(protocol, endpoint).observe(seconds)
    extra = {"status": status, "duration_ms": round(seconds * 1000, 2), "endpoint": endpoint, "protocol": protocol}
    if detail:
        access_logger.log(level, "%s %s %.1fms: %s", line, status, seconds * 1000, detail, extra=extra)
    else:
        access_logger.log(level, "%s %s %.1fms", line, status, seconds * 1000, extra=extra)


def internal_message(message: str) -> str:
    """An internal error's message as the client sees it: with the request id to quote (every log line has it)."""
    return f"{message} (request id {request_id.get()})"


def unhandled(exc: BaseException) -> str:
    """Log an unexpected exception with its traceback; returns the generic message the client gets."""
    logger.error("unhandled error (request id %s)", request_id.get(), exc_info=exc)
    return internal_message("internal error")
