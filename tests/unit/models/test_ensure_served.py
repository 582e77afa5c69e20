"""``python -m service.models ensure`` without names installs what the service will serve (the container's start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import Settings
from service.models.__main__ import main
from service.models.repository import ModelRepository


def test_ensure_installs_the_default_and_extra_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSE_MODEL_REPOSITORY", str(tmp_path))
    monkeypatch.setenv("POSE_MODEL", "rtmpose-t")
    monkeypatch.setenv("POSE_DETECTOR", "rtmdet-nano")
    monkeypatch.setenv("POSE_EXTRA_MODELS", "rtmpose-s,*")  # '*' names no model to install
    assert main(["ensure", "--weights", "synthetic"]) == 0
    assert sorted(ModelRepository(tmp_path).names()) == ["rtmdet-nano", "rtmpose-s", "rtmpose-t"]


def test_trt_cache_is_its_own_setting_or_beside_the_models(tmp_path: Path) -> None:
    assert Settings(model_repository=tmp_path).trt_cache_dir() == tmp_path / ".trt_cache"
    assert Settings(model_repository=tmp_path, trt_cache=tmp_path / "trt").trt_cache_dir() == tmp_path / "trt"
