"""Evaluation sets: which images to send, with which person boxes, as MMPose's datasets choose them.

- COCO, Human-Art, CrowdPose, COCO-WholeBody (COCO-format annotations): ground-truth
  boxes as ``BaseCocoStyleDataset.parse_data_info`` (non-crowd, with keypoints, clipped
  to ``[0, w-1] x [0, h-1]``, not empty); a detection file as ``_load_detection_results``
  (``category_id == 1``, xywh -> x1y1x2y2, its score the box score).
- MPII (MMPose's json: ``image``, ``center``, ``scale``, ``joints``, ``joints_vis``): the
  box of ``center`` / ``scale`` as ``MpiiDataset`` (centre moved down by 15 / 200 of the
  scale, 1-based -> 0-based, side ``scale * 200``).

The service takes only boxes inside the image, so boxes that reach out of it (detection
files, MPII) are clipped to it and counted (``clipped``): MMPose crops those with a black
border instead, so their crops differ a little.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from service.eval.transport import F32

logger = logging.getLogger(__name__)

MPII_PIXEL_STD = 200.0  # MPII scales are in units of 200 px


class Kind(StrEnum):
    """The benchmark; the values are the published rows' dataset keys (``service.models.published``)."""

    COCO = "coco"
    HUMANART = "humanart"
    WHOLEBODY = "coco-wholebody"
    CROWDPOSE = "crowdpose"
    MPII = "mpii"


KEYPOINT_SET = {Kind.COCO: "coco17", Kind.HUMANART: "coco17", Kind.WHOLEBODY: "wholebody133",
                Kind.CROWDPOSE: "crowdpose14", Kind.MPII: "mpii16"}  # fmt: skip


@dataclass(frozen=True)
class ImageTask:
    """One image to send. M boxes."""

    image_id: int
    path: Path
    width: int
    height: int
    boxes: F32 | None  # (M, 4) x1, y1, x2, y2 to send; None: the served detector finds the people
    box_scores: F32 | None  # (M,) a detection file's scores (MMPose's bbox_score), None: 1


@dataclass(frozen=True)
class EvalSet:
    kind: Kind
    annotations: Path
    image_ids: list[int]  # every image scored, in the annotations' order
    tasks: list[ImageTask]  # the images sent
    clipped: int  # boxes clipped to their image (module docstring)
    mpii: list[dict[str, Any]] | None = None  # MPII: the annotations scored, in order (one prediction each)
    mpii_positions: list[int] | None = None  # their positions in the file (the head boxes' order)


def detect_kind(data: Any, path: Path) -> Kind:
    """The benchmark an annotation file belongs to (``--dataset`` overrides it)."""
    if isinstance(data, list):
        if data and "joints_vis" in data[0]:
            return Kind.MPII
        raise ValueError(f"{path}: a list, but not MMPose's MPII json (image, center, scale, joints, joints_vis)")
    if not isinstance(data, dict) or "images" not in data:
        raise ValueError(f"{path}: not a COCO-format annotation file (no 'images')")
    annotations = data.get("annotations") or [{}]
    if "foot_kpts" in annotations[0]:
        return Kind.WHOLEBODY
    if data["images"] and "crowdIndex" in data["images"][0]:
        return Kind.CROWDPOSE
    return Kind.HUMANART if "humanart" in path.name.lower() else Kind.COCO


def _clip(boxes: F32, width: float, height: float) -> tuple[F32, int]:
    limit = np.array([width, height, width, height], np.float32)
    clipped = np.clip(boxes, 0, limit)
    changed = int(np.any(clipped != boxes, axis=1).sum())
    return clipped.astype(np.float32), changed


def _gt_box(ann: dict[str, Any], img: dict[str, Any], kind: Kind) -> list[float] | None:
    """MMPose's parse_data_info + _is_valid_instance for one annotation; None where MMPose skips it."""
    if ann.get("iscrowd", 0) or "bbox" not in ann or "keypoints" not in ann:
        return None
    if kind is not Kind.WHOLEBODY and max(ann["keypoints"]) == 0:
        return None
    count = ann["num_keypoints"] if "num_keypoints" in ann else int(np.count_nonzero(ann["keypoints"][2::3]))
    if count == 0:
        return None
    x, y, w, h = ann["bbox"]
    x1, x2 = np.clip([x, x + w], 0, img["width"] - 1)
    y1, y2 = np.clip([y, y + h], 0, img["height"] - 1)
    return None if x2 - x1 <= 0 or y2 - y1 <= 0 else [float(x1), float(y1), float(x2), float(y2)]


