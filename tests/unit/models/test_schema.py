from __future__ import annotations

from pathlib import Path

import pytest

from service.devices import Backend, Precision
from service.models.schema import ModelConfigError, load_config

GOOD_POSE = """
name = "rtmpose-m"
task = "pose"
family = "rtmpose"
keypoints = "coco17"
input_size = [192, 256]
mean = [123.675, 116.28, 103.53]
std = [58.395, 57.12, 57.375]
to_rgb = true
simcc_split_ratio = 2.0
bbox_padding = 1.25

[batching]
max_batch_size = 32
max_queue_delay_ms = 2
preferred_batch_sizes = [8, 16, 32]
max_queue_size = 1024

[instances]
count = 2
device = "cuda:1"

[source]
url = "https://example.org/x.zip"
member = "end2end.onnx"
"""

GOOD_DETECTOR = """
name = "rtmdet-nano"
task = "detect"
family = "rtmdet"
input_size = [320, 320]
output_format = "dets"
"""


def write(tmp_path: Path, text: str, folder: str = "rtmpose-m") -> Path:
    path = tmp_path / folder / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_design_md_example_parses(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD_POSE))
    assert config.input_size == (192, 256)
    assert config.num_keypoints == 17
    assert config.batching.preferred_batch_sizes == (8, 16, 32)
    assert config.instances.count == 2
    assert config.instances.device == "cuda:1"
    assert config.to_rgb is True


def test_backend_and_precision_default_to_exact_onnxruntime_and_parse(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD_POSE))
    assert (config.instances.backend, config.instances.precision) == (Backend.ONNXRUNTIME, Precision.FP32)
    text = GOOD_POSE.replace('device = "cuda:1"', 'device = "cpu"\nbackend = "openvino"\nprecision = "bf16"')
    config = load_config(write(tmp_path, text))
    assert (config.instances.backend, config.instances.precision) == (Backend.OPENVINO, Precision.BF16)
    instances = config.to_toml_dict()["instances"]
    assert (instances["backend"], instances["precision"]) == ("openvino", "bf16")  # written back as strings


def test_detector_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD_DETECTOR, "rtmdet-nano"))
    assert config.keypoints is None
    assert config.batching.max_batch_size == 32
    with pytest.raises(AttributeError, match="detector"):
        _ = config.num_keypoints


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("to_rgb = true", "to_rgb = true\ncolour = 1"), "colour", "Extra inputs are not permitted"),
        (("max_queue_size = 1024", "max_queue_size = 1024\nqueue = 3"), "batching.queue", "Extra inputs"),
        (('task = "pose"', 'task = "segment"'), "task", "'pose' or 'detect'"),
        (('keypoints = "coco17"', 'keypoints = "coco18"'), "(top level)", "unknown keypoints 'coco18'"),
        (("input_size = [192, 256]", "input_size = [192]"), "input_size.1", "Field required"),
        (("input_size = [192, 256]", "input_size = [0, 256]"), "input_size", "8..4096"),
        (("std = [58.395, 57.12, 57.375]", "std = [0, 1, 1]"), "std", "positive"),
        (("max_batch_size = 32", "max_batch_size = 0"), "batching.max_batch_size", "greater than or equal to 1"),
        (("preferred_batch_sizes = [8, 16, 32]", "preferred_batch_sizes = [8, 64]"), "batching", "1..max_batch_size"),
        (("preferred_batch_sizes = [8, 16, 32]", "preferred_batch_sizes = [16, 8]"), "batching", "increasing"),
        (('device = "cuda:1"', 'device = "gpu"'), "instances.device", "cpu, auto, cuda, cuda:N"),
        (("count = 2", "count = 0"), "instances.count", ""),
        (("count = 2", 'count = 2\nbackend = "tensorrt"'), "instances.backend", "'onnxruntime' or 'openvino'"),
        (("count = 2", 'count = 2\nprecision = "int8"'), "instances.precision", "'fp32', 'bf16', 'fp16' or 'auto'"),
        (('keypoints = "coco17"\n', ""), "(top level)", "pose models need 'keypoints'"),
    ],
)
def test_bad_values_name_file_and_field(tmp_path: Path, change: tuple[str, str], field: str, message: str) -> None:
    old, new = change
    assert old in GOOD_POSE
    path = write(tmp_path, GOOD_POSE.replace(old, new, 1))
    with pytest.raises(ModelConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert str(path) in text
    assert f"field '{field}'" in text
    assert message in text


def test_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "name = ")
    with pytest.raises(ModelConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelConfigError, match="no such file"):
        load_config(tmp_path / "x" / "config.toml")


def test_name_must_match_folder(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_POSE, folder="other")
    with pytest.raises(ModelConfigError, match="differs from its folder name 'other'"):
        load_config(path)


def test_pose_family_with_detect_task_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_DETECTOR.replace('family = "rtmdet"', 'family = "rtmpose"'), "rtmdet-nano")
    with pytest.raises(ModelConfigError, match="pose family"):
        load_config(path)
