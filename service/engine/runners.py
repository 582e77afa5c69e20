"""Runners: what one model instance does with one batch, pre-processing to decoded results.

A runner belongs to one instance thread, so it owns preallocated input buffers and
reuses them for every batch: crops are warped straight into the uint8 batch buffer,
then channel order and normalisation happen in one float32 pass into the NCHW buffer.

Each runner also knows its own warm-up batch (:meth:`ModelRunner.warmup_batch`) and how
to check its outputs at run time (:meth:`ModelRunner.check_output`), so whoever serves a
model needs no per-task branches.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from service.engine.results import Detections
from service.engine.session import InferenceSession
from service.metrics import stage_timer
from service.models.repository import InstalledModel
from service.models.schema import DetectorOutput, ModelConfigError
from service.vision.postprocess import (
    decode_simcc,
    decode_yolox_raw,
    detections_to_boxes,
    flip_simcc_back,
    keypoints_to_image,
    nms,
)
from service.vision.preprocess import get_warp_matrices, letterbox, normalize_to_nchw, warp_crops

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

J = TypeVar("J")  # one item's job
R = TypeVar("R")  # one item's result

WARMUP_SHAPE = (64, 48, 3)  # (H, W, 3) of the grey image the warm-up jobs are made of


@dataclass(frozen=True)
class DetectJob:
    """One image for the detector."""

    image: U8  # (H, W, 3) BGR
    score_threshold: float
    max_people: int


@dataclass(frozen=True)
class CropJob:
    """One person crop for the pose model: the source image and the crop geometry."""

    image: U8  # (H, W, 3) BGR, shared by every crop of the image
    center: F32  # (2,)
    scale: F32  # (2,) already padded and fixed to the model's aspect ratio
    flip: bool = False


class ModelRunner(ABC, Generic[J, R]):
    """One instance's work on a batch of jobs ``J``, one result ``R`` per job, in order.

    The shared part: buffers, chunking for static batch sizes and padding to preferred sizes.
    """

    def __init__(self, model: InstalledModel, session: InferenceSession, pad_sizes: Sequence[int]) -> None:
        self.model = model
        self.name = model.name
        self.session = session
        self.input_name = model.io.inputs[0].name
        self.output_names = [o.name for o in model.io.outputs]
        self.static_batch = model.io.static_batch
        self.pad_sizes = sorted(pad_sizes)
        width, height = model.config.input_size
        self.width, self.height = width, height
        # the most rows a batch can hold: max_batch_size, or one flip-test item (2 rows), padded
        capacity = max(model.config.batching.max_batch_size, 2)
        capacity = next((size for size in self.pad_sizes if size >= capacity), capacity)
        self._u8 = np.zeros((capacity, height, width, 3), np.uint8)
        self._f32 = np.zeros((capacity, 3, height, width), np.float32)

    def _padded(self, rows: int) -> int:
        return next((size for size in self.pad_sizes if size >= rows), rows)

    def _normalise(self, rows: int) -> F32:
        config = self.model.config
        padded = self._padded(rows)
        return normalize_to_nchw(self._u8[:padded], config.mean, config.std, config.to_rgb, out=self._f32[:padded])

    def _infer(self, batch: F32, rows: int) -> dict[str, np.ndarray]:
        """Run ``batch``, in chunks of the static batch size when the model has one; outputs cut to ``rows``."""
        if not self.static_batch:
            outputs = self.session.run(self.output_names, {self.input_name: batch})
            return {name: out[:rows] for name, out in zip(self.output_names, outputs, strict=True)}
        chunks: list[list[np.ndarray]] = []
        size = self.static_batch
        for start in range(0, rows, size):
            part = batch[start : start + size]
            if len(part) < size:  # fixed-shape model: pad the last chunk
                part = np.concatenate([part, np.zeros((size - len(part), *part.shape[1:]), part.dtype)])
            chunks.append(self.session.run(self.output_names, {self.input_name: part}))
        return {name: np.concatenate([c[i] for c in chunks])[:rows] for i, name in enumerate(self.output_names)}

    @abstractmethod
    def __call__(self, jobs: Sequence[J]) -> list[R]:
        """Run one batch: one result per job, in order."""

    @abstractmethod
    def warmup_batch(self, size: int) -> list[J]:
        """``size`` jobs that exercise the whole batch path (pre-processing, the network, post-processing)."""

    def check_output(self) -> None:
        """Run one batch of zeros and check the output shapes the contract could not check statically.

        The batch is 1, or the model's static batch size; symbolic dimensions are only known at run time.

        Raises:
            ModelConfigError: outputs of the wrong shape.
        """
        x = np.zeros((self.static_batch or 1, 3, self.height, self.width), np.float32)
        outputs = self.session.run(self.output_names, {self.input_name: x})
        self._check_outputs(dict(zip(self.output_names, outputs, strict=True)), len(x))

    @abstractmethod
    def _check_outputs(self, outputs: Mapping[str, np.ndarray], rows: int) -> None:
        """Raise ModelConfigError when ``outputs`` of a ``rows``-row batch have the wrong shapes."""


class DetectorRunner(ModelRunner[DetectJob, Detections]):
    """Letterbox -> detector -> person boxes in image pixels."""

    def __call__(self, jobs: Sequence[DetectJob]) -> list[Detections]:
        n = len(jobs)
        config = self.model.config
        with stage_timer("detect_pre", self.name):
            ratios = [letterbox(job.image, (self.width, self.height), out=self._u8[i])[1] for i, job in enumerate(jobs)]
            batch = self._normalise(n)
        with stage_timer("detect_infer", self.name):
            outputs = self._infer(batch, n)
        with stage_timer("detect_post", self.name):
            results = []
            for i, job in enumerate(jobs):
                if config.output_format is DetectorOutput.DETS:
                    dets, labels = outputs["dets"][i], outputs["labels"][i]
                else:
                    dets, labels = self._decode_raw(outputs[self.output_names[0]][i], job.score_threshold)
                height, width = job.image.shape[:2]
                boxes, scores = detections_to_boxes(
                    dets, labels, ratios[i], (width, height), score_threshold=job.score_threshold,
                    person_class=config.person_class, max_people=job.max_people,
                )  # fmt: skip
                results.append(Detections(boxes=boxes, scores=scores))
        return results

    def _decode_raw(self, raw: F32, score_threshold: float) -> tuple[F32, npt.NDArray[np.int64]]:
        """Raw YOLOX head (no NMS in the graph): grid decode, person class only, NMS in numpy."""
        config = self.model.config
        boxes, scores, classes = decode_yolox_raw(raw, (self.width, self.height))
        keep = (classes == config.person_class) & (scores >= score_threshold)
        boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
        keep = nms(boxes, scores, config.nms_iou_threshold)
        dets = np.concatenate([boxes[keep], scores[keep, None]], axis=1).astype(np.float32)
        return dets, classes[keep].astype(np.int64)

    def warmup_batch(self, size: int) -> list[DetectJob]:
        return [DetectJob(np.full(WARMUP_SHAPE, 114, np.uint8), 0.5, 1)] * size

    def _check_outputs(self, outputs: Mapping[str, np.ndarray], rows: int) -> None:
        if self.model.config.output_format is not DetectorOutput.DETS:
            return  # a raw YOLOX head: the contract checks it statically ([N,A,5+C])
        dets, labels = outputs["dets"], outputs["labels"]
        if dets.ndim != 3 or dets.shape[2] != 5 or labels.shape != dets.shape[:2]:
            raise ModelConfigError(f"{self.model.onnx_path}: dets {dets.shape} / labels {labels.shape} at run time, "
                                   "expected [N,D,5] / [N,D]")  # fmt: skip


class PoseRunner(ModelRunner[CropJob, F32]):
    """Affine crops -> RTMPose -> SimCC decode -> keypoints (x, y, score) in image pixels."""

    def __init__(self, model: InstalledModel, session: InferenceSession, pad_sizes: Sequence[int]) -> None:
        super().__init__(model, session, pad_sizes)
        config = model.config
        self.flip_index = config.keypoint_set.flip_index
        self.split_ratio = config.simcc_split_ratio

    def __call__(self, jobs: Sequence[CropJob]) -> list[F32]:
        n = len(jobs)
        flipped = [i for i, job in enumerate(jobs) if job.flip]
        rows = n + len(flipped)
        centers = np.stack([job.center for job in jobs]).astype(np.float32)
        scales = np.stack([job.scale for job in jobs]).astype(np.float32)
        size = (self.width, self.height)
        with stage_timer("pose_pre", self.name):
            matrices = get_warp_matrices(centers, scales, size)
            for i, job in enumerate(jobs):
                warp_crops(job.image, matrices[i : i + 1], size, out=self._u8[i : i + 1])
            for j, i in enumerate(flipped):
                np.copyto(self._u8[n + j], self._u8[i, :, ::-1])
            batch = self._normalise(rows)
        with stage_timer("pose_infer", self.name):
            outputs = self._infer(batch, rows)
        with stage_timer("pose_post", self.name):
            simcc_x, simcc_y = outputs["simcc_x"], outputs["simcc_y"]
            if flipped:
                back_x, back_y = flip_simcc_back(simcc_x[n:], simcc_y[n:], self.flip_index)
                simcc_x, simcc_y = simcc_x[:n].copy(), simcc_y[:n].copy()
                simcc_x[flipped] = (simcc_x[flipped] + back_x) * 0.5
                simcc_y[flipped] = (simcc_y[flipped] + back_y) * 0.5
            locs, scores = decode_simcc(simcc_x[:n], simcc_y[:n], self.split_ratio)
            points = keypoints_to_image(locs, centers, scales, size)
            keypoints = np.concatenate([points, scores[..., None]], axis=-1).astype(np.float32)
        return list(keypoints)

    def warmup_batch(self, size: int) -> list[CropJob]:
        image = np.full(WARMUP_SHAPE, 114, np.uint8)
        center, scale = np.array([24, 32], np.float32), np.array([48, 64], np.float32)
        return [CropJob(image, center, scale)] * size

    def _check_outputs(self, outputs: Mapping[str, np.ndarray], rows: int) -> None:
        config = self.model.config
        for name, side in (("simcc_x", self.width), ("simcc_y", self.height)):
            expected = (rows, config.num_keypoints, round(side * config.simcc_split_ratio))
            if outputs[name].shape != expected:
                raise ModelConfigError(f"{self.model.onnx_path}: output '{name}' has shape {outputs[name].shape} "
                                       f"at run time, expected {expected}")  # fmt: skip
