"""Device names as written in configs and settings: ``cpu``, ``cuda``, ``cuda:N``, ``auto``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DEVICE = re.compile(r"^(cpu|auto|cuda)(?::(\d+))?$")


@dataclass(frozen=True)
class Device:
    kind: str  # cpu | cuda | auto
    index: int = 0

    def __str__(self) -> str:
        return self.kind if self.kind != "cuda" else f"cuda:{self.index}"


def parse_device(text: str) -> Device:
    """Parse ``cpu`` / ``auto`` / ``cuda`` / ``cuda:N``.

    Raises:
        ValueError: for anything else, with valid examples.
    """
    match = _DEVICE.match(text.strip().lower())
    if not match or (match.group(1) != "cuda" and match.group(2) is not None):
        raise ValueError(f"device must be one of cpu, auto, cuda, cuda:N (e.g. cuda:0), got {text!r}")
    return Device(kind=match.group(1), index=int(match.group(2) or 0))
