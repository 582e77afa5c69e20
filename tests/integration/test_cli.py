"""``python -m service.cli`` as users run it: a subprocess over a model repository, JSON on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from service.models.install import import_file
from service.models.repository import ModelRepository
from tests.helpers import MARKER, PERSON, ROOT, png, scene
from tests.oracles import BANDS, install_detector_oracle, install_pose_oracle


def cli(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "POSE_MODEL_REPOSITORY": str(repo), **env}
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def oracle_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("cli-repo")
    install_pose_oracle(repo, "pose")
    install_detector_oracle(repo, "det", bands=BANDS)
    return repo


def test_native_json_and_render(oracle_repo: Path, tmp_path: Path) -> None:
    image = tmp_path / "scene.png"
    image.write_bytes(png(scene()))
    rendered = tmp_path / "out.jpg"
    run = cli(oracle_repo, str(image), "--render", str(rendered), POSE_MODEL="pose", POSE_DETECTOR="det")
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)
    assert result["file"] == str(image)
    assert result["model"]["weights"] == "custom"
    person = result["people"][0]
    np.testing.assert_allclose(person["bbox"], PERSON, atol=1.0)
    assert np.abs(np.array(person["keypoints"])[:, :2] - MARKER).max() <= 3.6
    drawn = cv2.imread(str(rendered))
    assert drawn.shape == (480, 640, 3)


def test_model_flags_and_boxes(oracle_repo: Path, tmp_path: Path) -> None:
    image = tmp_path / "scene.png"
    image.write_bytes(png(scene()))
    run = cli(oracle_repo, str(image), "--model", "pose", "--detector", "det", "--boxes", "[[30,50,170,410]]")
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)
    assert result["model"]["detector"] is None
    assert result["people"][0]["bbox"] == [30, 50, 170, 410]


def test_errors_are_one_line_and_exit_2(oracle_repo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    run = cli(oracle_repo, str(bad), "--model", "pose", "--detector", "det")
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1].startswith("error: not a supported image")
    missing = cli(oracle_repo, str(bad), "--model", "nope", "--detector", "det")
    assert missing.returncode == 2
    assert "model 'nope' is not installed" in missing.stderr


def test_real_detector_finds_the_coco_people_and_coco_output_loads(
    rtmdet_nano_onnx: Path, coco4: Path, tmp_path: Path
) -> None:
    """The real RTMDet-nano through the whole pipeline on the four COCO images; COCO output into loadRes."""
    repo = ModelRepository(tmp_path / "repo")
    import_file(repo, "rtmdet-nano", rtmdet_nano_onnx)
    install_pose_oracle(repo.root, "pose")
    gt = COCO(str(coco4 / "test_coco.json"))
    images = [str(coco4 / gt.loadImgs(i)[0]["file_name"]) for i in gt.getImgIds()]
    run = cli(repo.root, *images, "--format", "coco", "--model", "pose", "--detector", "rtmdet-nano")
    assert run.returncode == 0, run.stderr
    entries = json.loads(run.stdout)
    assert {e["image_id"] for e in entries} == set(gt.getImgIds())  # ids from the COCO file names
    results = gt.loadRes(entries)
    # recall of annotated people (non-crowd, area >= 32x32) at IoU >= 0.5, one-to-one, greedy by score
    found = total = 0
    for image_id in gt.getImgIds():
        people = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=[image_id])) if not a["iscrowd"] and a["area"] >= 32 * 32]
        dets = sorted(results.loadAnns(results.getAnnIds(imgIds=[image_id])), key=lambda a: -a["score"])
        det_boxes = [e["bbox"] for e in entries if e["image_id"] == image_id]  # x, y, w, h of the detector
        used: set[int] = set()
        for person in people:
            total += 1
            for k, box in enumerate(det_boxes):
                if k not in used and _iou(box, person["bbox"]) >= 0.5:
                    used.add(k)
                    found += 1
                    break
        assert len(dets) == len(det_boxes)
    assert total == 12
    assert found / total >= 1.0  # measured: all 12 people found (the vision tests see the same at 320 and 640)


def _iou(a: list[float], b: list[float]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_boxes_need_no_detector_installed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    install_pose_oracle(repo, "pose")  # no detector in this repository at all
    image = tmp_path / "scene.png"
    image.write_bytes(png(scene()))
    run = cli(repo, str(image), "--boxes", "[[40,60,160,400]]", POSE_MODEL="pose", POSE_DETECTOR="missing")
    assert run.returncode == 0, run.stderr
    assert np.abs(np.array(json.loads(run.stdout)[0]["people"][0]["keypoints"])[:, :2] - MARKER).max() <= 3.6
    without = cli(repo, str(image), POSE_MODEL="pose", POSE_DETECTOR="missing")
    assert without.returncode == 2
    assert "model 'missing' is not installed" in without.stderr


def test_options_are_checked_with_the_service_bounds(oracle_repo: Path, tmp_path: Path) -> None:
    image = tmp_path / "scene.png"
    image.write_bytes(png(scene()))
    run = cli(oracle_repo, str(image), "--bbox-threshold", "1.5", POSE_MODEL="pose", POSE_DETECTOR="det")
    assert run.returncode == 2
    assert "bbox_threshold" in run.stderr
    assert "less than or equal to 1" in run.stderr
