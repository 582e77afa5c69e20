"""The real server (``python -m service``) over HTTP with httpx: every input form, option, error and endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import struct
import zlib
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from pycocotools.coco import COCO

from service.vision.keypoints import KEYPOINT_SETS
from tests.helpers import (
    MARKER,
    PERSON,
    PNG,
    SCENE,
    Server,
    error_code,
    install_slow_pose,
    jpeg,
    metric,
    png,
    scene,
    slow_pose,
    start_server,
    wait_for,
)
from tests.oracles import BANDS, install_detector_oracle


def assert_found(body: dict, box=PERSON, marker=MARKER, keypoints: int = 17) -> None:
    assert len(body["people"]) == 1
    person = body["people"][0]
    np.testing.assert_allclose(person["bbox"], box, atol=1.0)
    points = np.array(person["keypoints"])
    assert points.shape == (keypoints, 3)
    size = max(box[2] - box[0], box[3] - box[1])
    assert np.abs(points[:, :2] - marker).max() <= 0.01 * size


NAN_BOX = b'{"image": "%s", "boxes": [[NaN, 0, 5, 5]]}' % base64.b64encode(SCENE)  # JSON with a NaN literal


@pytest.fixture
def client(server: Server) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_health_ready_and_models(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json() == {"status": "ready"}
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert set(models) == {"pose-oracle", "wholebody-oracle", "detector-oracle", "poisoned-oracle"}
    body = models["pose-oracle"]
    assert body["task"] == "pose"
    assert body["keypoints"] == "coco17"
    assert body["num_keypoints"] == 17
    assert body["input_size"] == [192, 256]
    assert body["weights"] == "custom"
    assert (body["backend"], body["precision"], body["precision_warning"]) == ("onnxruntime", "fp32", None)
    assert body["provider"] == "CPUExecutionProvider"
    assert body["device"] == "cpu"
    assert "runs on CPU" in body["device_warning"]
    assert body["instances"] == 1
    assert body["default"] is True
    assert body["batching"]["max_batch_size"] == 16
    assert models["wholebody-oracle"]["num_keypoints"] == 133
    assert models["detector-oracle"]["task"] == "detect"


def test_multipart(client: httpx.Client) -> None:
    response = client.post("/v1/pose", files={"file": ("scene.png", png(scene()), "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"] == {"width": 640, "height": 480}
    assert body["model"] == {"pose": "pose-oracle", "detector": "detector-oracle", "keypoints": "coco17",
                             "weights": "custom"}  # fmt: skip
    assert_found(body)
    person = body["people"][0]
    assert person["bbox_score"] == pytest.approx(0.9, abs=1e-4)
    assert person["score"] == pytest.approx(0.9, abs=1e-3)
    assert person["visible"] == [True] * 17
    assert set(body["timing_ms"]) == {"decode", "detect", "pose", "total"}
    assert response.headers["x-pose-weights"] == "custom"


@pytest.mark.parametrize("content_type", ["image/png", "application/octet-stream"])
def test_raw_body(client: httpx.Client, content_type: str) -> None:
    response = client.post("/v1/pose", content=png(scene()), headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert_found(response.json())


def test_json_base64_with_boxes_skips_the_detector(client: httpx.Client) -> None:
    body = {"image": base64.b64encode(jpeg(scene())).decode(), "boxes": [[30, 50, 170, 410]]}
    response = client.post("/v1/pose", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model"]["detector"] is None
    assert result["people"][0]["bbox"] == [30, 50, 170, 410]
    assert result["people"][0]["bbox_score"] == 1.0
    assert_found(result, box=(30, 50, 170, 410))


def test_boxes_as_query_and_as_form_field(client: httpx.Client) -> None:
    files = {"file": ("s.png", png(scene()), "image/png")}
    by_query = client.post("/v1/pose", params={"boxes": "[[30,50,170,410]]"}, files=files).json()
    by_form = client.post("/v1/pose", data={"boxes": "[[30,50,170,410]]"}, files=files).json()
    assert by_query["people"] == by_form["people"]
    assert by_query["model"]["detector"] is None


def test_options(client: httpx.Client) -> None:
    people = ((PERSON, MARKER), ((260, 40, 380, 300), (300.0, 120.0)), ((460, 100, 600, 460), (530.0, 380.0)))
    files = {"file": ("s.png", png(scene(people)), "image/png")}
    assert len(client.post("/v1/pose", files=files).json()["people"]) == 3
    assert len(client.post("/v1/pose", params={"max_people": 2}, files=files).json()["people"]) == 2
    assert client.post("/v1/pose", params={"bbox_threshold": 0.95}, files=files).json()["people"] == []
    hidden = client.post("/v1/pose", params={"keypoint_threshold": 1.5}, files=files).json()
    assert not any(any(p["visible"]) for p in hidden["people"])
    flipped = client.post("/v1/pose", params={"flip_test": "true"}, files=files)
    assert flipped.status_code == 200
    assert len(flipped.json()["people"]) == 3


def test_whole_body_model_side_by_side(client: httpx.Client) -> None:
    files = {"file": ("s.png", png(scene()), "image/png")}
    body = client.post("/v1/pose", params={"model": "wholebody-oracle"}, files=files).json()
    assert body["model"]["keypoints"] == "wholebody133"
    assert_found(body, keypoints=133)
    assert len(client.post("/v1/pose", files=files).json()["people"][0]["keypoints"]) == 17


def coco_ground_truth(image_id: int, width: int, height: int) -> COCO:
    gt = COCO()
    gt.dataset = {
        "images": [{"id": image_id, "width": width, "height": height, "file_name": "scene.png"}],
        "annotations": [],
        "categories": [{"id": 1, "name": "person", "keypoints": list(KEYPOINT_SETS["coco17"].names), "skeleton": []}],
    }
    gt.createIndex()
    return gt


def test_coco_format_loads_into_pycocotools(client: httpx.Client) -> None:
    response = client.post("/v1/pose", params={"format": "coco", "image_id": 7},
                           files={"file": ("s.png", png(scene()), "image/png")})  # fmt: skip
    assert response.status_code == 200
    entries = response.json()
    assert isinstance(entries, list)
    assert [sorted(e) for e in entries] == [["bbox", "category_id", "image_id", "keypoints", "score"]]
    assert entries[0]["image_id"] == 7
    assert len(entries[0]["keypoints"]) == 51
    results = coco_ground_truth(7, 640, 480).loadRes(entries)
    assert len(results.getAnnIds(imgIds=[7])) == 1


def test_real_coco_images_round_trip(client: httpx.Client, coco4: Path) -> None:
    gt = COCO(str(coco4 / "test_coco.json"))
    gt_wb = COCO(str(coco4 / "test_coco_wholebody.json"))
    for image_id in gt.getImgIds():
        info = gt.loadImgs(image_id)[0]
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=[image_id])) if not a["iscrowd"]]
        boxes = [
            [x, y, min(x + w, info["width"]), min(y + h, info["height"])] for x, y, w, h in (a["bbox"] for a in anns)
        ]
        data = (coco4 / info["file_name"]).read_bytes()
        body = client.post("/v1/pose", params={"format": "coco", "image_id": image_id, "boxes": json.dumps(boxes)},
                           files={"file": (info["file_name"], data, "image/jpeg")}).json()  # fmt: skip
        assert len(body) == len(boxes)
        assert len(gt.loadRes(body).getAnnIds()) == len(boxes)
        whole = client.post("/v1/pose", params={"format": "coco", "image_id": image_id, "boxes": json.dumps(boxes),
                                                "model": "wholebody-oracle"},
                            files={"file": (info["file_name"], data, "image/jpeg")}).json()  # fmt: skip
        assert all(len(e["keypoints"]) == 133 * 3 for e in whole)
        assert len(gt_wb.loadRes(whole).getAnnIds()) == len(boxes)
    names = KEYPOINT_SETS["wholebody133"].names  # COCO-WholeBody order: body, feet, face, left hand, right hand
    assert names[16:18] == ("right_ankle", "left_big_toe")
    assert names[22:24] == ("right_heel", "face-0")
    assert names[90:92] == ("face-67", "left_hand_root")
    assert names[111:113] == ("left_pinky_finger4", "right_hand_root")


def test_render_returns_a_jpeg_with_the_skeleton(client: httpx.Client) -> None:
    image = scene()
    files = {"file": ("s.png", png(image), "image/png")}
    response = client.post("/v1/pose", params={"render": "true"}, files=files)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    drawn = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape == image.shape
    x, y = int(MARKER[0]), int(MARKER[1])
    around = np.abs(drawn[y - 3 : y + 4, x - 3 : x + 4].astype(int) - image[y - 3 : y + 4, x - 3 : x + 4]).max()
    assert around > 60, "a keypoint is drawn at the marker"
    away = np.abs(drawn[5:40, 600:635].astype(int) - image[5:40, 600:635]).max()
    assert away < 30, "far from the person the image is unchanged (JPEG noise only)"
    accepted = client.post("/v1/pose", headers={"Accept": "image/jpeg"}, files=files)
    assert accepted.headers["content-type"] == "image/jpeg"


def test_batch_endpoint_keeps_order_and_reports_bad_images(client: httpx.Client) -> None:
    second = scene(((((260, 40, 380, 300)), (300.0, 120.0)),))
    broken = b"\x89PNG\r\n\x1a\n broken"
    files = [("files", ("a.png", SCENE, "image/png")), ("files", ("bad.png", broken, "image/png")),
             ("files", ("b.png", png(second), "image/png"))]  # fmt: skip
    response = client.post("/v1/pose/batch", files=files)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 3
    assert_found(results[0])
    assert results[1]["error"]["code"] == "invalid_image"
    assert_found(results[2], box=(260, 40, 380, 300), marker=(300.0, 120.0))
    coco = client.post("/v1/pose/batch", params={"format": "coco", "image_id": 10}, files=[files[0], files[2]]).json()
    assert [entries[0]["image_id"] for entries in coco["results"]] == [10, 11]


def test_request_id_is_echoed_or_made(client: httpx.Client) -> None:
    given = client.get("/v1/models", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/v1/models")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    junk = client.get("/v1/models", headers={"X-Request-ID": "bad id with spaces"})
    assert junk.headers["x-request-id"] != "bad id with spaces"


def png_header(width: int, height: int) -> bytes:
    """A structurally valid PNG whose IHDR claims this size, with no pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"", "headers": {"Content-Type": "image/png"}}, 400, "invalid_image"),
        ({"content": jpeg(scene())[:2000], "headers": {"Content-Type": "image/jpeg"}}, 400, "invalid_image"),
        ({"content": b"hello world, not an image", "headers": PNG}, 415, "unsupported_media_type"),
        ({"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"json": {"image": "!!!not base64"}}, 400, "bad_request"),
        ({"json": {"image": "aGVsbG8=", "colour": 1}}, 400, "bad_request"),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "bad_request"),
        ({"files": {"other": ("a.png", b"x", "image/png")}}, 400, "bad_request"),
        ({"content": png_header(60000, 60000), "headers": {"Content-Type": "image/png"}}, 413, "too_large"),
        ({"content": b"\0" * (2 * 1024 * 1024 + 1), "headers": {"Content-Type": "image/png"}}, 413, "too_large"),
        ({"content": SCENE, "headers": PNG, "params": {"max_people": 0}}, 422, "invalid_options"),
        ({"content": SCENE, "headers": PNG, "params": {"format": "xml"}}, 422, "invalid_options"),
        ({"content": SCENE, "headers": PNG, "params": {"boxes": "[[1,2,3]]"}}, 422, "invalid_options"),
        ({"content": SCENE, "headers": PNG, "params": {"boxes": "[[0,0,900,9]]"}}, 422, "invalid_options"),
        ({"content": SCENE, "headers": PNG, "params": {"model": "nope"}}, 422, "unknown_model"),
        ({"content": NAN_BOX, "headers": {"Content-Type": "application/json"}}, 422, "invalid_options"),
        ({"content": SCENE, "headers": PNG | {"X-Request-Timeout": "soon"}}, 400, "bad_request"),
        ({"content": SCENE, "headers": PNG | {"X-Request-Timeout": "0.000001"}}, 400, "bad_request"),  # < 10 ms
    ],
)  # fmt: skip
def test_errors(client: httpx.Client, kwargs: dict, status: int, code: str) -> None:
    response = client.post("/v1/pose", **kwargs)
    assert response.status_code == status, response.text
    assert error_code(response) == code


