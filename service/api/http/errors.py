"""The one HTTP error shape, ``{"error": {"code", "message"}}``, and the response of a :class:`PoseError`.

Each error class carries its own status (``service/errors.py``); there is no table here.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from fastapi.responses import JSONResponse

from service.api.observe import internal_message
from service.errors import PoseError

logger = logging.getLogger(__name__)

RETRY_AFTER_S = {HTTPStatus.TOO_MANY_REQUESTS: 1, HTTPStatus.SERVICE_UNAVAILABLE: 5}


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_json(code: str, message: str) -> bytes:
    """:func:`error_body` encoded, for answers written below FastAPI (middleware)."""
    return json.dumps(error_body(code, message)).encode()


def error_response(exc: PoseError) -> JSONResponse:
    """The HTTP response for a client-facing error (Retry-After on 429/503, WWW-Authenticate on 401)."""
    headers = {}
    if exc.http_status in RETRY_AFTER_S:
        headers["Retry-After"] = str(RETRY_AFTER_S[exc.http_status])
    if exc.http_status == HTTPStatus.UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.http_status == HTTPStatus.REQUEST_TIMEOUT:
        headers["Connection"] = "close"  # a client too slow to send its request loses the connection
    message = exc.message
    if exc.http_status == HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.error("answering 500 %s: %s", exc.code, message)  # with the request id, like every line of it
        message = internal_message(message)
    return JSONResponse(error_body(exc.code, message), status_code=int(exc.http_status), headers=headers)
