"""``python -m service.eval --target`` / ``--grpc``: every image through the real server, as a deployment's CI would."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.evalsets import ap_of_oks, build_repository, oks_of_shift, read, shift_between_thresholds, write_set
from tests.helpers import ROOT, Server, start_server
from tests.oracles import install_pose_oracle


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    repository = build_repository(tmp_path_factory.mktemp("repository"))
    install_pose_oracle(repository, "rtmpose-m")  # a registry name: its published rows show beside the oracle's
    log = tmp_path_factory.mktemp("logs") / "server.log"
    running = start_server(repository, log, POSE_MODEL="pose-oracle", POSE_DETECTOR="detector-oracle",
                           POSE_EXTRA_MODELS="rtmpose-m", POSE_API_KEYS="eval-key")  # fmt: skip
    yield running
    running.stop()


@pytest.fixture(scope="module")
def evalset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_set(tmp_path_factory.mktemp("set"))


def _eval(annotations: Path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    summary = tmp_path / "summary.json"
    command = [sys.executable, "-m", "service.eval", "--annotations", str(annotations), "--images",
               str(annotations.parent), "--summary", str(summary), "--api-key", "eval-key", *args]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    return done, read(summary) if summary.exists() else {}


@pytest.mark.parametrize("transport", ["http", "grpc"])
@pytest.mark.parametrize("boxes", ["gt", "detector"])
def test_every_person_found_through_the_service(server: Server, evalset: Path, tmp_path: Path, transport: str,
                                                boxes: str) -> None:  # fmt: skip
    target = ["--target", server.url] if transport == "http" else ["--grpc", str(server.grpc_target)]
    done, summary = _eval(evalset, tmp_path, "--boxes", boxes, "--concurrency", "4", *target)
    assert done.returncode == 0, done.stderr
    assert summary["keypoints"]["AP"] == 1.0
    assert summary["keypoints"]["AR"] == 1.0
    assert summary["transport"] == (server.url if transport == "http" else f"grpc://{server.grpc_target}")
    assert (summary["model"], summary["backend"], summary["precision"]) == ("pose-oracle", "onnxruntime", "fp32")
    if boxes == "detector":
        assert summary["bbox"]["AP"] == 1.0
        assert summary["detector"] == "detector-oracle"
    assert "AP " in done.stdout  # the table
    assert "evaluating" in done.stderr  # the progress bar


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_a_known_shift_through_the_service(server: Server, tmp_path: Path, transport: str) -> None:
    shift = shift_between_thresholds()
    annotations = write_set(tmp_path / "set", shift=shift)
    target = ["--target", server.url] if transport == "http" else ["--grpc", str(server.grpc_target)]
    done, summary = _eval(annotations, tmp_path, "--boxes", "gt", *target)
    assert done.returncode == 0, done.stderr
    assert summary["keypoints"]["AP"] == pytest.approx(ap_of_oks(oks_of_shift(shift)), abs=1e-6)


def test_a_refused_request_ends_the_run_with_the_reason(server: Server, evalset: Path, tmp_path: Path) -> None:
    done, summary = _eval(evalset, tmp_path, "--target", server.url, "--model", "no-such-model")
    assert done.returncode == 2
    assert "no-such-model" in done.stderr
    assert summary == {}


def test_models_show_the_published_rows(server: Server) -> None:
    models = httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer eval-key"}).json()["models"]
    published = {m["name"]: m["published"] for m in models}
    assert published["pose-oracle"] == []  # not a registry model
    row = published["rtmpose-m"][0]
    assert (row["dataset"], row["metric"], row["value"], row["ar"]) == ("coco", "AP", 0.749, None)
    assert (row["boxes"], row["detector_ap"], row["flip_test"]) == ("detector", 0.564, True)


def test_the_table_sets_the_published_figure_beside_the_measured_one(server: Server, evalset: Path,
                                                                     tmp_path: Path) -> None:  # fmt: skip
    done, summary = _eval(evalset, tmp_path, "--target", server.url, "--model", "rtmpose-m", "--expect-within", "0.3")
    assert done.returncode == 0, done.stderr  # the oracle's 1.0 lies within 0.3 of 0.749
    assert summary["published"]["value"] == 0.749
    assert "+0.2510" in done.stdout
    done, _ = _eval(evalset, tmp_path, "--grpc", str(server.grpc_target), "--model", "rtmpose-m",
                    "--expect-within", "0.1")  # fmt: skip
    assert done.returncode == 1
    assert "from the published 0.7490" in done.stderr


def test_ctrl_c_ends_the_run_cleanly(server: Server, evalset: Path, tmp_path: Path) -> None:
    """SIGINT once some images are done: exit 130 with a line saying so, no traceback, nothing written."""
    data = read(evalset)
    images = [dict(img, id=img["id"] + 10 * copy) for copy in range(700) for img in data["images"]]
    big = evalset.parent / "many.json"
    big.write_text(json.dumps({**data, "images": images, "annotations": []}))
    summary = tmp_path / "summary.json"
    command = [sys.executable, "-m", "service.eval", "--annotations", str(big), "--images", str(evalset.parent),
               "--target", server.url, "--api-key", "eval-key", "--concurrency", "2",
               "--summary", str(summary)]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    assert process.stderr is not None
    seen = ""
    while not re.search(r"\| *[1-9]\d*/2100", seen):  # the progress bar has counted a finished image
        char = process.stderr.read(1)
        assert char, f"the run ended before it could be interrupted: {seen[-500:]}"
        seen += char
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert not summary.exists()
