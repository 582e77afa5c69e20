"""rtmlib in its own environment (.bench-venv, made by ``make bench``): one run of rtmlib_runner.py."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_VENV = ROOT / ".bench-venv"
logger = logging.getLogger("benchmarks")


def run(
    det: Path, pose: Path, paths: list[Path], seconds: float, max_people: int, *options: str
) -> dict[str, Any] | None:
    """rtmlib_runner.py's JSON (images, crops, wall_s, latencies_s), or None without the environment."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        logger.warning("no %s: skipping rtmlib (make bench creates it)", BENCH_VENV)
        return None
    command = [str(python), str(ROOT / "benchmarks" / "rtmlib_runner.py"), str(det), str(pose), str(seconds),
               str(max_people), *map(str, paths), *options]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])
