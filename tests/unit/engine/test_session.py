"""Device selection: what each device asks of ONNX Runtime, and never a silent fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service.devices import parse_device
from service.engine.runners import CropJob, PoseRunner
from service.engine.session import CPU, CUDA, TENSORRT, DeviceUnavailableError, _gpu_providers, create_session
from service.models.repository import ModelRepository
from tests.oracles import install_pose_oracle


@pytest.fixture
def pose_onnx(tmp_path: Path) -> Path:
    install_pose_oracle(tmp_path, "pose", batching={"max_batch_size": 8, "preferred_batch_sizes": [4, 8]})
    return tmp_path / "pose" / "1" / "model.onnx"


def test_tensorrt_first_with_fp16_and_an_engine_cache(tmp_path: Path) -> None:
    providers = _gpu_providers([TENSORRT, CUDA, CPU], 1, tmp_path / "trt", fp16=True)
    assert [p[0] for p in providers] == [TENSORRT, CUDA]
    trt = providers[0][1]
    assert trt["device_id"] == 1
    assert trt["trt_fp16_enable"] is True
    assert trt["trt_engine_cache_enable"] is True
    assert trt["trt_engine_cache_path"] == str(tmp_path / "trt")
    assert (tmp_path / "trt").is_dir()
    assert providers[1] == (CUDA, {"device_id": 1})


def test_cuda_alone_without_tensorrt(tmp_path: Path) -> None:
    assert _gpu_providers([CUDA, CPU], 0, tmp_path / "trt", fp16=False) == [(CUDA, {"device_id": 0})]


def test_auto_falls_back_to_cpu_and_says_so(pose_onnx: Path, tmp_path: Path) -> None:
    session, info = create_session(pose_onnx, parse_device("auto"), threads=1, trt_cache=tmp_path)
    assert session.get_providers()[0] == CPU
    assert info.provider == CPU
    assert info.device == "cpu"
    assert info.threads == 1
    if CUDA not in ort.get_available_providers():
        assert info.fallback == "device auto asked for a GPU but runs on CPU (no CUDA provider installed)"


def test_cpu_is_no_fallback(pose_onnx: Path, tmp_path: Path) -> None:
    _, info = create_session(pose_onnx, parse_device("cpu"), threads=2, trt_cache=tmp_path)
    assert info.fallback is None
    assert info.threads == 2


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this onnxruntime has a CUDA provider")
def test_explicit_cuda_without_a_gpu_refuses_to_start(pose_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(DeviceUnavailableError, match="device cuda:1 requested but onnxruntime has no CUDA provider"):
        create_session(pose_onnx, parse_device("cuda:1"), threads=1, trt_cache=tmp_path)


def test_batches_pad_up_to_the_next_preferred_size(pose_onnx: Path, tmp_path: Path) -> None:
    model = ModelRepository(pose_onnx.parents[2]).load("pose")
    session, _ = create_session(pose_onnx, parse_device("cpu"), threads=1, trt_cache=tmp_path)
    runner = PoseRunner(model, session, pad_sizes=(4, 8))
    assert [runner._padded(n) for n in (1, 3, 4, 5, 8, 9)] == [4, 4, 4, 8, 8, 9]
    assert runner._u8.shape[0] == 8  # buffers hold the largest padded batch
    image = np.zeros((64, 48, 3), np.uint8)
    out = runner([CropJob(image, np.array([24, 32], np.float32), np.array([48, 64], np.float32))] * 3)
    assert len(out) == 3  # padded rows are run and dropped


def test_tensorrt_is_left_out_when_its_libraries_do_not_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime-gpu lists TensorRT even where libnvinfer is missing; asking for it would drop our options."""
    from service.engine import session

    monkeypatch.setattr(ort, "get_available_providers", lambda: [TENSORRT, CUDA, CPU])
    session.usable_providers.cache_clear()
    try:
        assert session.usable_providers() == [CUDA, CPU]  # this build ships no TensorRT provider library
    finally:
        monkeypatch.undo()
        session.usable_providers.cache_clear()
    assert session.usable_providers() == ort.get_available_providers()
