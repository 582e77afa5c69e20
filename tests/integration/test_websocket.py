"""The WebSocket stream (``/v1/stream``) through the real ``python -m service`` on loopback, as the gRPC Stream is
tested: order, tracking, drops, ``det_interval``, a corrupt frame failing alone, protocol errors, limits, auth,
shutdown."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire._proto.pose.v1 import pose_pb2_grpc
from service.wire.websocket import bearer_subprotocol, pack_frame
from tests.helpers import Server, install_slow_pose, metric, png, slow_pose, start_server, wait_for
from tests.oracles import BANDS, install_detector_oracle
from tests.streams import HEAD_CHANNELS, TOLERANCE, frame, frame_message, install_tracking_pose, markers, walk

ANSWER_S = 60  # the machine is shared: waits are for states, not speeds
KEYS = ("first-key", "s3cr3t/+=key")  # the second is no valid subprotocol token as it is: base64url carries it


def build_repository(root: Path) -> Path:
    """``pose`` (fast), ``det`` and ``slow``: a frame of one person takes 0.1 s or more on this machine."""
    install_tracking_pose(root, batching={"max_batch_size": 16, "max_queue_delay_ms": 2})
    install_detector_oracle(root, "det", bands=BANDS)
    install_slow_pose(root, "slow", slow_pose(0.1, batch=1).layers, channels=HEAD_CHANNELS, max_batch_size=4)
    return root


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("ws-repo"))


@pytest.fixture(scope="module")
def server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(repository, tmp_path_factory.mktemp("logs") / "server.log", POSE_MODEL="pose",
                           POSE_DETECTOR="det", POSE_EXTRA_MODELS="slow", POSE_MAX_STREAMS="3",
                           POSE_STREAM_IDLE_TIMEOUT_S="2", POSE_GRPC_MAX_MESSAGE_BYTES=str(1024 * 1024))  # fmt: skip
    yield running
    running.stop()


def ws_url(server: Server) -> str:
    return server.url.replace("http://", "ws://") + "/v1/stream"


@contextmanager
def open_stream(server: Server, config: dict[str, Any] | None = None, **kwargs: Any) -> Iterator[ClientConnection]:
    """A connected stream; its config sent unless ``config`` is None."""
    with connect(ws_url(server), proxy=None, max_size=None, open_timeout=30, **kwargs) as ws:
        if config is not None:
            ws.send(json.dumps(config))
        yield ws


def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=ANSWER_S))  # type: ignore[no-any-return]


def closing(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every message until the service closes, and its close code."""
    messages = []
    try:
        while True:
            messages.append(receive(ws))
    except ConnectionClosed as closed:
        return messages, closed.rcvd.code if closed.rcvd else None


