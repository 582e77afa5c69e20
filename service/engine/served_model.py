"""A model being served: its repository entry, its instances (sessions + runners) and its Batcher.

``ServedModel[J, R]`` is generic over one item's job and result, so a Batcher's futures
carry their type: :class:`PoseModel` is ``ServedModel[CropJob, F32]`` (a crop in, its
(K, 3) keypoints out), :class:`DetectorModel` ``ServedModel[DetectJob, Detections]``.
They are distinct classes so that ``isinstance`` tells them apart, and each names its
runner: the runners own their warm-up batch and output check, so nothing here branches
on the task but the one table, :data:`SERVED_TYPES`.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Self, TypeVar

from service.config import Settings, cpu_count
from service.devices import Backend, Precision, parse_device
from service.engine.batcher import Batcher, BatchPolicy
from service.engine.results import Detections
from service.engine.runners import F32, CropJob, DetectJob, DetectorRunner, ModelRunner, PoseRunner
from service.engine.session import CUDA, TENSORRT, InferenceSession, SessionInfo, open_session
from service.models.repository import InstalledModel
from service.models.schema import Task

logger = logging.getLogger(__name__)

J = TypeVar("J")  # one item's job
R = TypeVar("R")  # one item's result


@dataclass
class ServedModel(ABC, Generic[J, R]):
    model: InstalledModel
    batcher: Batcher[J, R]
    runners: Sequence[ModelRunner[J, R]]
    sessions: list[SessionInfo]

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def task(self) -> Task:
        return self.model.config.task

    @property
    def weights(self) -> str:
        return self.model.config.weights.value

    @property
    def provider(self) -> str:
        return self.sessions[0].provider

    @property
    def fallback(self) -> str | None:
        return self.sessions[0].fallback

    @property
    def backend(self) -> Backend:
        return self.sessions[0].backend

    @property
    def precision(self) -> Precision:
        return self.sessions[0].precision

    @property
    def precision_fallback(self) -> str | None:
        return self.sessions[0].precision_fallback

    def warmup_sizes(self) -> list[int]:
        policy = self.batcher.policy
        sizes = [s for s in policy.preferred_batch_sizes if s <= policy.max_batch_size]
        return sizes or sorted({1, policy.max_batch_size})

    def warmup(self) -> float:
        """Run every warm-up batch size once on every instance; returns the seconds it took."""
        start = time.perf_counter()
        for runner in self.runners:
            for size in self.warmup_sizes():
                runner(runner.warmup_batch(size))
        return time.perf_counter() - start

    @classmethod
    def load(
        cls,
        model: InstalledModel,
        settings: Settings,
        trt_cache: Path,
        *,
        more_expected: Callable[[], bool] | None = None,
    ) -> Self:
        """Open ``count`` sessions on the model's device, build runners and the Batcher (not started).

        Args:
            more_expected: the Batcher's hint that more items may arrive soon (see ``Batcher``).

        Raises:
            ModelConfigError: outputs of the wrong shape at run time. DeviceUnavailableError: the device or backend.
        """
        runners, infos = _instances(model, settings, trt_cache, cls.runner)
        return cls(model, _batcher(model, runners, more_expected), runners, infos)

    @classmethod
    @abstractmethod
    def runner(cls, model: InstalledModel, session: InferenceSession, pad_sizes: Sequence[int]) -> ModelRunner[J, R]:
        """One instance's runner."""


class PoseModel(ServedModel[CropJob, F32]):
    """A served pose model: one person crop in, its (K, 3) keypoints (x, y, score) out."""

    @classmethod
    def runner(cls, model: InstalledModel, session: InferenceSession, pad_sizes: Sequence[int]) -> PoseRunner:
        return PoseRunner(model, session, pad_sizes)


class DetectorModel(ServedModel[DetectJob, Detections]):
    """A served detector: one image in, its person boxes out."""

    @classmethod
    def runner(cls, model: InstalledModel, session: InferenceSession, pad_sizes: Sequence[int]) -> DetectorRunner:
        return DetectorRunner(model, session, pad_sizes)


AnyServedModel = PoseModel | DetectorModel
SERVED_TYPES: dict[Task, type[PoseModel] | type[DetectorModel]] = {Task.POSE: PoseModel, Task.DETECT: DetectorModel}


def _threads(model: InstalledModel, settings: Settings) -> int:
    """Intra-op threads per CPU instance: config, then POSE_CPU_THREADS, else the cores split among its instances.

    Each model's instances share all the cores; spinning is off (see session.py), so a
    detector and a pose model that run at the same time share the cores without burning them.
    """
    if model.config.instances.threads:
        return model.config.instances.threads
    if settings.cpu_threads:
        return settings.cpu_threads
    return max(1, cpu_count() // model.config.instances.count)


def load_served_model(
    model: InstalledModel,
    settings: Settings,
    trt_cache: Path,
    *,
    more_expected: Callable[[], bool] | None = None,
) -> AnyServedModel:
    """The served model of ``model``'s task, loaded (see :meth:`ServedModel.load`)."""
    return SERVED_TYPES[model.config.task].load(model, settings, trt_cache, more_expected=more_expected)


def _instances(
    model: InstalledModel,
    settings: Settings,
    trt_cache: Path,
    runner: Callable[[InstalledModel, InferenceSession, Sequence[int]], ModelRunner[J, R]],
) -> tuple[list[ModelRunner[J, R]], list[SessionInfo]]:
    """One session and runner per instance; the first runner checks the outputs at run time."""
    config = model.config
    device = parse_device(settings.device or config.instances.device)
    backend = settings.backend or config.instances.backend
    precision = settings.precision or config.instances.precision
    threads = _threads(model, settings)
    sessions = [
        open_session(model.onnx_path, device, backend=backend, precision=precision, threads=threads,
                     trt_cache=trt_cache, spinning=settings.cpu_spinning, input_size=config.input_size)
        for _ in range(config.instances.count)
    ]  # fmt: skip
    infos = [info for _, info in sessions]
    on_gpu = infos[0].provider in (CUDA, TENSORRT)
    pad = config.batching.pad_to_preferred if config.batching.pad_to_preferred is not None else on_gpu
    pad_sizes = config.batching.preferred_batch_sizes if pad else ()
    runners = [runner(model, session, pad_sizes) for session, _ in sessions]
    runners[0].check_output()
    if model.io.static_batch:
        logger.info("%s: static batch size %d: batches run in chunks of that size", model.name, model.io.static_batch)
    return runners, infos


def _batcher(
    model: InstalledModel, runners: Sequence[ModelRunner[J, R]], more_expected: Callable[[], bool] | None
) -> Batcher[J, R]:
    batching = model.config.batching
    policy = BatchPolicy(
        max_batch_size=batching.max_batch_size,
        max_queue_delay_s=batching.max_queue_delay_ms / 1000.0,
        preferred_batch_sizes=batching.preferred_batch_sizes,
        max_queue_size=batching.max_queue_size,
    )
    return Batcher(model.name, runners, policy, more_expected=more_expected)
