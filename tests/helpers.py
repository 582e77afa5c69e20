"""What the test modules share; test modules import from here (and ``tests.oracles``, ``tests.streams``), never
from each other.

- images: the one-person scene, PNG/JPEG bytes, the error body's code;
- gRPC: raw-pixel images, a failed call's code and ``pose-error-code``;
- metrics: :func:`metric` reads this process's registry (unit tests) or a server's /metrics (integration)
  the same way; :func:`wait_for` polls a condition instead of sleeping; :func:`settle`;
- the real server: :func:`start_server` (``python -m service`` on free loopback ports), :func:`build_repository`;
- an Engine in process (unit tests): :func:`start_engine`, :func:`decoded`;
- OpenVINO shown a CPU without bf16, in a server process: :func:`hide_bf16`;
- a slow pose model sized from this machine's measured speed: :func:`slow_pose`, :func:`slow_repo`. Tests that
  need work to take time derive their box counts, deadlines and grace periods from its measured
  ``seconds_per_crop``, so they hold on a machine twice as fast or twice as slow (or on one core).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from service.config import Settings
from service.engine.engine import Engine
from service.vision.image import DecodedImage, decode_image
from service.wire._proto.pose.v1 import pose_pb2 as pb
from tests.oracles import (
    BANDS,
    POSE_FIELDS,
    Person,
    draw_scene,
    install_detector_oracle,
    install_model,
    install_pose_oracle,
    poisoned_pose_oracle,
    slow_pose_oracle,
)

ROOT = Path(__file__).resolve().parents[1]

# -- images ----------------------------------------------------------------------------------------------------------

PERSON = (40, 60, 160, 400)
MARKER = (100.0, 200.0)


def scene(people: tuple[Person, ...] = ((PERSON, MARKER),), size: tuple[int, int] = (640, 480)) -> np.ndarray:
    return draw_scene(people, size)


def png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 97])
    assert ok
    return data.tobytes()


SCENE = png(scene())
PNG = {"Content-Type": "image/png"}


def error_code(response: httpx.Response) -> str:
    """The ``error.code`` of an error response, checking the body is the one error shape."""
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    return body["error"]["code"]


def boxes_param(count: int, box: tuple[int, int, int, int] = (10, 10, 200, 300)) -> str:
    """``count`` copies of ``box`` as the ``boxes`` query parameter (JSON, no spaces)."""
    x1, y1, x2, y2 = box
    return "[" + ",".join([f"[{x1},{y1},{x2},{y2}]"] * count) + "]"


# -- gRPC ------------------------------------------------------------------------------------------------------------


def raw(image: np.ndarray, *, rgb: bool = False) -> pb.Image:
    pixels = image[..., ::-1] if rgb else image
    fmt = pb.RGB8 if rgb else pb.BGR8
    return pb.Image(raw=pb.RawImage(pixels=np.ascontiguousarray(pixels).tobytes(), width=image.shape[1],
                                    height=image.shape[0], format=fmt))  # fmt: skip


def error_of(call: grpc.RpcError) -> tuple[grpc.StatusCode, str, str]:
    """(status code, details, the pose-error-code trailing metadata) of a failed call."""
    trailing = dict(call.trailing_metadata() or ())  # type: ignore[attr-defined]
    return call.code(), call.details(), trailing.get("pose-error-code", "")  # type: ignore[attr-defined]


def grpc_boxes(count: int) -> list[pb.Box]:
    return [pb.Box(x1=10, y1=10, x2=200, y2=300)] * count


# -- metrics and waiting ---------------------------------------------------------------------------------------------


def metric(source: Server | CollectorRegistry, name: str, **labels: str | Collection[str]) -> float:
    """The sum of the samples called ``name`` whose labels match ``labels``; 0 when there is none.

    Args:
        source: a running :class:`Server` (its /metrics text) or a registry of this process
            (``prometheus_client.REGISTRY``, for unit tests): both are read the same way.
        name: the sample name, e.g. ``pose_items_total``, ``pose_batch_size_count``.
        labels: ``label="value"``, or a collection of values any of which matches
            (``protocol=("http", "grpc")``); labels not named are summed over.
    """
    if isinstance(source, Server):
        families = text_string_to_metric_families(httpx.get(source.url + "/metrics", timeout=10).text)
    else:
        families = source.collect()
    total = 0.0
    for family in families:
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(key) == wanted if isinstance(wanted, str) else sample.labels.get(key) in wanted
                for key, wanted in labels.items()
            ):
                total += sample.value
    return total


def wait_for(condition: Callable[[], object], what: str, *, timeout: float = 30, interval: float = 0.01) -> None:
    """Poll ``condition`` until it is true; fail with ``what`` after ``timeout`` seconds (a hang, not slowness)."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"{what}: not within {timeout:g} s"
        time.sleep(interval)