def closed_loop(server: Server, config: dict[str, Any], images: Sequence[np.ndarray | bytes], *, window: int = 2,
                timestamps: Sequence[float] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Frames sent keeping at most ``window`` unanswered; every answer, then the end of input and the close."""
    data = [image if isinstance(image, bytes) else png(image) for image in images]
    answers: list[dict[str, Any]] = []
    with open_stream(server, config) as ws:
        sent = 0
        while len(answers) < len(data):
            while sent < len(data) and sent - len(answers) < window:
                ws.send(pack_frame(sent, timestamps[sent] if timestamps else 0.0, data[sent]))
                sent += 1
            answers.append(receive(ws))
        ws.send(b"")  # no more frames
        rest, code = closing(ws)
    assert rest == [] and code == 1000, (rest, code)  # noqa: PT018
    return answers


def keypoints_of(person: dict[str, Any]) -> np.ndarray:
    return np.array([k[:2] for k in person["keypoints"]])


def test_one_person_walking_keeps_one_id_in_frame_order(server: Server) -> None:
    path = walk((20, 60, 140, 360), (1.6, 0.2), 60)
    before = metric(server, "pose_requests_total", code="1000", endpoint="/v1/stream", protocol="websocket")
    ends = metric(server, "pose_stream_ends_total", protocol="websocket", reason="ok")
    answers = closed_loop(server, {}, [frame([box]) for box in path])
    assert [a["frame_id"] for a in answers] == list(range(60))
    assert not any(a["dropped_frame_ids"] for a in answers)
    assert {p["track_id"] for a in answers for p in a["people"]} == {1}
    for answer, box in zip(answers, path, strict=True):
        (person,) = answer["people"]
        assert np.abs(keypoints_of(person) - markers(box)).max() <= TOLERANCE, answer["frame_id"]
        assert answer["detected"]
        assert answer["error"] is None
    first = answers[0]
    assert (first["width"], first["height"], first["model"]["pose"], first["model"]["detector"]) == (640, 480, "pose",
                                                                                                     "det")  # fmt: skip
    assert set(first["people"][0]) == {"bbox", "bbox_score", "score", "keypoints", "visible", "track_id"}
    assert {"pose", "detect"} <= set(first["timing_ms"])
    after = metric(server, "pose_requests_total", code="1000", endpoint="/v1/stream", protocol="websocket")
    assert after - before == 1
    wait_for(lambda: metric(server, "pose_stream_ends_total", protocol="websocket", reason="ok") - ends == 1,
             "the stream's end counted")  # fmt: skip


def test_det_interval_5_detects_one_frame_in_five(server: Server) -> None:
    before = metric(server, "pose_stream_frames_detected_total")
    path = walk((40, 60, 160, 360), (2.0, 0.5), 50)
    answers = closed_loop(server, {"det_interval": 5}, [frame([box]) for box in path])
    assert metric(server, "pose_stream_frames_detected_total") - before == 10
    assert [a["detected"] for a in answers] == [i % 5 == 0 for i in range(50)]
    assert len({p["track_id"] for a in answers for p in a["people"]}) == 1
    for answer, box in zip(answers, path, strict=True):
        assert np.abs(keypoints_of(answer["people"][0]) - markers(box)).max() <= TOLERANCE, answer["frame_id"]


def test_smoothing_and_tracker_settings_come_from_the_config(server: Server) -> None:
    rng = np.random.default_rng(3)
    noise = rng.uniform(-3, 3, (40, 1, 2, 2)).round()
    box = (200, 60, 320, 380)
    images = [frame([box], jitter=noise[i]) for i in range(40)]
    times = [i / 30 for i in range(40)]
    raw = closed_loop(server, {}, images, timestamps=times)
    smooth = closed_loop(server, {"smooth": True, "smoothing": {"min_cutoff_hz": 1.0, "beta": 0.05}}, images,
                         timestamps=times)  # fmt: skip

    def jitter(answers: list[dict[str, Any]]) -> float:
        return float(np.abs(np.diff(np.stack([keypoints_of(a["people"][0]) for a in answers]), axis=0)).mean())

    assert jitter(smooth) < 0.5 * jitter(raw), (jitter(smooth), jitter(raw))


def test_a_flooding_client_gets_drops_and_every_frame_is_answered_once(server: Server) -> None:
    images = [png(frame([box])) for box in walk((40, 60, 160, 360), (1.0, 0.0), 30)]
    with open_stream(server, {"options": {"model": "slow"}, "max_in_flight": 1, "max_buffered": 1}) as ws:
        for i, data in enumerate(images):
            ws.send(pack_frame(i, 0.0, data))
        ws.send(b"")
        messages, code = closing(ws)
    assert code == 1000
    answered = [m["frame_id"] for m in messages if not m["drops_only"]]
    dropped = [i for m in messages for i in m["dropped_frame_ids"]]
    assert answered == sorted(answered)
    assert sorted(answered + dropped) == list(range(30)), "every frame answered exactly once"
    assert len(dropped) >= 10, f"only {len(dropped)} of 30 frames dropped by a client that sent them all at once"


def test_a_corrupt_frame_and_a_nan_timestamp_fail_only_their_frames(server: Server) -> None:
    path = walk((40, 60, 160, 360), (1.0, 0.0), 12)
    images: list[Any] = [frame([box]) for box in path]
    images[5] = b"\x89PNG\r\n\x1a\n but not really"
    times = [0.0] * 12
    times[8] = float("nan")
    answers = closed_loop(server, {}, images, timestamps=times)
    assert [a["frame_id"] for a in answers] == list(range(12))
    assert answers[5]["error"]["code"] == "invalid_image" and not answers[5]["people"]  # noqa: PT018
    assert answers[8]["error"]["code"] == "bad_request" and "timestamp" in answers[8]["error"]["message"]  # noqa: PT018
    for answer in answers[:5] + answers[6:8] + answers[9:]:
        assert answer["error"] is None and len(answer["people"]) == 1  # noqa: PT018
    assert len({a["people"][0]["track_id"] for a in answers if a["people"]}) == 1


@pytest.mark.parametrize(
    ("first", "code", "words"),
    [
        ("{not json", "bad_request", "JSON"),
        ("[1, 2]", "bad_request", "JSON object"),
        ('{"det_interval": 0}', "invalid_options", "det_interval"),
        ('{"tracker": {"pose_kpt_thr": 3}}', "invalid_options", "pose_kpt_thr"),
        ('{"colour": "red"}', "invalid_options", "colour"),
        ('{"options": {"model": "nope"}}', "unknown_model", "nope"),
        (pack_frame(0, 0.0, b"frame first"), "bad_request", "config"),
    ],
)
def test_a_bad_first_message_gets_one_error_then_1008(
    server: Server, first: str | bytes, code: str, words: str
) -> None:
    with open_stream(server) as ws:
        ws.send(first)
        messages, close = closing(ws)
    assert close == 1008
    ((message),) = messages
    assert set(message) == {"error"} and message["error"]["code"] == code, message  # noqa: PT018
    assert words in message["error"]["message"]


@pytest.mark.parametrize("wrong", ["a text message", b"short"], ids=["text", "shorter than the header"])
def test_a_message_that_is_no_frame_ends_the_stream_with_1008(server: Server, wrong: str | bytes) -> None:
    with open_stream(server, {}) as ws:
        ws.send(pack_frame(0, 0.0, png(frame([(40, 60, 160, 360)]))))
        assert receive(ws)["frame_id"] == 0
        ws.send(wrong)
        messages, close = closing(ws)
    assert close == 1008
    assert messages[-1]["error"]["code"] == "bad_request"


def test_idle_streams_close_with_stream_idle(server: Server) -> None:
    for config in ({}, None):  # a stream without frames, and a connection that never sends its config
        start = time.monotonic()
        with open_stream(server, config) as ws:
            messages, close = closing(ws)
        assert close == 1008
        assert messages == [{"error": {"code": "stream_idle", "message": messages[0]["error"]["message"]}}]
        assert 1.5 < time.monotonic() - start < 10


def test_a_message_over_the_size_limit_is_refused_with_1009(server: Server) -> None:
    with open_stream(server, {}) as ws:
        ws.send(pack_frame(0, 0.0, bytes(1024 * 1024 + 1)))  # POSE_GRPC_MAX_MESSAGE_BYTES = 1 MiB
        _, close = closing(ws)
    assert close == 1009


def test_stream_slots_are_shared_with_grpc_and_freed_when_a_client_goes_away(server: Server) -> None:
    """POSE_MAX_STREAMS = 3: two WebSocket streams and one gRPC stream fill it, for both transports."""
    streams = ExitStack()
    held = [streams.enter_context(open_stream(server, {})) for _ in range(2)]
    for ws in held:
        ws.send(pack_frame(0, 0.0, png(frame([(40, 60, 160, 360)]))))
        receive(ws)
    release = threading.Event()

    def grpc_stream() -> Iterator[pb.StreamRequest]:
        yield pb.StreamRequest(config=pb.StreamConfig())
        yield frame_message(0, frame([(40, 60, 160, 360)]))
        release.wait(20)

    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pose_pb2_grpc.PoseServiceStub(channel)
        call = stub.Stream(grpc_stream(), timeout=30)
        next(call)
        try:
            with open_stream(server) as ws:  # refused as it opens, before any message (a config would meet a close)
                messages, close = closing(ws)
            assert close == 1013
            assert messages[0]["error"]["code"] == "too_many_streams"
            with pytest.raises(grpc.RpcError) as info:
                list(stub.Stream(iter([pb.StreamRequest(config=pb.StreamConfig())]), timeout=10))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            release.set()
            call.cancel()
    streams.close()  # gone without "no more frames": the service frees its slot at once
    wait_for(lambda: metric(server, "pose_stream_active") == 0, "the streams were freed")
    assert metric(server, "pose_requests_total", code="499", endpoint="/v1/stream", protocol="websocket") >= 2


def test_a_foreign_origin_is_refused_and_a_same_origin_page_is_not(server: Server) -> None:
    with pytest.raises(InvalidStatus) as info, open_stream(server, {}, origin="http://elsewhere.example"):
        pass
    assert info.value.response.status_code == 403
    host = server.url.removeprefix("http://")
    with open_stream(server, {}, origin=f"http://{host}") as ws:
        ws.send(b"")
        assert closing(ws) == ([], 1000)


@pytest.fixture(scope="module")
def keyed_server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(repository, tmp_path_factory.mktemp("keyed-logs") / "server.log", POSE_MODEL="pose",
                           POSE_DETECTOR="det", POSE_API_KEYS=",".join(KEYS), grpc=False,
                           POSE_LOG_LEVEL="DEBUG")  # fmt: skip
    yield running
    running.stop()


@pytest.mark.parametrize(
    "refused",
    [
        {},
        {"additional_headers": {"Authorization": "Bearer wrong"}},
        {"subprotocols": ["pose.v1", bearer_subprotocol("wrong")]},
        {"subprotocols": ["pose.v1", "bearer.!!"]},
    ],
    ids=["no key", "wrong header", "wrong subprotocol key", "not base64url"],
)
def test_without_the_key_nothing_is_answered_but_401(keyed_server: Server, refused: dict[str, Any]) -> None:
    with pytest.raises(InvalidStatus) as info, open_stream(keyed_server, {}, **refused):
        pass
    response = info.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "credentials",
    [
        {"additional_headers": {"Authorization": f"Bearer {KEYS[0]}"}},
        {"subprotocols": ["pose.v1", bearer_subprotocol(KEYS[1])]},
    ],
    ids=["Authorization header", "subprotocol"],
)
def test_the_key_opens_the_stream_and_never_reaches_the_log(keyed_server: Server, credentials: dict[str, Any]) -> None:
    with open_stream(keyed_server, {}, **credentials) as ws:
        assert ws.subprotocol == ("pose.v1" if "subprotocols" in credentials else None)
        ws.send(pack_frame(7, 0.0, png(frame([(40, 60, 160, 360)]))))
        answer = receive(ws)
        assert answer["frame_id"] == 7 and len(answer["people"]) == 1  # noqa: PT018
        ws.send(b"")
        assert closing(ws) == ([], 1000)
    logs = keyed_server.logs()
    assert "WS /v1/stream 1000" in logs
    for key in KEYS:
        assert key not in logs and bearer_subprotocol(key) not in logs  # noqa: PT018


def test_subprotocols_must_offer_pose_v1(keyed_server: Server) -> None:
    with (
        pytest.raises(InvalidStatus) as info,
        open_stream(keyed_server, {}, subprotocols=[bearer_subprotocol(KEYS[0])]),
    ):
        pass
    assert info.value.response.status_code == 400


def test_sigterm_answers_what_the_stream_took_then_closes_with_1001(repository: Path, tmp_path: Path) -> None:
    server = start_server(repository, tmp_path / "server.log", POSE_MODEL="slow", POSE_DETECTOR="det", grpc=False,
                          POSE_SHUTDOWN_GRACE_S="20")  # fmt: skip
    try:
        images = [png(frame([box])) for box in walk((40, 60, 160, 360), (1.0, 0.0), 6)]
        with open_stream(server, {"max_in_flight": 2, "max_buffered": 4}) as ws:
            for i, data in enumerate(images):
                ws.send(pack_frame(i, 0.0, data))
            first = receive(ws)
            server.process.send_signal(signal.SIGTERM)
            messages, close = closing(ws)
        assert close == 1001
        assert messages[-1]["error"]["code"] == "shutting_down"
        answers = [first, *messages[:-1]]
        answered = [a["frame_id"] for a in answers if not a["drops_only"]]
        dropped = [i for a in answers for i in a["dropped_frame_ids"]]
        assert sorted(answered + dropped) == list(range(6)), "every frame taken is answered before the close"
        assert all(a["error"] is None for a in answers), answers
        assert server.process.wait(30) == 0
    finally:
        server.stop()


def test_the_page_and_its_files_are_served_without_a_key(keyed_server: Server) -> None:
    page = httpx.get(keyed_server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")  # noqa: PT018
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for path in re.findall(r'(?:src|href)="(/ui/[^"]+)"', page.text):
        assert httpx.get(keyed_server.url + path).status_code == 200, path
    sets = httpx.get(keyed_server.url + "/ui/keypoint-sets.json").json()
    assert len(sets["coco17"]["names"]) == 17 and sets["coco17"]["skeleton"]  # noqa: PT018
    assert httpx.get(keyed_server.url + "/ui/../service/config.py").status_code == 404
    assert httpx.get(keyed_server.url + "/v1/models").status_code == 401
