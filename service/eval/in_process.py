"""The request layer in this process, as ``service.cli`` runs it: same settings, model repository and rules."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from service.config import Settings
from service.engine.engine import Engine
from service.engine.session import DeviceUnavailableError
from service.errors import PoseError, QueueFullError
from service.eval.transport import F32, Ask, RequestFailedError, RetryLaterError
from service.models.repository import ModelNotInstalledError
from service.models.schema import ModelConfigError
from service.requests import EncodedImage, PoseRequests
from service.requests.options import PoseOptions, parse_options
from service.wire.results import PoseResult

logger = logging.getLogger(__name__)


class InProcess:
    """An Engine and PoseRequests of this process over ``POSE_*`` settings (the detector only when it runs)."""

    name = "in-process"

    def __init__(self, ask: Ask, *, detector_runs: bool, settings: Settings | None = None) -> None:
        base = settings or Settings()
        self.settings = base.model_copy(update={
            "model": ask.model or base.model, "detector": ask.detector or base.detector, "extra_models": [],
            "warmup": False,
        })  # fmt: skip
        names = [self.settings.model, self.settings.detector] if detector_runs else [self.settings.model]
        self.ask = ask
        self.engine = Engine(self.settings, models=names)
        self.requests = PoseRequests(self.engine, self.settings)

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.engine.start)
        except (ModelNotInstalledError, ModelConfigError, DeviceUnavailableError, OSError, ValueError) as exc:
            raise RequestFailedError(str(exc)) from exc

    async def estimate(self, image: Path, boxes: F32 | None) -> PoseResult:
        try:
            options = parse_options(PoseOptions, self.ask.options(boxes))
            data = await asyncio.to_thread(image.read_bytes)
            done = await self.requests.estimate(EncodedImage(data), options, timeout_s=self.ask.timeout_s)
        except QueueFullError as exc:
            raise RetryLaterError(0.05) from exc
        except PoseError as exc:
            raise RequestFailedError(f"{image}: {exc.code}: {exc}") from exc
        return done.result

    async def models(self) -> list[dict[str, Any]]:
        return self.engine.describe()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.engine.close, 0)
        self.requests.close()
