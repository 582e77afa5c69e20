"""Runners own their warm-up batch and their run-time output check (no per-task branches in served_model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from service.devices import parse_device
from service.engine.runners import DetectorRunner, PoseRunner
from service.engine.session import create_session
from service.models.repository import ModelRepository
from service.models.schema import ModelConfigError
from tests.oracles import install_detector_oracle, install_pose_oracle


def _runner(tmp_path: Path, kind: type[PoseRunner] | type[DetectorRunner]) -> PoseRunner | DetectorRunner:
    if kind is PoseRunner:
        install_pose_oracle(tmp_path, "pose")
        model = ModelRepository(tmp_path).load("pose")
    else:
        install_detector_oracle(tmp_path, "det")
        model = ModelRepository(tmp_path).load("det")
    session, _ = create_session(model.onnx_path, parse_device("cpu"), threads=1, trt_cache=tmp_path / "trt")
    return kind(model, session, ())


class _WrongShapes:
    """A session whose outputs have one row too many, whatever it is fed."""

    def __init__(self, names: Sequence[str], shapes: Mapping[str, tuple[int, ...]]) -> None:
        self.names, self.shapes = names, shapes

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        rows = len(next(iter(input_feed.values()))) + 1
        return [np.zeros((rows, *self.shapes[name][1:]), np.float32) for name in output_names or self.names]


@pytest.mark.parametrize("kind", [PoseRunner, DetectorRunner])
def test_the_warmup_batch_runs_and_the_outputs_check(
    tmp_path: Path, kind: type[PoseRunner] | type[DetectorRunner]
) -> None:
    runner = _runner(tmp_path, kind)
    runner.check_output()
    for size in (1, 3):
        jobs = runner.warmup_batch(size)
        assert len(jobs) == size
        assert len(runner(jobs)) == size


def test_pose_outputs_of_the_wrong_shape_are_a_config_error(tmp_path: Path) -> None:
    model = _runner(tmp_path, PoseRunner).model
    shapes = {"simcc_x": (1, 17, 384), "simcc_y": (1, 17, 512)}
    runner = PoseRunner(model, _WrongShapes(["simcc_x", "simcc_y"], shapes), ())
    with pytest.raises(ModelConfigError, match="output 'simcc_x' has shape \\(2, 17, 384\\) at run time"):
        runner.check_output()


def test_detector_outputs_of_the_wrong_shape_are_a_config_error(tmp_path: Path) -> None:
    model = _runner(tmp_path, DetectorRunner).model
    runner = DetectorRunner(model, _WrongShapes(["dets", "labels"], {"dets": (1, 10, 4), "labels": (1, 10)}), ())
    with pytest.raises(ModelConfigError, match="expected \\[N,D,5\\] / \\[N,D\\]"):
        runner.check_output()
