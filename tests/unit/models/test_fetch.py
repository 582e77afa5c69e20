"""``pull`` against a real HTTP server on loopback: success and every failure leaves nothing behind."""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import onnx
import pytest

from service.config import WeightsPolicy
from service.models.fetch import sha256_file
from service.models.install import InstallError, ensure, import_file, pull
from service.models.repository import ModelRepository
from service.models.schema import Weights
from tests.unit.models.io_models import FLOAT, detector_io, io_model

MEMBER = "rtmpose-ort/rtmdet-nano/end2end.onnx"


def model_bytes() -> bytes:
    return detector_io(320).SerializeToString()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


GOOD_ZIP = zip_bytes({"rtmpose-ort/rtmdet-nano/pipeline.json": b"{}", MEMBER: model_bytes()})


def corrupt(data: bytes) -> bytes:
    """Flip bytes inside the compressed member so the CRC check fails."""
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]


ROUTES: dict[str, tuple[int, bytes, int | None]] = {
    # path: (status, body, content-length to announce (None = real length))
    "/good.zip": (200, GOOD_ZIP, None),
    "/corrupt.zip": (200, corrupt(GOOD_ZIP), None),
    "/notzip.zip": (200, b"<html>captive portal</html>", None),
    "/nomember.zip": (200, zip_bytes({"other.onnx": model_bytes()}), None),
    "/interrupted.zip": (200, GOOD_ZIP[: len(GOOD_ZIP) // 2], len(GOOD_ZIP)),
    "/model.onnx": (200, model_bytes(), None),
    "/wrong-contract.onnx": (200, b"garbage, not onnx", None),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        status, body, length = ROUTES.get(self.path, (404, b"not found", None))
        self.send_response(status)
        self.send_header("Content-Length", str(length if length is not None else len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if length is not None:  # announce more than we send, then hang up
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_pull_zip_success(server: str, tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    result = pull(repo, "rtmdet-nano", url=f"{server}/good.zip", progress=False,
                  sha256=hashlib.sha256(GOOD_ZIP).hexdigest())  # fmt: skip
    model = result.model
    assert model.config.weights is Weights.OFFICIAL
    assert model.onnx_path == tmp_path / "rtmdet-nano" / "1" / "model.onnx"
    assert model.onnx_path.read_bytes() == model_bytes()
    assert model.config.source.sha256 == hashlib.sha256(model_bytes()).hexdigest()
    assert model.config.source.url == f"{server}/good.zip"
    assert result.download_sha256 == hashlib.sha256(GOOD_ZIP).hexdigest()
    assert leftovers(tmp_path) == [
        "rtmdet-nano",
        "rtmdet-nano/1",
        "rtmdet-nano/1/model.onnx",
        "rtmdet-nano/config.toml",
    ]
    assert repo.load("rtmdet-nano").config == model.config


def test_pull_bare_onnx(server: str, tmp_path: Path) -> None:
    model = pull(ModelRepository(tmp_path), "rtmdet-nano", url=f"{server}/model.onnx", progress=False).model
    assert onnx.load(str(model.onnx_path)).graph.output[0].name == "dets"


@pytest.mark.parametrize(
    ("path", "sha256", "message"),
    [
        ("/corrupt.zip", None, "corrupt"),
        ("/notzip.zip", None, "not a valid zip"),
        ("/nomember.zip", None, f"holds no '{MEMBER}'"),
        ("/good.zip", "0" * 64, "sha256 mismatch"),
        ("/missing.zip", None, "HTTP 404"),
        ("/interrupted.zip", None, "download failed"),
        ("/wrong-contract.onnx", None, "not a valid ONNX model"),
    ],
)
def test_pull_failures_leave_nothing(server: str, tmp_path: Path, path: str, sha256: str | None, message: str) -> None:
    repo = ModelRepository(tmp_path)
    with pytest.raises(InstallError, match=message):
        pull(repo, "rtmdet-nano", url=f"{server}{path}", sha256=sha256, progress=False)
    assert leftovers(tmp_path) == []


def test_failed_pull_keeps_the_installed_model(server: str, tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    good = pull(repo, "rtmdet-nano", url=f"{server}/good.zip", progress=False).model
    before = good.onnx_path.read_bytes()
    with pytest.raises(InstallError):
        pull(repo, "rtmdet-nano", url=f"{server}/interrupted.zip", progress=False)
    assert good.onnx_path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging")]


def test_offline_fails_fast_with_advice(tmp_path: Path) -> None:
    # port 9 on loopback: nothing listens, the connection is refused at once
    with pytest.raises(InstallError, match=r"import rtmdet-nano FILE.onnx.*synth rtmdet-nano"):
        pull(ModelRepository(tmp_path), "rtmdet-nano", url="http://127.0.0.1:9/x.zip", timeout_s=3, progress=False)
    assert leftovers(tmp_path) == []


def test_export_only_models_explain(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="MMDeploy"):
        pull(ModelRepository(tmp_path), "rtmpose-m-crowdpose", progress=False)


def test_import_real_rtmdet_nano(rtmdet_nano_onnx: Path, tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    model = import_file(repo, "rtmdet-nano", rtmdet_nano_onnx)
    assert model.config.weights is Weights.OFFICIAL
    assert model.config.source.sha256 == sha256_file(rtmdet_nano_onnx)
    assert model.config.source.sha256 == "4720eda18a18402e7b76d85827d4bc60fba18111fc0b74b559e4d24da9ddc3d2"
    assert model.io.inputs[0].name == "input"
    assert [o.name for o in model.io.outputs] == ["dets", "labels"]
    assert rtmdet_nano_onnx.exists(), "import copies, it never moves the user's file"


def test_import_rejects_contract_violations(tmp_path: Path) -> None:
    bad = tmp_path / "pose.onnx"
    onnx.save(io_model([("input", FLOAT, ["b", 3, 256, 192])], [("dets", FLOAT, ["b", 10, 5])]), str(bad))
    repo = ModelRepository(tmp_path / "repo")
    with pytest.raises(InstallError, match=f"^{bad}: pose models must have outputs 'simcc_x' and 'simcc_y'"):
        import_file(repo, "rtmpose-m", bad)
    assert leftovers(tmp_path / "repo") == []


REFUSED = "http://127.0.0.1:9/rtmpose-cpu.zip"  # nothing listens on port 9: an offline machine, fast


def test_ensure_auto_takes_official_weights_when_downloadable(server: str, tmp_path: Path) -> None:
    model = ensure(ModelRepository(tmp_path), "rtmdet-nano", WeightsPolicy.AUTO, url=f"{server}/good.zip",
                   progress=False)  # fmt: skip
    assert model.config.weights is Weights.OFFICIAL


def test_ensure_auto_falls_back_to_synthetic_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        model = ensure(ModelRepository(tmp_path), "rtmdet-nano", WeightsPolicy.AUTO, url=REFUSED, progress=False)
    assert model.config.weights is Weights.SYNTHETIC
    assert model.io.metadata["weights"] == "synthetic"  # marked in the ONNX file itself too
    assert "official weights cannot be had" in caplog.text
    assert "SYNTHETIC" in caplog.text


def test_ensure_official_never_synthesizes(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="download failed"):
        ensure(ModelRepository(tmp_path), "rtmdet-nano", WeightsPolicy.OFFICIAL, url=REFUSED, progress=False)
    assert leftovers(tmp_path) == []


def test_ensure_keeps_what_satisfies_the_policy(server: str, tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    official = ensure(repo, "rtmdet-nano", WeightsPolicy.AUTO, url=f"{server}/good.zip", progress=False)
    again = ensure(repo, "rtmdet-nano", WeightsPolicy.OFFICIAL, url=REFUSED, progress=False)  # no download
    assert again.config == official.config
    synthetic = ensure(repo, "rtmdet-nano", WeightsPolicy.SYNTHETIC, progress=False)
    assert synthetic.config.weights is Weights.SYNTHETIC  # POSE_WEIGHTS=synthetic: always synthetic
    assert ensure(repo, "rtmdet-nano", WeightsPolicy.AUTO, url=REFUSED, progress=False).config.weights is (
        Weights.SYNTHETIC
    )  # auto keeps whatever is installed
