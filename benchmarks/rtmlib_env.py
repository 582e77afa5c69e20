"""rtmlib in its own environment (.bench-venv, made by ``make bench``): rtmlib_runner.py as a worker process."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_VENV = ROOT / ".bench-venv"
logger = logging.getLogger("benchmarks")


def _command(det: Path, pose: Path, paths: list[Path], seconds: float, max_people: int, *options: str) -> list[str]:
    return [str(BENCH_VENV / "bin" / "python"), str(ROOT / "benchmarks" / "rtmlib_runner.py"), str(det), str(pose),
            str(seconds), str(max_people), *map(str, paths), *options]  # fmt: skip


def available() -> bool:
    if (BENCH_VENV / "bin" / "python").exists():
        return True
    logger.warning("no %s: skipping rtmlib (make bench creates it)", BENCH_VENV)
    return False


class Worker:
    """rtmlib_runner.py --serve: models loaded once, then one measurement per call."""

    def __init__(self, det: Path, pose: Path, paths: list[Path], max_people: int, *options: str) -> None:
        command = _command(det, pose, paths, 0, max_people, *options, "--serve")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._in, self._out = self.process.stdin, self.process.stdout
        assert self._in is not None
        assert self._out is not None
        while (line := self._out.readline()) and not line.startswith("ready "):  # rtmlib prints as it loads
            pass
        if not line:
            raise RuntimeError(f"rtmlib_runner.py exited with {self.process.wait()}")
        self.provider = line.split()[1]  # what rtmlib's pose session really runs on
        self.pid = self.process.pid

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def measure(self, seconds: float) -> dict[str, Any]:
        self._in.write(f"{seconds}\n")  # type: ignore[union-attr]
        self._in.flush()  # type: ignore[union-attr]
        return json.loads(self._out.readline())  # type: ignore[union-attr]

    def close(self) -> None:
        self._in.close()  # type: ignore[union-attr]
        self.process.wait(30)
