"""The real server (``python -m service``) over gRPC with generated stubs: Estimate, ListModels, errors, metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire._proto.pose.v1 import pose_pb2_grpc
from tests.helpers import MARKER, PERSON, PNG, ROOT, SCENE, Server, error_of, png, raw, scene

RAW = scene()  # BGR, 640x480


@pytest.fixture(scope="module")
def channel(server: Server) -> Iterator[grpc.Channel]:
    assert server.grpc_target
    with grpc.insecure_channel(server.grpc_target) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield channel


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pose_pb2_grpc.PoseServiceStub:
    return pose_pb2_grpc.PoseServiceStub(channel)


def as_http(response: pb.EstimateResponse) -> list[dict]:
    return [
        {
            "bbox": [p.bbox.x1, p.bbox.y1, p.bbox.x2, p.bbox.y2],
            "bbox_score": p.bbox_score,
            "score": p.score,
            "keypoints": [[k.x, k.y, k.score] for k in p.keypoints],
            "visible": [k.visible for k in p.keypoints],
        }
        for p in response.people
    ]


def assert_same_people(grpc_people: list[dict], http_people: list[dict]) -> None:
    assert len(grpc_people) == len(http_people) >= 1
    for ours, theirs in zip(grpc_people, http_people, strict=True):
        np.testing.assert_allclose(ours["bbox"], theirs["bbox"], atol=0.01)
        np.testing.assert_allclose(np.array(ours["keypoints"])[:, :2], np.array(theirs["keypoints"])[:, :2], atol=0.01)
        np.testing.assert_allclose(np.array(ours["keypoints"])[:, 2], np.array(theirs["keypoints"])[:, 2], atol=1e-4)
        assert abs(ours["score"] - theirs["score"]) <= 1e-4
        assert ours["visible"] == theirs["visible"]


def test_encoded_raw_bgr_and_raw_rgb_give_what_http_gives(stub: pose_pb2_grpc.PoseServiceStub, server: Server) -> None:
    two = scene((((40, 60, 160, 400), (100, 200)), ((300, 40, 420, 380), (350, 150))))
    http = httpx.post(server.url + "/v1/pose", content=png(two), headers=PNG, timeout=30).json()
    for image in (pb.Image(encoded=png(two)), raw(two), raw(two, rgb=True)):
        response = stub.Estimate(pb.EstimateRequest(image=image), timeout=30)
        assert (response.width, response.height) == (640, 480)
        assert response.model == pb.ModelInfo(pose="pose-oracle", detector="detector-oracle", keypoints="coco17",
                                              weights="custom")  # fmt: skip
        assert_same_people(as_http(response), http["people"])
        assert {"decode", "detect", "pose", "total"} <= set(response.timing_ms)
        assert all(p.track_id == 0 for p in response.people)


def test_options_boxes_and_thresholds(stub: pose_pb2_grpc.PoseServiceStub, server: Server) -> None:
    options = pb.Options(boxes=[pb.Box(x1=40, y1=60, x2=160, y2=400)], keypoint_threshold=0.99, flip_test=True)
    response = stub.Estimate(pb.EstimateRequest(image=raw(RAW), options=options), timeout=30)
    assert response.model.detector == ""  # boxes given: no detector ran
    (person,) = response.people
    assert [person.bbox.x1, person.bbox.y1, person.bbox.x2, person.bbox.y2] == list(PERSON)
    points = np.array([[k.x, k.y] for k in person.keypoints])
    assert np.abs(points - MARKER).max() <= 3.6
    http = httpx.post(
        server.url + "/v1/pose",
        content=SCENE,
        headers=PNG,
        timeout=30,
        params={"boxes": json.dumps([PERSON]), "keypoint_threshold": 0.99, "flip_test": True},
    ).json()
    assert_same_people(as_http(response), http["people"])
    whole = stub.Estimate(pb.EstimateRequest(image=raw(RAW), options=pb.Options(model="wholebody-oracle")))
    assert whole.model.keypoints == "wholebody133"
    assert len(whole.people[0].keypoints) == 133
    nobody = stub.Estimate(pb.EstimateRequest(image=raw(RAW), options=pb.Options(bbox_threshold=1.0)))
    assert len(nobody.people) == 0


def test_list_models_matches_http(stub: pose_pb2_grpc.PoseServiceStub, server: Server) -> None:
    http = {m["name"]: m for m in httpx.get(server.url + "/v1/models").json()["models"]}
    listed = {m.name: m for m in stub.ListModels(pb.ListModelsRequest(), timeout=10).models}
    assert set(listed) == set(http)
    for name, model in listed.items():
        expected = http[name]
        assert (model.task, model.family, model.weights, model.provider) == (
            expected["task"], expected["family"], expected["weights"], expected["provider"])  # fmt: skip
        assert (model.backend, model.precision, model.precision_warning) == (
            expected["backend"], expected["precision"], expected["precision_warning"] or "")  # fmt: skip
        assert [model.input_width, model.input_height] == expected["input_size"]
        assert model.batching.max_batch_size == expected["batching"]["max_batch_size"]
        assert model.default == expected["default"]


BAD_OPTIONS = [
    (pb.EstimateRequest(image=pb.Image(encoded=b"\x89PNG\r\n\x1a\n" + b"\0" * 40)), "invalid_image"),
    (pb.EstimateRequest(image=pb.Image(encoded=b"not an image at all")), "unsupported_media_type"),
    (pb.EstimateRequest(), "bad_request"),
    (pb.EstimateRequest(image=pb.Image(raw=pb.RawImage(pixels=b"\0" * 10, width=4, height=4))), "invalid_image"),
    (pb.EstimateRequest(image=raw(RAW), options=pb.Options(model="nope")), "unknown_model"),
    (pb.EstimateRequest(image=raw(RAW), options=pb.Options(detector="pose-oracle")), "unknown_model"),
    (pb.EstimateRequest(image=raw(RAW), options=pb.Options(bbox_threshold=2.0)), "invalid_options"),
    (pb.EstimateRequest(image=raw(RAW), options=pb.Options(max_people=5000)), "invalid_options"),
    (pb.EstimateRequest(image=raw(RAW), options=pb.Options(boxes=[pb.Box(x1=float("nan"), x2=5, y2=5)])),
     "invalid_options"),
    (pb.EstimateRequest(image=raw(RAW), options=pb.Options(boxes=[pb.Box(x1=10, y1=10, x2=900, y2=90)])),
     "invalid_options"),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "code"), BAD_OPTIONS)
def test_client_mistakes_are_invalid_argument(stub: pose_pb2_grpc.PoseServiceStub, request_, code: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Estimate(request_, timeout=30)
    assert error_of(info.value)[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert error_of(info.value)[2] == code


def test_too_large_is_resource_exhausted(stub: pose_pb2_grpc.PoseServiceStub) -> None:
    big = np.zeros((3000, 7000, 3), np.uint8)  # 21 MP: over the server's POSE_MAX_IMAGE_PIXELS of 20 MP
    ok, encoded = cv2.imencode(".png", big)
    assert ok
    assert len(encoded) < 2 * 1024 * 1024
    with pytest.raises(grpc.RpcError) as info:
        stub.Estimate(pb.EstimateRequest(image=pb.Image(encoded=encoded.tobytes())), timeout=30)
    assert error_of(info.value)[0::2] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "too_large")
    with pytest.raises(grpc.RpcError) as info:  # over POSE_GRPC_MAX_MESSAGE_BYTES: refused by gRPC itself
        stub.Estimate(pb.EstimateRequest(image=pb.Image(encoded=b"\xff" * (3 * 1024 * 1024))), timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_inference_failure_is_internal_with_the_request_id(stub: pose_pb2_grpc.PoseServiceStub, server: Server) -> None:
    image = RAW.copy()
    image[100:110, 60:70, 1] = 255  # the poisoned model fails on saturated green
    request = pb.EstimateRequest(image=raw(image), options=pb.Options(model="poisoned-oracle"))
    with pytest.raises(grpc.RpcError) as info:
        stub.Estimate(request, timeout=30, metadata=(("x-request-id", "grpc-trace-500"),))
    code, details, pose_code = error_of(info.value)
    assert (code, pose_code) == (grpc.StatusCode.INTERNAL, "inference_failed")
    assert "request id grpc-trace-500" in details
    logged = [json.loads(line) for line in server.logs().splitlines() if "grpc-trace-500" in line]
    assert any(entry.get("level") == "ERROR" for entry in logged)


def test_request_id_metadata_and_metrics(stub: pose_pb2_grpc.PoseServiceStub, server: Server) -> None:
    _, call = stub.Estimate.with_call(pb.EstimateRequest(image=raw(RAW)), metadata=(("x-request-id", "abc-123"),))
    assert dict(call.initial_metadata())["x-request-id"] == "abc-123"
    _, call = stub.Estimate.with_call(pb.EstimateRequest(image=raw(RAW)), metadata=(("x-request-id", "bad id!"),))
    assert len(dict(call.initial_metadata())["x-request-id"]) == 32  # not a sane id: a new one is made
    text = httpx.get(server.url + "/metrics").text
    assert 'pose_requests_total{code="OK",endpoint="Estimate",protocol="grpc"}' in text
    assert 'pose_requests_total{code="INVALID_ARGUMENT",endpoint="Estimate",protocol="grpc"}' in text
    assert 'pose_request_duration_seconds_count{endpoint="Estimate",protocol="grpc"}' in text
    assert "gRPC /pose.v1.PoseService/Estimate OK" in server.logs()


def test_health_and_reflection(channel: grpc.Channel) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "pose.v1.PoseService"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    (answer,) = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for s in answer.list_services_response.service}
    assert {"pose.v1.PoseService", "grpc.health.v1.Health"} <= names
    (answer,) = reflect.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol="pose.v1.PoseService")])
    )
    assert answer.file_descriptor_response.file_descriptor_proto  # clients can build stubs from reflection


def client(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m service.client ARGS`` with only the client's packages importable (tests/client_only.py)."""
    return subprocess.run([sys.executable, str(ROOT / "tests" / "client_only.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_client_prints_what_http_answers(server: Server, tmp_path: Path) -> None:
    image = tmp_path / "000000000785.png"
    image.write_bytes(png(scene((((40, 60, 160, 400), (100, 200)), ((300, 40, 420, 380), (350, 150))))))
    http = httpx.post(server.url + "/v1/pose", content=image.read_bytes(), headers=PNG, timeout=30).json()
    for extra in ([], ["--raw"]):
        run = client("--target", server.grpc_target, "estimate", str(image), *extra)
        assert run.returncode == 0, run.stderr
        (line,) = run.stdout.splitlines()
        answer = json.loads(line)
        assert {k: v for k, v in answer.items() if k != "timing_ms"} == {
            k: v for k, v in http.items() if k != "timing_ms"
        }
    coco = client("--target", server.grpc_target, "estimate", str(image), "--format", "coco", "--flip-test")
    assert coco.returncode == 0, coco.stderr
    http_coco = httpx.post(server.url + "/v1/pose", content=image.read_bytes(), headers=PNG, timeout=30,
                           params={"format": "coco", "image_id": 785, "flip_test": True}).json()  # fmt: skip
    assert json.loads(coco.stdout) == http_coco


def test_the_client_reports_errors(server: Server, tmp_path: Path) -> None:
    image = tmp_path / "scene.png"
    image.write_bytes(png(scene()))
    bad = client("--target", server.grpc_target, "estimate", str(image), "--model", "nope")
    assert bad.returncode == 1
    assert "INVALID_ARGUMENT unknown_model" in bad.stderr
    out_of_range = client("--target", server.grpc_target, "estimate", str(image), "--bbox-threshold", "3")
    assert out_of_range.returncode == 1  # the service checks the bounds (the client has no copy of them)
    assert "INVALID_ARGUMENT invalid_options: bbox_threshold" in out_of_range.stderr
    bad_boxes = client("--target", server.grpc_target, "estimate", str(image), "--boxes", "[[1, 2]")
    assert bad_boxes.returncode == 2
    assert "boxes must be JSON" in bad_boxes.stderr
