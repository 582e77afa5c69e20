"""The CPU image, built from the real Dockerfile with buildah and run as a container (``make image-test``).

Builds ``localhost/rtmpose-service:cpu`` (deploy/image/build.sh: a local debootstrapped Debian base,
``--pull=never``), runs its default command with ``buildah run --isolation chroot`` on the host
network with the model repository and TensorRT cache as bind-mounted volumes, and checks what a
user relies on: models installed at start, /readyz, a pose request, gRPC health, a non-root
process, nothing written outside the volumes, a graceful stop. Then the same image on OpenVINO
(``POSE_BACKEND=openvino``): bf16 where this machine's CPU has it, else fp32 (the output says which
and why), one request, and /v1/models and ``pose_model_info`` report what runs; on a CPU without
bf16, ``POSE_PRECISION=bf16`` stops the container with the reason and it never turns ready.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.deploy.tools import ROOT
from tests.helpers import free_port, hide_bf16
from tests.oracles import draw_scene

pytestmark = pytest.mark.image

IMAGE = "localhost/rtmpose-service:cpu"
UID = 10001
START_TIMEOUT_S = 180  # synthesizing the two default models and warming them up, on 2 busy cores
# what buildah itself leaves in a container's root filesystem (a mount point)
BUILDAH_OWN = {"run"}


def buildah() -> str:
    found = shutil.which("buildah")
    if found is None:
        pytest.skip("buildah not installed: `make image-test` installs it with apt-get (as root)")
    if os.geteuid() != 0:
        pytest.skip("buildah --isolation chroot needs root")
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap not installed (the local Debian base is made with it): `make image-test`")
    return found


@pytest.fixture(scope="module")
def image() -> str:
    build = subprocess.run([str(ROOT / "deploy" / "image" / "build.sh"), "cpu"], cwd=ROOT, capture_output=True,
                           text=True, timeout=1800, check=False)  # fmt: skip
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    print(build.stdout.strip().splitlines()[-1])  # size and build time, for the log
    return IMAGE


@dataclass
class Container:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str
    grpc_port: int
    volumes: dict[str, Path]

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def image_command(tool: str, image: str) -> list[str]:
    config = json.loads(subprocess.check_output([tool, "inspect", "--type", "image", image]))["Docker"]["config"]
    return (config.get("Entrypoint") or []) + config["Cmd"]


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def service_process(container: Container) -> int:
    """Pid of ``python -m service`` inside the container (seen from the host: chroot isolation shares pids)."""
    for pid in descendants(container.process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:3] == [b"python", b"-m", b"service"]:
            return pid
    raise AssertionError(f"no `python -m service` process in the container:\n{container.logs()[-3000:]}")


@contextlib.contextmanager
def run_container(image: str, root: Path, volumes: dict[str, Path], **env: str) -> Iterator[Container]:
    """The image's own command in a new container on the host network; removed afterwards.

    Args:
        root: a folder for the log.
        volumes: container path -> host folder, bind-mounted read-write.
        env: ``POSE_*`` settings besides the ports and the loopback host.
    """
    tool = buildah()
    name = f"rtmpose-image-test-{os.getpid()}-{root.name}"
    subprocess.run([tool, "rm", name], capture_output=True, check=False)
    subprocess.run([tool, "from", "--pull-never", "--name", name, image], capture_output=True, check=True)
    http_port, grpc_port = free_port(), free_port()
    binds = [f"type=bind,src={source},dst={target},rw" for target, source in volumes.items()]
    mounts = [arg for bind in binds for arg in ("--mount", bind)]
    settings = {"POSE_HTTP_PORT": str(http_port), "POSE_GRPC_PORT": str(grpc_port), "POSE_HOST": "127.0.0.1", **env}
    log = root / "container.log"
    command = [tool, "run", "--isolation", "chroot", "--network", "host", *mounts,
               *[arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")],
               name, "--", *image_command(tool, image)]  # fmt: skip
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    running = Container(name, process, log, f"http://127.0.0.1:{http_port}", grpc_port, volumes)
    try:
        yield running
    finally:
        if process.poll() is None:
            for pid in descendants(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait(30)
        subprocess.run([tool, "rm", name], capture_output=True, check=False)


def wait_ready(container: Container) -> Container:
    end = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < end:
        assert container.process.poll() is None, f"the container exited:\n{container.logs()[-4000:]}"
        try:
            if httpx.get(container.url + "/readyz", timeout=2).status_code == 200:
                return container
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"/readyz not ready within {START_TIMEOUT_S} s:\n{container.logs()[-4000:]}")


@pytest.fixture(scope="module")
def container(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root = tmp_path_factory.mktemp("container")
    volumes = {"/models": root / "models", "/cache/trt": root / "trt"}
    for path in volumes.values():
        path.mkdir()
        os.chown(path, UID, UID)  # as a volume provisioned for the image's user
    with run_container(image, root, volumes) as running:
        yield running


@pytest.fixture(scope="module")
def ready(container: Container) -> Container:
    return wait_ready(container)


def test_default_command_installs_the_models_into_the_volume(ready: Container) -> None:
    models = ready.volumes["/models"]
    for name in ("rtmpose-m", "rtmdet-nano"):
        assert (models / name / "config.toml").exists()
        assert (models / name / "1" / "model.onnx").stat().st_uid == UID


def test_serves_a_pose_request(ready: Container) -> None:
    ok, body = cv2.imencode(".jpg", draw_scene([((40, 60, 160, 400), (100.0, 200.0))]))
    response = httpx.post(
        ready.url + "/v1/pose", files={"file": ("scene.jpg", body.tobytes(), "image/jpeg")}, timeout=60
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model"]["pose"] == "rtmpose-m"
    assert result["model"]["weights"] == "synthetic"  # offline: ensure fell back to synthetic weights
    models = {m["name"]: m for m in httpx.get(ready.url + "/v1/models", timeout=10).json()["models"]}
    for model in models.values():  # the default stays exact: ONNX Runtime fp32, although OpenVINO is in the image
        runs = (model["backend"], model["provider"], model["precision"])
        assert runs == ("onnxruntime", "CPUExecutionProvider", "fp32"), f"{model['name']} runs {runs}"


def test_grpc_health_reports_serving(ready: Container) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{ready.grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "pose.v1.PoseService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


def test_the_service_runs_as_the_unprivileged_user(ready: Container) -> None:
    status = Path(f"/proc/{service_process(ready)}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    gids = next(line for line in status.splitlines() if line.startswith("Gid:")).split()[1:]
    assert {int(u) for u in uids} == {UID}
    assert {int(g) for g in gids} == {UID}


def test_health_check_of_the_image_passes(ready: Container) -> None:
    tool = buildah()
    config = json.loads(subprocess.check_output([tool, "inspect", "--type", "image", IMAGE]))["Docker"]["config"]
    kind, *command = config["Healthcheck"]["Test"]
    assert kind == "CMD"
    result = subprocess.run([tool, "run", "--isolation", "chroot", "--network", "host", "-e",
                             f"POSE_HTTP_PORT={ready.url.rsplit(':', 1)[1]}", ready.name, "--", *command],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_sigterm_stops_it_cleanly_and_nothing_was_written_outside_the_volumes(ready: Container) -> None:
    """Last: stops the container. An empty upper layer means the image runs on a read-only root filesystem."""
    os.kill(service_process(ready), signal.SIGTERM)
    assert ready.process.wait(60) == 0, ready.logs()[-3000:]  # buildah run passes the service's exit status on
    assert "shutdown complete" in ready.logs()
    tool = buildah()
    merged = subprocess.check_output([tool, "mount", ready.name], text=True).strip()
    try:
        upper = Path(merged).parent / "diff"
        written = sorted(str(p.relative_to(upper)) for p in upper.rglob("*"))
    finally:
        subprocess.run([tool, "umount", ready.name], capture_output=True, check=False)
    assert set(written) <= BUILDAH_OWN, written


OPENVINO_CPU = """
import openvino as ov
core = ov.Core()
print(core.get_property("CPU", "FULL_DEVICE_NAME"))
print(" ".join(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")))
"""


@pytest.fixture(scope="module")
def openvino_precision(image: str, ready: Container) -> tuple[str, str]:
    """(precision, why): bf16 where the image's OpenVINO has it on this CPU (as the service decides), else fp32."""
    tool = buildah()
    result = subprocess.run([tool, "run", "--isolation", "chroot", ready.name, "--", "python", "-c", OPENVINO_CPU],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, f"OpenVINO in the image cannot see the CPU:\n{result.stdout}{result.stderr}"
    cpu, capabilities = result.stdout.strip().splitlines()[-2:]
    if "BF16" in capabilities.split():
        return "bf16", f"this CPU ({cpu}) has BF16 in OpenVINO's capabilities ({capabilities})"
    return "fp32", f"this CPU ({cpu}) has no BF16 in OpenVINO's capabilities ({capabilities}): needs AVX512-BF16 or AMX"


@pytest.fixture(scope="module")
def openvino_ready(
    image: str, ready: Container, openvino_precision: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    """The image with POSE_BACKEND=openvino, on the models the default start installed."""
    precision, _ = openvino_precision
    root = tmp_path_factory.mktemp("openvino")
    with run_container(image, root, ready.volumes, POSE_BACKEND="openvino", POSE_PRECISION=precision) as running:
        yield wait_ready(running)


def test_openvino_serves_and_reports_the_precision_it_runs(
    openvino_ready: Container, openvino_precision: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    precision, why = openvino_precision
    with capsys.disabled():
        print(f"\n[image on OpenVINO] POSE_PRECISION={precision}: {why}")
    said = f"POSE_BACKEND=openvino POSE_PRECISION={precision} ({why})"
    ok, body = cv2.imencode(".jpg", draw_scene([((40, 60, 160, 400), (100.0, 200.0))]))
    response = httpx.post(
        openvino_ready.url + "/v1/pose", files={"file": ("scene.jpg", body.tobytes(), "image/jpeg")}, timeout=60
    )
    assert response.status_code == 200, f"{said}: {response.text}"
    models = httpx.get(openvino_ready.url + "/v1/models", timeout=10).json()["models"]
    for model in models:
        runs = (model["backend"], model["precision"], model["provider"], model["precision_warning"])
        assert runs == ("openvino", precision, "OpenVINO:CPU", None), f"{said}: {model['name']} runs {runs}"
    metrics = httpx.get(openvino_ready.url + "/metrics", timeout=10).text
    info = [line for line in metrics.splitlines() if line.startswith("pose_model_info{")]
    assert len(info) == len(models), f"{said}: {info}"
    for line in info:
        assert 'backend="openvino"' in line, f"{said}: {line}"
        assert f'precision="{precision}",precision_fallback="false"' in line, f"{said}: {line}"
    assert f"backend=openvino precision={precision} provider=OpenVINO:CPU" in openvino_ready.logs(), said


def test_bf16_on_a_cpu_without_it_stops_the_container_never_ready(
    image: str, ready: Container, openvino_precision: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A cpu-bf16 pod on a node without bf16: exit 1 with the reason, never ready, never a silent fp32.

    Where this CPU has bf16, the container's OpenVINO is shown a CPU without it (``hide_bf16`` on its PYTHONPATH).
    """
    precision, why = openvino_precision
    root = tmp_path_factory.mktemp("bf16")
    volumes, env = dict(ready.volumes), {"POSE_BACKEND": "openvino", "POSE_PRECISION": "bf16"}
    if precision == "bf16":
        volumes["/opt/no-bf16"] = hide_bf16(root / "no-bf16")
        env["PYTHONPATH"] = "/opt/no-bf16"
        why = f"{why}, hidden from the container's OpenVINO"
    with run_container(image, root, volumes, **env) as running:
        end = time.monotonic() + START_TIMEOUT_S
        while running.process.poll() is None and time.monotonic() < end:
            with contextlib.suppress(httpx.TransportError):
                status = httpx.get(running.url + "/readyz", timeout=2).status_code
                assert status != 200, f"ready on bf16 although {why}:\n{running.logs()[-3000:]}"
            time.sleep(0.2)
        code = running.process.wait(30)
    logs = running.logs()
    assert code == 1, f"exit status {code} ({why}):\n{logs[-3000:]}"
    assert "precision bf16 asked for, but OpenVINO cannot run it on this CPU" in logs, logs[-3000:]
    assert "it needs AVX512-BF16 or AMX" in logs, logs[-3000:]


GPU_IMAGE = "localhost/rtmpose-service:gpu"
GPU_LIBRARY_CHECK = """
import ctypes, subprocess, onnxruntime
from pathlib import Path
capi = Path(onnxruntime.__file__).parent / "capi"
missing = set()
for provider in ("libonnxruntime_providers_cuda.so",):
    for line in subprocess.check_output(["ldd", str(capi / provider)], text=True).splitlines():
        if "not found" in line:
            missing.add(line.split()[0])
for library in ("libcudnn.so.9", "libcudnn_graph.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9"):
    ctypes.CDLL(library)  # cuDNN is opened at run time, by soname
print(sorted(missing), "CUDAExecutionProvider" in onnxruntime.get_available_providers())
"""


def test_gpu_image_brings_every_cuda_library_but_the_driver() -> None:
    """Where the GPU image was built (``make image-gpu``): only libcuda.so.1, which the NVIDIA container
    toolkit mounts from the host driver, is left for the host to give."""
    tool = buildah()
    if subprocess.run([tool, "inspect", "--type", "image", GPU_IMAGE], capture_output=True).returncode != 0:
        pytest.skip(f"{GPU_IMAGE} not built here: `make image-gpu` builds it (about 3 min and 3 GB)")
    name = f"rtmpose-gpu-test-{os.getpid()}"
    subprocess.run([tool, "from", "--pull-never", "--name", name, GPU_IMAGE], capture_output=True, check=True)
    try:
        result = subprocess.run([tool, "run", "--isolation", "chroot", name, "--", "python", "-c", GPU_LIBRARY_CHECK],
                                capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    finally:
        subprocess.run([tool, "rm", name], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['libcuda.so.1'] True", result.stdout + result.stderr
