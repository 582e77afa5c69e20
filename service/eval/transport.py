"""What every transport does for the evaluation: one image (and its boxes) in, one PoseResult out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from service.wire.results import PoseResult

F32 = npt.NDArray[np.float32]


class RetryLaterError(Exception):
    """The service has no queue room now (429, RESOURCE_EXHAUSTED): send the image again after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"queue full, retry in {seconds:g} s")
        self.seconds = seconds


class RequestFailedError(Exception):
    """An image the service refused or failed: the run stops (its figure would not be the deployment's)."""


@dataclass(frozen=True)
class Ask:
    """The options every request of a run carries (None: the service's default)."""

    model: str | None = None
    detector: str | None = None
    flip_test: bool | None = None
    bbox_threshold: float | None = None
    max_people: int | None = None
    timeout_s: float = 60.0

    def options(self, boxes: F32 | None) -> dict[str, Any]:
        """The request's pose options (PoseOptions' names), with ``boxes`` (M, 4) x1, y1, x2, y2 if given."""
        values: dict[str, Any] = {
            "model": self.model,
            "detector": self.detector,
            "flip_test": self.flip_test,
            "bbox_threshold": self.bbox_threshold,
            "max_people": self.max_people,
        }
        if boxes is not None:
            values["boxes"] = np.asarray(boxes, np.float64).reshape(-1, 4).tolist()
        return {k: v for k, v in values.items() if v is not None}


class Transport(Protocol):
    """One way to the service: in process, HTTP or gRPC."""

    name: str  # "in-process", "http://host:port", "grpc://host:port"

    async def start(self) -> None:
        """Connect (or load the models); raises RequestFailedError when the service cannot be used."""

    async def estimate(self, image: Path, boxes: F32 | None) -> PoseResult:
        """One image; ``boxes`` (M, 4) skip the detector. Raises RetryLaterError or RequestFailedError."""
        ...

    async def models(self) -> list[dict[str, Any]]:
        """The served models as ``GET /v1/models`` lists them (name, task, keypoints, input_size, weights, ...)."""
        ...

    async def aclose(self) -> None:
        """Release connections (or the engine)."""
