"""OpenAPI fragments the route signatures cannot express: the three body forms and the error responses."""

from __future__ import annotations

from typing import Any

from service.api.http.schemas import ErrorResponse, PoseJsonBody


def _multipart(field: str, *, many: bool) -> dict[str, Any]:
    binary: dict[str, Any] = {"type": "string", "format": "binary"}
    prop = {"type": "array", "items": binary} if many else binary
    return {"multipart/form-data": {"schema": {"type": "object", "required": [field], "properties": {field: prop}}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "model": ErrorResponse}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Bad image (corrupt, truncated, too small) or malformed request."),
    401: _error("Missing or invalid bearer token (only when POSE_API_KEYS is set)."),
    413: _error("Body larger than POSE_MAX_BODY_BYTES, or image over POSE_MAX_IMAGE_PIXELS."),
    415: _error("Unsupported content type or image format."),
    422: _error("Invalid options: unknown model, boxes with NaN or outside the image, values out of range."),
    429: _error("A model queue is full: retry after the Retry-After header's seconds."),
    503: _error("Models are still loading or warming up, or the service is shutting down."),
    504: _error("The request deadline (X-Request-Timeout header or POSE_REQUEST_TIMEOUT_S) passed."),
}

POSE_BODY: dict[str, Any] = {
    "parameters": [
        {
            "name": "X-Request-Timeout",
            "in": "header",
            "required": False,
            "description": "Deadline in seconds for this request (default POSE_REQUEST_TIMEOUT_S).",
            "schema": {"type": "number", "minimum": 0.01, "maximum": 3600},
        },
        {
            "name": "X-Request-ID",
            "in": "header",
            "required": False,
            "description": "Echoed back and written in the logs; generated when absent.",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
        },
    ],
    "requestBody": {
        "required": True,
        "content": {
            **_multipart("file", many=False),
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/webp": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": PoseJsonBody.model_json_schema(ref_template="#/components/schemas/{model}")},
        },
    },
}

BATCH_BODY: dict[str, Any] = {
    "parameters": POSE_BODY["parameters"],
    "requestBody": {
        "required": True,
        "content": _multipart("files", many=True),
    },
}
