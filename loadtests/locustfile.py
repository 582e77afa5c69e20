"""Locust users of the service: HTTP (single image, batch, rendered), gRPC Estimate, and gRPC camera streams.

Run by ``make loadtest`` (``loadtests/run.py`` starts the service and passes the settings
below); by hand::

    LOADTEST_IMAGES=path/to/jpegs LOADTEST_GRPC_TARGET=127.0.0.1:50051 \
      .loadtest-venv/bin/locust -f loadtests/locustfile.py --host http://127.0.0.1:8000

Environment:
    LOADTEST_IMAGES       folder of JPEGs to send (a mix of sizes and people counts)
    LOADTEST_GRPC_TARGET  host:port of the gRPC API
    LOADTEST_STREAM_FPS   frames per second each stream user sends (default 4)
    LOADTEST_MAX_PEOPLE   max_people of every request (default 6)
    LOADTEST_SHEDDING     "1": 429/503/504 are the expected answers of an overloaded service
                          (counted as successes under their own names, "shed 429" ...)
"""

from __future__ import annotations

# gRPC must cooperate with gevent before any channel exists
import grpc.experimental.gevent as grpc_gevent  # isort: skip

grpc_gevent.init_gevent()

import itertools  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import grpc  # noqa: E402
from locust import HttpUser, User, between, events, task  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the service's stubs, not the service itself
from service.wire._proto.pose.v1 import pose_pb2 as pb  # noqa: E402
from service.wire._proto.pose.v1 import pose_pb2_grpc  # noqa: E402

IMAGES = [p.read_bytes() for p in sorted(Path(os.environ.get("LOADTEST_IMAGES", "loadtests/images")).glob("*.jpg"))]
GRPC_TARGET = os.environ.get("LOADTEST_GRPC_TARGET", "127.0.0.1:50051")
STREAM_FPS = float(os.environ.get("LOADTEST_STREAM_FPS", "4"))
MAX_PEOPLE = int(os.environ.get("LOADTEST_MAX_PEOPLE", "6"))
SHEDDING = os.environ.get("LOADTEST_SHEDDING") == "1"
SHED_HTTP = {429, 503, 504}
SHED_GRPC = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@events.test_start.add_listener
def _check_images(environment, **_: object) -> None:  # noqa: ANN001
    if not IMAGES:
        raise RuntimeError("no JPEGs in LOADTEST_IMAGES: run through `make loadtest`, which prepares them")


def _image() -> bytes:
    return random.choice(IMAGES)


class _Http(HttpUser):
    abstract = True
    wait_time = between(1.0, 3.0)

    def post(self, name: str, path: str, **kwargs: object) -> None:
        params = {"max_people": MAX_PEOPLE}
        with self.client.post(path, name=name, params=params, catch_response=True, timeout=60, **kwargs) as response:
            if response.status_code == 200:
                response.success()
            elif SHEDDING and response.status_code in SHED_HTTP:
                response.request_meta["name"] = f"shed {response.status_code}"
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class SingleImageUser(_Http):
    """POST /v1/pose, raw JPEG body."""

    weight = 4

    @task
    def pose(self) -> None:
        self.post("POST /v1/pose", "/v1/pose", data=_image(), headers={"Content-Type": "image/jpeg"})


class BatchUser(_Http):
    """POST /v1/pose/batch with three images."""

    weight = 1

    @task
    def batch(self) -> None:
        files = [("files", (f"{i}.jpg", _image(), "image/jpeg")) for i in range(3)]
        self.post("POST /v1/pose/batch", "/v1/pose/batch", files=files)


class RenderUser(_Http):
    """POST /v1/pose?render=true: the JPEG with skeletons drawn."""

    weight = 1

    @task
    def render(self) -> None:
        self.post(
            "POST /v1/pose?render",
            "/v1/pose",
            data=_image(),
            headers={"Content-Type": "image/jpeg", "Accept": "image/jpeg"},
        )


def _report(request_type: str, name: str, start: float, length: int, error: BaseException | None) -> None:
    events.request.fire(request_type=request_type, name=name, response_time=(time.perf_counter() - start) * 1000,
                        response_length=length, exception=error, context={})  # fmt: skip


class _Grpc(User):
    """One channel per user, as one client process would hold."""

    abstract = True

    def on_start(self) -> None:
        self.channel = grpc.insecure_channel(GRPC_TARGET)
        self.stub = pose_pb2_grpc.PoseServiceStub(self.channel)

    def on_stop(self) -> None:
        self.channel.close()


class GrpcEstimateUser(_Grpc):
    """pose.v1.PoseService/Estimate with the JPEG bytes."""

    weight = 3
    wait_time = between(1.0, 3.0)

    @task
    def estimate(self) -> None:
        start = time.perf_counter()
        try:
            request = pb.EstimateRequest(image=pb.Image(encoded=_image()), options=pb.Options(max_people=MAX_PEOPLE))
            response = self.stub.Estimate(request, timeout=60)
        except grpc.RpcError as exc:
            if SHEDDING and exc.code() in SHED_GRPC:  # type: ignore[attr-defined]
                _report("grpc", f"shed {exc.code().name}", start, 0, None)  # type: ignore[attr-defined]
            else:
                _report("grpc", "Estimate", start, 0, exc)
            return
        _report("grpc", "Estimate", start, response.ByteSize(), None)


class StreamUser(_Grpc):
    """A camera: one Stream call sending LOADTEST_STREAM_FPS frames a second; each answered frame's latency is a
    "stream frame" request, each dropped frame a "stream dropped" one (not a failure: dropping is the protocol)."""

    weight = 1

    def wait_time(self) -> float:
        return 1.0

    @task
    def camera(self) -> None:
        sent: dict[int, float] = {}
        frames = itertools.cycle(IMAGES[random.randrange(len(IMAGES)) :] + IMAGES)

        def requests() -> Iterator[pb.StreamRequest]:
            yield pb.StreamRequest(config=pb.StreamConfig(det_interval=3, options=pb.Options(max_people=MAX_PEOPLE)))
            for frame_id in range(int(STREAM_FPS * 20)):  # 20 s per call, then a new one
                sent[frame_id] = time.perf_counter()
                yield pb.StreamRequest(frame=pb.Frame(frame_id=frame_id, timestamp=frame_id / STREAM_FPS,
                                                      image=pb.Image(encoded=next(frames))))  # fmt: skip
                gevent.sleep(1.0 / STREAM_FPS)

        opened = time.perf_counter()
        try:
            for answer in self.stub.Stream(requests(), timeout=120):
                for dropped in answer.dropped_frame_ids:
                    _report("stream", "stream dropped", sent.pop(dropped, opened), 0, None)
                if answer.drops_only:
                    continue
                error = (
                    RuntimeError(f"{answer.error.code}: {answer.error.message}") if answer.HasField("error") else None
                )
                if error and SHEDDING and answer.error.code in {"queue_full", "deadline_exceeded", "shutting_down"}:
                    _report("stream", f"shed {answer.error.code}", sent.pop(answer.frame_id, opened), 0, None)
                    continue
                _report("stream", "stream frame", sent.pop(answer.frame_id, opened), answer.ByteSize(), error)
        except grpc.RpcError as exc:
            if SHEDDING and exc.code() in SHED_GRPC:  # type: ignore[attr-defined]
                _report("stream", f"shed {exc.code().name}", opened, 0, None)  # type: ignore[attr-defined]
            else:
                _report("stream", "Stream call", opened, 0, exc)