def settle(server: Server) -> None:
    """Wait until no request is in flight and every queue is empty (the previous test's work is over)."""
    wait_for(lambda: not metric(server, "pose_requests_in_progress") and not metric(server, "pose_queue_depth"),
             "the server never went idle")  # fmt: skip


# -- the real server -------------------------------------------------------------------------------------------------

_HEALTHZ_PROBE = """
import json, sys, time, httpx
latencies = []
with httpx.Client(base_url=sys.argv[1], timeout=30) as client:
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        start = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        latencies.append(time.perf_counter() - start)
        time.sleep(float(sys.argv[3]))
print(json.dumps(latencies))
"""


def healthz_probe(url: str, seconds: float, interval_s: float = 0.01) -> subprocess.Popen[bytes]:
    """/healthz latencies for ``seconds`` from a process of its own (a thread would share the caller's GIL).

    ``json.loads(probe.communicate()[0])`` is the list of seconds.
    """
    command = [sys.executable, "-c", _HEALTHZ_PROBE, url, str(seconds), str(interval_s)]
    return subprocess.Popen(command, stdout=subprocess.PIPE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    grpc_target: str | None = None  # "127.0.0.1:PORT" when gRPC is served

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    repo: Path, log: Path, *, ready: bool = True, timeout: float = 60, grpc: bool = True, **env: str
) -> Server:
    """Run ``python -m service`` over ``repo``; wait for /readyz (or only for /healthz when ``ready`` is False).

    Args:
        grpc: serve gRPC too, on a free port (``Server.grpc_target``).
    """
    port = free_port()
    grpc_port = free_port() if grpc else 0
    environment = {
        **os.environ,
        "POSE_HOST": "127.0.0.1",
        "POSE_HTTP_PORT": str(port),
        "POSE_GRPC_PORT": str(grpc_port),
        "POSE_MODEL_REPOSITORY": str(repo),
        "POSE_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    handle = log.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=environment, stdout=handle,
                               stderr=subprocess.STDOUT)  # fmt: skip
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log=log,
                    grpc_target=f"127.0.0.1:{grpc_port}" if grpc else None)  # fmt: skip
    path = "/readyz" if ready else "/healthz"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}:\n{server.logs()[-4000:]}")
        try:
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"the service did not answer {path} within {timeout} s:\n{server.logs()[-4000:]}")


def build_repository(root: Path) -> Path:
    """Body (COCO-17) and whole-body (133) pose oracles, a detector oracle, and a model that fails on green."""
    install_pose_oracle(root, "pose-oracle", batching={"max_batch_size": 16, "max_queue_delay_ms": 5})
    install_pose_oracle(root, "wholebody-oracle", keypoints="wholebody133")
    install_detector_oracle(root, "detector-oracle", bands=BANDS)
    install_model(root, "poisoned-oracle", poisoned_pose_oracle(), **POSE_FIELDS)
    return root


# -- an Engine in process (unit tests) -------------------------------------------------------------------------------

FAR = 60.0  # seconds: a deadline no test reaches


def start_engine(repo: Path, **overrides: object) -> Engine:
    """An Engine over ``repo`` serving ``pose`` with the detector ``det``, loaded and warmed up."""
    fields: dict[str, object] = {"model_repository": repo, "model": "pose", "detector": "det", "warmup": True}
    engine = Engine(Settings(**(fields | overrides)))  # type: ignore[arg-type]
    engine.start()
    return engine


def decoded(image: np.ndarray) -> DecodedImage:
    """``image`` through PNG and the service's decoder."""
    return decode_image(png(image), max_pixels=10**8)


# -- a slow pose model, sized from this machine's measured speed -----------------------------------------------------

