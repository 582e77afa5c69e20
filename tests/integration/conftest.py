"""A model repository of oracle models and the real server over it, shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Server, build_repository, start_server


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repository"))


@pytest.fixture(scope="module")
def server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "server.log"
    running = start_server(
        repository, log, POSE_MODEL="pose-oracle", POSE_DETECTOR="detector-oracle",
        POSE_EXTRA_MODELS="wholebody-oracle,poisoned-oracle", POSE_MAX_BODY_BYTES=str(2 * 1024 * 1024),
        POSE_MAX_IMAGE_PIXELS=str(20_000_000), POSE_GRPC_MAX_MESSAGE_BYTES=str(2 * 1024 * 1024),
    )  # fmt: skip
    yield running
    running.stop()
