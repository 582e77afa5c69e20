"""Architecture-exact RTMPose-family models with seeded random weights, built with ``onnx`` and numpy.

Official weights cannot always be downloaded; these graphs reproduce the
official ONNX exports' architecture, I/O contract and cost (parameters, FLOPs)
with synthetic weights, and say so in their metadata (``weights=synthetic``).
See ``docs/synthesis.md``.

Public API: :func:`synthesize` (from a registry entry), :func:`build_pose`,
:func:`build_detector`, and the lists of archs they build.
"""

from __future__ import annotations

import logging
import time

import onnx

from service.models.registry import RegistryEntry
from service.models.schema import Task
from service.models.synth.detector import DETECTOR_ARCHS, build_detector
from service.models.synth.pose import POSE_ARCHS, build_pose
from service.vision.keypoints import KEYPOINT_SETS

__all__ = ["DETECTOR_ARCHS", "POSE_ARCHS", "build_detector", "build_pose", "synthesize", "supported"]

logger = logging.getLogger(__name__)


def supported(arch: str) -> bool:
    """Whether :func:`synthesize` can build ``arch``."""
    return arch in POSE_ARCHS or arch in DETECTOR_ARCHS


def synthesize(entry: RegistryEntry, *, seed: int = 0, materialize: bool = True) -> onnx.ModelProto:
    """The synthetic model of a registry entry: its arch, keypoints, input size and output format.

    Args:
        entry: a registry entry (``entry.input_size`` is (width, height)).
        seed: weight seed; the same entry and seed give the same bytes.
        materialize: False declares parameter shapes only (for counting; cannot run).

    Raises:
        ValueError: the arch cannot be synthesized (e.g. ``rtmpose-s-pruned``,
            ``yolox-darknet53``), or the entry lacks what its task needs.
    """
    if not supported(entry.arch):
        raise ValueError(
            f"{entry.name}: cannot synthesize arch {entry.arch!r} (supported: "
            f"{', '.join((*POSE_ARCHS, *DETECTOR_ARCHS))}); use its official weights instead"
        )
    start = time.perf_counter()
    if entry.task is Task.POSE:
        if entry.keypoints is None or entry.keypoints not in KEYPOINT_SETS:
            raise ValueError(f"{entry.name}: pose entry has unknown keypoints {entry.keypoints!r}")
        if entry.arch not in POSE_ARCHS:
            raise ValueError(f"{entry.name}: arch {entry.arch!r} is a detector but the entry is a pose model")
        k = KEYPOINT_SETS[entry.keypoints].num_keypoints
        model = build_pose(entry.arch, k, entry.input_size, seed, materialize=materialize)
    else:
        if entry.arch not in DETECTOR_ARCHS:
            raise ValueError(f"{entry.name}: arch {entry.arch!r} is a pose model but the entry is a detector")
        model = build_detector(entry.arch, entry.input_size, seed, entry.output_format, materialize=materialize)
    level = logging.INFO if materialize else logging.DEBUG  # shape-only builds are for counting, not news
    elapsed = time.perf_counter() - start
    logger.log(level, "synthesized %s (%s, seed %d) in %.1f s", entry.name, entry.arch, seed, elapsed)
    return model
