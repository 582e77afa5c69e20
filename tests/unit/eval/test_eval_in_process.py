"""``python -m service.eval`` in process (the request layer, no server) on sets drawn for the oracle models."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy.io import savemat

from service.eval.__main__ import main
from tests.evalsets import ap_of_oks, build_repository, oks_of_shift, read, shift_between_thresholds, write_set
from tests.oracles import RTMDET_MEAN, RTMDET_STD, draw_marker, install_model, install_pose_oracle


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repository"))


@pytest.fixture
def served(repository: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in {"POSE_MODEL_REPOSITORY": str(repository), "POSE_MODEL": "pose-oracle",
                        "POSE_DETECTOR": "detector-oracle", "POSE_DEVICE": "cpu"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    return repository


def _run(tmp_path: Path, annotations: Path, *extra: str) -> tuple[int, dict]:
    summary = tmp_path / "summary.json"
    code = main(["--annotations", str(annotations), "--images", str(annotations.parent), "--quiet",
                 "--summary", str(summary), *extra])  # fmt: skip
    return code, read(summary) if summary.exists() else {}


def test_ground_truth_boxes_score_one(served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    annotations = write_set(tmp_path / "set")
    results = tmp_path / "results.json"
    code, summary = _run(tmp_path, annotations, "--boxes", "gt", "--results", str(results))
    assert code == 0
    assert summary["keypoints"]["AP"] == 1.0
    assert summary["keypoints"]["AR"] == 1.0
    assert (summary["images"], summary["people"], summary["boxes"]) == (3, 6, "gt")
    assert (summary["model"], summary["detector"], summary["transport"]) == ("pose-oracle", None, "in-process")
    assert summary["published"] is None
    assert "bbox" not in summary
    assert (summary["backend"], summary["precision"], summary["weights"]) == ("onnxruntime", "fp32", "custom")
    table = capsys.readouterr().out
    assert "metric" in table
    assert "measured" in table
    assert "published" in table
    assert "difference" in table
    # the results file is format=coco's entries less the box (as MMPose's), and --score gives the same figures again
    entries = read(results)
    assert set(entries[0]) == {"image_id", "category_id", "keypoints", "score"}
    assert len(entries) == 6
    code, rescored = _run(tmp_path, annotations, "--score", str(results))
    assert code == 0
    assert rescored["keypoints"] == summary["keypoints"]


def test_the_detector_finds_every_person(served: Path, tmp_path: Path) -> None:
    annotations = write_set(tmp_path / "set")
    code, summary = _run(tmp_path, annotations, "--boxes", "detector", "--concurrency", "3")
    assert code == 0
    assert summary["keypoints"]["AP"] == 1.0
    assert summary["bbox"]["AP"] == 1.0  # the detector's person box AP
    assert summary["detector"] == "detector-oracle"


def test_a_known_shift_gives_the_ap_the_oks_formula_predicts(served: Path, tmp_path: Path) -> None:
    shift = shift_between_thresholds()
    expected = ap_of_oks(oks_of_shift(shift))
    assert 0.0 < expected < 1.0
    annotations = write_set(tmp_path / "set", shift=shift)
    results = tmp_path / "results.json"
    code, summary = _run(tmp_path, annotations, "--boxes", "gt", "--results", str(results))
    assert code == 0
    assert summary["keypoints"]["AP"] == pytest.approx(expected, abs=1e-6)
    # plain pycocotools on the file as written gives every figure of the summary
    gt = COCO(str(annotations))
    evaluator = COCOeval(gt, gt.loadRes(str(results)), "keypoints")
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    names = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
    assert {k: round(float(v), 6) for k, v in zip(names, evaluator.stats, strict=True)} == summary["keypoints"]


def test_a_detection_file_is_sent_as_boxes_and_its_scores_rescore(served: Path, tmp_path: Path) -> None:
    annotations = write_set(tmp_path / "set")
    gt = read(annotations)["annotations"]
    detections = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.8} for a in gt]
    detections.append({"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.9})  # not a person
    detections.append({"image_id": 2, "category_id": 1, "bbox": [600, 400, 100, 100], "score": 0.1})  # reaches out
    path = tmp_path / "detections.json"
    path.write_text(json.dumps(detections))
    results = tmp_path / "results.json"
    code, summary = _run(tmp_path, annotations, "--boxes", str(path), "--results", str(results))
    assert code == 0
    assert summary["keypoints"]["AP"] == 1.0
    assert summary["boxes_clipped"] == 1
    scores = sorted(e["score"] for e in read(results))
    assert scores[-1] == pytest.approx(0.8, abs=1e-3)  # box score x mean keypoint score (1.0)


def test_expect_within_needs_a_published_figure(
    served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    annotations = write_set(tmp_path / "set")
    code, summary = _run(tmp_path, annotations, "--boxes", "gt", "--expect-within", "0.01")
    assert code == 1
    assert summary["published"] is None
    assert "no published AP" in capsys.readouterr().err


def test_a_model_of_another_keypoint_set_is_refused(served: Path, tmp_path: Path) -> None:
    install_pose_oracle(served, "halpe-oracle", keypoints="halpe26")
    annotations = write_set(tmp_path / "set")
    code, summary = _run(tmp_path, annotations, "--boxes", "gt", "--model", "halpe-oracle")
    assert code == 2
    assert summary == {}


def test_real_rtmdet_nano_person_box_ap_on_coco4(coco4: Path, rtmdet_nano_onnx: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The trained detector through --boxes detector: its person box AP on the four COCO images."""
    repository = tmp_path / "repository"
    install_pose_oracle(repository, "pose-oracle")
    install_model(repository, "rtmdet-nano", onnx.load(str(rtmdet_nano_onnx)), task="detect", family="rtmdet",
                  input_size=(320, 320), mean=RTMDET_MEAN, std=RTMDET_STD, to_rgb=False)  # fmt: skip
    for name, value in {"POSE_MODEL_REPOSITORY": str(repository), "POSE_MODEL": "pose-oracle",
                        "POSE_DETECTOR": "rtmdet-nano", "POSE_DEVICE": "cpu"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    summary_path = tmp_path / "summary.json"
    code = main(["--annotations", str(coco4 / "test_coco.json"), "--images", str(coco4), "--boxes", "detector",
                 "--quiet", "--summary", str(summary_path)])  # fmt: skip
    summary = read(summary_path)
    assert code == 0
    assert summary["bbox"]["AP"] == pytest.approx(MEASURED_COCO4_BOX_AP, abs=0.005)
    assert summary["published_detector"]["value"] == 0.403  # RTMDet-nano's published COCO person AP, beside it


# measured with this test: the real RTMDet-nano at 320 x 320, the service's score threshold 0.3, on the 4 images
MEASURED_COCO4_BOX_AP = 0.706


def test_synthetic_weights_are_said_in_the_summary_and_the_table(
    served: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install_pose_oracle(served, "synthetic-oracle", weights="synthetic")
    annotations = write_set(tmp_path / "set")
    code, summary = _run(tmp_path, annotations, "--boxes", "gt", "--model", "synthetic-oracle")
    assert code == 0
    assert summary["weights"] == "synthetic"
    assert summary["synthetic_models"] == ["synthetic-oracle"]
    assert "meaningless" in summary["warning"]
    assert capsys.readouterr().out.count("SYNTHETIC WEIGHTS (synthetic-oracle)") == 2


def test_limit_scores_only_the_images_sent(served: Path, tmp_path: Path) -> None:
    annotations = write_set(tmp_path / "set")
    code, summary = _run(tmp_path, annotations, "--boxes", "gt", "--limit", "1")
    assert code == 0
    assert (summary["images"], summary["people"], summary["keypoints"]["AP"]) == (1, 2, 1.0)


def _mpii_set(folder: Path) -> tuple[Path, Path]:
    """Two people on one image, MMPose's MPII json (1-based joints, centre/scale boxes) and head boxes."""
    folder.mkdir(parents=True)
    canvas = np.zeros((480, 640, 3), np.uint8)
    annotations = []
    for mx, my in ((150, 200), (450, 250)):
        draw_marker(canvas, (mx, my), channel=2)
        # MpiiDataset moves the centre down by 15 / 200 of the side and to 0-based pixels: undo both
        annotations.append({"image": "000000001.png", "center": [mx + 1, my + 1 - 15.0], "scale": 1.0,
                            "joints": [[mx + 1, my + 1]] * 16, "joints_vis": [1] * 16})  # fmt: skip
    cv2.imwrite(str(folder / "000000001.png"), canvas)
    path = folder / "mpii_val.json"
    path.write_text(json.dumps(annotations))
    corners = np.array([[[0, 0], [50 / np.sqrt(2)] * 2]] * 2, np.float64)  # head size 30 px
    headboxes = folder / "mpii_gt_val.mat"
    savemat(str(headboxes), {"headboxes_src": np.transpose(corners, [1, 2, 0])})
    return path, headboxes


def test_mpii_pckh_through_the_request_layer(served: Path, tmp_path: Path) -> None:
    install_pose_oracle(served, "mpii-oracle", keypoints="mpii16", input_size=(256, 256))
    annotations, headboxes = _mpii_set(tmp_path / "mpii")
    code, summary = _run(tmp_path, annotations, "--boxes", "gt", "--model", "mpii-oracle",
                         "--headboxes", str(headboxes))  # fmt: skip
    assert code == 0
    assert summary["dataset"] == "mpii"
    assert summary["keypoints"]["PCKh@0.5"] == 1.0
    assert summary["keypoints"]["PCKh@0.1"] == 1.0
