"""``POST /v1/pose`` of a running service, with httpx: the deployment's own answers."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from service.eval.transport import F32, Ask, RequestFailedError, RetryLaterError
from service.wire.results import PoseResult

logger = logging.getLogger(__name__)


def result_from_native(body: dict[str, Any]) -> PoseResult:
    """A native ``/v1/pose`` answer as a PoseResult (keypoints to 0.01 px, scores to 1e-4, as the API rounds)."""
    people = body["people"]
    n = len(people)
    k = len(people[0]["keypoints"]) if n else 0
    model = body["model"]
    return PoseResult(
        width=body["image"]["width"],
        height=body["image"]["height"],
        pose_model=model["pose"],
        detector=model["detector"],
        keypoint_set=model["keypoints"],
        weights=model["weights"],
        boxes=np.array([p["bbox"] for p in people], np.float32).reshape(n, 4),
        bbox_scores=np.array([p["bbox_score"] for p in people], np.float32),
        scores=np.array([p["score"] for p in people], np.float32),
        keypoints=np.array([p["keypoints"] for p in people], np.float32).reshape(n, k, 3),
        timing_ms=dict(body.get("timing_ms", {})),
    )


def _error(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"HTTP {response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


class HttpTransport:
    """One multipart ``POST /v1/pose`` per image (options and boxes as form fields), native answers."""

    def __init__(self, target: str, ask: Ask, *, api_key: str | None = None, concurrency: int = 8) -> None:
        self.name = target.rstrip("/")
        self.ask = ask
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            base_url=self.name, headers=headers, timeout=httpx.Timeout(ask.timeout_s + 10.0, connect=10.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )  # fmt: skip

    async def start(self) -> None:
        try:
            response = await self.client.get("/readyz")
        except httpx.HTTPError as exc:
            raise RequestFailedError(f"{self.name}: {exc}") from exc
        if response.status_code != 200:
            raise RequestFailedError(f"{self.name} is not ready: {_error(response)}")

    async def estimate(self, image: Path, boxes: F32 | None) -> PoseResult:
        fields = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in self.ask.options(boxes).items()}
        data = await asyncio.to_thread(image.read_bytes)
        try:
            response = await self.client.post(
                "/v1/pose", data=fields, files={"file": (image.name, data, "application/octet-stream")},
                headers={"X-Request-Timeout": f"{self.ask.timeout_s:g}"},
            )  # fmt: skip
        except httpx.HTTPError as exc:
            raise RequestFailedError(f"{image}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 429:
            raise RetryLaterError(float(response.headers.get("Retry-After", "1")))
        if response.status_code != 200:
            raise RequestFailedError(f"{image}: {_error(response)}")
        return result_from_native(response.json())

    async def models(self) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/models")
        if response.status_code != 200:
            raise RequestFailedError(f"GET /v1/models: {_error(response)}")
        return list(response.json()["models"])

    async def aclose(self) -> None:
        await self.client.aclose()
