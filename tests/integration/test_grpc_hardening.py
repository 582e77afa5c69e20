"""Hostile gRPC clients against the real server (issue 19), each row of the issue's table as a test.

One server (a decode budget of 512 MiB, images of at most 10 MP, 4 streams, a 3 s idle
timeout, a pose model of about 0.1 s a crop as measured here) serves most rows; the run with API keys and
the SIGTERM run get their own processes. Memory rows measure the server process's VmHWM
(its peak resident memory, reset before the load) and VmRSS, as test_hardening does.
All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire._proto.pose.v1 import pose_pb2_grpc
from tests.helpers import Server, error_of, metric, raw, slow_pose, slow_repo, start_server, wait_for
from tests.oracles import draw_scene

MiB = 1024 * 1024
GB = 1000**3
BUDGET = 512 * MiB
MAX_PIXELS = 10_000_000
IDLE_S = 3.0
ESTIMATE = "/pose.v1.PoseService/Estimate"
STREAM = "/pose.v1.PoseService/Stream"
BIG = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
THREE = (((100, 100, 400, 900), (200.0, 300.0)), ((600, 100, 900, 900), (700.0, 300.0)),
         ((1100, 100, 1400, 900), (1200.0, 300.0)))  # fmt: skip


def serve(root: Path, **env: str) -> Server:
    """The service over a pose model of about 0.1 s a crop here (one crop a batch) and the band detector."""
    repo = slow_repo(root / "repo", slow_pose(0.1).layers, max_batch_size=1, preferred_batch_sizes=[1])
    return start_server(repo, root / "server.log", POSE_MODEL="pose", POSE_DETECTOR="det",
                        POSE_DECODE_BUDGET_BYTES=str(BUDGET), POSE_MAX_IMAGE_PIXELS=str(MAX_PIXELS), **env)  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # at most 4 people an image: forty calls' queue room fits, so their refusals are the message budget's
    running = serve(tmp_path_factory.mktemp("grpc-hardening"), POSE_MAX_STREAMS="4",
                    POSE_STREAM_IDLE_TIMEOUT_S=str(IDLE_S), POSE_MAX_PEOPLE="4")  # fmt: skip
    yield running
    running.stop()


@pytest.fixture(scope="module")
def channel(server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_target, options=BIG) as channel:
        yield channel


def requests_total(server: Server, endpoint: str, code: str) -> float:
    return metric(server, "pose_requests_total", code=code, endpoint=endpoint, protocol="grpc")


def stream_ends(server: Server, reason: str) -> float:
    return metric(server, "pose_stream_ends_total", protocol="grpc", reason=reason)


def memory(server: Server) -> dict[str, int]:
    """VmRSS and VmHWM (the peak since the last reset) of the server process, in bytes."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) * 1024 for key in ("VmRSS", "VmHWM")}  # type: ignore[union-attr]


def reset_peak(server: Server) -> int:
    """Make VmHWM the present VmRSS (Linux >= 4.0); returns that resident size."""
    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")
    return memory(server)["VmRSS"]


def settle(server: Server) -> None:
    """Wait until no call is in flight and no stream is open (the previous test's work is over)."""
    end = time.monotonic() + 60
    while metric(server, "pose_requests_in_progress", protocol="grpc") or metric(server, "pose_stream_active"):
        assert time.monotonic() < end, "the server never went idle"
        time.sleep(0.05)


def wait_for_rss(server: Server, limit: int, timeout_s: float = 20) -> int:
    """The resident size once it is at most ``limit`` (memory given back after a burst), or the last one seen."""
    end = time.monotonic() + timeout_s
    while (rss := memory(server)["VmRSS"]) > limit and time.monotonic() < end:
        time.sleep(0.2)
    return rss