def _detections(path: Path) -> dict[int, list[tuple[list[float], float]]]:
    """A COCO detection results file (MMPose's ``bbox_file``): person boxes x1y1x2y2 and scores per image."""
    found: dict[int, list[tuple[list[float], float]]] = defaultdict(list)
    for det in json.loads(path.read_text()):
        if det["category_id"] != 1:
            continue
        x, y, w, h = det["bbox"][:4]
        found[int(det["image_id"])].append(([x, y, x + w, y + h], float(det["score"])))
    return found


def _coco_tasks(data: dict[str, Any], images: Path, kind: Kind, boxes: str) -> tuple[list[ImageTask], int]:
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ann in data.get("annotations", []):
        by_image[ann["image_id"]].append(ann)
    detections = _detections(Path(boxes)) if boxes not in ("gt", "detector") else {}
    tasks, clipped = [], 0
    for img in data["images"]:
        path, width, height = images / img["file_name"], img["width"], img["height"]
        if boxes == "detector":
            tasks.append(ImageTask(img["id"], path, width, height, None, None))
            continue
        if boxes == "gt":
            found = [b for b in (_gt_box(a, img, kind) for a in by_image[img["id"]]) if b is not None]
            scores = None
        else:
            found = [b for b, _ in detections.get(img["id"], [])]
            scores = np.array([s for _, s in detections.get(img["id"], [])], np.float32)
        if not found:
            continue
        array, changed = _clip(np.array(found, np.float32), width, height)
        clipped += changed
        keep = (array[:, 2] > array[:, 0]) & (array[:, 3] > array[:, 1])  # a box wholly outside clips to nothing
        if not keep.any():
            continue
        tasks.append(ImageTask(img["id"], path, width, height, array[keep], None if scores is None else scores[keep]))
    return tasks, clipped


def mpii_image_id(image: str) -> int:
    """MMPose's MPII img_id: the file name's number (``000001163.jpg`` -> 1163)."""
    return int(image.split(".")[0])


def _mpii_tasks(anns: list[dict[str, Any]], images: Path) -> tuple[list[ImageTask], list[int], int]:
    grouped: dict[str, list[list[float]]] = defaultdict(list)
    for ann in anns:
        center = np.array(ann["center"], np.float64)
        side = float(ann["scale"]) * MPII_PIXEL_STD
        if center[0] != -1:
            center[1] += 15.0 / MPII_PIXEL_STD * side
        center -= 1.0
        grouped[ann["image"]].append([center[0] - side / 2, center[1] - side / 2, center[0] + side / 2,
                                      center[1] + side / 2])  # fmt: skip
    tasks, clipped = [], 0
    for image, found in grouped.items():
        path = images / image
        with Image.open(path) as opened:
            width, height = opened.size
        array, changed = _clip(np.array(found, np.float32), width, height)
        clipped += changed
        empty = (array[:, 2] <= array[:, 0]) | (array[:, 3] <= array[:, 1])
        array[empty] = [0, 0, width, height]  # a box wholly outside (no centre given): the whole image
        tasks.append(ImageTask(mpii_image_id(image), path, width, height, array, None))
    return tasks, [t.image_id for t in tasks], clipped


def load_set(annotations: Path, images: Path, boxes: str, *, kind: Kind | None = None,
             limit: int | None = None) -> EvalSet:  # fmt: skip
    """Read an annotation file and plan the requests.

    Args:
        annotations: COCO-format json (COCO, Human-Art, CrowdPose, COCO-WholeBody) or MMPose's MPII json.
        images: the folder the annotations' file names are relative to.
        boxes: ``gt``, ``detector`` or the path of a COCO detection results file.
        kind: the benchmark (default: told from the file).
        limit: only the first ``limit`` images (scoring then counts only those).

    Raises:
        ValueError: an unreadable annotation file, or a box source the benchmark cannot use.
    """
    data = json.loads(annotations.read_text())
    kind = kind or detect_kind(data, annotations)
    if kind is Kind.MPII:
        if boxes != "gt":
            raise ValueError("MPII is scored per annotated person (PCKh): use --boxes gt")
        tasks, image_ids, clipped = _mpii_tasks(data, images)
        tasks, image_ids = tasks[:limit], image_ids[:limit]
        kept = set(image_ids)
        positions = [i for i, a in enumerate(data) if mpii_image_id(a["image"]) in kept]
        return EvalSet(kind, annotations, image_ids, tasks, clipped, [data[i] for i in positions], positions)
    image_ids = [img["id"] for img in data["images"]][:limit]
    if limit is not None:
        data = {**data, "images": data["images"][:limit]}
    tasks, clipped = _coco_tasks(data, images, kind, boxes)
    return EvalSet(kind, annotations, image_ids, tasks, clipped)
