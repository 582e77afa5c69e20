from __future__ import annotations

from pathlib import Path

import pytest

from service.models.contract import validate
from service.models.schema import ModelConfig, ModelConfigError
from tests.unit.models.io_models import FLOAT, INT64, detector_io, io_model, pose_io, save

POSE = ModelConfig(name="p", task="pose", family="rtmpose", keypoints="coco17", input_size=(192, 256))
POSE_384 = ModelConfig(name="p", task="pose", family="rtmpose", keypoints="coco17", input_size=(288, 384))
DET = ModelConfig(name="d", task="detect", family="rtmdet", input_size=(320, 320))


def test_official_pose_layout_passes(tmp_path: Path) -> None:
    io = validate(save(pose_io(), tmp_path / "m.onnx"), POSE)
    assert io.static_batch is None
    assert [o.name for o in io.outputs] == ["simcc_x", "simcc_y"]
    assert io.output("simcc_x").shape == ("batch", 17, 384)


def test_384x288_widths(tmp_path: Path) -> None:
    validate(save(pose_io(w=288, h=384), tmp_path / "m.onnx"), POSE_384)
    with pytest.raises(ModelConfigError, match="width 384 but input side 288"):
        validate(save(pose_io(w=288, h=384, widths=(384, 768)), tmp_path / "bad.onnx"), POSE_384)


def test_static_batch_is_reported(tmp_path: Path) -> None:
    io = validate(save(pose_io(batch=1), tmp_path / "m.onnx"), POSE)
    assert io.static_batch == 1


def test_batch_mismatch_between_input_and_output(tmp_path: Path) -> None:
    model = io_model(
        [("input", FLOAT, [4, 3, 256, 192])], [("simcc_x", FLOAT, [2, 17, 384]), ("simcc_y", FLOAT, [4, 17, 512])]
    )
    with pytest.raises(ModelConfigError, match="batch 2 differs from input batch 4"):
        validate(save(model, tmp_path / "m.onnx"), POSE)


def test_wrong_output_names(tmp_path: Path) -> None:
    path = save(pose_io(names=("output_x", "output_y")), tmp_path / "m.onnx")
    with pytest.raises(ModelConfigError, match=r"outputs 'simcc_x' and 'simcc_y', found \['output_x', 'output_y'\]"):
        validate(path, POSE)


def test_wrong_simcc_width(tmp_path: Path) -> None:
    path = save(pose_io(widths=(192, 512)), tmp_path / "m.onnx")
    with pytest.raises(
        ModelConfigError, match=r"'simcc_x' has width 192 but input side 192 x simcc_split_ratio 2.0 = 384"
    ):
        validate(path, POSE)


def test_wrong_keypoint_count(tmp_path: Path) -> None:
    path = save(pose_io(k=133), tmp_path / "m.onnx")
    with pytest.raises(ModelConfigError, match="133 keypoints but 'coco17' has 17"):
        validate(path, POSE)


def test_input_size_mismatch(tmp_path: Path) -> None:
    path = save(pose_io(w=288, h=384), tmp_path / "m.onnx")
    with pytest.raises(ModelConfigError, match="288x384 .* config input_size is 192x256"):
        validate(path, POSE)


def test_input_rank_and_dtype(tmp_path: Path) -> None:
    rank3 = io_model(
        [("input", FLOAT, ["batch", 3, 256])], [("simcc_x", FLOAT, [1, 17, 384]), ("simcc_y", FLOAT, [1, 17, 512])]
    )
    with pytest.raises(ModelConfigError, match="rank 4"):
        validate(save(rank3, tmp_path / "a.onnx"), POSE)
    ints = io_model(
        [("input", INT64, ["b", 3, 256, 192])], [("simcc_x", FLOAT, [1, 17, 384]), ("simcc_y", FLOAT, [1, 17, 512])]
    )
    with pytest.raises(ModelConfigError, match="float32, found INT64"):
        validate(save(ints, tmp_path / "b.onnx"), POSE)


def test_detector_layout(tmp_path: Path) -> None:
    io = validate(save(detector_io(), tmp_path / "d.onnx"), DET)
    assert io.static_batch is None
    bad = io_model([("input", FLOAT, ["b", 3, 320, 320])], [("boxes", FLOAT, ["b", 100, 4])])
    with pytest.raises(ModelConfigError, match="'dets' and 'labels'"):
        validate(save(bad, tmp_path / "bad.onnx"), DET)
    four = io_model(
        [("input", FLOAT, ["b", 3, 320, 320])], [("dets", FLOAT, ["b", 100, 4]), ("labels", INT64, ["b", 100])]
    )
    with pytest.raises(ModelConfigError, match=r"\[N,D,5\]"):
        validate(save(four, tmp_path / "four.onnx"), DET)


def test_detector_static_batch(tmp_path: Path) -> None:
    assert validate(save(detector_io(batch=1), tmp_path / "d.onnx"), DET).static_batch == 1


def test_yolox_raw_layout(tmp_path: Path) -> None:
    config = DET.model_copy(update={"output_format": "yolox_raw", "family": "yolox"})
    raw = io_model([("images", FLOAT, [1, 3, 320, 320])], [("output", FLOAT, [1, 2100, 85])])
    assert validate(save(raw, tmp_path / "y.onnx"), config).static_batch == 1
    with pytest.raises(ModelConfigError, match="5\\+C"):
        validate(save(io_model([("images", FLOAT, [1, 3, 320, 320])], [("output", FLOAT, [1, 2100, 5])]),
                      tmp_path / "z.onnx"), config)  # fmt: skip


def test_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\x00not a model" * 100)
    with pytest.raises(ModelConfigError, match="not a valid ONNX model"):
        validate(path, POSE)


def test_real_rtmdet_export_passes(rtmdet_nano_onnx: Path) -> None:
    io = validate(rtmdet_nano_onnx, DET)
    assert io.static_batch is None
    assert io.inputs[0].shape == ("batch", 3, "height", "width")
