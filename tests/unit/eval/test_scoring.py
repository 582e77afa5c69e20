"""Scoring against the libraries themselves, on real annotations (coco4) and small sets written here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy.io import savemat

from service.eval.pckh import score_mpii
from service.eval.predictions import crop_areas, oks_nms
from service.eval.scoring import KEYPOINT_STATS, score_coco, score_crowdpose, score_wholebody, split_wholebody
from service.eval.sigmas import COCO17_SIGMAS, WHOLEBODY_PARTS

WHOLEBODY_FIELDS = [field for _, field, _, _ in WHOLEBODY_PARTS]


def _perturbed(annotations: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Every annotated person as a result: keypoints moved a few pixels, random scores, a box (as format=coco)."""
    rng = np.random.default_rng(seed)
    out = []
    for ann in annotations["annotations"]:
        if ann["num_keypoints"] == 0:
            continue
        kpts = np.array(ann["keypoints"], np.float64).reshape(-1, 3)
        kpts[:, :2] += rng.normal(0, 6, (len(kpts), 2))
        kpts[:, 2] = rng.uniform(0.2, 1.0, len(kpts))
        out.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": np.round(kpts, 3).ravel().tolist(),
                    "score": float(rng.uniform(0.3, 1.0)), "bbox": ann["bbox"]})  # fmt: skip
    return out


def _pycocotools(annotations: Path, entries: list[dict[str, Any]]) -> list[float]:
    gt = COCO(str(annotations))
    evaluator = COCOeval(gt, gt.loadRes([{k: v for k, v in e.items() if k != "bbox"} for e in entries]), "keypoints")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return list(evaluator.stats)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_scoring_is_pycocotools(coco4: Path, seed: int) -> None:
    annotations = coco4 / "test_coco.json"
    entries = _perturbed(json.loads(annotations.read_text()), seed)
    ours = score_coco(annotations, entries)
    assert list(ours.values()) == pytest.approx(_pycocotools(annotations, entries), abs=1e-6)
    assert 0.0 < ours["AP"] < 1.0  # the perturbation costs something, not everything
    assert list(ours) == list(KEYPOINT_STATS)


def test_coco_scoring_counts_only_the_images_asked_for(coco4: Path) -> None:
    annotations = coco4 / "test_coco.json"
    entries = [e for e in _perturbed(json.loads(annotations.read_text()), 0) if e["image_id"] == 785]
    assert score_coco(annotations, entries, [785])["AP"] > score_coco(annotations, entries)["AP"]


def test_wholebody_ground_truth_as_results_scores_one_per_part(coco4: Path) -> None:
    annotations = coco4 / "test_coco_wholebody.json"
    entries = []
    for ann in json.loads(annotations.read_text())["annotations"]:
        flat = np.concatenate([np.array(ann[f], np.float64).reshape(-1, 3) for f in WHOLEBODY_FIELDS])
        flat[:, 2] = (flat[:, 2] > 0).astype(np.float64)  # visible keypoints score 1
        entries.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": flat.ravel().tolist(),
                        "score": 1.0})  # fmt: skip
    stats = score_wholebody(annotations, entries)
    assert stats["AP"] == 1.0
    assert stats["AR"] == 1.0
    for part in ("body", "foot", "face", "lefthand", "righthand"):
        assert stats[f"{part} AP"] == 1.0, part


def test_wholebody_flat_entries_split_as_mmpose() -> None:
    entry = {"image_id": 1, "category_id": 1, "keypoints": list(range(133 * 3)), "score": 0.5, "bbox": [0, 0, 1, 1]}
    split = split_wholebody(entry)
    assert [len(split[f]) // 3 for f in WHOLEBODY_FIELDS] == [17, 6, 68, 21, 21]
    assert split["righthand_kpts"][-1] == 133 * 3 - 1
    assert "bbox" not in split


def _crowdpose_set(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for image_id, crowd in ((1, 0.05), (2, 0.5), (3, 0.9)):
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 640, "height": 480,
                       "crowdIndex": crowd})  # fmt: skip
        for person in range(2):
            xy = rng.uniform(50, 400, (14, 2))
            kpts = np.column_stack([xy, np.full(14, 2.0)])
            annotations.append({"id": image_id * 10 + person, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "bbox": [40, 40, 380, 380], "num_keypoints": 14,
                                "keypoints": kpts.ravel().tolist()})  # fmt: skip
    path = folder / "crowdpose.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "person"}]}))  # fmt: skip
    return path


