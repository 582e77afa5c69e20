"""The browser playground: ``/`` and its static files under ``/ui/``, shipped inside the package.

Plain HTML, CSS and ES modules (``static/``), no build step and nothing fetched from
elsewhere: the page must work on an offline machine, and its Content-Security-Policy lets
it load only from this service. The files are read once, at import; the page holds no
secret, so it is served without a key (the key the user types stays in the page, and goes
into the ``Authorization`` header of its requests and the WebSocket's subprotocol list).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from service.vision.keypoints import KEYPOINT_SETS

STATIC = Path(__file__).with_name("static")
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}  # fmt: skip
# only this service: scripts, styles, fetches and the WebSocket; images and video also from the user's files
_POLICY = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
           "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")  # fmt: skip
_HEADERS = {"Content-Security-Policy": _POLICY, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _files() -> dict[str, tuple[bytes, str]]:
    """Every static file by its path under ``static/`` (only known types: nothing else is ever served)."""
    return {
        path.relative_to(STATIC).as_posix(): (path.read_bytes(), _MEDIA_TYPES[path.suffix])
        for path in sorted(STATIC.rglob("*"))
        if path.is_file() and path.suffix in _MEDIA_TYPES
    }


FILES = _files()
page = APIRouter(include_in_schema=False, tags=["page"])


@page.get("/")
async def index() -> Response:
    data, media_type = FILES["index.html"]
    return Response(data, media_type=media_type, headers=_HEADERS)


@page.get("/ui/keypoint-sets.json")
async def keypoint_sets() -> JSONResponse:
    """Names, skeleton links and colours (RGB) of every keypoint set: the page draws with the service's tables."""
    body: dict[str, Any] = {
        name: {
            "names": list(kset.names),
            "skeleton": [list(link) for link in kset.skeleton],
            "keypoint_colors": [list(c) for c in kset.keypoint_colors_rgb],
            "link_colors": [list(c) for c in kset.link_colors_rgb],
        }  # fmt: skip
        for name, kset in KEYPOINT_SETS.items()
    }
    return JSONResponse(body, headers={"Cache-Control": "max-age=3600"})


@page.get("/ui/{path:path}")
async def static_file(path: str) -> Response:
    if path not in FILES:
        raise HTTPException(404, f"no such file: /ui/{path}")
    data, media_type = FILES[path]
    return Response(data, media_type=media_type, headers=_HEADERS)
