"""The synthesizer: published cost, the official I/O contract, runnable and sane outputs, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from service.models.contract import validate
from service.models.flops import count_flops, count_params
from service.models.install import config_from_entry
from service.models.registry import ENTRIES, RegistryEntry, get_entry
from service.models.schema import DetectorOutput, ModelConfigError, Weights
from service.models.synth import build_detector, build_pose, supported, synthesize
from service.models.synth.eager import calibration_batch, conv2d
from service.models.synth.graph import Graph
from service.models.synth.postprocess import NmsConfig, multiclass_nms
from service.vision.postprocess import decode_yolox_raw, nms

# (arch, keypoints, (width, height), published params in millions): model_zoo.md sections 1a, 1c, 2, 3
PUBLISHED_POSE_PARAMS = [
    ("rtmpose-t", 17, (192, 256), 3.34),
    ("rtmpose-s", 17, (192, 256), 5.47),
    ("rtmpose-m", 17, (192, 256), 13.59),
    ("rtmpose-l", 17, (192, 256), 27.66),
    ("rtmpose-m", 17, (288, 384), 13.72),
    ("rtmpose-l", 17, (288, 384), 27.79),
    ("rtmpose-x", 17, (288, 384), 49.43),
    ("rtmpose-t", 26, (192, 256), 3.51),
    ("rtmpose-s", 26, (192, 256), 5.70),
    ("rtmpose-m", 26, (192, 256), 13.93),
    ("rtmpose-l", 26, (192, 256), 28.11),
    ("rtmpose-m", 26, (288, 384), 14.06),
    ("rtmpose-l", 26, (288, 384), 28.24),
    ("rtmpose-x", 26, (288, 384), 50.00),
]
PUBLISHED_DETECTOR_PARAMS = [
    ("rtmdet-nano", 320, 0.99),
    ("rtmdet-m", 640, 24.66),
    ("yolox-tiny", 416, 5.06),
    ("yolox-m", 640, 25.3),
]
# (arch, keypoints, (width, height), published GFLOPs): model_zoo.md sections 1a, 1c, 1d, 1e, 2
PUBLISHED_POSE_FLOPS = [
    ("rtmpose-t", 17, (192, 256), 0.36),
    ("rtmpose-s", 17, (192, 256), 0.68),
    ("rtmpose-m", 17, (192, 256), 1.93),
    ("rtmpose-l", 17, (192, 256), 4.16),
    ("rtmpose-m", 17, (288, 384), 4.33),
    ("rtmpose-l", 17, (288, 384), 9.35),
    ("rtmpose-x", 17, (288, 384), 17.22),
    ("rtmpose-m", 133, (192, 256), 2.22),  # DWPose-m / RTMPose-m whole-body
    ("rtmw-m", 133, (192, 256), 4.3),
    ("rtmw-l", 133, (192, 256), 7.9),
    ("rtmw-l", 133, (288, 384), 17.7),
    ("rtmw-x", 133, (288, 384), 29.3),
]
PUBLISHED_DETECTOR_FLOPS = [("rtmdet-nano", 320, 0.31), ("rtmdet-m", 640, 38.95)]


def _ids(entry: RegistryEntry) -> str:
    return entry.name


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy that also returns the intermediate tensors ``names``."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names)
    return copy


def _images(n: int, width: int, height: int, *, raw: bool, seed: int) -> np.ndarray:
    """Random images with image-like statistics (normalised, or 0-255 pixels for YOLOX)."""
    rng = np.random.default_rng(seed)
    low = rng.standard_normal((n, 1, height // 16 + 1, width // 16 + 1)).repeat(16, 2).repeat(16, 3)
    x = (low[:, :, :height, :width] + 0.3 * rng.standard_normal((n, 3, height, width))).astype(np.float32)
    return np.clip(114 + 58 * x, 0, 255).astype(np.float32) if raw else x


@pytest.fixture(scope="module")
def models() -> dict[str, onnx.ModelProto]:
    """The smallest model of every kind, built once (materialized)."""
    names = ["rtmpose-t", "rtmpose-m", "rtmw-m", "rtmdet-nano", "yolox-nano-humanart", "yolox-nano-coco"]
    return {name: synthesize(get_entry(name)) for name in names}


# -- published cost -------------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "k", "size", "published"), PUBLISHED_POSE_PARAMS)
def test_pose_parameter_count_matches_published(arch: str, k: int, size: tuple[int, int], published: float) -> None:
    params = count_params(build_pose(arch, k, size, materialize=False)) / 1e6
    assert params == pytest.approx(published, rel=0.02)


@pytest.mark.parametrize(("arch", "side", "published"), PUBLISHED_DETECTOR_PARAMS)
def test_detector_parameter_count_matches_published(arch: str, side: int, published: float) -> None:
    params = count_params(build_detector(arch, (side, side), materialize=False)) / 1e6
    assert params == pytest.approx(published, rel=0.02)


@pytest.mark.parametrize(("arch", "k", "size", "published"), PUBLISHED_POSE_FLOPS)
def test_pose_flops_match_published(arch: str, k: int, size: tuple[int, int], published: float) -> None:
    gflops = count_flops(build_pose(arch, k, size, materialize=False), (1, 3, size[1], size[0])) / 1e9
    assert gflops == pytest.approx(published, rel=0.10)


@pytest.mark.parametrize(("arch", "side", "published"), PUBLISHED_DETECTOR_FLOPS)
def test_detector_flops_match_published(arch: str, side: int, published: float) -> None:
    gflops = count_flops(build_detector(arch, (side, side), materialize=False), (1, 3, side, side)) / 1e9
    assert gflops == pytest.approx(published, rel=0.10)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if supported(e.arch)], ids=_ids)
def test_every_registry_figure_is_matched(entry: RegistryEntry) -> None:
    model = synthesize(entry, materialize=False)
    if entry.params_m is not None:
        assert count_params(model) / 1e6 == pytest.approx(entry.params_m, rel=0.02)
    if entry.flops_g is not None:
        width, height = entry.input_size
        assert count_flops(model, (1, 3, height, width)) / 1e9 == pytest.approx(entry.flops_g, rel=0.10)


def test_shape_only_build_is_the_same_graph(models: dict[str, onnx.ModelProto]) -> None:
    full, empty = models["rtmpose-t"], build_pose("rtmpose-t", 17, (192, 256), materialize=False)
    assert [(n.op_type, list(n.input), list(n.output)) for n in full.graph.node] == [
        (n.op_type, list(n.input), list(n.output)) for n in empty.graph.node
    ]
    assert [(i.name, list(i.dims)) for i in full.graph.initializer] == [
        (i.name, list(i.dims)) for i in empty.graph.initializer
    ]
    assert count_flops(full) == count_flops(empty)


# -- I/O contract -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["rtmpose-t", "rtmpose-m", "rtmw-m", "rtmdet-nano", "yolox-nano-humanart", "yolox-nano-coco"]
)
def test_models_pass_the_repository_contract(name: str, models: dict[str, onnx.ModelProto], tmp_path: Path) -> None:
    entry = get_entry(name)
    path = tmp_path / "model.onnx"
    onnx.save(models[name], str(path))
    onnx.checker.check_model(str(path), full_check=True)
    io = validate(path, config_from_entry(entry, Weights.SYNTHETIC, "0" * 64))
    assert io.metadata == {"weights": "synthetic", "arch": entry.arch, "seed": "0", "generator": "rtmpose-service"}
    assert models[name].opset_import[0].version == 11
    with pytest.raises(ModelConfigError, match="synthetic"):
        validate(path, config_from_entry(entry, Weights.OFFICIAL, "0" * 64))


def _axes(value: onnx.ValueInfoProto) -> list[tuple[bool, str]]:
    """(is dynamic, dim_param) per axis."""
    return [(not d.HasField("dim_value"), d.dim_param) for d in value.type.tensor_type.shape.dim]


def test_rtmdet_nano_matches_the_real_export(models: dict[str, onnx.ModelProto], rtmdet_nano_onnx: Path) -> None:
    real, synth = onnx.load(str(rtmdet_nano_onnx)), models["rtmdet-nano"]
    for ours, theirs in [(synth.graph.input, real.graph.input), (synth.graph.output, real.graph.output)]:
        assert [v.name for v in ours] == [v.name for v in theirs]
        assert [v.type.tensor_type.elem_type for v in ours] == [v.type.tensor_type.elem_type for v in theirs]
        assert [[dyn for dyn, _ in _axes(v)] for v in ours] == [[dyn for dyn, _ in _axes(v)] for v in theirs]
    named = {"batch", "height", "width", "num_dets"}
    for ours, theirs in zip(
        [*synth.graph.input, *synth.graph.output], [*real.graph.input, *real.graph.output], strict=True
    ):
        assert [p for _, p in _axes(ours) if p in named] == [p for _, p in _axes(theirs) if p in named]
    assert count_params(synth) == pytest.approx(count_params(real), rel=0.02)
    assert count_flops(synth, (1, 3, 320, 320)) == pytest.approx(count_flops(real, (1, 3, 320, 320)), rel=0.02)


# -- running ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "k"), [("rtmpose-t", 17), ("rtmpose-m", 17), ("rtmw-m", 133)])
def test_pose_models_run_with_sane_outputs(name: str, k: int, models: dict[str, onnx.ModelProto]) -> None:
    width, height = get_entry(name).input_size
    session = _session(models[name])
    x8 = _images(8, width, height, raw=False, seed=1)
    for batch in (1, 8):
        simcc_x, simcc_y = session.run(["simcc_x", "simcc_y"], {"input": x8[:batch]})
        assert simcc_x.shape == (batch, k, 2 * width)
        assert simcc_y.shape == (batch, k, 2 * height)
        for out in (simcc_x, simcc_y):
            assert np.isfinite(out).all()
            assert 0.1 < out.std() < 100.0
            assert np.abs(out).max() < 1e3
    # rows of a batch are independent, and different images give different outputs
    np.testing.assert_allclose(simcc_x[3:4], session.run(["simcc_x"], {"input": x8[3:4]})[0], rtol=1e-4, atol=1e-4)
    assert np.abs(simcc_x[0] - simcc_x[1]).mean() > 1e-3 * np.abs(simcc_x).mean()


@pytest.mark.parametrize("name", ["rtmdet-nano", "yolox-nano-humanart"])
def test_detectors_run_at_any_batch_and_size(name: str, models: dict[str, onnx.ModelProto]) -> None:
    side = get_entry(name).input_size[0]
    raw = name.startswith("yolox")
    session = _session(models[name])
    for batch, (width, height) in [(1, (side, side)), (8, (side, side)), (2, (side + 64, side - 96))]:
        dets, labels = session.run(["dets", "labels"], {"input": _images(batch, width, height, raw=raw, seed=batch)})
        assert dets.dtype == np.float32
        assert labels.dtype == np.int64
        assert dets.shape[0] == labels.shape[0] == batch
        assert dets.shape[2] == 5
        assert 1 <= dets.shape[1] == labels.shape[1] <= 100
        assert np.isfinite(dets).all()
        score = dets[..., 4]
        assert ((score == 0) | (score > 0.05)).all()
        assert (score <= 1).all()
        assert (np.diff(score, axis=1) <= 0).all()  # best first
        pad = score == 0
        assert (labels[pad] == -1).all()
        assert (dets[pad] == 0).all()
        assert ((labels[~pad] >= 0) & (labels[~pad] < (80 if raw else 1))).all()
        assert (dets[~pad][:, 2] >= dets[~pad][:, 0]).all()
        assert (dets[~pad][:, 3] >= dets[~pad][:, 1]).all()
    assert (~pad).any()  # random weights still detect something on image-like inputs


@pytest.mark.parametrize("name", ["rtmdet-nano", "yolox-nano-humanart"])
def test_batched_nms_equals_per_image_nms(name: str, models: dict[str, onnx.ModelProto]) -> None:
    side = get_entry(name).input_size[0]
    session = _session(models[name])
    images = _images(3, side, side, raw=name.startswith("yolox"), seed=7)
    dets, labels = session.run(["dets", "labels"], {"input": images})
    for i in range(3):
        one, one_labels = session.run(["dets", "labels"], {"input": images[i : i + 1]})
        kept = one[0, :, 4] > 0
        n = int(kept.sum())
        np.testing.assert_allclose(dets[i, :n], one[0, :n], rtol=1e-5, atol=1e-3)
        np.testing.assert_array_equal(labels[i, :n], one_labels[0, :n])
        assert (dets[i, n:, 4] == 0).all()


def test_in_graph_nms_matches_reference_nms(models: dict[str, onnx.ModelProto]) -> None:
    session = _session(_with_outputs(models["rtmdet-nano"], ["boxes", "scores"]))
    dets, boxes, scores = session.run(["dets", "boxes", "scores"], {"input": _images(1, 320, 320, raw=False, seed=3)})
    score = scores[0, :, 0]
    candidates = np.flatnonzero(score > 0.05)
    keep = candidates[nms(boxes[0, candidates], score[candidates], 0.6)][:100]
    kept = dets[0, dets[0, :, 4] > 0]
    assert len(kept) == len(keep) > 0
    np.testing.assert_allclose(kept[:, :4], boxes[0, keep], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(kept[:, 4], score[keep], rtol=1e-6)


def test_yolox_raw_output_decodes_to_the_same_boxes(models: dict[str, onnx.ModelProto]) -> None:
    raw_model = models["yolox-nano-coco"]
    assert [(v.name, _axes(v)) for v in raw_model.graph.input] == [
        ("images", [(False, ""), (False, ""), (False, ""), (False, "")])
    ]
    image = _images(1, 416, 416, raw=True, seed=5)
    (out,) = _session(raw_model).run(["output"], {"images": image})
    assert out.shape == (1, 3549, 85)
    assert np.isfinite(out).all()
    assert ((out[..., 4:] >= 0) & (out[..., 4:] <= 1)).all()
    # same arch and seed: the dets export has the same weights; its decoded boxes equal Megvii's decoding
    session = _session(_with_outputs(models["yolox-nano-humanart"], ["boxes", "scores"]))
    boxes, scores = session.run(["boxes", "scores"], {"input": image})
    ref_boxes, ref_scores, _ = decode_yolox_raw(out[0], (416, 416))
    np.testing.assert_allclose(boxes[0], ref_boxes, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(scores[0].max(axis=1), ref_scores, rtol=1e-4, atol=1e-6)


# -- determinism and errors --------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes(models: dict[str, onnx.ModelProto]) -> None:
    for name in ("rtmpose-t", "rtmdet-nano"):
        again = synthesize(get_entry(name))
        assert again.SerializeToString() == models[name].SerializeToString()
    other = synthesize(get_entry("rtmdet-nano"), seed=1)
    assert other.SerializeToString() != models["rtmdet-nano"].SerializeToString()
    assert {p.key: p.value for p in other.metadata_props}["seed"] == "1"


@pytest.mark.parametrize("name", ["rtmpose-s-aic-coco-pruned", "yolox-darknet53-coco"])
def test_unsupported_archs_raise_a_clear_error(name: str) -> None:
    entry = get_entry(name)
    with pytest.raises(ValueError, match=f"cannot synthesize arch '{entry.arch}'"):
        synthesize(entry)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        build_pose("rtmpose-m", 17, (190, 256))
    with pytest.raises(ValueError, match="pose arch"):
        build_pose("rtmdet-nano", 17, (192, 256))
    with pytest.raises(ValueError, match="only for YOLOX"):
        build_detector("rtmdet-nano", (320, 320), output_format=DetectorOutput.YOLOX_RAW)
    with pytest.raises(ValueError, match="detector arch"):
        build_detector("rtmpose-t", (320, 320))


def test_calibration_engine_matches_onnxruntime() -> None:
    rng = np.random.default_rng(0)
    x = calibration_batch(24, 16)
    for cout, cin, k, stride, groups in [(8, 3, 3, 2, 1), (3, 3, 5, 1, 3), (6, 3, 1, 1, 1)]:
        w = rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32)
        node = helper.make_node(
            "Conv", ["x", "w"], ["y"], kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=groups
        )
        graph = helper.make_graph(
            [node],
            "conv",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(x.shape))],
            [helper.make_empty_tensor_value_info("y")],
            initializer=[onnx.numpy_helper.from_array(w, "w")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
        (expected,) = _session(model).run(None, {"x": x})
        np.testing.assert_allclose(conv2d(x, w, stride, k // 2, groups), expected, rtol=1e-4, atol=1e-4)


# -- post-processing and head semantics --------------------------------------------------------------


def _nms_session(num_classes: int) -> ort.InferenceSession:
    g = Graph(0)
    dets, labels = multiclass_nms(g, "boxes", "scores", num_classes, NmsConfig(iou_threshold=0.6))
    model = g.model(
        "nms",
        [
            helper.make_tensor_value_info("boxes", onnx.TensorProto.FLOAT, ["b", "a", 4]),
            helper.make_tensor_value_info("scores", onnx.TensorProto.FLOAT, ["b", "a", num_classes]),
        ],
        [helper.make_empty_tensor_value_info(dets), helper.make_empty_tensor_value_info(labels)],
        {},
    )
    return _session(model)


def test_nms_keeps_the_best_100_per_image_and_pads_empty_images() -> None:
    rng = np.random.default_rng(0)
    xy = np.stack(np.meshgrid(np.arange(20), np.arange(15)), -1).reshape(-1, 2) * 20.0  # 300 disjoint boxes
    boxes = np.concatenate([xy, xy + 10.0], axis=1).astype(np.float32)[None].repeat(2, 0)
    scores = rng.uniform(0.06, 1.0, (2, 300, 2)).astype(np.float32)
    scores[1] = 0.01  # nothing passes the 0.05 threshold in image 1
    dets, labels = _nms_session(2).run(None, {"boxes": boxes, "scores": scores})
    assert dets.shape == (2, 100, 5)
    assert labels.shape == (2, 100)
    flat = scores[0].reshape(-1)  # (box, class) pairs; NMS is per class, 200 at most per class
    best = np.sort(np.concatenate([np.sort(scores[0, :, c])[::-1][:200] for c in range(2)]))[::-1][:100]
    np.testing.assert_allclose(dets[0, :, 4], best, rtol=1e-6)
    order = np.argsort(-flat, kind="stable")
    box_idx, cls_idx = np.divmod(order, 2)
    top = {(int(b), int(c)) for b, c in zip(box_idx, cls_idx, strict=True) if scores[0, b, c] >= best[-1]}
    found = {
        (int(np.flatnonzero((boxes[0] == d[:4]).all(1))[0]), int(lab))
        for d, lab in zip(dets[0], labels[0], strict=True)
    }
    assert found == top
    assert (dets[1] == 0).all()
    assert (labels[1] == -1).all()


def test_nms_suppresses_overlaps_within_a_class_only() -> None:
    boxes = np.array([[[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]]], dtype=np.float32)
    scores = np.array([[[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.01, 0.0]]], dtype=np.float32)
    dets, labels = _nms_session(2).run(None, {"boxes": boxes, "scores": scores})
    kept = dets[0, :, 4] > 0
    np.testing.assert_allclose(dets[0, kept, 4], [0.9, 0.7])  # box 1 overlaps box 0 (IoU 0.82); box 3 is too weak
    np.testing.assert_array_equal(labels[0, kept], [0, 1])
    assert dets.shape[1] == 3  # D = kept over the batch + 1 padding row


def _init(model: onnx.ModelProto, name: str) -> np.ndarray:
    return next(onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name == name)


def _scale_norm(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    # mmpose ScaleNorm: x / clamp(||x|| * dim^-0.5, eps) * g
    norm = np.linalg.norm(x, axis=-1, keepdims=True) * x.shape[-1] ** -0.5
    return x / np.maximum(norm, 1e-5) * g


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def test_rtmcc_head_computes_the_mmpose_formulas(models: dict[str, onnx.ModelProto]) -> None:
    """RTMCCHead + RTMCCBlock transcribed from mmpose in numpy, run on the model's own weights."""
    m = models["rtmpose-t"]
    feat_name = "backbone.stage4.2.final_conv.silu"
    session = _session(_with_outputs(m, [feat_name]))
    feat, simcc_x, simcc_y = session.run(
        [feat_name, "simcc_x", "simcc_y"], {"input": _images(2, 192, 256, raw=False, seed=9)}
    )
    w = lambda name: _init(m, name)  # noqa: E731
    # final_layer (7x7 conv), flatten, mlp = ScaleNorm + Linear
    x = conv2d(feat, w("head.final_layer.weight"), 1, 3, 1) + w("head.final_layer.bias")[None, :, None, None]
    x = x.reshape(x.shape[0], x.shape[1], -1)
    x = _scale_norm(x, w("head.mlp.0.g")) @ w("head.mlp.1.weight")
    # RTMCCBlock (self-attn, SiLU, no rel-pos bias, no RoPE), shortcut with Scale
    e, s = 512, 128
    uv = _silu(_scale_norm(x, w("head.gau.ln.g")) @ w("head.gau.uv.weight"))
    u, v, base = uv[..., :e], uv[..., e : 2 * e], uv[..., 2 * e :]
    base = base[:, :, None, :] * w("head.gau.gamma")[None, None] + w("head.gau.beta")
    q, k = base[:, :, 0], base[:, :, 1]
    kernel = np.square(np.maximum(q @ k.transpose(0, 2, 1) / np.sqrt(s), 0.0))
    y = (u * (kernel @ v)) @ w("head.gau.o.weight")
    x = x * w("head.gau.res_scale.scale") + y
    np.testing.assert_allclose(x @ w("head.cls_x.weight"), simcc_x, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(x @ w("head.cls_y.weight"), simcc_y, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(("name", "iou"), [("rtmdet-nano", 0.6), ("yolox-nano-humanart", 0.65)])
def test_nms_thresholds_are_the_configs(name: str, iou: float, models: dict[str, onnx.ModelProto]) -> None:
    m = models[name]
    (node,) = [n for n in m.graph.node if n.op_type == "NonMaxSuppression"]
    max_per_class, iou_threshold, score_threshold = (_init(m, i) for i in node.input[2:])
    assert max_per_class.tolist() == [200]
    assert iou_threshold.tolist() == pytest.approx([iou])
    assert score_threshold.tolist() == pytest.approx([0.05])