def test_crowdpose_scores_ap_and_the_crowd_levels(tmp_path: Path) -> None:
    annotations = _crowdpose_set(tmp_path)
    gt = json.loads(annotations.read_text())["annotations"]
    entries = [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
                "keypoints": [v if i % 3 != 2 else 1.0 for i, v in enumerate(a["keypoints"])]} for a in gt]  # fmt: skip
    stats = score_crowdpose(annotations, entries)
    assert (stats["AP"], stats["AP easy"], stats["AP medium"], stats["AP hard"]) == (1.0, 1.0, 1.0, 1.0)
    wrong = [dict(e, keypoints=(np.array(e["keypoints"]) + [60, 0, 0] * 14).tolist()) if e["image_id"] == 3 else e
             for e in entries]  # fmt: skip
    stats = score_crowdpose(annotations, wrong)
    assert stats["AP easy"] == 1.0
    assert stats["AP hard"] == 0.0
    assert score_crowdpose(annotations, wrong, [1, 2])["AP"] == 1.0  # a subset is scored on its own images


def _mpii_set(folder: Path) -> tuple[list[dict[str, Any]], Path]:
    """Two people; head boxes 50 px on the diagonal / 0.6 -> head size 30 px (after SC_BIAS)."""
    rng = np.random.default_rng(0)
    anns = []
    for i in range(2):
        joints = rng.uniform(100, 300, (16, 2))
        anns.append({"image": f"{i:09d}.jpg", "center": [200, 200], "scale": 1.5, "joints": joints.tolist(),
                     "joints_vis": [1] * 16})  # fmt: skip
    side = 50 / np.sqrt(2)  # diagonal 50 px
    boxes = np.array([[[0, 0], [side, side]]] * 2, np.float64)  # (N, 2 corners, xy)
    path = folder / "mpii_gt_val.mat"
    savemat(str(path), {"headboxes_src": np.transpose(boxes, [1, 2, 0])})  # stored (2, 2, N) as MPII's
    return anns, path


def _entries(joints: np.ndarray) -> list[dict[str, Any]]:
    flat = [np.column_stack([j, np.ones(16)]).ravel().tolist() for j in joints]
    return [{"image_id": i, "category_id": 1, "score": 1.0, "keypoints": k} for i, k in enumerate(flat)]


def test_pckh_as_mmpose(tmp_path: Path) -> None:
    anns, headboxes = _mpii_set(tmp_path)
    gt = np.array([a["joints"] for a in anns])
    exact = score_mpii(anns, _entries(gt - 1.0), headboxes)  # the service's 0-based pixels
    assert exact["PCKh@0.5"] == pytest.approx(1.0)
    assert exact["PCKh@0.1"] == pytest.approx(1.0)
    moved = gt - 1.0
    moved[0, 9, 0] += 9.0  # head top of person 0: 0.3 head sizes off: in at 0.5, out at 0.1
    moved[1, 0, 0] += 20.0  # right ankle of person 1: 0.67 head sizes: out at both
    moved[:, 6:8, 0] += 100.0  # pelvis and thorax do not count
    stats = score_mpii(anns, _entries(moved), headboxes)
    # 14 counted joints x 2 people, equal weights: one miss at 0.5, two at 0.1
    assert stats["PCKh@0.5"] == pytest.approx(27 / 28)
    assert stats["PCKh@0.1"] == pytest.approx(26 / 28)
    assert stats["Head"] == pytest.approx(1.0)
    assert stats["Ankle"] == pytest.approx(0.75)


def test_oks_nms_drops_duplicates_and_keeps_others() -> None:
    pose = np.tile([100.0, 100.0, 1.0], (17, 1)).astype(np.float32)
    keypoints = np.stack([pose, pose + [1, 0, 0], pose + [200, 0, 0]])
    areas = crop_areas(np.array([[50, 50, 150, 250]] * 3, np.float32), (192, 256))
    assert oks_nms(keypoints, np.array([0.5, 0.9, 0.7], np.float32), areas, COCO17_SIGMAS) == [1, 2]


def test_crop_areas_are_padded_and_fixed_to_the_model_aspect() -> None:
    # 100 x 100 -> 125 x 125 padded -> 125 x 166.67 at 192:256
    assert crop_areas(np.array([[0, 0, 100, 100]], np.float32), (192, 256))[0] == pytest.approx(125 * 125 * 4 / 3)