def test_unknown_route_and_method(client: httpx.Client) -> None:
    assert error_code(client.get("/v2/nothing")) == "not_found"
    assert client.get("/v1/pose").status_code == 405


def test_queue_full_is_429_with_retry_after(tmp_path: Path) -> None:
    slow = slow_pose(0.25, batch=1)  # the first request's 2 crops hold the queue for 0.5 s or more, whatever the CPU
    install_slow_pose(tmp_path, "pose", slow.layers, max_queue_size=2, max_batch_size=1)
    install_detector_oracle(tmp_path, "det", bands=BANDS)
    server = start_server(tmp_path, tmp_path / "log", POSE_MODEL="pose", POSE_DETECTOR="det", POSE_MAX_PEOPLE="2")
    try:
        boxes = json.dumps([[10, 10, 100, 100]] * 2)  # the whole queue's room

        async def two() -> tuple[httpx.Response, httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                first = asyncio.create_task(client.post("/v1/pose", params={"boxes": boxes}, content=SCENE,
                                                        headers=PNG))  # fmt: skip
                # admitted (it holds the room from its headers until its answer)
                await asyncio.to_thread(wait_for, lambda: metric(server, "pose_requests_in_progress") == 1,
                                        "the first request was never admitted")  # fmt: skip
                refused = await client.post("/v1/pose", content=SCENE, headers=PNG)
                return await first, refused

        served, refused = asyncio.run(two())
        assert served.status_code == 200
        assert refused.status_code == 429
        assert error_code(refused) == "queue_full"
        assert refused.headers["retry-after"] == "1"
    finally:
        server.stop()


def test_inference_failure_is_500_with_a_request_id_that_is_in_the_log(client: httpx.Client, server: Server) -> None:
    image = scene()
    image[100:110, 60:70, 1] = 255  # the poisoned model fails on saturated green
    response = client.post("/v1/pose", params={"model": "poisoned-oracle"}, content=png(image),
                           headers={"Content-Type": "image/png", "X-Request-ID": "trace-500"})  # fmt: skip
    assert response.status_code == 500
    assert error_code(response) == "inference_failed"
    assert "request id trace-500" in response.json()["error"]["message"]
    assert client.post("/v1/pose", params={"model": "poisoned-oracle"}, content=png(scene()),
                       headers={"Content-Type": "image/png"}).status_code == 200  # fmt: skip
    logged = [json.loads(line) for line in server.logs().splitlines() if "trace-500" in line]
    assert any(entry.get("level") == "ERROR" and entry.get("request_id") == "trace-500" for entry in logged)


def test_metrics_move_and_concurrent_requests_share_batches(client: httpx.Client, server: Server) -> None:
    def batch_histogram() -> tuple[float, float]:
        ones = metric(server, "pose_batch_size_bucket", le="1.0", model="pose-oracle")
        return ones, metric(server, "pose_batch_size_count", model="pose-oracle")

    ones_before, count_before = batch_histogram()

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as aclient:
            data = png(scene())
            # one person per image: max_people=1 reserves one crop of queue room each, so all 24 are admitted
            posts = (aclient.post("/v1/pose", params={"max_people": 1}, content=data, headers=PNG) for _ in range(24))
            responses = await asyncio.gather(*posts)
            return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 24
    ones, count = batch_histogram()
    assert count - count_before < 24, "24 one-person requests must not need 24 pose batches"
    assert (count - count_before) - (ones - ones_before) >= 1, "some batch held more than one request's crop"
    text = client.get("/metrics").text
    for needle in ('pose_requests_total{code="200",endpoint="/v1/pose",protocol="http"}',
                   'pose_stage_duration_seconds_count{model="pose-oracle",stage="pose_infer"}',
                   'pose_stage_duration_seconds_count{model="detector-oracle",stage="detect_pre"}',
                   'pose_stage_duration_seconds_count{model="none",stage="decode"}',
                   'pose_queue_duration_seconds_count{model="pose-oracle"}',
                   'pose_items_total{model="detector-oracle"}', 'pose_queue_depth{model="pose-oracle"}',
                   'pose_model_info{backend="onnxruntime",fallback="true",model="pose-oracle",precision="fp32",'
                   'precision_fallback="false",provider="CPUExecutionProvider",version="1",'
                   'weights="custom"} 1.0'):  # fmt: skip
        assert needle in text, needle
