"""gRPC operations on the real process: deadlines into the queues, queue full, auth, health across start-up and
SIGTERM, and SIGTERM under mixed HTTP + gRPC load."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire._proto.pose.v1 import pose_pb2_grpc
from tests.integration.server import Server, start_server
from tests.integration.test_grpc import error_of, raw
from tests.integration.test_http import PNG, SCENE, scene
from tests.oracles import BANDS, POSE_FIELDS, install_detector_oracle, install_model, slow_pose_oracle

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
IMAGE = raw(scene())


def slow_repo(root: Path, *, kernel: int = 15, **batching: int) -> Path:
    """A pose model of about 0.1 s per crop on two cores (kernel 15), and the band detector."""
    install_model(root, "pose", slow_pose_oracle((192, 256), [0] * 17, out_channels=128, kernel=kernel),
                  **POSE_FIELDS, batching={"max_queue_delay_ms": 0, **batching})  # fmt: skip
    install_detector_oracle(root, "det", bands=BANDS)
    return root


def metric(server: Server, pattern: str) -> float:
    total = 0.0
    for line in httpx.get(server.url + "/metrics", timeout=10).text.splitlines():
        if re.match(pattern, line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def boxes(count: int) -> list[pb.Box]:
    return [pb.Box(x1=10, y1=10, x2=200, y2=300)] * count


def test_a_deadline_shorter_than_the_work_is_deadline_exceeded_and_queued_crops_never_run(tmp_path: Path) -> None:
    # batches of 8 crops of about 1 s each: a 0.3 s deadline can see at most the first one start
    server = start_server(slow_repo(tmp_path / "repo", kernel=21, max_batch_size=8), tmp_path / "log",
                          POSE_MODEL="pose", POSE_DETECTOR="det")  # fmt: skip
    try:
        items = r'pose_items_total\{model="pose"\}'
        skipped = r'pose_rejected_total\{reason="(cancelled|deadline)"\}'
        items_before, skipped_before = metric(server, items), metric(server, skipped)
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = pose_pb2_grpc.PoseServiceStub(channel)
            request = pb.EstimateRequest(image=IMAGE, options=pb.Options(boxes=boxes(24)))
            start = time.monotonic()
            with pytest.raises(grpc.RpcError) as info:
                stub.Estimate(request, timeout=0.3)
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - start < 1.0
        time.sleep(3.5)  # long enough for all three batches, had they run
        ran = metric(server, items) - items_before
        assert ran <= 8, f"{ran} crops ran: only the batch already running when the deadline passed may"
        assert ran + metric(server, skipped) - skipped_before == 24, "every other crop was skipped, not run"
    finally:
        server.stop()


def test_queue_full_is_resource_exhausted(tmp_path: Path) -> None:
    server = start_server(slow_repo(tmp_path / "repo", max_batch_size=1, max_queue_size=4), tmp_path / "log",
                          POSE_MODEL="pose", POSE_DETECTOR="det", POSE_MAX_PEOPLE="4")  # fmt: skip
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = pose_pb2_grpc.PoseServiceStub(channel)
            request = pb.EstimateRequest(image=IMAGE, options=pb.Options(boxes=boxes(4)))
            calls = [stub.Estimate.future(request, timeout=30) for _ in range(4)]
            outcomes = []
            for call in calls:
                try:
                    call.result()
                    outcomes.append("OK")
                except grpc.RpcError as exc:
                    code, _, pose_code = error_of(exc)
                    outcomes.append(f"{code.name}/{pose_code}")
        assert "OK" in outcomes
        assert "RESOURCE_EXHAUSTED/queue_full" in outcomes, outcomes
        assert set(outcomes) <= {"OK", "RESOURCE_EXHAUSTED/queue_full"}, outcomes
    finally:
        server.stop()


def test_bearer_auth_on_the_pose_service_and_open_health(tmp_path: Path) -> None:
    server = start_server(slow_repo(tmp_path / "repo", kernel=1), tmp_path / "log", POSE_MODEL="pose",
                          POSE_DETECTOR="det", POSE_API_KEYS="s3cret")  # fmt: skip
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = pose_pb2_grpc.PoseServiceStub(channel)
            request = pb.EstimateRequest(image=IMAGE)
            for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", "s3cret"),)):
                with pytest.raises(grpc.RpcError) as info:
                    stub.Estimate(request, timeout=30, metadata=metadata)
                assert error_of(info.value)[0::2] == (grpc.StatusCode.UNAUTHENTICATED, "unauthorized")
            with pytest.raises(grpc.RpcError) as info:
                stub.ListModels(pb.ListModelsRequest(), timeout=30)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert len(stub.Estimate(request, timeout=30, metadata=(("authorization", "Bearer s3cret"),)).people) == 1
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING
    finally:
        server.stop()


def test_health_goes_not_serving_serving_not_serving_across_start_up_and_sigterm(tmp_path: Path) -> None:
    repo = slow_repo(tmp_path / "repo", max_batch_size=32, preferred_batch_sizes=[32])  # seconds of warm-up
    server = start_server(repo, tmp_path / "log", ready=False, POSE_MODEL="pose", POSE_DETECTOR="det")
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            grpc.channel_ready_future(channel).result(timeout=10)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == NOT_SERVING
            with pytest.raises(grpc.RpcError) as info:
                pose_pb2_grpc.PoseServiceStub(channel).Estimate(pb.EstimateRequest(image=IMAGE), timeout=10)
            assert error_of(info.value)[0::2] == (grpc.StatusCode.UNAVAILABLE, "not_ready")
            seen: list[int] = []
            watch = health.Watch(health_pb2.HealthCheckRequest(service="pose.v1.PoseService"))
            reader = threading.Thread(target=_read_statuses, args=(watch, seen))
            reader.start()
            end = time.monotonic() + 120
            while SERVING not in seen:
                assert time.monotonic() < end, "never became SERVING"
                time.sleep(0.05)
            assert httpx.get(server.url + "/readyz").status_code == 200
            server.process.send_signal(signal.SIGTERM)
            reader.join(30)
        assert [seen[0], SERVING in seen, seen[-1]] == [NOT_SERVING, True, NOT_SERVING], seen
        assert server.process.wait(30) == 0
    finally:
        server.stop()


def _read_statuses(stream: grpc.Call, seen: list[int]) -> None:  # type: ignore[type-arg]
    try:
        for answer in stream:
            seen.append(answer.status)
    except grpc.RpcError:
        pass  # the server went away


def test_sigterm_during_mixed_http_and_grpc_load_finishes_every_accepted_call(tmp_path: Path) -> None:
    server = start_server(slow_repo(tmp_path / "repo", max_batch_size=4), tmp_path / "log", POSE_MODEL="pose",
                          POSE_DETECTOR="det", POSE_SHUTDOWN_GRACE_S="60")  # fmt: skip
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pose_pb2_grpc.PoseServiceStub(channel)
        request = pb.EstimateRequest(image=IMAGE, options=pb.Options(boxes=boxes(6)))
        grpc_calls = [stub.Estimate.future(request, timeout=90) for _ in range(4)]
        http_results: list[int] = []
        box_list = "[" + ",".join(["[10,10,200,300]"] * 6) + "]"

        def post() -> None:
            response = httpx.post(server.url + "/v1/pose", params={"boxes": box_list}, content=SCENE, headers=PNG,
                                  timeout=90)  # fmt: skip
            http_results.append(response.status_code)

        posters = [threading.Thread(target=post) for _ in range(4)]
        for thread in posters:
            thread.start()
        end = time.monotonic() + 30
        in_progress = r'pose_requests_in_progress\{protocol="(http|grpc)"\}'
        while metric(server, in_progress) < 8:  # every call accepted and running
            assert time.monotonic() < end, "the calls never all got in"
            time.sleep(0.02)
        server.process.send_signal(signal.SIGTERM)
        grpc_results = [len(call.result().people) for call in grpc_calls]
        for thread in posters:
            thread.join(90)
        with pytest.raises(grpc.RpcError) as info:  # a call after the drain began
            stub.Estimate(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert grpc_results == [6] * 4
    assert http_results == [200] * 4
    assert server.process.wait(60) == 0
    assert "shutdown complete" in server.logs()
