"""One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) on arrays, driven by timestamps in seconds.

Each element of the array is filtered on its own: the cutoff frequency rises with the
element's speed, so a still keypoint is smoothed hard (no jitter) and a fast one
follows with little lag.

    cutoff = min_cutoff_hz + beta * |speed|      (speed in units per second)
    alpha  = 1 / (1 + 1 / (2 pi cutoff dt))

Units: ``min_cutoff_hz`` and ``d_cutoff_hz`` in hertz, ``beta`` in 1 / unit (per pixel
here), ``dt`` from the frame timestamps, so the same settings work at any frame rate
(MMDeploy's filter takes its beta per frame instead).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

F32 = npt.NDArray[np.float32]
# frames closer than this (10 kHz, beyond any camera) restart the filter, as a non-increasing timestamp does: a
# speed over such a step overflows float32 (1e-300 s apart gave inf, then NaN for every later frame of the track)
MIN_STEP_S = 1e-4


class OneEuroParams(BaseModel):
    """The filter's parameters, declared once with their bounds (a stream's configuration validates into this)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_cutoff_hz: float = Field(
        1.0, gt=0, le=1000, description="Cutoff of a still point, Hz: lower = smoother, more lag when it moves."
    )
    beta: float = Field(0.05, ge=0, le=100, description="Cutoff rise per pixel/s of speed: higher = less lag.")
    d_cutoff_hz: float = Field(1.0, gt=0, le=1000, description="Cutoff of the speed estimate itself, Hz.")


def _alpha(cutoff_hz: npt.ArrayLike, dt: float) -> F32:
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff_hz, np.float32))
    return (1.0 / (1.0 + tau / dt)).astype(np.float32)


class OneEuroFilter:
    """Filters a stream of same-shaped arrays; the first value passes through unchanged."""

    def __init__(self, params: OneEuroParams) -> None:
        self.params = params
        self._value: F32 | None = None
        self._speed: F32 | None = None
        self._time = 0.0

    def __call__(self, value: F32, timestamp: float) -> F32:
        """The filtered ``value`` at ``timestamp`` (seconds; one less than MIN_STEP_S after the last, or earlier,
        passes ``value`` through and restarts the filter there)."""
        value = np.asarray(value, np.float32)
        if (
            self._value is None
            or self._speed is None
            or self._value.shape != value.shape
            or not timestamp - self._time >= MIN_STEP_S  # (a NaN step too)
        ):
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), timestamp
            return value
        dt = timestamp - self._time
        speed = (value - self._value) / dt
        self._speed = self._speed + _alpha(self.params.d_cutoff_hz, dt) * (speed - self._speed)
        cutoff = self.params.min_cutoff_hz + self.params.beta * np.abs(self._speed)
        self._value = self._value + _alpha(cutoff, dt) * (value - self._value)
        self._time = timestamp
        return self._value.copy()
