# ruff: noqa: E501  (a data table: one model's published rows per line reads best)
"""The published accuracy of each registry model, row by row, as structured data.

Every figure is read from ``shared/model_zoo.md`` (the section is in ``source``);
what a row does not give is ``None``, never filled in. AP, AR, PCK and AUC are
fractions (the docs' 74.9 is 0.749, as pycocotools reports it); NME and EPE are as
published. ``python -m service.eval`` prints the figure that matches its run beside
what it measured; ``GET /v1/models`` shows them for every served model.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["DATASETS", "PUBLISHED", "Boxes", "PublishedFigure"]


class Boxes(StrEnum):
    """Which person boxes the row's pose model was run on."""

    GT = "gt"  # the annotations' boxes
    DETECTOR = "detector"  # a person detector's (``detector_ap`` says how good it was)


# dataset keys -> what the docs call them
DATASETS: dict[str, str] = {
    "coco": "COCO val2017 (17 keypoints)",
    "humanart": "Human-Art val (17 keypoints)",
    "coco-wholebody": "COCO-WholeBody v1.0 val (133 keypoints)",
    "crowdpose": "CrowdPose test (14 keypoints)",
    "mpii": "MPII val (16 keypoints)",
    "body8": "Body8 (body7 + OCHuman, evaluation only)",
    "coco-wholebody-hand": "COCO-WholeBody-Hand",
    "coco-wholebody-face": "COCO-WholeBody-Face",
    "hand5": "Hand5",
    "lapa": "LaPa",
    "wflw": "WFLW",
    "ap10k": "AP-10K val",
    "coco-person": "COCO val2017 person boxes",
    "humanart-person": "Human-Art person boxes",
    "onehand10k": "OneHand10K hand boxes",
    "coco-80": "COCO val2017, 80 classes",
}