def codes(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """The status code and ``pose-error-code`` of a failed call."""
    code, _, pose_code = error_of(error)
    return code, pose_code


def log_records(server: Server) -> list[dict]:
    return [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]


def forty_calls(target: str, requests: list[bytes], metadata: tuple = ()) -> Counter[str]:
    """Every request (serialized bytes) at once, each on its own thread: the outcome of each, counted."""
    with grpc.insecure_channel(target, options=BIG) as channel:
        estimate = channel.unary_unary(ESTIMATE, response_deserializer=pb.EstimateResponse.FromString)

        def one(request: bytes) -> str:
            try:
                estimate(request, timeout=120, metadata=metadata)
            except grpc.RpcError as exc:
                code, pose_code = codes(exc)
                return f"{code.name}/{pose_code}"
            return "OK"

        with ThreadPoolExecutor(len(requests)) as pool:
            return Counter(pool.map(one, requests))


@pytest.fixture(scope="module")
def big_requests() -> list[bytes]:
    """Twenty 10 MP raw frames with three people (28.6 MiB each) and twenty 32 MiB messages of junk bytes."""
    frame = draw_scene(THREE, size=(3650, 2730))
    pixels = pb.EstimateRequest(image=raw(frame)).SerializeToString()
    junk = pb.EstimateRequest(image=pb.Image(encoded=b"\x01" * (32 * MiB - 64))).SerializeToString()
    assert len(pixels) > 28 * MiB
    assert 32 * MiB - 64 < len(junk) <= 32 * MiB
    return [pixels, junk] * 20


# -- row 1: 40 concurrent 32 MiB calls -------------------------------------------------------------------------------


def test_forty_concurrent_32_mib_calls_stay_within_the_budgets_and_memory_comes_back(
    server: Server, big_requests: list[bytes]
) -> None:
    settle(server)
    base = reset_peak(server)
    outcomes = forty_calls(server.grpc_target, big_requests)
    peak = memory(server)["VmHWM"]
    after = wait_for_rss(server, base + GB // 2)
    refusals = {"RESOURCE_EXHAUSTED/message_budget", "RESOURCE_EXHAUSTED/queue_full"}  # fast, typed, retryable
    assert set(outcomes) <= {"OK", "INVALID_ARGUMENT/unsupported_media_type", *refusals}
    assert outcomes["OK"], outcomes
    assert outcomes["INVALID_ARGUMENT/unsupported_media_type"], outcomes
    assert peak - base <= 1.5 * GB, f"peak +{(peak - base) / GB:.2f} GB ({outcomes})"
    assert after - base <= GB // 2, f"+{(after - base) / GB:.2f} GB left after the load"
    assert metric(server, "pose_grpc_message_bytes_in_flight") == 0
    assert metric(server, "pose_grpc_message_budget_bytes") == BUDGET // 2  # default: half the decode budget


def test_a_call_over_the_message_budget_is_refused_at_once(server: Server) -> None:
    """256 MiB (half the decode budget) hold eight 32 MiB reads at once: a ninth call, while the eight still wait for
    their messages, is refused RESOURCE_EXHAUSTED without waiting for room; the eight are then read and answered."""
    settle(server)
    refused = metric(server, "pose_rejected_total", reason="message_budget")
    release = threading.Event()
    junk = pb.EstimateRequest(image=pb.Image(encoded=b"\x01" * 100))

    def held() -> Iterator[pb.EstimateRequest]:  # the message comes only once the test says so
        release.wait(60)
        yield junk

    with grpc.insecure_channel(server.grpc_target, options=BIG) as channel:
        # the server registers its unary methods request-streaming (it reads the message itself), so a client may
        # open a call and send its message later: meanwhile the call holds POSE_GRPC_MAX_MESSAGE_BYTES of the budget
        waiting = channel.stream_unary(ESTIMATE, request_serializer=pb.EstimateRequest.SerializeToString,
                                       response_deserializer=pb.EstimateResponse.FromString)  # fmt: skip
        estimate = channel.unary_unary(ESTIMATE, request_serializer=pb.EstimateRequest.SerializeToString,
                                       response_deserializer=pb.EstimateResponse.FromString)  # fmt: skip
        holders = [waiting.future(held(), timeout=120) for _ in range(8)]
        try:
            wait_for(lambda: metric(server, "pose_grpc_message_bytes_in_flight") >= BUDGET // 2,
                     "the eight calls holding the message budget", timeout=60, interval=0.05)  # fmt: skip
            with pytest.raises(grpc.RpcError) as info:
                estimate(junk, timeout=120)
            assert codes(info.value) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "message_budget")
            assert "POSE_GRPC_MESSAGE_BUDGET_BYTES" in (info.value.details() or "")
            assert not any(holder.done() for holder in holders), "refused while the eight still held the budget"
        finally:
            release.set()
        outcomes = Counter(codes(failure_of(holder)) for holder in holders)
    assert outcomes == Counter({(grpc.StatusCode.INVALID_ARGUMENT, "unsupported_media_type"): 8})
    assert metric(server, "pose_rejected_total", reason="message_budget") - refused == 1
    # a call gives its room back once its handler is done, which may be just after its client has the answer
    wait_for(lambda: metric(server, "pose_grpc_message_bytes_in_flight") == 0, "the budget given back")


def failure_of(future: grpc.Future) -> grpc.RpcError:
    """The error a call's future ended with (the calls here all end with one)."""
    error = future.exception(timeout=120)
    assert isinstance(error, grpc.RpcError), f"the call succeeded: {future.result()}"
    return error


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = serve(tmp_path_factory.mktemp("grpc-keys"), POSE_API_KEYS="s3cret")
    yield running
    running.stop()


def test_without_a_token_forty_32_mib_calls_are_refused_before_their_bytes_are_read(
    keyed_server: Server, big_requests: list[bytes]
) -> None:
    base = reset_peak(keyed_server)
    outcomes = forty_calls(keyed_server.grpc_target, big_requests)
    peak = memory(keyed_server)["VmHWM"]
    assert outcomes == Counter({"UNAUTHENTICATED/unauthorized": 40})
    assert peak - base <= 0.4 * GB, f"peak +{(peak - base) / GB:.2f} GB"
    assert requests_total(keyed_server, "Estimate", "UNAUTHENTICATED") == 40
    assert metric(keyed_server, "pose_rejected_total", reason="message_budget") == 0, "no message was awaited"
    with grpc.insecure_channel(keyed_server.grpc_target) as channel:  # with the token, the same service answers
        small = pb.EstimateRequest(image=raw(draw_scene(THREE[:1])))
        token = (("authorization", "Bearer s3cret"),)
        answer = pose_pb2_grpc.PoseServiceStub(channel).Estimate(small, timeout=60, metadata=token)
    assert len(answer.people) == 1


def health_refusals(server: Server, code: str) -> float:
    return metric(server, "pose_requests_total", protocol="grpc", endpoint="grpc.health.v1.Health/Check", code=code)


def test_health_open_without_a_token_reads_few_messages_at_once_answers_typed_and_gives_memory_back(
    keyed_server: Server,
) -> None:
    """Health checks are open: forty 32 MiB ones are read at most four at a time, garbled bytes are INVALID_ARGUMENT
    (not UNKNOWN with a traceback), and the memory they took comes back."""
    base = reset_peak(keyed_server)
    counted = {code: health_refusals(keyed_server, code) for code in ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED")}
    busy = metric(keyed_server, "pose_rejected_total", reason="side_reads")
    junk = b"\x0a" + b"\x01" * (32 * MiB - 64)  # field 1 (service) of one byte, then bytes that are no field
    with grpc.insecure_channel(keyed_server.grpc_target, options=BIG) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")

        def one(_: int) -> str:
            try:
                check(junk, timeout=120)
            except grpc.RpcError as exc:
                return exc.code().name
            return "OK"

        with ThreadPoolExecutor(40) as pool:
            outcomes = Counter(pool.map(one, range(40)))
        peak = memory(keyed_server)["VmHWM"]
        health = health_pb2_grpc.HealthStub(channel)
        assert (
            health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
        )
    after = wait_for_rss(keyed_server, base + GB // 2)
    assert set(outcomes) <= {"INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"}, outcomes
    assert outcomes["INVALID_ARGUMENT"], outcomes
    # every refusal counted with its code (and logged in one WARNING line); the answered check is not (as /healthz)
    for code, before in counted.items():
        assert health_refusals(keyed_server, code) - before == outcomes[code], code
    assert metric(keyed_server, "pose_rejected_total", reason="side_reads") - busy == outcomes["RESOURCE_EXHAUSTED"]
    lines = [r for r in log_records(keyed_server) if r["message"].startswith("gRPC /grpc.health.v1.Health/Check")]
    assert len(lines) == 40, lines[:3]
    assert {r["level"] for r in lines} == {"WARNING"}
    assert peak - base <= 1.5 * GB, f"peak +{(peak - base) / GB:.2f} GB"
    assert after - base <= GB // 2, f"+{(after - base) / GB:.2f} GB left after the load"
    assert "Traceback" not in keyed_server.logs()


# -- row 2: a stream's buffer is bytes in the decode budget ----------------------------------------------------------


def test_sixty_raw_4k_frames_at_once_into_one_stream_stay_within_the_decode_budget(server: Server) -> None:
    settle(server)
    frame = raw(draw_scene(THREE, size=(3840, 2160)))  # 24.9 MB; three people: about 0.3 s a frame
    config = pb.StreamConfig(max_in_flight=1, max_buffered=256)
    names = (
        "pose_stream_frames_received_total",
        "pose_stream_frames_dropped_total",
        "pose_stream_frames_answered_total",
    )
    received, dropped, answered = (metric(server, name) for name in names)
    all_in = threading.Event()
    base = reset_peak(server)

    def frames() -> Iterator[pb.StreamRequest]:
        yield pb.StreamRequest(config=config)
        for i in range(60):
            yield pb.StreamRequest(frame=pb.Frame(frame_id=i, image=frame))
        all_in.wait(120)  # keep the stream open until the service has taken every frame

    with grpc.insecure_channel(server.grpc_target, options=BIG) as channel:
        call = pose_pb2_grpc.PoseServiceStub(channel).Stream(frames(), timeout=180)
        end = time.monotonic() + 120
        while metric(server, names[0]) - received < 60:
            assert time.monotonic() < end, "the service never took the 60 frames"
            time.sleep(0.05)
        # at this moment at most the budget's worth of frames waits (512 MiB: 21 of 24.9 MB) and one is in flight
        settled = metric(server, names[1]) - dropped + metric(server, names[2]) - answered
        peak = memory(server)["VmHWM"]
        all_in.set()
        call.cancel()
    assert settled >= 60 - 21 - 1, f"only {settled} of 60 frames answered or dropped: the buffer held more"
    assert peak - base <= GB, f"peak +{(peak - base) / GB:.2f} GB"


# -- row 3: streams that never send their config ---------------------------------------------------------------------


def test_streams_without_a_config_hold_a_slot_and_are_closed_after_the_idle_timeout(server: Server) -> None:
    settle(server)

    async def run() -> list[tuple[str, float]]:
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            stub = pose_pb2_grpc.PoseServiceStub(channel)
            start = time.monotonic()

            async def silent() -> tuple[str, float]:
                call = stub.Stream(timeout=60)  # opens the call and never writes
                with pytest.raises(grpc.RpcError) as info:
                    await call.read()
                code, pose_code = codes(info.value)
                return f"{code.name}/{pose_code}", time.monotonic() - start

            tasks = [asyncio.create_task(silent()) for _ in range(200)]
            while metric(server, "pose_stream_active") < 4:
                await asyncio.sleep(0.05)
            held = metric(server, "pose_stream_active")
            outcomes = await asyncio.gather(*tasks)
            return [(code, ended) for code, ended in outcomes] + [("held", held)]

    *outcomes, (_, held) = asyncio.run(run())
    assert held == 4, "each silent stream holds its slot from the moment it opens"
    ends = Counter(code for code, _ in outcomes)
    assert ends == Counter({"RESOURCE_EXHAUSTED/too_many_streams": 196, "DEADLINE_EXCEEDED/stream_idle": 4}), ends
    assert all(ended >= IDLE_S - 0.1 for code, ended in outcomes if code.endswith("stream_idle"))
    assert metric(server, "pose_stream_active") == 0


# -- row 4: garbled bytes after the config ---------------------------------------------------------------------------


def test_bytes_that_are_not_protobuf_end_the_stream_at_once_with_invalid_argument(server: Server) -> None:
    settle(server)
    ended = stream_ends(server, "bad_request")
    with grpc.insecure_channel(server.grpc_target) as channel:
        stream = channel.stream_stream(STREAM, response_deserializer=pb.StreamResponse.FromString)
        release = threading.Event()

        def messages() -> Iterator[bytes]:
            yield pb.StreamRequest(config=pb.StreamConfig()).SerializeToString()
            yield b"\xff\xff\xff\xff not a protobuf message"
            release.wait(30)  # the client keeps its side open: the service ends the call

        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            list(stream(messages(), timeout=30))
        took = time.monotonic() - start
        release.set()
    assert codes(info.value) == (grpc.StatusCode.INVALID_ARGUMENT, "bad_request")
    assert "StreamRequest" in info.value.details()
    assert took < IDLE_S, "ended by the garbled message, not by the idle timeout"
    assert stream_ends(server, "bad_request") - ended == 1


# -- row 5: non-finite timestamps ------------------------------------------------------------------------------------


def test_a_nan_timestamp_fails_its_frame_and_no_answer_carries_a_non_finite_number(server: Server) -> None:
    settle(server)
    image = raw(draw_scene(THREE[:1]))
    stamps = [i / 30 for i in range(8)]
    stamps[3], stamps[5] = math.nan, math.inf

    def frames() -> Iterator[pb.StreamRequest]:
        yield pb.StreamRequest(config=pb.StreamConfig(smooth=True, max_buffered=8))
        for i, stamp in enumerate(stamps):
            yield pb.StreamRequest(frame=pb.Frame(frame_id=i, timestamp=stamp, image=image))

    with grpc.insecure_channel(server.grpc_target) as channel:
        answers = list(pose_pb2_grpc.PoseServiceStub(channel).Stream(frames(), timeout=120))
    assert [a.frame_id for a in answers] == list(range(8))
    for answer in answers:
        numbers = [v for p in answer.people for k in p.keypoints for v in (k.x, k.y, k.score)]
        numbers += [v for p in answer.people for v in (p.bbox.x1, p.bbox.y1, p.bbox.x2, p.bbox.y2, p.score)]
        assert all(math.isfinite(v) for v in numbers), answer.frame_id
        if answer.frame_id in (3, 5):
            assert answer.error.code == "bad_request"
            assert "timestamp" in answer.error.message
        else:
            assert not answer.HasField("error")
            assert len(answer.people) == 1, answer.frame_id


# -- row 7: malformed and oversized unary calls ----------------------------------------------------------------------


def test_malformed_and_oversized_calls_are_typed_counted_and_logged_in_one_line(
    server: Server, channel: grpc.Channel
) -> None:
    settle(server)
    invalid, exhausted = (
        requests_total(server, "Estimate", "INVALID_ARGUMENT"),
        requests_total(server, "Estimate", "RESOURCE_EXHAUSTED"),
    )
    models = requests_total(server, "ListModels", "INVALID_ARGUMENT")
    estimate = channel.unary_unary(ESTIMATE, response_deserializer=pb.EstimateResponse.FromString)
    for i in range(3):
        with pytest.raises(grpc.RpcError) as info:
            estimate(b"\xff\xff\xff\xff garbage", timeout=30, metadata=(("x-request-id", f"garbled-{i}"),))
        assert codes(info.value) == (grpc.StatusCode.INVALID_ARGUMENT, "bad_request")
        assert "pose.v1.EstimateRequest" in info.value.details()
    list_models = channel.unary_unary("/pose.v1.PoseService/ListModels")
    with pytest.raises(grpc.RpcError) as info:
        list_models(b"\x0a\xff", timeout=30)
    assert codes(info.value) == (grpc.StatusCode.INVALID_ARGUMENT, "bad_request")
    with pytest.raises(grpc.RpcError) as info:  # over POSE_GRPC_MAX_MESSAGE_BYTES (32 MiB): gRPC refuses it
        estimate(b"\x0a" + b"\x01" * (33 * MiB), timeout=30, metadata=(("x-request-id", "oversized"),))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    end = time.monotonic() + 10
    while requests_total(server, "Estimate", "RESOURCE_EXHAUSTED") - exhausted < 1:  # counted once its handler ends
        assert time.monotonic() < end, "the oversized call was not counted"
        time.sleep(0.05)
    assert requests_total(server, "Estimate", "INVALID_ARGUMENT") - invalid == 3
    assert requests_total(server, "ListModels", "INVALID_ARGUMENT") - models == 1
    records = log_records(server)
    for rid in ("garbled-0", "garbled-1", "garbled-2", "oversized"):
        lines = [r for r in records if r.get("request_id") == rid]
        assert [r["level"] for r in lines] == ["WARNING"], lines  # one line, a warning, no traceback
    assert "Traceback" not in server.logs()
    assert not [r for r in records if r["level"] == "ERROR"]


# -- row 8: a stream ended by an oversized frame; boxes in a stream's options ----------------------------------------


def test_a_stream_ended_by_an_oversized_frame_is_not_recorded_ok(server: Server) -> None:
    settle(server)
    statuses = ("OK", "CANCELLED", "INTERNAL", "RESOURCE_EXHAUSTED")
    before = {status: requests_total(server, "Stream", status) for status in statuses}
    ends = stream_ends(server, "too_large")
    image = raw(draw_scene(THREE[:1]))
    release = threading.Event()

    def frames() -> Iterator[pb.StreamRequest]:
        yield pb.StreamRequest(config=pb.StreamConfig())
        yield pb.StreamRequest(frame=pb.Frame(frame_id=0, image=image))
        yield pb.StreamRequest(frame=pb.Frame(frame_id=1, image=pb.Image(encoded=b"\x01" * (33 * MiB))))
        release.wait(30)

    with grpc.insecure_channel(server.grpc_target, options=BIG) as channel:
        with pytest.raises(grpc.RpcError) as info:
            list(pose_pb2_grpc.PoseServiceStub(channel).Stream(frames(), timeout=60))
        release.set()
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # gRPC's own answer, before the service sees it
    wait_for(lambda: stream_ends(server, "too_large") - ends >= 1, "the stream's end counted", timeout=10)
    after = {code: requests_total(server, "Stream", code) for code in before}
    # counted as the client saw it: gRPC's RESOURCE_EXHAUSTED (its failed read), never OK nor a cancel
    assert after["RESOURCE_EXHAUSTED"] - before["RESOURCE_EXHAUSTED"] == 1
    assert after["CANCELLED"] == before["CANCELLED"]
    assert after["OK"] == before["OK"]
    assert after["INTERNAL"] == before["INTERNAL"]
    assert "Traceback" not in server.logs()


def test_boxes_in_a_streams_options_are_refused(server: Server) -> None:
    config = pb.StreamConfig(options=pb.Options(boxes=[pb.Box(x1=10, y1=10, x2=200, y2=300)]))
    with grpc.insecure_channel(server.grpc_target) as channel, pytest.raises(grpc.RpcError) as info:
        list(pose_pb2_grpc.PoseServiceStub(channel).Stream(iter([pb.StreamRequest(config=config)]), timeout=30))
    assert codes(info.value) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_options")
    assert "boxes are not taken by a stream" in info.value.details()


# -- row 6: SIGTERM while cameras keep sending -----------------------------------------------------------------------


class Camera:
    """A client sending a frame every ``interval_s`` until its stream ends; what it sent and got, with times."""

    def __init__(self, stub: pose_pb2_grpc.PoseServiceStub, image: pb.Image, interval_s: float) -> None:
        self.sent: dict[int, float] = {}
        self.sent_at: dict[int, float] = {}  # the same sends on the wall clock (the server's log has that clock)
        self.answered: dict[int, float] = {}
        self.dropped: set[int] = set()
        self.error: grpc.RpcError | None = None
        self.ended = 0.0
        self._stop = threading.Event()

        def frames() -> Iterator[pb.StreamRequest]:
            yield pb.StreamRequest(config=pb.StreamConfig(max_in_flight=2, max_buffered=4))
            i = 0
            while not self._stop.wait(interval_s):
                self.sent[i], self.sent_at[i] = time.monotonic(), time.time()
                yield pb.StreamRequest(frame=pb.Frame(frame_id=i, image=image))
                i += 1

        def read() -> None:
            try:
                for answer in stub.Stream(frames(), timeout=120):
                    self.dropped |= set(answer.dropped_frame_ids)
                    if not answer.drops_only:
                        self.answered[answer.frame_id] = time.monotonic()
            except grpc.RpcError as exc:
                self.error = exc
            self.ended = time.monotonic()
            self._stop.set()

        self.thread = threading.Thread(target=read)
        self.thread.start()


def test_sigterm_while_cameras_send_answers_what_was_taken_and_ends_streams_unavailable(tmp_path: Path) -> None:
    grace = 20.0
    server = serve(tmp_path, POSE_SHUTDOWN_GRACE_S=str(grace))
    image = raw(draw_scene(THREE[:1]))
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pose_pb2_grpc.PoseServiceStub(channel)
        cameras = [Camera(stub, image, interval_s=0.05) for _ in range(2)]
        end = time.monotonic() + 60
        while min(len(c.answered) for c in cameras) < 4:
            assert time.monotonic() < end, "the cameras were never answered"
            time.sleep(0.05)
        release = threading.Event()

        def nothing() -> Iterator[pb.StreamRequest]:
            release.wait(60)  # opens the stream, never sends its config
            yield from ()

        silent = stub.Stream(nothing(), timeout=60)
        while metric(server, "pose_stream_active") < 3:
            time.sleep(0.05)
        frame_s = statistics.median(b - a for c in cameras for i, b in c.answered.items() for a in [c.sent[i]])
        sigterm = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as info:
            next(silent)
        silent_ended = time.monotonic()
        code = server.process.wait(60)
        exited = time.monotonic()
        for camera in cameras:
            camera.thread.join(30)
        release.set()
    # the server's SIGTERM: the line it logs just before it closes the gate and drains the streams, in the same step
    # of its loop (a log time is truncated to the millisecond)
    (shutting_down,) = [r for r in log_records(server) if r["message"].startswith("shutting down")]
    drained_at = datetime.strptime(shutting_down["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp() + 0.001
    assert codes(info.value) == (grpc.StatusCode.UNAVAILABLE, "shutting_down")
    assert silent_ended - sigterm < 2, "a stream waiting for its config ends at once"
    for camera in cameras:
        assert camera.error is not None
        assert codes(camera.error) == (grpc.StatusCode.UNAVAILABLE, "shutting_down")
        taken = sorted(set(camera.answered) | camera.dropped)
        assert taken == list(range(len(taken))), "every frame the service took is answered or reported dropped"
        late = [i for i in taken if camera.sent_at[i] >= drained_at]
        assert not late, f"frames sent after the server's SIGTERM were taken: {late}"
        assert any(t > sigterm for t in camera.answered.values()) or camera.dropped, "what was in flight was answered"
        # in flight at SIGTERM: at most two frames of about frame_s each; the waiting ones are dropped at once
        assert camera.ended - sigterm < 2 + 4 * frame_s, (camera.ended - sigterm, frame_s)
    assert code == 0
    assert exited - sigterm < grace / 2, f"exited {exited - sigterm:.1f} s after SIGTERM (grace {grace:g} s)"
    logs = server.logs()
    assert "_ServerStoppedError" not in logs
    assert "Traceback" not in logs
    assert "shutdown complete" in logs
