from __future__ import annotations

import pytest

from service.models.registry import ENTRIES, REGISTRY, SourceFormat, UnknownModelError, get_entry
from service.models.schema import Task
from service.vision.keypoints import KEYPOINT_SETS


def test_names_are_unique() -> None:
    assert len(REGISTRY) == len(ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_entry_is_complete(entry) -> None:  # noqa: ANN001
    assert entry.name
    assert entry.arch
    assert entry.task in (Task.POSE, Task.DETECT)
    width, height = entry.input_size
    assert 64 <= width <= 1024
    assert 64 <= height <= 1024
    assert entry.url.startswith("https://")
    assert entry.normalisation
    if entry.task is Task.POSE:
        assert entry.keypoints in KEYPOINT_SETS
        assert entry.family in ("rtmpose", "rtmw")
        assert entry.to_rgb, "RTMPose-family models are fed RGB (bgr_to_rgb=True in every mmpose config)"
        assert entry.mean == (123.675, 116.28, 103.53)
    else:
        assert entry.keypoints is None
        assert entry.family in ("rtmdet", "yolox")
        assert not entry.to_rgb
    if entry.format is SourceFormat.SDK_ZIP:
        assert entry.url.endswith(".zip")
        assert entry.member
    elif entry.format is SourceFormat.PTH:
        assert entry.export_required
        assert entry.url.endswith(".pth")
    else:
        assert entry.url.endswith(".onnx")


def test_published_facts_spot_checks() -> None:
    m = get_entry("rtmpose-m")
    assert (m.input_size, m.params_m, m.flops_g, m.keypoints) == ((192, 256), 13.59, 1.93, "coco17")
    assert m.url.endswith("rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.zip")
    assert get_entry("rtmpose-x-384x288").input_size == (288, 384)
    assert get_entry("rtmw-l-384x288").keypoints == "wholebody133"
    nano = get_entry("rtmdet-nano")
    assert nano.member == "rtmpose-ort/rtmdet-nano/end2end.onnx"
    assert nano.mean == (103.53, 116.28, 123.675)
    assert nano.input_size == (320, 320)
    assert get_entry("yolox-tiny-humanart").input_size == (416, 416)
    assert get_entry("yolox-m-humanart").normalisation == "BGR raw 0-255"
    assert get_entry("rtmpose-m-crowdpose").export_required


def test_groups_present() -> None:
    keypoint_sets = {e.keypoints for e in ENTRIES if e.task is Task.POSE and not e.export_required}
    assert {"coco17", "halpe26", "wholebody133", "hand21", "face106"} <= keypoint_sets
    detectors = {e.name for e in ENTRIES if e.task is Task.DETECT}
    assert {"rtmdet-nano", "rtmdet-nano-hand", "yolox-nano-humanart", "yolox-x-humanart"} <= detectors
    exports = {e.name for e in ENTRIES if e.export_required}
    assert {"rtmpose-m-aic-coco", "rtmpose-m-mpii", "rtmpose-m-crowdpose", "rtmdet-m"} <= exports


def test_unknown_name_suggests() -> None:
    with pytest.raises(UnknownModelError, match="Did you mean: rtmpose-m"):
        get_entry("rtmpose-mm")
