"""A model being served: its repository entry, its instances (sessions + runners) and its Batcher."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.config import Settings, cpu_count
from service.devices import Backend, Precision, parse_device
from service.engine.batcher import Batcher, BatchPolicy
from service.engine.runners import CropJob, DetectJob, DetectorRunner, PoseRunner
from service.engine.session import CUDA, TENSORRT, SessionInfo, open_session
from service.models.repository import InstalledModel
from service.models.schema import DetectorOutput, ModelConfigError, Task

logger = logging.getLogger(__name__)


@dataclass
class ServedModel:
    model: InstalledModel
    batcher: Batcher  # type: ignore[type-arg]
    runners: list[DetectorRunner] | list[PoseRunner]
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
        image = np.full((64, 48, 3), 114, np.uint8)
        for runner in self.runners:
            for size in self.warmup_sizes():
                if isinstance(runner, PoseRunner):
                    center, scale = np.array([24, 32], np.float32), np.array([48, 64], np.float32)
                    runner([CropJob(image, center, scale)] * size)
                else:
                    runner([DetectJob(image, 0.5, 1)] * size)
        return time.perf_counter() - start


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


def check_runtime_shapes(runner: DetectorRunner | PoseRunner) -> None:
    """Run batch 1 and check the output shapes the contract could not check statically (symbolic dims).

    Raises:
        ModelConfigError: outputs of the wrong shape.
    """
    config = runner.model.config
    x = np.zeros((1, 3, runner.height, runner.width), np.float32)
    if runner.static_batch:
        x = np.zeros((runner.static_batch, *x.shape[1:]), np.float32)
    outputs = dict(
        zip(runner.output_names, runner.session.run(runner.output_names, {runner.input_name: x}), strict=True)
    )
    where = runner.model.onnx_path
    if config.task is Task.POSE:
        k = config.num_keypoints
        for name, side in (("simcc_x", runner.width), ("simcc_y", runner.height)):
            expected = (len(x), k, round(side * config.simcc_split_ratio))
            if outputs[name].shape != expected:
                raise ModelConfigError(f"{where}: output '{name}' has shape {outputs[name].shape} at run time, "
                                       f"expected {expected}")  # fmt: skip
    elif config.output_format is DetectorOutput.DETS:
        dets, labels = outputs["dets"], outputs["labels"]
        if dets.ndim != 3 or dets.shape[2] != 5 or labels.shape != dets.shape[:2]:
            raise ModelConfigError(f"{where}: dets {dets.shape} / labels {labels.shape} at run time, "
                                   "expected [N,D,5] / [N,D]")  # fmt: skip


def load_served_model(
    model: InstalledModel,
    settings: Settings,
    trt_cache: Path,
    *,
    more_expected: Callable[[], bool] | None = None,
) -> ServedModel:
    """Open ``count`` sessions on the model's device, build runners and the Batcher (not started).

    Args:
        more_expected: the Batcher's hint that more items may arrive soon (see ``Batcher``).
    """
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
    runner_type = PoseRunner if config.task is Task.POSE else DetectorRunner
    runners = [runner_type(model, session, pad_sizes) for session, _ in sessions]
    check_runtime_shapes(runners[0])
    if model.io.static_batch:
        logger.info("%s: static batch size %d: batches run in chunks of that size", model.name, model.io.static_batch)
    policy = BatchPolicy(
        max_batch_size=config.batching.max_batch_size,
        max_queue_delay_s=config.batching.max_queue_delay_ms / 1000.0,
        preferred_batch_sizes=config.batching.preferred_batch_sizes,
        max_queue_size=config.batching.max_queue_size,
    )
    batcher: Batcher = Batcher(model.name, runners, policy, more_expected=more_expected)  # type: ignore[type-arg]
    return ServedModel(model=model, batcher=batcher, runners=runners, sessions=infos)  # type: ignore[arg-type]
