"""Start-up, readiness, auth, CORS and graceful shutdown of the real server process."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    PNG,
    SCENE,
    boxes_param,
    hide_bf16,
    install_slow_pose,
    metric,
    slow_pose,
    start_server,
    wait_for,
)
from tests.oracles import BANDS, install_detector_oracle, install_pose_oracle


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    install_pose_oracle(repo, "pose", batching={"max_batch_size": 1, "max_queue_delay_ms": 0})
    install_detector_oracle(repo, "det", bands=BANDS)
    return repo


def test_sigterm_during_load_finishes_the_accepted_requests(small_repo: Path, tmp_path: Path) -> None:
    # 6 requests of 12 crops, 4 crops a batch: the first one needs three batches, 0.6 s or more, so all six are
    # in together long before any is answered (and the 72 crops take 3.6 s or more, far inside the 60 s grace)
    install_slow_pose(small_repo, "pose", slow_pose(0.05).layers, max_batch_size=4)
    server = start_server(small_repo, tmp_path / "log", POSE_MODEL="pose", POSE_DETECTOR="det",
                          POSE_SHUTDOWN_GRACE_S="60")  # fmt: skip

    async def load_then_sigterm() -> list[int | str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=90) as client:
            tasks = [asyncio.create_task(client.post("/v1/pose", params={"boxes": boxes_param(12)}, content=SCENE,
                                                     headers=PNG)) for _ in range(6)]  # fmt: skip
            end = time.monotonic() + 30
            while await asyncio.to_thread(metric, server, "pose_requests_in_progress") < 6:  # all accepted, running
                assert time.monotonic() < end, "the requests never all got in"
                await asyncio.sleep(0.01)
            assert not all(t.done() for t in tasks)
            server.process.send_signal(signal.SIGTERM)
            results = await asyncio.gather(*tasks, return_exceptions=True)
            return [r.status_code if isinstance(r, httpx.Response) else type(r).__name__ for r in results]

    codes = asyncio.run(load_then_sigterm())
    assert codes == [200] * 6, codes
    assert server.process.wait(60) == 0
    assert "shutdown complete" in server.logs()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/healthz")


def test_auth_and_cors(small_repo: Path, tmp_path: Path) -> None:
    server = start_server(small_repo, tmp_path / "log", POSE_MODEL="pose", POSE_DETECTOR="det",
                          POSE_API_KEYS="s3cret,other", POSE_CORS_ORIGINS="https://app.example")  # fmt: skip
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            denied = client.post("/v1/pose", content=SCENE, headers=PNG)
            assert denied.status_code == 401
            assert denied.json()["error"]["code"] == "unauthorized"
            assert denied.headers["www-authenticate"] == "Bearer"
            assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
            ok = client.post("/v1/pose", content=SCENE, headers=PNG | {"Authorization": "Bearer other"})
            assert ok.status_code == 200
            for open_path in ("/healthz", "/readyz", "/metrics"):
                assert client.get(open_path).status_code == 200
            preflight = client.options("/v1/pose", headers={"Origin": "https://app.example",
                                                            "Access-Control-Request-Method": "POST"})  # fmt: skip
            assert preflight.headers["access-control-allow-origin"] == "https://app.example"
            stranger = client.options("/v1/pose", headers={"Origin": "https://evil.example",
                                                           "Access-Control-Request-Method": "POST"})  # fmt: skip
            assert "access-control-allow-origin" not in stranger.headers
    finally:
        server.stop()


def test_a_missing_model_stops_the_process_with_a_clear_message(small_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the service exited with 1") as info:
        start_server(small_repo, tmp_path / "log", POSE_MODEL="rtmpose-m", POSE_DETECTOR="det")
    assert "model 'rtmpose-m' is not installed" in str(info.value)
    assert "python -m service.models ensure rtmpose-m" in str(info.value)


def test_a_broken_config_names_file_and_field(small_repo: Path, tmp_path: Path) -> None:
    config = small_repo / "pose" / "config.toml"
    config.write_text(config.read_text().replace("max_batch_size = 1", "max_batch_size = -4"))
    with pytest.raises(RuntimeError, match=r"config.toml: field 'batching.max_batch_size'"):
        start_server(small_repo, tmp_path / "log", POSE_MODEL="pose", POSE_DETECTOR="det")


def test_a_precision_the_runtime_cannot_give_stops_the_process_with_what_to_set(
    small_repo: Path, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="the service exited with 1") as info:
        start_server(small_repo, tmp_path / "log", POSE_MODEL="pose", POSE_DETECTOR="det", POSE_PRECISION="bf16")
    assert "precision bf16 asked for, but onnxruntime runs fp32" in str(info.value)
    assert 'Set backend = \\"openvino\\"' in str(info.value)  # (JSON log line)


def test_bf16_on_openvino_on_a_cpu_without_it_stops_the_process_before_it_is_ready(
    small_repo: Path, tmp_path: Path
) -> None:
    """What a cpu-bf16 pod does on a node without bf16: no silent fp32, the process exits 1 with the reason.

    ``start_server`` returns only on a 200 from /readyz, so the raise also says it never was ready. Where this CPU
    has bf16, the server's OpenVINO is shown a CPU without it (``hide_bf16``).
    """
    hook = hide_bf16(tmp_path / "no-bf16")
    with pytest.raises(RuntimeError, match="the service exited with 1") as info:
        start_server(small_repo, tmp_path / "log", POSE_MODEL="pose", POSE_DETECTOR="det", PYTHONPATH=str(hook),
                     POSE_BACKEND="openvino", POSE_PRECISION="bf16")  # fmt: skip
    message = str(info.value)
    assert "exiting: the models could not be loaded" in message
    assert "precision bf16 asked for, but OpenVINO cannot run it on this CPU" in message
    assert "it needs AVX512-BF16 or AMX" in message
    assert 'Set precision = \\"fp32\\" or \\"auto\\"' in message  # (JSON log line)


def test_served_on_openvino_the_models_say_so(small_repo: Path, tmp_path: Path) -> None:
    """POSE_BACKEND / POSE_PRECISION override every model; what runs shows in /v1/models, /metrics and the log."""
    server = start_server(small_repo, tmp_path / "log", POSE_MODEL="pose", POSE_DETECTOR="det",
                          POSE_BACKEND="openvino", POSE_PRECISION="auto")  # fmt: skip
    try:
        models = {m["name"]: m for m in httpx.get(server.url + "/v1/models").json()["models"]}
        precision = models["pose"]["precision"]
        for model in models.values():
            assert (model["backend"], model["provider"], model["precision"]) == ("openvino", "OpenVINO:CPU", precision)
            assert (model["precision_warning"] is None) == (precision != "fp32")  # auto on a CPU without bf16/fp16
        assert f"backend=openvino precision={precision} provider=OpenVINO:CPU" in server.logs()
        metrics = httpx.get(server.url + "/metrics").text
        fell_back = str(precision == "fp32").lower()
        labels = (f'backend="openvino",fallback="false",model="pose",precision="{precision}",'
                  f'precision_fallback="{fell_back}",provider="OpenVINO:CPU"')  # fmt: skip
        assert f"pose_model_info{{{labels}" in metrics
        response = httpx.post(server.url + "/v1/pose", content=SCENE, headers=PNG, timeout=30)
        assert response.status_code == 200
        assert len(response.json()["people"]) == 1
    finally:
        server.stop()


def test_not_ready_until_warm(small_repo: Path, tmp_path: Path) -> None:
    """While a slow model warms up, /readyz and /v1/pose answer 503 and /healthz 200."""
    slow = slow_pose(0.1)
    warm_up = slow.crops_for(2.0)  # one warm-up batch of 2 s or more: the first probes find it still warming
    install_slow_pose(small_repo, "pose", slow.layers, max_batch_size=warm_up, preferred_batch_sizes=[warm_up])
    server = start_server(small_repo, tmp_path / "log", ready=False, POSE_MODEL="pose", POSE_DETECTOR="det")
    try:
        ready = httpx.get(server.url + "/readyz", timeout=5)
        early = httpx.post(server.url + "/v1/pose", content=SCENE, headers=PNG, timeout=5)
        assert ready.status_code == 503
        assert ready.json()["error"] == {"code": "not_ready", "message": "loading and warming up models"}
        assert ready.headers["retry-after"] == "5"
        assert early.status_code == 503
        # both models loaded (each is announced in pose_model_info): the warm-up runs now, for 2 s or more
        wait_for(lambda: metric(server, "pose_model_info", model=("pose", "det")) == 2, "the models never loaded")
        assert httpx.get(server.url + "/readyz", timeout=5).status_code == 503, "loaded is not warm: not ready yet"
        wait_for(lambda: httpx.get(server.url + "/readyz", timeout=5).status_code == 200, "never ready", timeout=120)
        assert httpx.post(server.url + "/v1/pose", content=SCENE, headers=PNG, timeout=30).status_code == 200
    finally:
        server.stop()
