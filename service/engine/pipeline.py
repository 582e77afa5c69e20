"""Pipeline: detect -> crops -> pose, through the models' Batchers.

The crops of one image are queued together as separate items, so they share
batches with other requests' crops. The pipeline is async (it awaits the
Batchers' futures) and never runs inference on the event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from service.engine.runners import CropJob, Detections, DetectJob
from service.engine.served import ServedModel
from service.errors import DeadlineExceededError, InvalidOptionsError, ShuttingDownError, UnknownModelError
from service.models.schema import Task
from service.vision.image import DecodedImage
from service.vision.postprocess import person_scores
from service.vision.preprocess import bbox_xyxy_to_center_scale, fix_aspect_ratio

F32 = npt.NDArray[np.float32]
R = TypeVar("R")


@dataclass(frozen=True)
class EstimateOptions:
    """Per-request options; None means the model's or the service's default."""

    model: str | None = None
    detector: str | None = None
    boxes: F32 | None = None  # (M, 4) x1, y1, x2, y2 in original pixels: skips the detector
    max_people: int | None = None
    bbox_threshold: float | None = None
    flip_test: bool | None = None


@dataclass(frozen=True)
class PoseResult:
    """Every person of one image, in original image pixels. N people, K keypoints."""

    width: int
    height: int
    pose_model: str
    detector: str | None
    keypoint_set: str
    weights: str  # "synthetic" if any model used is synthetic, else "custom" if any is, else "official"
    boxes: F32  # (N, 4)
    bbox_scores: F32  # (N,)
    scores: F32  # (N,) person score, MMPose's bbox score x mean visible keypoint score
    keypoints: F32  # (N, K, 3) x, y, score
    timing_ms: dict[str, float] = field(default_factory=dict)


def _combined_weights(*models: ServedModel | None) -> str:
    kinds = {m.weights for m in models if m is not None}
    return next((w for w in ("synthetic", "custom") if w in kinds), "official")


async def _gather(futures: list[Future[R]], deadline: float) -> list[R]:
    """Await Batcher futures until ``deadline`` (time.monotonic()); cancel what is left on any failure."""
    wrapped = [asyncio.wrap_future(f) for f in futures]
    try:
        async with asyncio.timeout_at(asyncio.get_running_loop().time() + (deadline - time.monotonic())):
            return list(await asyncio.gather(*wrapped))
    except TimeoutError:
        raise DeadlineExceededError("request deadline passed while waiting for inference") from None
    finally:
        for f in wrapped:
            f.cancel()  # no-op for finished ones; queued items are then skipped by the Batcher


class Pipeline:
    """Top-down pose estimation over the served models."""

    def __init__(
        self, models: Mapping[str, ServedModel], *, default_pose: str, default_detector: str, max_people: int
    ) -> None:
        self.models = models
        self.default_pose = default_pose
        self.default_detector = default_detector
        self.max_people = max_people
        self._inflight = 0
        self._detecting = 0  # requests between detector submit and pose submit: the only source of new crops
        self._closing = False
        self._idle = threading.Condition()

    def crops_expected(self) -> bool:
        """Whether a request is still in detection, so crops may soon join the pose queues.

        The pose Batchers wait out ``max_queue_delay_ms`` for more crops only while this is
        True; with nothing in detection a partial batch runs at once (read without a lock:
        a stale answer costs at most one delay or one smaller batch).
        """
        return self._detecting > 0  # read without the lock: a stale answer is harmless

    def stop_accepting(self) -> None:
        """New requests fail with ShuttingDownError from now on; accepted ones go on."""
        with self._idle:
            self._closing = True

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until every accepted request has finished; False if ``timeout_s`` ran out first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout_s)

    @contextmanager
    def _accepted(self) -> Iterator[None]:
        with self._idle:
            if self._closing:
                raise ShuttingDownError("the service is shutting down and takes no new requests")
            self._inflight += 1
        try:
            yield
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def resolve(self, options: EstimateOptions) -> tuple[ServedModel, ServedModel | None]:
        """The pose model and detector a request uses (no detector when boxes are given)."""
        pose = self._model(options.model or self.default_pose, Task.POSE, "model")
        detector = None
        if options.boxes is None:
            detector = self._model(options.detector or self.default_detector, Task.DETECT, "detector")
        return pose, detector

    def _model(self, name: str, task: Task, option: str) -> ServedModel:
        served = self.models.get(name)
        if served is None:
            names = sorted(n for n, m in self.models.items() if m.task is task)
            raise UnknownModelError(f"{option} {name!r} is not served; served {task.value} models: {names}")
        if served.task is not task:
            raise UnknownModelError(f"{option} {name!r} is a {served.task.value} model, not a {task.value} model")
        return served

    def _check_boxes(self, boxes: F32, width: int, height: int) -> F32:
        boxes = np.asarray(boxes, dtype=np.float32)
        if boxes.size == 0:
            return np.zeros((0, 4), np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise InvalidOptionsError(f"boxes must be a list of [x1, y1, x2, y2], got shape {list(boxes.shape)}")
        if len(boxes) > self.max_people:
            raise InvalidOptionsError(f"at most {self.max_people} boxes per image, got {len(boxes)}")
        if not np.isfinite(boxes).all():
            raise InvalidOptionsError("boxes must be finite numbers (no NaN or infinity)")
        x1, y1, x2, y2 = boxes.T
        if ((x2 <= x1) | (y2 <= y1)).any():
            raise InvalidOptionsError("every box needs x2 > x1 and y2 > y1")
        if ((x1 < 0) | (y1 < 0) | (x2 > width) | (y2 > height)).any():
            raise InvalidOptionsError(f"boxes must lie inside the {width}x{height} image")
        return boxes

    async def estimate(self, image: DecodedImage, options: EstimateOptions, *, deadline: float) -> PoseResult:
        """Detect (unless boxes are given), then estimate every person's keypoints.

        Args:
            image: the decoded image; ``image.scale`` maps its pixels back to the original's.
            options: per-request options.
            deadline: ``time.monotonic()`` after which the request fails with DeadlineExceededError.
        """
        with self._accepted():
            return await self._estimate(image, options, deadline)

    async def _estimate(self, image: DecodedImage, options: EstimateOptions, deadline: float) -> PoseResult:
        start = time.perf_counter()
        pose, detector = self.resolve(options)
        timing: dict[str, float] = {}
        max_people = min(options.max_people or self.max_people, self.max_people)
        if options.boxes is not None:
            # original pixels -> decoded pixels (the inverse of image.boxes_to_original)
            boxes = self._check_boxes(options.boxes, image.width, image.height) / np.float32(image.scale)
            bbox_scores = np.ones(len(boxes), np.float32)
            futures = self._submit_crops(pose, image, boxes, options, deadline)
        else:
            assert detector is not None
            threshold = detector.model.config.score_threshold
            if options.bbox_threshold is not None:
                threshold = options.bbox_threshold
            job = DetectJob(image=image.bgr, score_threshold=threshold, max_people=max_people)
            with self._detection():
                (found,) = await _gather([detector.batcher.submit(job, deadline=deadline)], deadline)
                assert isinstance(found, Detections)
                boxes, bbox_scores = found.boxes, found.scores
                timing["detect"] = (time.perf_counter() - start) * 1000
                futures = self._submit_crops(pose, image, boxes, options, deadline)
        keypoints = (
            np.stack(await _gather(futures, deadline)).astype(np.float32, copy=False)
            if futures
            else np.zeros((0, pose.model.config.num_keypoints, 3), np.float32)
        )
        timing["pose"] = (time.perf_counter() - start) * 1000 - timing.get("detect", 0.0)
        if image.scale != 1:
            boxes = image.boxes_to_original(boxes)
            keypoints[..., :2] = image.keypoints_to_original(keypoints[..., :2])
        return PoseResult(
            width=image.width,
            height=image.height,
            pose_model=pose.name,
            detector=detector.name if detector else None,
            keypoint_set=str(pose.model.config.keypoints),
            weights=_combined_weights(pose, detector),
            boxes=boxes.astype(np.float32),
            bbox_scores=bbox_scores.astype(np.float32),
            scores=person_scores(bbox_scores, keypoints[..., 2]).astype(np.float32),
            keypoints=keypoints,
            timing_ms=timing,
        )

    @contextmanager
    def _detection(self) -> Iterator[None]:
        """Counts the request as a source of crops until its crops are queued."""
        with self._idle:
            self._detecting += 1
        try:
            yield
        finally:
            with self._idle:
                self._detecting -= 1

    def _submit_crops(
        self, pose: ServedModel, image: DecodedImage, boxes: F32, options: EstimateOptions, deadline: float
    ) -> list[Future[F32]]:
        """Queue one item per person box (two rows each with flip test); all or none."""
        if len(boxes) == 0:
            return []
        config = pose.model.config
        width, height = config.input_size
        centers, scales = bbox_xyxy_to_center_scale(boxes, padding=config.bbox_padding)
        scales = fix_aspect_ratio(scales, width / height)
        flip = config.flip_test if options.flip_test is None else options.flip_test
        jobs = [CropJob(image.bgr, centers[i], scales[i], flip) for i in range(len(boxes))]
        return pose.batcher.submit_many(jobs, deadline=deadline, rows=[2 if flip else 1] * len(jobs))
