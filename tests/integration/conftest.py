"""A model repository of oracle models and the real server over it, shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server import Server, start_server
from tests.oracles import (
    BANDS,
    POSE_FIELDS,
    install_detector_oracle,
    install_model,
    install_pose_oracle,
    poisoned_pose_oracle,
)


def build_repository(root: Path) -> Path:
    """Body (COCO-17) and whole-body (133) pose oracles, a detector oracle, and a model that fails on green."""
    install_pose_oracle(root, "pose-oracle", batching={"max_batch_size": 16, "max_queue_delay_ms": 5})
    install_pose_oracle(root, "wholebody-oracle", keypoints="wholebody133")
    install_detector_oracle(root, "detector-oracle", bands=BANDS)
    install_model(root, "poisoned-oracle", poisoned_pose_oracle(), **POSE_FIELDS)
    return root


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
