"""Pipeline: detect -> crops -> pose, through the models' Batchers.

The public steps, all in original image pixels:

- :meth:`Pipeline.detect`: person boxes of one image;
- :meth:`Pipeline.queue_poses`: keypoints on given boxes (clipped to the image), with
  the caller's own box scores, awaited with ``.result()``;
- :meth:`Pipeline.pose_step`: one image's work, "detect (when due) -> plan the boxes ->
  give back the queue room not needed -> queue the poses -> await them", with the box
  plan the caller's (a request: the detections or its own boxes; a stream frame: the
  tracker's);
- :meth:`Pipeline.estimate`: a request's ``pose_step`` (client boxes are checked, not clipped).

The crops of one image are queued together as separate items, so they share batches
with other requests' crops. The pipeline is async (it awaits the Batchers' futures) and
never runs inference on the event loop. Admission and shutdown are the request layer's
(``service/requests``); the pipeline only reserves queue room for it (:meth:`Pipeline.reserve`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar, overload

import numpy as np
import numpy.typing as npt

from service.engine.queue_room import QueueRoom, Reservation
from service.engine.results import Detections
from service.engine.runners import CropJob, DetectJob
from service.engine.served_model import SERVED_TYPES, AnyServedModel, DetectorModel, PoseModel, ServedModel
from service.errors import DeadlineExceededError, InvalidOptionsError, UnknownModelError
from service.models.schema import Task
from service.vision.image import DecodedImage
from service.vision.postprocess import person_scores
from service.vision.preprocess import bbox_xyxy_to_center_scale, fix_aspect_ratio
from service.wire.results import PoseResult

__all__ = ["BoxPlan", "Detections", "EstimateOptions", "PendingPoses", "Pipeline", "PoseResult"]

F32 = npt.NDArray[np.float32]
R = TypeVar("R")


class BoxPlan(Protocol):
    """The boxes one image's poses are estimated in (a request's detections or boxes, a tracker's plan)."""

    @property
    def boxes(self) -> F32: ...  # (N, 4) x1, y1, x2, y2 in original pixels

    @property
    def scores(self) -> F32: ...  # (N,)


P = TypeVar("P", bound=BoxPlan)


@dataclass(frozen=True)
class EstimateOptions:
    """Per-request options; None means the model's or the service's default."""

    model: str | None = None
    detector: str | None = None
    boxes: F32 | None = None  # (M, 4) x1, y1, x2, y2 in original pixels: skips the detector
    max_people: int | None = None
    bbox_threshold: float | None = None
    flip_test: bool | None = None


def _combined_weights(*models: AnyServedModel | None) -> str:
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


