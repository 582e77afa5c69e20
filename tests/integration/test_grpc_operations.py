"""gRPC operations on the real process: deadlines into the queues, queue full, auth, health across start-up and
SIGTERM, and SIGTERM under mixed HTTP + gRPC load."""

from __future__ import annotations

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
from tests.helpers import (
    PNG,
    SCENE,
    boxes_param,
    error_of,
    grpc_boxes,
    metric,
    raw,
    scene,
    slow_pose,
    slow_repo,
    start_server,
    wait_for,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
IMAGE = raw(scene())


def test_a_deadline_shorter_than_the_work_is_deadline_exceeded_and_queued_crops_never_run(tmp_path: Path) -> None:
    slow = slow_pose(0.1, batch=8)
    batch_s = slow.seconds(8)  # the least a batch of 8 takes here
    deadline = min(0.3, batch_s / 3)  # passes while the first batch runs: the other two can never start in time
    server = start_server(slow_repo(tmp_path / "repo", slow.layers, max_batch_size=8), tmp_path / "log",
                          POSE_MODEL="pose", POSE_DETECTOR="det")  # fmt: skip
    try:
        items = {"name": "pose_items_total", "model": "pose"}
        skipped = {"name": "pose_rejected_total", "reason": ("cancelled", "deadline")}
        items_before, skipped_before = metric(server, **items), metric(server, **skipped)
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = pose_pb2_grpc.PoseServiceStub(channel)
            request = pb.EstimateRequest(image=IMAGE, options=pb.Options(boxes=grpc_boxes(24)))
            start = time.monotonic()
            with pytest.raises(grpc.RpcError) as info:
                stub.Estimate(request, timeout=deadline)
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - start < deadline + 1

        def accounted() -> float:  # every crop ran or was skipped: nothing is left to run
            return metric(server, **items) - items_before + metric(server, **skipped) - skipped_before

        wait_for(lambda: accounted() >= 24, "some crops were neither run nor skipped", timeout=30 + 3 * 3 * batch_s)
        ran = metric(server, **items) - items_before
        assert ran <= 8, f"{ran} crops ran: only the batch already running when the deadline passed may"
        assert accounted() == 24, "every other crop was skipped, not run"
    finally:
        server.stop()


def test_queue_full_is_resource_exhausted(tmp_path: Path) -> None:
    slow = slow_pose(0.1, batch=1)  # the first call's 4 crops, one at a time, hold the queue 0.4 s or more
    server = start_server(slow_repo(tmp_path / "repo", slow.layers, max_batch_size=1, max_queue_size=4),
                          tmp_path / "log", POSE_MODEL="pose", POSE_DETECTOR="det", POSE_MAX_PEOPLE="4")  # fmt: skip
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = pose_pb2_grpc.PoseServiceStub(channel)
            request = pb.EstimateRequest(image=IMAGE, options=pb.Options(boxes=grpc_boxes(4)))
            first = stub.Estimate.future(request, timeout=30)
            wait_for(lambda: metric(server, "pose_requests_in_progress", protocol="grpc") == 1,
                     "the first call was never admitted")  # fmt: skip
            calls = [first] + [stub.Estimate.future(request, timeout=30) for _ in range(3)]
            outcomes = []
            for call in calls:
                try:
                    call.result()
                    outcomes.append("OK")
                except grpc.RpcError as exc:
                    code, _, pose_code = error_of(exc)
                    outcomes.append(f"{code.name}/{pose_code}")
        assert outcomes[0] == "OK"
        assert "RESOURCE_EXHAUSTED/queue_full" in outcomes[1:], outcomes
        assert set(outcomes) <= {"OK", "RESOURCE_EXHAUSTED/queue_full"}, outcomes
    finally:
        server.stop()


def test_bearer_auth_on_the_pose_service_and_open_health(tmp_path: Path) -> None:
    server = start_server(slow_repo(tmp_path / "repo", 0), tmp_path / "log", POSE_MODEL="pose",
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
    slow = slow_pose(0.1)
    warm_up = slow.crops_for(2.0)  # one warm-up batch of 2 s or more: the probes below find it still warming
    repo = slow_repo(tmp_path / "repo", slow.layers, max_batch_size=warm_up, preferred_batch_sizes=[warm_up])
    server = start_server(repo, tmp_path / "log", ready=False, POSE_MODEL="pose", POSE_DETECTOR="det")
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            grpc.channel_ready_future(channel).result(timeout=10)
            # both models loaded (each is announced in pose_model_info): the warm-up runs now, for 2 s or more
            wait_for(lambda: metric(server, "pose_model_info", model=("pose", "det")) == 2, "the models never loaded")
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == NOT_SERVING
            with pytest.raises(grpc.RpcError) as info:
                pose_pb2_grpc.PoseServiceStub(channel).Estimate(pb.EstimateRequest(image=IMAGE), timeout=10)
            assert error_of(info.value)[0::2] == (grpc.StatusCode.UNAVAILABLE, "not_ready")
            seen: list[int] = []
            watch = health.Watch(health_pb2.HealthCheckRequest(service="pose.v1.PoseService"))
            reader = threading.Thread(target=_read_statuses, args=(watch, seen))
            reader.start()
            wait_for(lambda: SERVING in seen, "never became SERVING", timeout=120)
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
    # 8 calls of 6 crops, 4 crops a batch: the first call needs two batches, 0.8 s or more, so all 8 are in
    # together long before any is answered (and the 48 crops take 4.8 s or more, far inside the 60 s grace)
    slow = slow_pose(0.1)
    server = start_server(slow_repo(tmp_path / "repo", slow.layers, max_batch_size=4), tmp_path / "log",
                          POSE_MODEL="pose", POSE_DETECTOR="det", POSE_SHUTDOWN_GRACE_S="60")  # fmt: skip
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pose_pb2_grpc.PoseServiceStub(channel)
        request = pb.EstimateRequest(image=IMAGE, options=pb.Options(boxes=grpc_boxes(6)))
        grpc_calls = [stub.Estimate.future(request, timeout=90) for _ in range(4)]
        http_results: list[int] = []
        box_list = boxes_param(6)

        def post() -> None:
            response = httpx.post(server.url + "/v1/pose", params={"boxes": box_list}, content=SCENE, headers=PNG,
                                  timeout=90)  # fmt: skip
            http_results.append(response.status_code)

        posters = [threading.Thread(target=post) for _ in range(4)]
        for thread in posters:
            thread.start()
        wait_for(lambda: metric(server, "pose_requests_in_progress") == 8, "the calls never all got in together")
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
