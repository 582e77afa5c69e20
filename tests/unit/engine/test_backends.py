"""Backends and precisions: what each runtime is asked for, what it reports, and never a silent change."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from service.config import Settings, cpu_count
from service.devices import Backend, Precision, parse_device
from service.engine.engine import Engine
from service.engine.openvino_backend import PROVIDER, choose_precision, cpu_precisions
from service.engine.session import CPU, TENSORRT, BackendUnavailableError, create_session, open_session
from tests.helpers import metric
from tests.oracles import (
    BANDS,
    POSE_FIELDS,
    install_detector_oracle,
    install_model,
    install_pose_oracle,
    pose_oracle,
)

HAS_BF16 = Precision.BF16 in cpu_precisions()
HAS_FP16 = Precision.FP16 in cpu_precisions()
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bf16 in OpenVINO (AVX512-BF16 / AMX)")


@pytest.fixture
def pose_onnx(tmp_path: Path) -> Path:
    install_pose_oracle(tmp_path, "pose", channels=list(range(3)) * 5 + [0, 1])
    return tmp_path / "pose" / "1" / "model.onnx"


def _open(
    path: Path, backend: Backend, precision: Precision, device: str = "cpu", threads: int = 1, size: int = 192
) -> tuple:
    return open_session(path, parse_device(device), backend=backend, precision=precision, threads=threads,
                        trt_cache=path.parent / "trt", input_size=(size, size * 4 // 3))  # fmt: skip


@pytest.mark.parametrize(
    ("available", "chosen", "note"),
    [
        ({Precision.FP32, Precision.BF16, Precision.FP16}, Precision.BF16, None),  # bf16 keeps fp32's range
        ({Precision.FP32, Precision.FP16}, Precision.FP16, None),
        ({Precision.FP32}, Precision.FP32, "precision auto runs fp32: this CPU (Some CPU) has neither bf16"),
    ],
)
def test_auto_takes_the_fastest_precision_the_cpu_has_and_says_when_that_is_fp32(
    available: set[Precision], chosen: Precision, note: str | None
) -> None:
    got, why = choose_precision(Precision.AUTO, available, "Some CPU")
    assert got is chosen
    assert (why is None) if note is None else (why is not None and why.startswith(note))


@pytest.mark.parametrize(("asked", "needs"), [(Precision.BF16, "AVX512-BF16 or AMX"), (Precision.FP16, "AMX-FP16")])
def test_an_explicit_precision_the_cpu_lacks_is_refused_with_what_to_set(asked: Precision, needs: str) -> None:
    with pytest.raises(BackendUnavailableError) as info:
        choose_precision(asked, {Precision.FP32}, "Some CPU")
    message = str(info.value)
    assert f"precision {asked} asked for, but OpenVINO cannot run it on this CPU (Some CPU: it needs {needs}" in message
    assert 'Set precision = "fp32" or "auto"' in message
    assert choose_precision(Precision.FP32, {Precision.FP32}, "Some CPU") == (Precision.FP32, None)


def test_openvino_fp32_reports_itself_and_answers_as_onnxruntime(pose_onnx: Path) -> None:
    session, info = _open(pose_onnx, Backend.OPENVINO, Precision.FP32, threads=2)
    # what runs is read back from the compiled model: OpenVINO runs no more threads than this process has cores
    assert (info.backend, info.precision, info.provider, info.device, info.threads) == (
        Backend.OPENVINO, Precision.FP32, PROVIDER, "cpu", min(2, cpu_count()))  # fmt: skip
    assert info.fallback is None
    assert info.precision_fallback is None
    compiled = session.compiled  # one stream per instance, threads not pinned (openvino_backend.CPU_CONFIG)
    assert (compiled.get_property("NUM_STREAMS"), compiled.get_property("ENABLE_CPU_PINNING")) == (1, False)
    reference = ort.InferenceSession(str(pose_onnx), providers=[CPU])
    for batch in (1, 3, 8):  # one compiled model, any batch size
        x = np.random.default_rng(batch).standard_normal((batch, 3, 256, 192)).astype(np.float32)
        got = session.run(["simcc_y", "simcc_x"], {"input": x})
        want = reference.run(["simcc_y", "simcc_x"], {"input": x})
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)
        assert [o.shape for o in session.run(None, {"input": x})] == [(batch, 17, 384), (batch, 17, 512)]


def test_openvino_keeps_a_static_batch_and_fixes_a_dynamic_input_size(tmp_path: Path) -> None:
    model = pose_oracle((192, 256), [0] * 17)
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 2
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"  # H and W left open in the export
    model.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "width"
    install_model(tmp_path, "pose", model, **POSE_FIELDS)
    session, _ = _open(tmp_path / "pose" / "1" / "model.onnx", Backend.OPENVINO, Precision.FP32)
    (port,) = session.compiled.inputs
    assert port.get_partial_shape().to_string() == "[2,3,256,192]"
    x = np.random.default_rng(0).standard_normal((2, 3, 256, 192)).astype(np.float32)
    assert session.run(["simcc_x"], {"input": x})[0].shape == (2, 17, 384)


def test_openvino_outputs_are_the_callers_own(pose_onnx: Path) -> None:
    session, _ = _open(pose_onnx, Backend.OPENVINO, Precision.FP32)
    x = np.random.default_rng(0).standard_normal((2, 3, 256, 192)).astype(np.float32)
    first = session.run(["simcc_x"], {"input": x})[0]
    kept = first.copy()
    session.run(["simcc_x"], {"input": -x})
    np.testing.assert_array_equal(first, kept)  # the next run did not write into an earlier result


def test_openvino_detector_labels_stay_int64(tmp_path: Path) -> None:
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    session, _ = _open(tmp_path / "det" / "1" / "model.onnx", Backend.OPENVINO, Precision.FP32, size=240)
    dets, labels = session.run(["dets", "labels"], {"input": np.zeros((2, 3, 320, 240), np.float32)})
    assert dets.shape == (2, 3, 5)
    assert labels.dtype == np.int64


@needs_bf16
def test_openvino_bf16_is_what_runs_when_asked_or_auto(pose_onnx: Path) -> None:
    for asked in (Precision.BF16, Precision.AUTO):
        session, info = _open(pose_onnx, Backend.OPENVINO, asked)
        assert info.precision is Precision.BF16
        assert session.compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "bf16"
        assert info.precision_fallback is None


@pytest.mark.skipif(HAS_FP16, reason="this CPU has fp16 in OpenVINO")
def test_openvino_fp16_without_the_cpu_for_it_fails_instead_of_running_bf16(pose_onnx: Path) -> None:
    """Asked for f16 on such a CPU, OpenVINO itself would quietly compile bf16."""
    with pytest.raises(BackendUnavailableError, match="precision fp16 asked for, but OpenVINO cannot run it"):
        _open(pose_onnx, Backend.OPENVINO, Precision.FP16)


def test_openvino_does_not_take_a_gpu_device(pose_onnx: Path) -> None:
    with pytest.raises(BackendUnavailableError, match='backend openvino, which runs on CPU here. Set backend = "onnx'):
        _open(pose_onnx, Backend.OPENVINO, Precision.FP32, device="cuda:0")
    _, info = _open(pose_onnx, Backend.OPENVINO, Precision.FP32, device="auto")
    assert info.device == "cpu"
    assert info.fallback is None  # auto means the backend's best device: its CPU


def test_openvino_not_installed_says_what_to_install(pose_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "service.engine.openvino_backend", None)  # makes the import fail
    monkeypatch.delattr(sys.modules["service.engine"], "openvino_backend")
    with pytest.raises(BackendUnavailableError, match=r"pip install 'rtmpose-service\[openvino\]'"):
        _open(pose_onnx, Backend.OPENVINO, Precision.FP32)


@pytest.mark.parametrize(
    ("precision", "message"),
    [
        (Precision.BF16, 'precision bf16 asked for, but onnxruntime runs fp32 (and fp16 only through TensorRT). '
                         'Set backend = "openvino"'),
        (Precision.FP16, "precision fp16 asked for, but onnxruntime runs fp16 only through the TensorRT provider"),
    ],
)  # fmt: skip
def test_onnxruntime_refuses_a_reduced_precision_it_cannot_run(
    pose_onnx: Path, precision: Precision, message: str
) -> None:
    with pytest.raises(BackendUnavailableError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _open(pose_onnx, Backend.ONNXRUNTIME, precision)


@pytest.mark.skipif(TENSORRT in ort.get_available_providers(), reason="this onnxruntime has TensorRT")
def test_onnxruntime_auto_precision_runs_fp32_and_says_so(pose_onnx: Path) -> None:
    _, info = create_session(pose_onnx, parse_device("cpu"), threads=1, trt_cache=pose_onnx.parent,
                             precision=Precision.AUTO)  # fmt: skip
    assert (info.backend, info.precision) == (Backend.ONNXRUNTIME, Precision.FP32)
    assert info.precision_fallback is not None
    assert info.precision_fallback.startswith("precision auto runs fp32: onnxruntime lowers precision only through")


def test_settings_override_backend_and_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().backend, Settings().precision) == (None, None)  # each model's config decides
    monkeypatch.setenv("POSE_BACKEND", "openvino")
    monkeypatch.setenv("POSE_PRECISION", "bf16")
    assert (Settings().backend, Settings().precision) == (Backend.OPENVINO, Precision.BF16)
    monkeypatch.setenv("POSE_PRECISION", "")
    assert Settings().precision is None
    monkeypatch.setenv("POSE_BACKEND", "tensorflow")
    with pytest.raises(ValidationError, match="'onnxruntime' or 'openvino'"):
        Settings()


def test_the_engine_serves_what_each_config_asks_and_shows_it(tmp_path: Path) -> None:
    """Per-model backends; the precision that really runs shows in /v1/models and the metric label."""
    install_pose_oracle(tmp_path, "pose", instances={"backend": "openvino", "precision": "auto", "device": "cpu"})
    install_detector_oracle(tmp_path, "det", bands=BANDS, instances={"device": "cpu"})
    engine = Engine(Settings(model_repository=tmp_path, model="pose", detector="det", warmup=False))
    engine.start()
    try:
        described = {m["name"]: m for m in engine.describe()}
        pose, det = described["pose"], described["det"]
        expected = "bf16" if HAS_BF16 else "fp16" if HAS_FP16 else "fp32"
        assert (pose["backend"], pose["precision"], pose["provider"]) == ("openvino", expected, PROVIDER)
        assert (pose["precision_warning"] is None) == (expected != "fp32")
        assert (det["backend"], det["precision"], det["precision_warning"]) == ("onnxruntime", "fp32", None)
        fell_back = str(expected == "fp32").lower()
        assert metric(REGISTRY, "pose_model_info", model="pose", version="1", weights="custom", provider=PROVIDER,
                      fallback="false", backend="openvino", precision=expected,
                      precision_fallback=fell_back) == 1  # fmt: skip
        assert metric(REGISTRY, "pose_model_info", model="det", version="1", weights="custom", provider=CPU,
                      fallback="false", backend="onnxruntime", precision="fp32",
                      precision_fallback="false") == 1  # fmt: skip
    finally:
        engine.close(1)


def test_an_override_the_runtime_cannot_honour_stops_the_start(tmp_path: Path) -> None:
    install_pose_oracle(tmp_path, "pose")
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    engine = Engine(Settings(model_repository=tmp_path, model="pose", detector="det", precision=Precision.BF16))
    with pytest.raises(BackendUnavailableError, match='Set backend = "openvino"'):
        engine.start()
    assert engine.state.error is not None
    assert engine.state.error.startswith("BackendUnavailableError")
    assert not engine.state.ready
