"""Draw people (boxes, skeleton links, keypoints) on an image with cv2, in the keypoint set's colours.

Legend:
    N: people; K: keypoints per person; H, W: image height and width.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from service.vision.keypoints import KeypointSet

__all__ = ["BOX_COLOR_BGR", "draw_people"]

BOX_COLOR_BGR = (0, 255, 0)  # MMPose's visualiser draws boxes green


def draw_people(
    image_bgr: NDArray[np.uint8],
    boxes: ArrayLike,
    keypoints: ArrayLike,
    keypoint_set: KeypointSet,
    visible: ArrayLike,
    bbox_scores: ArrayLike | None = None,
    labels: Sequence[str] | None = None,
) -> NDArray[np.uint8]:
    """Draw boxes, then skeleton links, then keypoints, on a copy of the image.

    Only the ``visible`` keypoints are drawn (and never a non-finite one), and a link only
    when both of its ends are. Line widths and radii grow with the image size.

    Args:
        image_bgr: (H, W, 3) uint8 image; not modified.
        boxes: (N, 4) x1, y1, x2, y2 (may be empty).
        keypoints: (N, K, 3) x, y, score in image pixels.
        keypoint_set: The set the keypoints follow (skeleton and RGB colours).
        visible: (N, K) bool, the keypoints to draw (the caller's visibility rule).
        bbox_scores: Optional (N,) box scores, written above each box.
        labels: Optional (N,) texts written above each box instead (e.g. track ids).

    Returns:
        (H, W, 3) uint8 new image.
    """
    canvas = np.ascontiguousarray(image_bgr).copy()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    kpts = np.asarray(keypoints, dtype=np.float64).reshape(-1, keypoint_set.num_keypoints, 3)
    shown = np.asarray(visible, dtype=bool).reshape(len(kpts), keypoint_set.num_keypoints)
    height, width = canvas.shape[:2]
    limit = 4 * max(height, width)  # far-off coordinates are clipped: cv2 needs ints, lines keep their direction
    unit = max(height, width) / 640.0  # thickness and radii are tuned for a 640-pixel image
    thickness = max(1, round(2 * unit))
    radius = max(2, round(3 * unit))
    keypoint_colors = [tuple(reversed(c)) for c in keypoint_set.keypoint_colors_rgb]
    link_colors = [tuple(reversed(c)) for c in keypoint_set.link_colors_rgb]

    # boxes and their scores
    if labels is None and bbox_scores is not None:
        labels = [f"{s:.2f}" for s in np.asarray(bbox_scores, float).reshape(-1)]
    for i, (x1, y1, x2, y2) in enumerate(np.clip(np.nan_to_num(boxes), -limit, limit)):
        top_left = (round(x1), round(y1))
        cv2.rectangle(canvas, top_left, (round(x2), round(y2)), BOX_COLOR_BGR, thickness, cv2.LINE_AA)
        if labels is not None:
            origin = (top_left[0], max(top_left[1] - 2 * thickness, 10))
            cv2.putText(canvas, labels[i], origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, BOX_COLOR_BGR, thickness)

    # links, then points on top
    for person, person_shown in zip(kpts, shown, strict=True):
        drawn = np.isfinite(person).all(axis=1) & person_shown
        points = np.clip(np.nan_to_num(np.round(person[:, :2])), -limit, limit).astype(np.int64).tolist()
        for (a, b), color in zip(keypoint_set.skeleton, link_colors, strict=True):
            if drawn[a] and drawn[b]:
                cv2.line(canvas, points[a], points[b], color, thickness, cv2.LINE_AA)
        for k in np.flatnonzero(drawn):
            cv2.circle(canvas, points[k], radius, keypoint_colors[k], -1, cv2.LINE_AA)
    return canvas
