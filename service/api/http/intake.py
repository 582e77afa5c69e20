"""Reading a pose request: the image bytes from any accepted body form, the options, the deadline.

Cheap checks come first and nothing large is parsed on the event loop: a JSON body's
brackets are counted while it streams in (every box is one ``[``; base64 has none), so a
million-box body is refused at its first chunk; the body is then parsed and
base64-decoded in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from service.api.http.schemas import HttpPoseOptions, PoseJsonBody, PoseQuery
from service.errors import BadRequestError, UnsupportedMediaTypeError
from service.requests.options import parse_options, validation_message
from service.wire.options import boxes_in_text, check_box_count


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_images(request: Request, *, max_files: int) -> tuple[list[bytes], dict[str, Any]]:
    """The image(s) and the body's options, from multipart, JSON (base64) or a raw ``image/*`` body.

    Raises:
        BadRequestError: a malformed body. UnsupportedMediaTypeError: any other content type.
    """
    kind = content_type(request)
    if kind == "multipart/form-data":
        form = await request.form(max_files=max_files, max_fields=50)
        files = [v for key in ("file", "files") for v in form.getlist(key) if isinstance(v, UploadFile)]
        options = {k: v for k, v in form.items() if k not in ("file", "files") and isinstance(v, str)}
        if not files:
            raise BadRequestError("the multipart body has no 'file' part")
        return [await f.read() for f in files], options
    if kind == "application/json":
        chunks, brackets = [], 0
        async for chunk in request.stream():
            brackets += chunk.count(b"[")
            check_box_count(boxes_in_text(brackets))
            chunks.append(chunk)
        return await asyncio.to_thread(_json_body, b"".join(chunks))
    if kind.startswith("image/") or kind == "application/octet-stream":
        return [await request.body()], {}
    raise UnsupportedMediaTypeError(
        f"unsupported content type {kind!r}: send multipart/form-data (file), image/*, or application/json"
    )


def _json_body(raw: bytes) -> tuple[list[bytes], dict[str, Any]]:
    """The image and options of a JSON body (run off the event loop).

    Raises:
        BadRequestError: not a valid body.
    """
    try:
        body = PoseJsonBody.model_validate_json(raw)
    except ValidationError as exc:
        raise BadRequestError(f"bad JSON body: {validation_message(exc)}") from None
    try:
        data = base64.b64decode(body.image, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError("'image' is not valid base64") from None
    return [data], body.model_dump(exclude={"image"}, exclude_unset=True, exclude_none=True)


def merge_options(query: PoseQuery, body: dict[str, Any], *, accept: str = "") -> HttpPoseOptions:
    """Query parameters overridden by body fields; ``Accept: image/jpeg`` (without JSON) asks for a render.

    Raises:
        InvalidOptionsError: a value out of range or of the wrong type.
    """
    merged = {**query.model_dump(exclude_unset=True), **body}
    if "image/jpeg" in accept and "application/json" not in accept:
        merged["render"] = True
    return parse_options(HttpPoseOptions, merged)


def timeout_header(request: Request) -> float | None:
    """Seconds from ``X-Request-Timeout`` (None when absent; the request layer checks the range).

    Raises:
        BadRequestError: a header that is not a number.
    """
    header = request.headers.get("x-request-timeout")
    if header is None:
        return None
    try:
        return float(header)
    except ValueError:
        raise BadRequestError(f"X-Request-Timeout must be seconds, e.g. 2.5; got {header!r}") from None