SLOW_INPUT = (192, 256)  # (w, h), as POSE_FIELDS


@dataclass(frozen=True)
class SlowPose:
    """A :func:`tests.oracles.slow_pose_oracle` sized for this machine, and its speed as measured here.

    ``seconds_per_crop`` is the best of three timed runs of ONNX Runtime with the service's
    CPU session options, at ``batch`` crops per run: the model's own speed without the
    service around it. The served model is slower (it runs niced, beside the rest of the
    service and the machine's load), so a test that needs work to outlast something uses it
    as a lower bound, with a margin of 2x or more in case the measurement itself was slowed
    by load; a test that needs work to finish allows several times the work, or just waits.
    """

    layers: int
    seconds_per_crop: float
    batch: int

    def seconds(self, crops: int) -> float:
        """The least time ``crops`` crops take."""
        return crops * self.seconds_per_crop

    def crops_for(self, seconds: float) -> int:
        """The fewest crops that take at least ``seconds``."""
        return max(1, math.ceil(seconds / self.seconds_per_crop))


def _best_seconds_per_crop(layers: int, batch: int, runs: int = 3) -> float:
    import onnxruntime as ort

    from service.config import cpu_count
    from service.engine.session import cpu_options

    model = slow_pose_oracle(SLOW_INPUT, [0] * 17, layers=layers)
    session = ort.InferenceSession(model.SerializeToString(), cpu_options(cpu_count(), spinning=False),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    feeds = {"input": np.zeros((batch, 3, SLOW_INPUT[1], SLOW_INPUT[0]), np.float32)}
    session.run(None, feeds)  # the first run allocates
    best = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - start)
    return best / batch


@functools.cache
def slow_pose(seconds_per_crop: float, batch: int = 4) -> SlowPose:
    """A slow pose model of about ``seconds_per_crop`` a crop here, at ``batch`` crops per run (measured, cached).

    The cost is set in layers from a timed probe (a faster machine gets more layers, so the
    tests' durations stay about the same everywhere); the speed returned is measured on the
    model itself, and it is what tests derive their numbers from.
    """
    probe = 16
    per_layer = _best_seconds_per_crop(probe, 1) / probe  # the probe's fixed part counts in: a slight over-estimate
    layers = max(1, round(seconds_per_crop / per_layer))
    return SlowPose(layers, _best_seconds_per_crop(layers, batch), batch)


def install_slow_pose(root: Path, name: str, layers: int, *, channels: list[int] | None = None,
                      **batching: object) -> Path:  # fmt: skip
    """Install a :func:`tests.oracles.slow_pose_oracle` (RTMPose's normalisation; keypoints all red by default)."""
    model = slow_pose_oracle(SLOW_INPUT, channels if channels is not None else [0] * 17, layers=layers)
    return install_model(root, name, model, **POSE_FIELDS, batching={"max_queue_delay_ms": 0, **batching})


def slow_repo(root: Path, layers: int, **batching: object) -> Path:
    """A repository of ``pose`` (:func:`install_slow_pose` with ``layers``; 0: as fast as the oracle) and ``det``."""
    install_slow_pose(root, "pose", layers, **batching)
    install_detector_oracle(root, "det", bands=BANDS)
    return root


# Imported by a server process through PYTHONPATH: OpenVINO's CPU without BF16/FP16 in its capabilities, as a CPU
# without AVX512-BF16 or AMX reports them (OpenVINO itself stays real), so a bf16 machine runs the no-bf16 path too.
_NO_BF16_SITECUSTOMIZE = """
import openvino


class _CoreWithoutBf16(openvino.Core):
    def get_property(self, *args, **kwargs):
        value = super().get_property(*args, **kwargs)
        if args[1:2] == ("OPTIMIZATION_CAPABILITIES",):
            return [c for c in value if c not in ("BF16", "FP16")]
        return value


openvino.Core = _CoreWithoutBf16
"""


def hide_bf16(folder: Path) -> Path:
    """``folder`` holding a ``sitecustomize.py`` that hides bf16 and fp16 from OpenVINO: put it on a server's
    PYTHONPATH (readable by any user: a container's service user too)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    (folder / "sitecustomize.py").write_text(_NO_BF16_SITECUSTOMIZE)
    (folder / "sitecustomize.py").chmod(0o644)
    return folder
