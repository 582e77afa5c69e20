"""The engine: every served model with its instances and Batcher, the Pipeline, readiness, shutdown.

One engine serves every way in (HTTP, gRPC, the CLI), through the request layer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from service import metrics
from service.config import Settings
from service.engine.pipeline import Pipeline
from service.engine.served_model import AnyServedModel, load_served_model
from service.models.published import PublishedFigure
from service.models.registry import REGISTRY
from service.models.repository import ModelRepository
from service.models.schema import ModelConfigError, Task

logger = logging.getLogger(__name__)


@dataclass
class EngineState:
    loaded: bool = False  # every model loaded, warmed up and its Batcher running (until close)
    closing: bool = False  # shutdown began: probes say not ready, admitted work goes on
    error: str | None = None

    @property
    def ready(self) -> bool:
        """What readiness probes report: loaded and not shutting down."""
        return self.loaded and not self.closing


def registry_figures(name: str) -> tuple[PublishedFigure, ...]:
    """The published accuracy of a served model, by its registry name (none for other names)."""
    entry = REGISTRY.get(name)
    return entry.published if entry is not None else ()


class Engine:
    def __init__(self, settings: Settings, *, models: list[str] | None = None) -> None:
        """
        Args:
            models: load only these (default: the settings' served models; the CLI with boxes needs no detector).
        """
        self.settings = settings
        self._only = models
        self.repository = ModelRepository(settings.model_repository)
        self.models: dict[str, AnyServedModel] = {}
        self.state = EngineState()
        self.pipeline = Pipeline(
            self.models,
            default_pose=settings.model,
            default_detector=settings.detector,
            max_people=settings.max_people,
        )

    def model_names(self) -> list[str]:
        names = self._only if self._only is not None else self.settings.served_models()
        if "*" in names:
            names = [n for n in names if n != "*"] + self.repository.names()
        return list(dict.fromkeys(names))

    def start(self) -> None:
        """Load every model, warm it up and start its Batcher; blocking (call it off the event loop).

        Raises:
            ModelNotInstalledError, ModelConfigError, DeviceUnavailableError: the service cannot serve.
        """
        try:
            trt_cache = self.settings.trt_cache_dir()
            for name in self.model_names():
                model = self.repository.load(name)
                self._check_queue(name, model.config.task, model.config.batching.max_queue_size)
                # pose queues wait for more crops only while some request is still in detection
                hint = self.pipeline.crops_expected if model.config.task is Task.POSE else None
                served = load_served_model(model, self.settings, trt_cache, more_expected=hint)
                self.models[name] = served
                self._announce(served)
            self._check_defaults()
            for served in self.models.values():
                if self.settings.warmup:
                    seconds = served.warmup()
                    logger.info("%s warmed up at batch sizes %s in %.2f s", served.name, served.warmup_sizes(), seconds)
                served.batcher.start()
            self.state.loaded = True
        except Exception as exc:
            self.state.error = f"{type(exc).__name__}: {exc}"
            raise

    def _check_queue(self, name: str, task: Task, max_queue_size: int) -> None:
        """Refuse a pose queue that cannot hold one image's crops: every request would be refused."""
        people = self.settings.max_people
        if task is Task.POSE and max_queue_size < people:
            raise ModelConfigError(
                f"model {name!r}: [batching] max_queue_size = {max_queue_size} cannot hold the crops of one image "
                f"(up to POSE_MAX_PEOPLE = {people}), so every request would be refused with 429; raise "
                f"max_queue_size to at least {people} or lower POSE_MAX_PEOPLE"
            )

    def _check_defaults(self) -> None:
        for name, task in ((self.settings.model, Task.POSE), (self.settings.detector, Task.DETECT)):
            if name in self.models and self.models[name].task is not task:
                raise ModelConfigError(f"default {task.value} model {name!r} is a {self.models[name].task.value} model")

    def _announce(self, served: AnyServedModel) -> None:
        config = served.model.config
        metrics.MODEL_INFO.labels(
            served.name,
            str(served.model.version),
            served.weights,
            served.provider,
            str(served.fallback is not None).lower(),
            served.backend.value,
            served.precision.value,
            str(served.precision_fallback is not None).lower(),
        ).set(1)
        logger.info(
            "serving %s v%d (%s, %s) weights=%s backend=%s precision=%s provider=%s instances=%d threads=%d "
            "max_batch=%d delay=%.1fms",
            served.name, served.model.version, config.task.value, config.keypoints or "person", served.weights,
            served.backend.value, served.precision.value, served.provider, len(served.sessions),
            served.sessions[0].threads, served.batcher.policy.max_batch_size, config.batching.max_queue_delay_ms,
        )  # fmt: skip
        for note in (served.fallback, served.precision_fallback):
            if note:
                logger.warning("%s: %s", served.name, note)
        if served.weights == "synthetic":
            logger.warning(
                "%s serves SYNTHETIC weights (architecture-exact, random): its outputs are meaningless. "
                "Run `python -m service.models pull %s` for the official ones.",
                served.name,
                served.name,
            )

    def begin_shutdown(self) -> None:
        """Readiness turns false (for probes) while the transports drain; work already admitted goes on."""
        self.state.closing = True

    def close(self, grace_s: float) -> None:
        """Close every model queue: what is left fails with ShuttingDownError; a running batch gets ``grace_s``.

        Call it once no work is admitted any more (the request layer's gate is shut and
        drained): a unit of work between its detector and its pose model must still find
        the pose queue open.
        """
        self.begin_shutdown()
        end = time.monotonic() + grace_s
        for served in self.models.values():
            served.batcher.close(max(0.0, end - time.monotonic()))

    def describe(self) -> list[dict[str, Any]]:
        """What /v1/models shows."""
        out = []
        for served in self.models.values():
            config = served.model.config
            policy = served.batcher.policy
            out.append(
                {
                    "name": served.name,
                    "task": config.task.value,
                    "family": config.family,
                    "keypoints": config.keypoints,
                    "num_keypoints": config.num_keypoints if config.task is Task.POSE else None,
                    "input_size": list(config.input_size),
                    "weights": served.weights,
                    "version": served.model.version,
                    "backend": served.backend.value,
                    "precision": served.precision.value,
                    "precision_warning": served.precision_fallback,
                    "provider": served.provider,
                    "device": served.sessions[0].device,
                    "device_warning": served.fallback,
                    "instances": len(served.sessions),
                    "threads_per_instance": served.sessions[0].threads,
                    "static_batch": served.model.io.static_batch,
                    "default": served.name in (self.settings.model, self.settings.detector),
                    "published": [figure.to_dict() for figure in registry_figures(served.name)],
                    "batching": {
                        "max_batch_size": policy.max_batch_size,
                        "max_queue_delay_ms": policy.max_queue_delay_s * 1000,
                        "preferred_batch_sizes": list(policy.preferred_batch_sizes),
                        "max_queue_size": policy.max_queue_size,
                        "queued": served.batcher.queued,
                    },
                }
            )
        return out
