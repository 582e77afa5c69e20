"""What a reduced precision changes in the answers: every variant against ONNX Runtime fp32, through the service.

    python -m benchmarks.precision        # (after make bench has prepared .bench/repository)

On the COCO images of ../shared/assets, through the Engine as it serves: the detector's
boxes (one-to-one IoU, score change) and the pose model's keypoints on the fp32 boxes and
10 jittered copies of each (how many keypoints moved, by how many crop pixels and by what
share of their box, score change). The pose model here is synthetic RTMPose-m: its keypoints are
meaningless, but they are computed by the real architecture, so what bf16 rounding does
to its SimCC argmax is a measurement of that architecture, not of trained weights.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.backends import ORT_FP32, Variant, openvino_variants
from benchmarks.bench import COCO, DETECTOR, POSE, ROOT, prepare_repository
from service.config import Settings
from service.engine.engine import Engine
from service.engine.pipeline import EstimateOptions, PoseResult
from service.vision.image import DecodedImage, decode_image
from service.vision.postprocess import box_iou


def _answers(repo_root: Path, variant: Variant, images: list[DecodedImage], boxes: list[np.ndarray] | None) -> list:
    settings = Settings(model_repository=repo_root, model=POSE, detector=DETECTOR, log_level="ERROR",
                        backend=variant.backend, precision=variant.precision, warmup=False)  # fmt: skip
    engine = Engine(settings)
    engine.start()
    try:

        async def one(image: DecodedImage, given: np.ndarray | None) -> PoseResult:
            options = EstimateOptions(boxes=given, max_people=100)
            return await engine.pipeline.estimate(image, options, deadline=time.monotonic() + 60)

        return [asyncio.run(one(image, None if boxes is None else boxes[i])) for i, image in enumerate(images)]
    finally:
        engine.close(5)


def jittered(boxes: list[np.ndarray], copies: int = 10, seed: int = 0) -> list[np.ndarray]:
    """Each box, then ``copies`` boxes around it (edges moved by up to 10 % of its size), inside the image."""
    rng = np.random.default_rng(seed)
    out = []
    for image_boxes in boxes:
        size = np.tile(image_boxes[:, 2:] - image_boxes[:, :2], 2)
        moved = [image_boxes + rng.uniform(-0.1, 0.1, image_boxes.shape) * size for _ in range(copies)]
        out.append(np.concatenate([image_boxes, *moved]).astype(np.float32))
    return out


def _inside(boxes: np.ndarray, image: DecodedImage) -> np.ndarray:
    return np.clip(boxes, 0, [image.width, image.height, image.width, image.height]).astype(np.float32)


def compare(
    detector: tuple[list[PoseResult], list[PoseResult]], pose: tuple[list[PoseResult], list[PoseResult]]
) -> dict[str, float]:
    """(reference, variant) answers: the detector's on the images, the pose model's on the same given boxes."""
    ious, box_scores, people = [], [], 0
    for want, got in zip(*detector, strict=True):
        people += len(want.boxes)
        if len(want.boxes) != len(got.boxes):
            return {"detector_same_people": 0.0}
        iou = box_iou(want.boxes, got.boxes)
        best = iou.argmax(axis=1)
        ious += list(iou.max(axis=1))
        box_scores += list(np.abs(got.bbox_scores[best] - want.bbox_scores))
    reference, posed = pose
    want_k = np.concatenate([r.keypoints for r in reference])  # (P, K, 3)
    got_k = np.concatenate([r.keypoints for r in posed])
    sizes = np.concatenate(
        [np.maximum(r.boxes[:, 2] - r.boxes[:, 0], r.boxes[:, 3] - r.boxes[:, 1]) for r in reference]
    )
    # one crop pixel in image pixels: the padded box side over the input side (both axes scale alike)
    crop_px = np.concatenate([1.25 * np.maximum(r.boxes[:, 2] - r.boxes[:, 0], (r.boxes[:, 3] - r.boxes[:, 1]) * 0.75)
                              / 192 for r in reference])  # fmt: skip
    moved = np.linalg.norm(got_k[..., :2] - want_k[..., :2], axis=-1)  # (P, K) image pixels
    return {
        "people": float(people),
        "crops": float(len(want_k)),
        "detector_same_people": 1.0,
        "detector_min_iou": float(min(ious)),
        "detector_max_score_change": float(max(box_scores)),
        "keypoints": float(moved.size),
        "keypoints_moved_share": float((moved > 1e-3).mean()),
        "keypoints_moved_over_half_crop_px_share": float((moved > 0.5 * crop_px[:, None]).mean()),
        "moved_keypoints_median_move_crop_px": float(np.median((moved / crop_px[:, None])[moved > 1e-3]))
        if (moved > 1e-3).any()
        else 0.0,
        "keypoint_move_p99_crop_px": float(np.percentile(moved / crop_px[:, None], 99)),
        "keypoint_move_max_box_share": float((moved / sizes[:, None]).max()),
        "keypoint_score_max_change": float(np.abs(got_k[..., 2] - want_k[..., 2]).max()),
        "keypoint_score_max_relative_change": float(
            (np.abs(got_k[..., 2] - want_k[..., 2]) / np.abs(want_k[..., 2])).max()
        ),
    }


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    repo_root = ROOT / ".bench" / "repository"
    prepare_repository(repo_root)
    if COCO.exists():
        paths = sorted(COCO.glob("*.jpg"))
    else:
        print("no shared assets: nothing to compare on")
        return 0
    images = [decode_image(p.read_bytes(), max_pixels=10**9) for p in paths]
    reference = _answers(repo_root, ORT_FP32, images, None)
    boxes = [_inside(b, image) for b, image in zip(jittered([r.boxes for r in reference]), images, strict=True)]
    pose_reference = _answers(repo_root, ORT_FP32, images, boxes)
    results = {}
    for variant in openvino_variants():
        detected = _answers(repo_root, variant, images, None)
        posed = _answers(repo_root, variant, images, boxes)
        results[variant.label] = compare((reference, detected), (pose_reference, posed))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
