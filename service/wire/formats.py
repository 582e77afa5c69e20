"""PoseResult -> what clients receive: native JSON, COCO results-file entries, a rendered JPEG."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from service.errors import InvalidOptionsError
from service.vision.keypoints import KEYPOINT_SETS
from service.vision.render import draw_people
from service.wire.results import PoseResult, visible


class OutputFormat(StrEnum):
    """How a result is written: the native JSON, or COCO results-file entries."""

    NATIVE = "native"
    COCO = "coco"


def _round(values: np.ndarray, digits: int = 2) -> list[Any]:
    return np.round(values.astype(np.float64), digits).tolist()


def image_id_from_path(path: Path, index: int) -> int:
    """COCO file names carry the id (000000000785.jpg -> 785); other files are numbered in order."""
    digits = re.fullmatch(r"0*(\d+)", path.stem)
    return int(digits.group(1)) if digits else index


def native(result: PoseResult, shown: npt.NDArray[np.bool_]) -> dict[str, Any]:
    """The native response of DESIGN.md (keypoints in original image pixels).

    Args:
        shown: (N, K) which keypoints are visible (:func:`~service.wire.results.visible`, or a gRPC answer's flags).
    """
    people = []
    for i in range(len(result.boxes)):
        keypoints = result.keypoints[i]
        people.append(
            {
                "bbox": _round(result.boxes[i]),
                "bbox_score": round(float(result.bbox_scores[i]), 4),
                "score": round(float(result.scores[i]), 4),
                "keypoints": np.column_stack(
                    [np.round(keypoints[:, :2].astype(np.float64), 2), np.round(keypoints[:, 2].astype(np.float64), 4)]
                ).tolist(),
                "visible": shown[i].tolist(),
            }
        )
    return {
        "image": {"width": result.width, "height": result.height},
        "model": {
            "pose": result.pose_model,
            "detector": result.detector,
            "keypoints": result.keypoint_set,
            "weights": result.weights,
        },
        "people": people,
        "timing_ms": {k: round(v, 2) for k, v in result.timing_ms.items()},
    }


def coco(result: PoseResult, *, image_id: int, category_id: int = 1) -> list[dict[str, Any]]:
    """COCO results-file entries (``COCO.loadRes`` and ``COCOeval`` take them as they are).

    Keypoints are flat x, y, score triplets in the keypoint set's order (COCO-17, or
    COCO-WholeBody's 133: body, feet, face, left hand, right hand).
    """
    return [
        {
            "image_id": image_id,
            "category_id": category_id,
            "keypoints": np.round(result.keypoints[i].astype(np.float64), 3).reshape(-1).tolist(),
            "score": round(float(result.scores[i]), 5),
            "bbox": _round(np.array([*result.boxes[i, :2], *(result.boxes[i, 2:] - result.boxes[i, :2])])),
        }
        for i in range(len(result.boxes))
    ]


def render_jpeg(image_bgr: np.ndarray, result: PoseResult, *, keypoint_threshold: float, quality: int = 90) -> bytes:
    """The image with boxes and skeletons drawn, as JPEG bytes (``image_bgr`` is the decoded image)."""
    scale = image_bgr.shape[1] / result.width  # the decoded image may be smaller than the original
    keypoints = result.keypoints.copy()
    keypoints[..., :2] *= scale
    shown = visible(keypoints[..., 2], keypoint_threshold)
    canvas = draw_people(image_bgr, result.boxes * scale, keypoints, KEYPOINT_SETS[result.keypoint_set], shown,
                         bbox_scores=result.bbox_scores)  # fmt: skip
    ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InvalidOptionsError("could not encode the rendered image as JPEG")
    return encoded.tobytes()
