"""Synthetic COCO-format evaluation sets drawn for the oracle models, and a model repository to score them with.

Each image holds two people. A person is a blue box at one of the detector oracle's
:data:`~tests.oracles.BANDS` (the detector finds it exactly) and one red marker where the
pose oracle puts all 17 keypoints; the annotation puts all 17 at the marker's intended
place. Boxes are 153.6 x 204.8 around centres on whole pixels: padded by 1.25 that is
192 x 256, the pose oracle's input, so each crop maps image pixels 1:1 onto whole crop
pixels and the oracle's keypoints land exactly on the marker (no resampling error).
Drawing the marker ``shift`` pixels to the right of its annotated place therefore
gives every keypoint an error of exactly ``shift`` pixels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tests.oracles import BANDS, draw_marker, draw_person, install_detector_oracle, install_pose_oracle

SIZE = (640, 480)  # image w, h
BOX_W, BOX_H = 153.6, 204.8  # x 1.25 = the pose oracle's 192 x 256 input
CENTRES = (((120, 160), (420, 300)), ((160, 200), (500, 240)), ((110, 330), (400, 150)))  # per image, per person
COCO17_SIGMAS = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89])
    / 10
)


def build_repository(root: Path) -> Path:
    """A COCO-17 pose oracle and a detector oracle that reads the image 1:1 (640 x 640 letterbox)."""
    install_pose_oracle(root, "pose-oracle", batching={"max_batch_size": 8, "max_queue_delay_ms": 2})
    install_detector_oracle(root, "detector-oracle", bands=BANDS, side=640)
    return root


def write_set(folder: Path, *, shift: int = 0) -> Path:
    """Draw the images (PNG: exact pixels) and write ``annotations.json``; the markers ``shift`` px to the right.

    Returns:
        The annotation file; the images lie beside it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index, people in enumerate(CENTRES):
        image_id = index + 1
        canvas = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        for person, ((cx, cy), (lo, hi)) in enumerate(zip(people, BANDS, strict=False)):
            x1, y1 = cx - BOX_W / 2, cy - BOX_H / 2
            # the detector's box: the whole pixels the annotated box covers
            draw_person(canvas, (round(x1), round(y1), round(x1 + BOX_W), round(y1 + BOX_H)), 0, int((lo + hi) / 2))
            draw_marker(canvas, (cx + shift, cy - 10), channel=2)
            annotations.append({
                "id": image_id * 10 + person, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                "bbox": [x1, y1, BOX_W, BOX_H], "area": BOX_W * BOX_H, "num_keypoints": 17,
                "keypoints": [cx, cy - 10, 2] * 17,
            })  # fmt: skip
        name = f"{image_id:012d}.png"
        cv2.imwrite(str(folder / name), canvas)
        images.append({"id": image_id, "file_name": name, "width": SIZE[0], "height": SIZE[1]})
    categories = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": [str(k) for k in range(17)],
                   "skeleton": []}]  # fmt: skip
    path = folder / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def oks_of_shift(shift: float) -> float:
    """COCO's OKS of a pose whose 17 keypoints all lie ``shift`` px from the annotation (area BOX_W x BOX_H)."""
    k2 = (2 * COCO17_SIGMAS) ** 2
    return float(np.mean(np.exp(-(shift**2) / k2 / (BOX_W * BOX_H) / 2)))


def ap_of_oks(oks: float) -> float:
    """COCO AP when every person has this OKS (and every pose matches its own person): the share of
    thresholds 0.50, 0.55, ..., 0.95 the OKS reaches."""
    thresholds = np.linspace(0.5, 0.95, 10)
    return float(np.mean(oks >= thresholds))


def shift_between_thresholds(margin: float = 0.015) -> int:
    """A whole-pixel shift whose OKS lies mid-way between two thresholds (at least ``margin`` from either)."""
    for shift in range(1, 80):
        oks = oks_of_shift(shift)
        if 0.5 < oks < 0.95 and min(abs(oks - t) for t in np.linspace(0.5, 0.95, 10)) >= margin:
            return shift
    raise AssertionError("no shift found")


def read(path: Path) -> Any:
    return json.loads(path.read_text())
