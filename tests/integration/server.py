"""Start the real service (``python -m service``) on a free loopback port, as users run it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


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