def clip_boxes(boxes: F32, width: int, height: int) -> F32:
    """Clip (M, 4) boxes to a ``width`` x ``height`` image, keeping each at least 1 pixel wide and high.

    A box that lies wholly outside becomes a 1-pixel box on the nearest border, so the
    caller's boxes and results stay index-aligned.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not np.isfinite(boxes).all():
        raise InvalidOptionsError("boxes must be finite numbers (no NaN or infinity)")
    clipped = np.clip(boxes, 0, np.array([width, height, width, height], np.float32))
    for lo, hi, side in ((0, 2, width), (1, 3, height)):
        empty = clipped[:, hi] <= clipped[:, lo]
        clipped[empty, lo] = np.minimum(clipped[empty, lo], side - 1)
        clipped[empty, hi] = clipped[empty, lo] + 1
    return clipped


@dataclass
class PendingPoses:
    """Crops queued by :meth:`Pipeline.queue_poses`; :meth:`result` awaits them."""

    image: DecodedImage
    pose: PoseModel
    boxes: F32  # (N, 4) original pixels
    box_scores: F32  # (N,)
    futures: list[Future[F32]]
    deadline: float
    queued_at: float  # time.perf_counter()

    async def result(self, *, detector: DetectorModel | None = None) -> PoseResult:
        """The keypoints of every box, in original pixels (``detector``: named in the result when it ran)."""
        if self.futures:
            per_box = await _gather(self.futures, self.deadline)
            keypoints = np.stack(per_box).astype(np.float32, copy=False)
        else:
            keypoints = np.zeros((0, self.pose.model.config.num_keypoints, 3), np.float32)
        if self.image.scale != 1:
            keypoints[..., :2] = self.image.keypoints_to_original(keypoints[..., :2])
        return PoseResult(
            width=self.image.width,
            height=self.image.height,
            pose_model=self.pose.name,
            detector=detector.name if detector else None,
            keypoint_set=str(self.pose.model.config.keypoints),
            weights=_combined_weights(self.pose, detector),
            boxes=self.boxes,
            bbox_scores=self.box_scores,
            scores=person_scores(self.box_scores, keypoints[..., 2]).astype(np.float32),
            keypoints=keypoints,
            timing_ms={"pose": (time.perf_counter() - self.queued_at) * 1000},
        )


class Pipeline:
    """Top-down pose estimation over the served models."""

    def __init__(
        self, models: Mapping[str, AnyServedModel], *, default_pose: str, default_detector: str, max_people: int
    ) -> None:
        self.models = models
        self.default_pose = default_pose
        self.default_detector = default_detector
        self.max_people = max_people
        self._detecting = 0  # work between a detector submit and its pose submit: the only source of new crops
        self._lock = threading.Lock()
        self.room = QueueRoom()

    # -- admission ----------------------------------------------------------------------------------------------

    def crops_expected(self) -> bool:
        """Whether some work is still in detection, so crops may soon join the pose queues.

        The pose Batchers wait out ``max_queue_delay_ms`` for more crops only while this is
        True; with nothing in detection a partial batch runs at once (read without a lock:
        a stale answer costs at most one delay or one smaller batch).
        """
        return self._detecting > 0

    def crops_cap(self, max_people: int | None) -> int:
        """The most people (crops) one image may yield: ``max_people`` capped by the service's."""
        return min(max_people or self.max_people, self.max_people)

    def full(self) -> bool:
        """No pose queue has room for one more crop: no image with a person to pose can be admitted now.

        A cheap hint for refusing under overload before any parsing (an image with zero boxes
        would still fit: it is refused too).
        """
        poses = [m for m in self.models.values() if m.task is Task.POSE]
        return bool(poses) and self.room.full(poses)  # none loaded yet: not full, not ready

    def reserve(self, options: EstimateOptions) -> Reservation:
        """Reserve the queue room one image with ``options`` may need (see ``queue_room.py``).

        Raises:
            UnknownModelError: a model that is not served. QueueFullError: no room now.
        """
        pose, detector = self.resolve(options)
        if detector is None:
            count = 0 if options.boxes is None else len(options.boxes)
            self._check_box_count(count)
            return self.room.reserve([(pose, count)])
        return self.room.reserve([(detector, 1), (pose, self.crops_cap(options.max_people))])

    @contextmanager
    def detection_window(self) -> Iterator[None]:
        """Hold from a :meth:`detect` until the crops of its boxes are queued (:meth:`queue_poses`).

        While any window is open the pose Batchers wait ``max_queue_delay_ms`` for those
        crops instead of running a partial batch at once.
        """
        with self._lock:
            self._detecting += 1
        try:
            yield
        finally:
            with self._lock:
                self._detecting -= 1

    # -- models --------------------------------------------------------------------------------------------------

    def resolve(self, options: EstimateOptions) -> tuple[PoseModel, DetectorModel | None]:
        """The pose model and detector a request uses (no detector when boxes are given).

        Raises:
            UnknownModelError: a model that is not served, or of the wrong task.
        """
        pose = self.model(options.model, Task.POSE)
        detector = None if options.boxes is not None else self.model(options.detector, Task.DETECT)
        return pose, detector

    @overload
    def model(self, name: str | None, task: Literal[Task.POSE]) -> PoseModel: ...
    @overload
    def model(self, name: str | None, task: Literal[Task.DETECT]) -> DetectorModel: ...
    @overload
    def model(self, name: str | None, task: Task) -> AnyServedModel: ...

    def model(self, name: str | None, task: Task) -> AnyServedModel:
        """The served model ``name`` (None: the default of ``task``).

        Raises:
            UnknownModelError: not served, or not a ``task`` model.
        """
        option = "model" if task is Task.POSE else "detector"
        name = name or (self.default_pose if task is Task.POSE else self.default_detector)
        served = self.models.get(name)
        if served is None:
            names = sorted(n for n, m in self.models.items() if m.task is task)
            raise UnknownModelError(f"{option} {name!r} is not served; served {task.value} models: {names}")
        if not isinstance(served, SERVED_TYPES[task]):  # the class the overloads promise
            raise UnknownModelError(f"{option} {name!r} is a {served.task.value} model, not a {task.value} model")
        return served

    # -- the steps -----------------------------------------------------------------------------------------------

    async def detect(
        self,
        image: DecodedImage,
        *,
        detector: str | DetectorModel | None = None,
        bbox_threshold: float | None = None,
        max_people: int | None = None,
        deadline: float,
    ) -> Detections:
        """Person boxes of ``image`` in original pixels, best first, at most ``max_people`` (capped by the service).

        Raises:
            UnknownModelError, QueueFullError, DeadlineExceededError, ShuttingDownError.
        """
        served = detector if isinstance(detector, ServedModel) else self.model(detector, Task.DETECT)
        threshold = served.model.config.score_threshold if bbox_threshold is None else bbox_threshold
        cap = self.crops_cap(max_people)
        job = DetectJob(image=image.bgr, score_threshold=threshold, max_people=cap)
        (found,) = await _gather([served.batcher.submit(job, deadline=deadline)], deadline)
        if image.scale == 1:
            return found
        return Detections(boxes=image.boxes_to_original(found.boxes), scores=found.scores)

    def queue_poses(
        self,
        image: DecodedImage,
        boxes: F32,
        box_scores: F32,
        *,
        model: str | PoseModel | None = None,
        flip_test: bool | None = None,
        deadline: float,
    ) -> PendingPoses:
        """Queue one crop per box (two rows each with flip test), all or none; await ``.result()``.

        Args:
            boxes: (N, 4) x1, y1, x2, y2 in original pixels; clipped to the image, never refused.
            box_scores: (N,) the boxes' scores (a tracker's own, or the detector's).

        Raises:
            UnknownModelError, QueueFullError, ShuttingDownError, InvalidOptionsError (non-finite boxes).
        """
        pose = model if isinstance(model, ServedModel) else self.model(model, Task.POSE)
        boxes = clip_boxes(boxes, image.width, image.height)
        box_scores = np.asarray(box_scores, np.float32).reshape(-1)
        if len(box_scores) != len(boxes):
            raise InvalidOptionsError(f"{len(boxes)} boxes but {len(box_scores)} box scores")
        start = time.perf_counter()
        futures: list[Future[F32]] = []
        if len(boxes):
            config = pose.model.config
            width, height = config.input_size
            # original pixels -> decoded pixels (the inverse of image.boxes_to_original)
            centers, scales = bbox_xyxy_to_center_scale(boxes / np.float32(image.scale), padding=config.bbox_padding)
            scales = fix_aspect_ratio(scales, width / height)
            flip = config.flip_test if flip_test is None else flip_test
            jobs = [CropJob(image.bgr, centers[i], scales[i], flip) for i in range(len(boxes))]
            futures = pose.batcher.submit_many(jobs, deadline=deadline, rows=[2 if flip else 1] * len(jobs))
        return PendingPoses(image, pose, boxes, box_scores, futures, deadline, start)

    async def pose_step(
        self,
        image: DecodedImage,
        plan: Callable[[Detections | None], P],
        *,
        pose: PoseModel,
        detector: DetectorModel | None,
        deadline: float,
        bbox_threshold: float | None = None,
        max_people: int | None = None,
        flip_test: bool | None = None,
        reservation: Reservation | None = None,
    ) -> tuple[PoseResult, P]:
        """One image's work: detect (when ``detector``), plan the boxes, give back room, queue the poses, await.

        Args:
            plan: the boxes to pose, from the detections (None when no detector runs this time).
            detector: the detector to run now, or None (the plan has its boxes already).
            reservation: the work's queue room (:meth:`reserve`); once the boxes are planned it
                shrinks to their crops, so the room reserved for the worst case goes back at once.

        Returns:
            The result (``timing_ms`` with ``detect`` when the detector ran, and ``pose``) and the plan.

        Raises:
            UnknownModelError, DeadlineExceededError, ShuttingDownError, InvalidOptionsError (the plan's boxes).
        """
        start = time.perf_counter()
        with self.detection_window() if detector is not None else nullcontext():
            found = None
            if detector is not None:
                found = await self.detect(image, detector=detector, bbox_threshold=bbox_threshold,
                                          max_people=max_people, deadline=deadline)  # fmt: skip
            detect_ms = (time.perf_counter() - start) * 1000
            planned = plan(found)
            if reservation is not None:
                reservation.shrink_to(pose.name, len(planned.boxes))
            pending = self.queue_poses(image, planned.boxes, planned.scores, model=pose, flip_test=flip_test,
                                       deadline=deadline)  # fmt: skip
        result = await pending.result(detector=detector)
        if detector is not None:
            result.timing_ms["detect"] = detect_ms
        return result, planned

    async def estimate(
        self, image: DecodedImage, options: EstimateOptions, *, deadline: float, reservation: Reservation | None = None
    ) -> PoseResult:
        """One request: detect (unless boxes are given), then every person's keypoints.

        Client boxes are checked (inside the image, at most ``max_people``), not clipped.

        Args:
            image: the decoded image; ``image.scale`` maps its pixels back to the original's.
            options: per-request options.
            deadline: ``time.monotonic()`` after which the request fails with DeadlineExceededError.
            reservation: the request's queue room (:meth:`reserve`), shrunk to the crops found.
        """
        pose, detector = self.resolve(options)

        def plan(found: Detections | None) -> Detections:
            if found is not None:
                return found
            boxes = self._check_boxes(options.boxes, image.width, image.height)
            return Detections(boxes, np.ones(len(boxes), np.float32))

        result, _ = await self.pose_step(image, plan, pose=pose, detector=detector, deadline=deadline,
                                         bbox_threshold=options.bbox_threshold, max_people=options.max_people,
                                         flip_test=options.flip_test, reservation=reservation)  # fmt: skip
        return result

    def _check_box_count(self, count: int) -> None:
        if count > self.max_people:
            raise InvalidOptionsError(f"at most {self.max_people} boxes per image, got {count}")

    def _check_boxes(self, boxes: F32 | None, width: int, height: int) -> F32:
        boxes = np.asarray(() if boxes is None else boxes, dtype=np.float32)
        if boxes.size == 0:
            return np.zeros((0, 4), np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise InvalidOptionsError(f"boxes must be a list of [x1, y1, x2, y2], got shape {list(boxes.shape)}")
        self._check_box_count(len(boxes))
        if not np.isfinite(boxes).all():
            raise InvalidOptionsError("boxes must be finite numbers (no NaN or infinity)")
        x1, y1, x2, y2 = boxes.T
        if ((x2 <= x1) | (y2 <= y1)).any():
            raise InvalidOptionsError("every box needs x2 > x1 and y2 > y1")
        if ((x1 < 0) | (y1 < 0) | (x2 > width) | (y2 > height)).any():
            raise InvalidOptionsError(f"boxes must lie inside the {width}x{height} image")
        return boxes
