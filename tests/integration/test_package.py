"""The built package (a wheel, as the container image installs it) carries the playground and serves it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx

from tests.helpers import ROOT, free_port
from tests.oracles import BANDS, install_detector_oracle
from tests.streams import install_tracking_pose

STATIC = ROOT / "service" / "api" / "http" / "static"


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of a copy of the project (a build in place would leave build/ and egg-info in the work tree)."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "service", source / "service", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(source)], check=True, capture_output=True, timeout=300)  # fmt: skip
    (wheel,) = out.glob("*.whl")
    return wheel


def test_the_installed_package_serves_the_page(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(site)
    shipped = {p.relative_to(ROOT).as_posix() for p in STATIC.rglob("*") if p.is_file()}
    assert shipped, "no static files in the work tree?"
    assert shipped <= names, f"missing from the wheel: {sorted(shipped - names)}"

    # python -m service from the unpacked wheel (not the work tree: the cwd is elsewhere, PYTHONPATH first)
    repo = tmp_path / "repo"
    install_tracking_pose(repo)
    install_detector_oracle(repo, "det", bands=BANDS)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(site), "POSE_HOST": "127.0.0.1", "POSE_HTTP_PORT": str(port),
           "POSE_GRPC_PORT": "0", "POSE_MODEL_REPOSITORY": str(repo), "POSE_MODEL": "pose",
           "POSE_DETECTOR": "det"}  # fmt: skip
    where = subprocess.run([sys.executable, "-c", "import service.api.http.page as p; print(p.STATIC)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True)  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "service"], env=env, cwd=tmp_path, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < end, "the service did not start"
            try:
                page = httpx.get(url + "/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert page.status_code == 200
        assert page.text == (STATIC / "index.html").read_text()
        script = httpx.get(url + "/ui/js/main.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
    finally:
        process.terminate()
        process.wait(30)