@dataclass(frozen=True)
class PublishedFigure:
    """One published result of one model (one row of one table of model_zoo.md)."""

    dataset: str  # a key of DATASETS
    metric: str  # AP | mAP | PCKh@0.5 | PCK@0.1 | PCK@0.2 | NME
    value: float
    ar: float | None = None  # the row's AR, where published
    boxes: Boxes | None = None  # None: the source does not say
    detector_ap: float | None = None  # person AP of the detector the row used
    detector: str | None = None  # that detector's registry name, where the source names it
    flip_test: bool | None = None  # None: the source does not say
    details: tuple[tuple[str, float], ...] = ()  # the row's other numbers: part APs, AP easy/medium/hard, AUC, EPE
    source: str = ""  # where in model_zoo.md

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; one of {sorted(DATASETS)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``/v1/models``, the eval summary)."""
        return {
            "dataset": self.dataset,
            "dataset_name": DATASETS[self.dataset],
            "metric": self.metric,
            "value": self.value,
            "ar": self.ar,
            "boxes": self.boxes.value if self.boxes else None,
            "detector_ap": self.detector_ap,
            "detector": self.detector,
            "flip_test": self.flip_test,
            "details": dict(self.details),
            "source": self.source,
        }


_GT, _DET = Boxes.GT, Boxes.DETECTOR
_F = PublishedFigure


def _coco56(ap: float, source: str, **kw: Any) -> PublishedFigure:
    """COCO val2017 AP with the person detector of human AP 56.4."""
    return _F("coco", "AP", ap, boxes=_DET, detector_ap=0.564, source=source, **kw)


def _body8(pck: float, auc: float, source: str, epe: float | None = None) -> PublishedFigure:
    details = (("AUC", auc),) + ((("EPE", epe),) if epe is not None else ())
    return _F("body8", "PCK@0.1", pck, details=details, source=source)


def _wholebody(
    ap: float, ar: float | None, parts: tuple[float, float, float, float] | None, source: str
) -> PublishedFigure:
    """COCO-WholeBody v1.0 val whole-body AP / AR (detector of human AP 56.4) and Body / Foot / Face / Hand AP."""
    details = tuple(zip(("body AP", "foot AP", "face AP", "hand AP"), parts, strict=True)) if parts else ()
    return _F("coco-wholebody", "AP", ap, ar=ar, boxes=_DET, detector_ap=0.564, details=details, source=source)


def _pipeline(ap: float, detector: str, detector_ap: float) -> PublishedFigure:
    return _F("coco", "AP", ap, boxes=_DET, detector=detector, detector_ap=detector_ap, flip_test=False,
              source="4c Pipeline Performance (skip-frame detection every 5 frames, no flip test)")  # fmt: skip


_1A = "1a (COCO val2017, detector of human AP 56.4, flip test)"
_1A8 = "1a (Body8)"
_1B = "1b"
_1C = "1c (Body8)"
_1C_RTMLIB = "1c (the rtmlib README's 'AP (Body8)')"
_1D = "1d (COCO-WholeBody v1.0 val, detector of human AP 56.4)"
_3 = "3"
_3F = "3 (the model-zoo tables are measured with flip test: 4c)"
_4C_POSE = "4c Model AP of the pose model (no flip test)"
_7 = "3; projects/rtmpose/benchmark/README.md gives another figure (model_zoo.md discrepancy 7)"
_BENCH = "projects/rtmpose/benchmark/README.md (model_zoo.md discrepancy 7)"

PUBLISHED: dict[str, tuple[PublishedFigure, ...]] = {
    # -- body 17, body7 (1a) --
    "rtmpose-t": (_coco56(0.659, _1A, flip_test=True), _body8(0.9144, 0.6318, _1A8, 19.45)),
    "rtmpose-s": (_coco56(0.697, _1A, flip_test=True), _body8(0.9245, 0.6515, _1A8, 17.85)),
    "rtmpose-m": (_coco56(0.749, _1A, flip_test=True), _body8(0.9425, 0.6859, _1A8, 15.12)),
    "rtmpose-l": (_coco56(0.767, _1A, flip_test=True), _body8(0.9508, 0.7014, _1A8, 13.79)),
    "rtmpose-m-384x288": (_coco56(0.766, _1A, flip_test=True), _body8(0.9464, 0.7038, _1A8, 13.98)),
    "rtmpose-l-384x288": (_coco56(0.783, _1A, flip_test=True), _body8(0.9536, 0.7158, _1A8, 13.08)),
    "rtmpose-x-384x288": (_coco56(0.788, _1A, flip_test=True),),
    # -- body 17, Human-Art + COCO (1b): Human-Art with GT boxes and with a detector of AP 56.2, COCO with GT boxes and 56.4 --
    "rtmpose-t-humanart": (_F("humanart", "AP", 0.655, boxes=_GT, source=_1B), _F("humanart", "AP", 0.249, boxes=_DET, detector_ap=0.562, source=_1B), _F("coco", "AP", 0.679, boxes=_GT, source=_1B), _coco56(0.665, "1b (rtmpose_humanart.md)")),
    "rtmpose-s-humanart": (_F("humanart", "AP", 0.698, boxes=_GT, source=_1B), _F("humanart", "AP", 0.311, boxes=_DET, detector_ap=0.562, source=_1B), _F("coco", "AP", 0.725, boxes=_GT, source=_1B), _coco56(0.706, "1b (rtmpose_humanart.md)")),
    "rtmpose-m-humanart": (_F("humanart", "AP", 0.728, boxes=_GT, source=_1B), _F("humanart", "AP", 0.355, boxes=_DET, detector_ap=0.562, source=_1B), _F("coco", "AP", 0.744, boxes=_GT, source=_1B), _coco56(0.725, "1b (rtmpose_humanart.md)")),
    "rtmpose-l-humanart": (_F("humanart", "AP", 0.753, boxes=_GT, source=_1B), _F("humanart", "AP", 0.378, boxes=_DET, detector_ap=0.562, source=_1B), _F("coco", "AP", 0.770, boxes=_GT, source=_1B), _coco56(0.748, "1b (rtmpose_humanart.md)")),
    # -- body 26, Halpe26 (1c) --
    "rtmpose-t-halpe26": (_body8(0.9189, 0.6635, _1C), _F("body8", "AP", 0.680, source=_1C_RTMLIB)),
    "rtmpose-s-halpe26": (_body8(0.9301, 0.6862, _1C), _F("body8", "AP", 0.720, source=_1C_RTMLIB)),
    "rtmpose-m-halpe26": (_body8(0.9475, 0.7191, _1C), _F("body8", "AP", 0.767, source=_1C_RTMLIB)),
    "rtmpose-l-halpe26": (_body8(0.9537, 0.7319, _1C), _F("body8", "AP", 0.784, source=_1C_RTMLIB)),
    "rtmpose-m-halpe26-384x288": (_body8(0.9515, 0.7356, _1C),),
    "rtmpose-l-halpe26-384x288": (_body8(0.9556, 0.7438, _1C),),
    "rtmpose-x-halpe26-384x288": (_body8(0.9574, 0.7482, _1C), _F("body8", "AP", 0.800, source=_1C_RTMLIB)),
    # -- whole body 133 (1d) --
    "dwpose-t": (_wholebody(0.485, 0.584, (0.585, 0.465, 0.735, 0.357), _1D + "; parts from the DWPose README"),),
    "dwpose-s": (_wholebody(0.538, 0.632, (0.633, 0.533, 0.776, 0.427), _1D + "; parts from the DWPose README"),),
    "dwpose-m": (_wholebody(0.606, 0.695, (0.685, 0.636, 0.828, 0.527), _1D + "; parts from the DWPose README"),),
    "dwpose-l": (_wholebody(0.631, 0.717, (0.704, 0.662, 0.843, 0.566), _1D + "; parts from the DWPose README"),),
    "dwpose-l-384x288": (_wholebody(0.665, 0.743, (0.722, 0.704, 0.887, 0.621), _1D + "; parts from the DWPose README"),),
    "rtmw-m": (_wholebody(0.582, 0.673, (0.676, 0.671, 0.783, 0.491), _1D),),
    "rtmw-l": (_wholebody(0.660, 0.746, (0.743, 0.763, 0.834, 0.598), _1D),),
    "rtmw-l-384x288": (_wholebody(0.701, 0.780, (0.761, 0.793, 0.884, 0.663), _1D),),
    "rtmw-x-384x288": (_wholebody(0.702, 0.779, None, _1D + "; AP from the rtmlib README, AR from the mmpose README of Oct 2023"),),
    # -- hand, face, animal (1e) --
    "rtmpose-m-hand": (_F("coco-wholebody-hand", "PCK@0.2", 0.815, source="1e"), _F("hand5", "PCK@0.2", 0.964, details=(("AUC", 0.839), ("EPE", 5.06)), source="1e")),
    "rtmpose-t-face": (_F("lapa", "NME", 1.67, source="1e"),),
    "rtmpose-s-face": (_F("lapa", "NME", 1.59, source="1e"),),
    "rtmpose-m-face": (_F("lapa", "NME", 1.44, source="1e"),),
    "rtmpose-m-ap10k": (_F("ap10k", "AP", 0.722, source="1e"),),
    # -- PyTorch checkpoints only (3), with the pipeline rows of 4c for the AIC+COCO models --
    "rtmpose-t-aic-coco": (_F("coco", "AP", 0.685, flip_test=True, source=_3F), _body8(0.9128, 0.6338, _3), _F("coco", "AP", 0.671, flip_test=False, source=_4C_POSE), _pipeline(0.644, "rtmdet-nano", 0.403)),
    "rtmpose-s-aic-coco": (_F("coco", "AP", 0.722, flip_test=True, source=_3F), _body8(0.9295, 0.6619, _3), _F("coco", "AP", 0.711, flip_test=False, source=_4C_POSE), _pipeline(0.685, "rtmdet-nano", 0.403)),
    "rtmpose-m-aic-coco": (_F("coco", "AP", 0.758, flip_test=True, source=_3F), _body8(0.9413, 0.6853, _3), _F("coco", "AP", 0.753, flip_test=False, source=_4C_POSE), _pipeline(0.732, "rtmdet-nano", 0.403), _pipeline(0.757, "rtmdet-m", 0.625)),
    "rtmpose-l-aic-coco": (_F("coco", "AP", 0.765, flip_test=True, source=_3F), _body8(0.9435, 0.6898, _3), _F("coco", "AP", 0.763, flip_test=False, source=_4C_POSE), _pipeline(0.742, "rtmdet-nano", 0.403), _pipeline(0.766, "rtmdet-m", 0.625)),
    "rtmpose-m-aic-coco-384x288": (_F("coco", "AP", 0.770, flip_test=True, source=_3F), _body8(0.9432, 0.6985, _3)),
    "rtmpose-l-aic-coco-384x288": (_F("coco", "AP", 0.773, flip_test=True, source=_3F), _body8(0.9454, 0.7014, _3)),
    "rtmpose-t-coco": (_F("coco", "AP", 0.682, source="3 (rtmpose_coco.md)"),),
    "rtmpose-s-coco": (_F("coco", "AP", 0.716, source="3 (rtmpose_coco.md)"),),
    "rtmpose-m-coco": (_F("coco", "AP", 0.746, source="3 (rtmpose_coco.md)"),),
    "rtmpose-l-coco": (_F("coco", "AP", 0.758, source="3 (rtmpose_coco.md)"),),
    "rtmpose-m-mpii": (_F("mpii", "PCKh@0.5", 0.907, details=(("PCKh@0.1", 0.348),), source=_3),),
    "rtmpose-m-crowdpose": (_F("crowdpose", "AP", 0.706, details=(("AP easy", 0.799), ("AP medium", 0.719), ("AP hard", 0.582)), source=_3),),
    "rtmpose-s-aic-coco-pruned": (_F("coco", "AP", 0.694, source=_3),),
    "rtmpose-m-wholebody": (_F("coco-wholebody", "AP", 0.582, ar=0.674, source=_7), _F("coco-wholebody", "AP", 0.604, source=_BENCH)),
    "rtmpose-l-wholebody": (_F("coco-wholebody", "AP", 0.611, ar=0.700, source=_7), _F("coco-wholebody", "AP", 0.632, source=_BENCH)),
    "rtmpose-l-wholebody-384x288": (_F("coco-wholebody", "AP", 0.648, ar=0.730, source=_7), _F("coco-wholebody", "AP", 0.670, source=_BENCH)),
    "rtmpose-x-wholebody-384x288": (_F("coco-wholebody", "AP", 0.653, ar=0.733, source=_3),),
    "rtmw-x": (_F("coco-wholebody", "AP", 0.672, ar=0.752, source=_3),),
    "rtmw-x-cocktail14-384x288": (_F("coco-wholebody", "AP", 0.702, ar=0.781, source=_3),),
    "rtmpose-m-hand-cocowb": (_F("coco-wholebody-hand", "PCK@0.2", 0.815, details=(("AUC", 0.837), ("EPE", 4.51)), source=_3),),
    "rtmpose-m-face-cocowb": (_F("coco-wholebody-face", "NME", 0.0466, source=_3),),
    "rtmpose-m-face-lapa": (_F("lapa", "NME", 1.29, source=_3),),
    "rtmpose-m-face-wflw": (_F("wflw", "NME", 4.01, source=_3),),
    # -- detectors (2): the box AP of the detector itself --
    "rtmdet-nano": (_F("coco-person", "AP", 0.403, source="2"),),
    "rtmdet-m": (_F("coco-person", "AP", 0.625, source="2"),),
    "rtmdet-nano-hand": (_F("onehand10k", "AP", 0.760, source="2"),),
    "rtmdet-tiny-humanart": (_F("humanart-person", "AP", 0.466, source="2"),),
    "rtmdet-s-humanart": (_F("humanart-person", "AP", 0.506, source="2"),),
    "yolox-nano-humanart": (_F("humanart-person", "AP", 0.389, source="2"),),
    "yolox-tiny-humanart": (_F("humanart-person", "AP", 0.477, source="2"),),
    "yolox-s-humanart": (_F("humanart-person", "AP", 0.546, source="2"),),
    "yolox-m-humanart": (_F("humanart-person", "AP", 0.591, source="2"),),
    "yolox-l-humanart": (_F("humanart-person", "AP", 0.602, source="2"),),
    "yolox-x-humanart": (_F("humanart-person", "AP", 0.613, source="2"),),
    "yolox-nano-coco": (_F("coco-80", "mAP", 0.258, source="2"),),
    "yolox-tiny-coco": (_F("coco-80", "mAP", 0.328, source="2"),),
    "yolox-s-coco": (_F("coco-80", "mAP", 0.405, source="2"),),
    "yolox-m-coco": (_F("coco-80", "mAP", 0.472, source="2"),),
    "yolox-l-coco": (_F("coco-80", "mAP", 0.501, source="2"),),
    "yolox-darknet53-coco": (_F("coco-80", "mAP", 0.480, source="2"),),
    "yolox-x-coco": (_F("coco-80", "mAP", 0.515, source="2"),),
}  # fmt: skip
