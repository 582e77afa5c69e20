# ruff: noqa: E501  (a data table: one published model per line reads best)
"""The published RTMPose-family models, by name.

Every URL, input size, keypoint set, parameter count, FLOP count and accuracy
figure below is taken from ``shared/model_zoo.md`` (itself read from the
OpenMMLab and rtmlib sources it cites); ``published.py`` holds the accuracy
figures as structured rows. Models published only as PyTorch
checkpoints carry ``export_required=True`` and their ``.pth`` URL: see
README.md "Exporting a checkpoint with MMDeploy".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict, Unpack

from service.models.published import PUBLISHED, PublishedFigure
from service.models.schema import DetectorOutput, Task

_P = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/"
_PTH = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/"
_RTMW = "https://download.openmmlab.com/mmpose/v1/projects/rtmw/"
_MEGVII = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/"

# normalisation per family (model_zoo.md section 5)
RTMPOSE_MEAN, RTMPOSE_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)  # applied after BGR->RGB
RTMDET_MEAN, RTMDET_STD = (103.53, 116.28, 123.675), (57.375, 57.12, 58.395)  # BGR order, no swap
RAW_MEAN, RAW_STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # YOLOX: raw BGR 0-255


class SourceFormat(StrEnum):
    SDK_ZIP = "sdk_zip"  # mmdeploy SDK zip; the ONNX is the `member` inside
    ONNX = "onnx"  # a bare .onnx file
    PTH = "pth"  # PyTorch checkpoint only: export required


@dataclass(frozen=True)
class RegistryEntry:
    """One published model. ``input_size`` is (width, height) like the config files."""

    name: str
    task: Task
    family: str  # rtmpose | rtmw | rtmdet | yolox
    arch: str  # architecture the synthesizer builds, e.g. "rtmpose-m", "rtmdet-nano"
    input_size: tuple[int, int]
    url: str
    format: SourceFormat
    keypoints: str | None = None
    member: str | None = None
    params_m: float | None = None
    flops_g: float | None = None
    accuracy: str = ""
    data: str = ""
    output_format: DetectorOutput = DetectorOutput.DETS
    score_threshold: float = 0.3
    nms_iou_threshold: float = 0.65
    notes: str = ""

    @property
    def published(self) -> tuple[PublishedFigure, ...]:
        """The published accuracy rows of this model (``published.py``; none where the docs give none)."""
        return PUBLISHED.get(self.name, ())

    @property
    def export_required(self) -> bool:
        return self.format is SourceFormat.PTH

    @property
    def mean(self) -> tuple[float, float, float]:
        return {"rtmpose": RTMPOSE_MEAN, "rtmw": RTMPOSE_MEAN, "rtmdet": RTMDET_MEAN}.get(self.family, RAW_MEAN)

    @property
    def std(self) -> tuple[float, float, float]:
        return {"rtmpose": RTMPOSE_STD, "rtmw": RTMPOSE_STD, "rtmdet": RTMDET_STD}.get(self.family, RAW_STD)

    @property
    def to_rgb(self) -> bool:
        return self.family in ("rtmpose", "rtmw")

    @property
    def normalisation(self) -> str:
        order = "RGB" if self.to_rgb else "BGR"
        if self.mean == RAW_MEAN and self.std == RAW_STD:
            return f"{order} raw 0-255"
        return f"{order} mean {list(self.mean)} std {list(self.std)}"


class _Published(TypedDict, total=False):
    """The optional :class:`RegistryEntry` fields a table row gives."""

    params_m: float | None
    flops_g: float | None
    accuracy: str
    data: str
    output_format: DetectorOutput
    score_threshold: float
    nms_iou_threshold: float
    notes: str


def _pose(
    name: str,
    arch: str,
    keypoints: str,
    hw: tuple[int, int],
    url: str,
    *,
    family: str = "rtmpose",
    **kw: Unpack[_Published],
) -> RegistryEntry:
    fmt = SourceFormat.PTH if url.endswith(".pth") else SourceFormat.SDK_ZIP
    member = "end2end.onnx" if fmt is SourceFormat.SDK_ZIP else None
    return RegistryEntry(
        name=name, task=Task.POSE, family=family, arch=arch, keypoints=keypoints,
        input_size=(hw[1], hw[0]), url=url, format=fmt, member=member, **kw,
    )  # fmt: skip


def _det(
    name: str, family: str, arch: str, side: int, url: str, *, member: str = "end2end.onnx", **kw: Unpack[_Published]
) -> RegistryEntry:
    """``member``: the ONNX inside an SDK zip (unused for a .pth or .onnx URL)."""
    zip_member: str | None
    if url.endswith(".pth"):
        fmt, zip_member = SourceFormat.PTH, None
    elif url.endswith(".onnx"):
        fmt, zip_member = SourceFormat.ONNX, None
    else:
        fmt, zip_member = SourceFormat.SDK_ZIP, member
    return RegistryEntry(
        name=name, task=Task.DETECT, family=family, arch=arch, input_size=(side, side),
        url=url, format=fmt, member=zip_member, **kw,
    )  # fmt: skip


_B7 = "body7 (AIC, COCO, CrowdPose, MPII, sub-JHMDB, Halpe, PoseTrack18)"
_HA = "Human-Art + COCO"
_WB = "COCO-WholeBody + UBody"
_C14 = "Cocktail14"

ENTRIES: tuple[RegistryEntry, ...] = (
    # -- body 17 keypoints, body7 (model_zoo.md 1a) --
    _pose("rtmpose-t", "rtmpose-t", "coco17", (256, 192), _P + "rtmpose-t_simcc-body7_pt-body7_420e-256x192-026a1439_20230504.zip", params_m=3.34, flops_g=0.36, accuracy="COCO AP 65.9", data=_B7),
    _pose("rtmpose-s", "rtmpose-s", "coco17", (256, 192), _P + "rtmpose-s_simcc-body7_pt-body7_420e-256x192-acd4a1ef_20230504.zip", params_m=5.47, flops_g=0.68, accuracy="COCO AP 69.7", data=_B7),
    _pose("rtmpose-m", "rtmpose-m", "coco17", (256, 192), _P + "rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.zip", params_m=13.59, flops_g=1.93, accuracy="COCO AP 74.9", data=_B7),
    _pose("rtmpose-l", "rtmpose-l", "coco17", (256, 192), _P + "rtmpose-l_simcc-body7_pt-body7_420e-256x192-4dba18fc_20230504.zip", params_m=27.66, flops_g=4.16, accuracy="COCO AP 76.7", data=_B7),
    _pose("rtmpose-m-384x288", "rtmpose-m", "coco17", (384, 288), _P + "rtmpose-m_simcc-body7_pt-body7_420e-384x288-65e718c4_20230504.zip", params_m=13.72, flops_g=4.33, accuracy="COCO AP 76.6", data=_B7),
    _pose("rtmpose-l-384x288", "rtmpose-l", "coco17", (384, 288), _P + "rtmpose-l_simcc-body7_pt-body7_420e-384x288-3f5a1437_20230504.zip", params_m=27.79, flops_g=9.35, accuracy="COCO AP 78.3", data=_B7),
    _pose("rtmpose-x-384x288", "rtmpose-x", "coco17", (384, 288), _P + "rtmpose-x_simcc-body7_pt-body7_700e-384x288-71d7b7e9_20230629.zip", params_m=49.43, flops_g=17.22, accuracy="COCO AP 78.8", data=_B7),
    # -- body 17, Human-Art + COCO (1b) --
    _pose("rtmpose-t-humanart", "rtmpose-t", "coco17", (256, 192), _P + "rtmpose-t_8xb256-420e_humanart-256x192-60b68c98_20230612.zip", params_m=3.34, flops_g=0.36, accuracy="Human-Art AP 65.5 (GT box), COCO AP 67.9 (GT box)", data=_HA),
    _pose("rtmpose-s-humanart", "rtmpose-s", "coco17", (256, 192), _P + "rtmpose-s_8xb256-420e_humanart-256x192-5a3ac943_20230611.zip", params_m=5.47, flops_g=0.68, accuracy="Human-Art AP 69.8 (GT box), COCO AP 72.5 (GT box)", data=_HA),
    _pose("rtmpose-m-humanart", "rtmpose-m", "coco17", (256, 192), _P + "rtmpose-m_8xb256-420e_humanart-256x192-8430627b_20230611.zip", params_m=13.59, flops_g=1.93, accuracy="Human-Art AP 72.8 (GT box), COCO AP 74.4 (GT box)", data=_HA),
    _pose("rtmpose-l-humanart", "rtmpose-l", "coco17", (256, 192), _P + "rtmpose-l_8xb256-420e_humanart-256x192-389f2cb0_20230611.zip", params_m=27.66, flops_g=4.16, accuracy="Human-Art AP 75.3 (GT box), COCO AP 77.0 (GT box)", data=_HA),
    # -- body 26 keypoints, Halpe26 (1c) --
    _pose("rtmpose-t-halpe26", "rtmpose-t", "halpe26", (256, 192), _P + "rtmpose-t_simcc-body7_pt-body7-halpe26_700e-256x192-6020f8a6_20230605.zip", params_m=3.51, flops_g=0.37, accuracy="Body8 PCK@0.1 91.89 / AUC 66.35", data=_B7),
    _pose("rtmpose-s-halpe26", "rtmpose-s", "halpe26", (256, 192), _P + "rtmpose-s_simcc-body7_pt-body7-halpe26_700e-256x192-7f134165_20230605.zip", params_m=5.70, flops_g=0.70, accuracy="Body8 PCK@0.1 93.01 / AUC 68.62", data=_B7),
    _pose("rtmpose-m-halpe26", "rtmpose-m", "halpe26", (256, 192), _P + "rtmpose-m_simcc-body7_pt-body7-halpe26_700e-256x192-4d3e73dd_20230605.zip", params_m=13.93, flops_g=1.95, accuracy="Body8 PCK@0.1 94.75 / AUC 71.91", data=_B7),
    _pose("rtmpose-l-halpe26", "rtmpose-l", "halpe26", (256, 192), _P + "rtmpose-l_simcc-body7_pt-body7-halpe26_700e-256x192-2abb7558_20230605.zip", params_m=28.11, flops_g=4.19, accuracy="Body8 PCK@0.1 95.37 / AUC 73.19", data=_B7),
    _pose("rtmpose-m-halpe26-384x288", "rtmpose-m", "halpe26", (384, 288), _P + "rtmpose-m_simcc-body7_pt-body7-halpe26_700e-384x288-89e6428b_20230605.zip", params_m=14.06, flops_g=4.37, accuracy="Body8 PCK@0.1 95.15 / AUC 73.56", data=_B7),
    _pose("rtmpose-l-halpe26-384x288", "rtmpose-l", "halpe26", (384, 288), _P + "rtmpose-l_simcc-body7_pt-body7-halpe26_700e-384x288-734182ce_20230605.zip", params_m=28.24, flops_g=9.40, accuracy="Body8 PCK@0.1 95.56 / AUC 74.38", data=_B7),
    _pose("rtmpose-x-halpe26-384x288", "rtmpose-x", "halpe26", (384, 288), _P + "rtmpose-x_simcc-body7_pt-body7-halpe26_700e-384x288-7fb6e239_20230606.zip", params_m=50.00, flops_g=17.29, accuracy="Body8 PCK@0.1 95.74 / AUC 74.82", data=_B7),
    # -- whole body 133 keypoints (1d); params are not published --
    _pose("dwpose-t", "rtmpose-t", "wholebody133", (256, 192), _P + "rtmpose-t_simcc-ucoco_dw-ucoco_270e-256x192-dcf277bf_20230728.zip", flops_g=0.5, accuracy="COCO-WholeBody AP 48.5 / AR 58.4", data=_WB),
    _pose("dwpose-s", "rtmpose-s", "wholebody133", (256, 192), _P + "rtmpose-s_simcc-ucoco_dw-ucoco_270e-256x192-3fd922c8_20230728.zip", flops_g=0.9, accuracy="COCO-WholeBody AP 53.8 / AR 63.2", data=_WB),
    _pose("dwpose-m", "rtmpose-m", "wholebody133", (256, 192), _P + "rtmpose-m_simcc-ucoco_dw-ucoco_270e-256x192-c8b76419_20230728.zip", flops_g=2.22, accuracy="COCO-WholeBody AP 60.6 / AR 69.5", data=_WB),
    _pose("dwpose-l", "rtmpose-l", "wholebody133", (256, 192), _P + "rtmpose-l_simcc-ucoco_dw-ucoco_270e-256x192-4d6dfc62_20230728.zip", flops_g=4.52, accuracy="COCO-WholeBody AP 63.1 / AR 71.7", data=_WB),
    _pose("dwpose-l-384x288", "rtmpose-l", "wholebody133", (384, 288), _P + "rtmpose-l_simcc-ucoco_dw-ucoco_270e-384x288-2438fd99_20230728.zip", flops_g=10.07, accuracy="COCO-WholeBody AP 66.5 / AR 74.3", data=_WB),
    _pose("rtmw-m", "rtmw-m", "wholebody133", (256, 192), _RTMW + "onnx_sdk/rtmw-dw-m-s_simcc-cocktail14_270e-256x192_20231122.zip", family="rtmw", flops_g=4.3, accuracy="COCO-WholeBody AP 58.2 / AR 67.3", data=_C14, notes="mmpose README links this 'rtmw-dw-m-s' zip for RTMW-m (model_zoo.md discrepancy 2)"),
    _pose("rtmw-dw-l-m", "rtmw-m", "wholebody133", (256, 192), _RTMW + "onnx_sdk/rtmw-dw-l-m_simcc-cocktail14_270e-256x192_20231122.zip", family="rtmw", data=_C14, notes="rtmlib Wholebody 'lightweight'; no OpenMMLab page lists it"),
    _pose("rtmw-l", "rtmw-l", "wholebody133", (256, 192), _RTMW + "onnx_sdk/rtmw-dw-x-l_simcc-cocktail14_270e-256x192_20231122.zip", family="rtmw", flops_g=7.9, accuracy="COCO-WholeBody AP 66.0 / AR 74.6", data=_C14),
    _pose("rtmw-l-384x288", "rtmw-l", "wholebody133", (384, 288), _RTMW + "onnx_sdk/rtmw-dw-x-l_simcc-cocktail14_270e-384x288_20231122.zip", family="rtmw", flops_g=17.7, accuracy="COCO-WholeBody AP 70.1 / AR 78.0", data=_C14),
    _pose("rtmw-x-384x288", "rtmw-x", "wholebody133", (384, 288), _RTMW + "onnx_sdk/rtmw-x_simcc-cocktail13_pt-ucoco_270e-384x288-0949e3a9_20230925.zip", family="rtmw", flops_g=29.3, accuracy="COCO-WholeBody AP 70.2 (alpha, cocktail13)", data="Cocktail13", notes="listed only in the rtmlib README"),
    # -- hand, face, animal (1e) --
    _pose("rtmpose-m-hand", "rtmpose-m", "hand21", (256, 256), _P + "rtmpose-m_simcc-hand5_pt-aic-coco_210e-256x256-74fb594_20230320.zip", flops_g=2.581, accuracy="COCO-WB-Hand PCK@0.2 81.5; Hand5 AUC 83.9", data="Hand5"),
    _pose("rtmpose-t-face", "rtmpose-t", "face106", (256, 256), _P + "rtmpose-t_simcc-face6_pt-in1k_120e-256x256-df79d9a5_20230529.zip", flops_g=0.652, accuracy="LaPa NME 1.67", data="Face6"),
    _pose("rtmpose-s-face", "rtmpose-s", "face106", (256, 256), _P + "rtmpose-s_simcc-face6_pt-in1k_120e-256x256-d779fdef_20230529.zip", flops_g=1.119, accuracy="LaPa NME 1.59", data="Face6"),
    _pose("rtmpose-m-face", "rtmpose-m", "face106", (256, 256), _P + "rtmpose-m_simcc-face6_pt-in1k_120e-256x256-72a37400_20230529.zip", flops_g=2.852, accuracy="LaPa NME 1.44", data="Face6"),
    _pose("rtmpose-m-ap10k", "rtmpose-m", "ap10k17", (256, 256), _P + "rtmpose-m_simcc-ap10k_pt-aic-coco_210e-256x256-7a041aa1_20230206.zip", flops_g=2.57, accuracy="AP-10K val AP 72.2", data="AP-10K"),
    # -- published as PyTorch checkpoints only (section 3): export required --
    _pose("rtmpose-t-aic-coco", "rtmpose-t", "coco17", (256, 192), _PTH + "rtmpose-tiny_simcc-aic-coco_pt-aic-coco_420e-256x192-cfc8f33d_20230126.pth", params_m=3.34, flops_g=0.36, accuracy="COCO AP 68.5", data="AIC+COCO"),
    _pose("rtmpose-s-aic-coco", "rtmpose-s", "coco17", (256, 192), _PTH + "rtmpose-s_simcc-aic-coco_pt-aic-coco_420e-256x192-fcb2599b_20230126.pth", params_m=5.47, flops_g=0.68, accuracy="COCO AP 72.2", data="AIC+COCO"),
    _pose("rtmpose-m-aic-coco", "rtmpose-m", "coco17", (256, 192), _PTH + "rtmpose-m_simcc-aic-coco_pt-aic-coco_420e-256x192-63eb25f7_20230126.pth", params_m=13.59, flops_g=1.93, accuracy="COCO AP 75.8", data="AIC+COCO"),
    _pose("rtmpose-l-aic-coco", "rtmpose-l", "coco17", (256, 192), _PTH + "rtmpose-l_simcc-aic-coco_pt-aic-coco_420e-256x192-f016ffe0_20230126.pth", params_m=27.66, flops_g=4.16, accuracy="COCO AP 76.5", data="AIC+COCO"),
    _pose("rtmpose-m-aic-coco-384x288", "rtmpose-m", "coco17", (384, 288), _PTH + "rtmpose-m_simcc-aic-coco_pt-aic-coco_420e-384x288-a62a0b32_20230228.pth", params_m=13.72, flops_g=4.33, accuracy="COCO AP 77.0", data="AIC+COCO"),
    _pose("rtmpose-l-aic-coco-384x288", "rtmpose-l", "coco17", (384, 288), _PTH + "rtmpose-l_simcc-aic-coco_pt-aic-coco_420e-384x288-97d6cb0f_20230228.pth", params_m=27.79, flops_g=9.35, accuracy="COCO AP 77.3", data="AIC+COCO"),
    _pose("rtmpose-t-coco", "rtmpose-t", "coco17", (256, 192), _PTH + "rtmpose-tiny_simcc-coco_pt-aic-coco_420e-256x192-e613ba3f_20230127.pth", accuracy="COCO AP 68.2", data="COCO"),
    _pose("rtmpose-s-coco", "rtmpose-s", "coco17", (256, 192), _PTH + "rtmpose-s_simcc-coco_pt-aic-coco_420e-256x192-8edcf0d7_20230127.pth", accuracy="COCO AP 71.6", data="COCO"),
    _pose("rtmpose-m-coco", "rtmpose-m", "coco17", (256, 192), _PTH + "rtmpose-m_simcc-coco_pt-aic-coco_420e-256x192-d8dd5ca4_20230127.pth", accuracy="COCO AP 74.6", data="COCO"),
    _pose("rtmpose-l-coco", "rtmpose-l", "coco17", (256, 192), _PTH + "rtmpose-l_simcc-coco_pt-aic-coco_420e-256x192-1352a4d2_20230127.pth", accuracy="COCO AP 75.8", data="COCO"),
    _pose("rtmpose-m-mpii", "rtmpose-m", "mpii16", (256, 256), _PTH + "rtmpose-m_simcc-mpii_pt-aic-coco_210e-256x256-ec4dbec8_20230206.pth", accuracy="MPII PCKh 0.907", data="MPII"),
    _pose("rtmpose-m-crowdpose", "rtmpose-m", "crowdpose14", (256, 192), _PTH + "rtmpose-m_simcc-crowdpose_pt-aic-coco_210e-256x192-e6192cac_20230224.pth", accuracy="CrowdPose AP 0.706", data="CrowdPose"),
    _pose("rtmpose-s-aic-coco-pruned", "rtmpose-s-pruned", "coco17", (256, 192), "https://download.openmmlab.com/mmrazor/v1/pruning/group_fisher/rtmpose-s/group_fisher_finetune_rtmpose-s_8xb256-420e_aic-coco-256x192.pth", params_m=3.43, flops_g=0.35, accuracy="COCO AP 69.4", data="AIC+COCO", notes="MMRazor GroupFisher pruning: channel widths differ from RTMPose-s, no synthesis"),
    _pose("rtmpose-m-wholebody", "rtmpose-m", "wholebody133", (256, 192), _PTH + "rtmpose-m_simcc-coco-wholebody_pt-aic-coco_270e-256x192-cd5e845c_20230123.pth", flops_g=2.22, accuracy="COCO-WholeBody AP 58.2 / AR 67.4", data="COCO-WholeBody"),
    _pose("rtmpose-l-wholebody", "rtmpose-l", "wholebody133", (256, 192), _PTH + "rtmpose-l_simcc-coco-wholebody_pt-aic-coco_270e-256x192-6f206314_20230124.pth", flops_g=4.52, accuracy="COCO-WholeBody AP 61.1 / AR 70.0", data="COCO-WholeBody"),
    _pose("rtmpose-l-wholebody-384x288", "rtmpose-l", "wholebody133", (384, 288), _PTH + "rtmpose-l_simcc-coco-wholebody_pt-aic-coco_270e-384x288-eaeb96c8_20230125.pth", flops_g=10.07, accuracy="COCO-WholeBody AP 64.8 / AR 73.0", data="COCO-WholeBody"),
    _pose("rtmpose-x-wholebody-384x288", "rtmpose-x", "wholebody133", (384, 288), _PTH + "rtmpose-x_simcc-coco-wholebody_pt-body7_270e-384x288-401dfc90_20230629.pth", flops_g=18.1, accuracy="COCO-WholeBody AP 65.3 / AR 73.3", data="COCO-WholeBody"),
    _pose("rtmw-x", "rtmw-x", "wholebody133", (256, 192), _RTMW + "rtmw-x_simcc-cocktail14_pt-ucoco_270e-256x192-13a2546d_20231208.pth", family="rtmw", flops_g=13.1, accuracy="COCO-WholeBody AP 67.2 / AR 75.2", data=_C14),
    _pose("rtmw-x-cocktail14-384x288", "rtmw-x", "wholebody133", (384, 288), _RTMW + "rtmw-x_simcc-cocktail14_pt-ucoco_270e-384x288-f840f204_20231122.pth", family="rtmw", flops_g=29.3, accuracy="COCO-WholeBody AP 70.2 / AR 78.1", data=_C14),
    _pose("rtmpose-m-hand-cocowb", "rtmpose-m", "hand21", (256, 256), _PTH + "rtmpose-m_simcc-coco-wholebody-hand_pt-aic-coco_210e-256x256-99477206_20230228.pth", accuracy="COCO-WB-Hand PCK@0.2 0.815", data="COCO-WholeBody-Hand"),
    _pose("rtmpose-m-face-cocowb", "rtmpose-m", "face68", (256, 256), _PTH + "rtmpose-m_simcc-coco-wholebody-face_pt-aic-coco_60e-256x256-62026ef2_20230228.pth", accuracy="COCO-WB-Face NME 0.0466", data="COCO-WholeBody-Face"),
    _pose("rtmpose-m-face-lapa", "rtmpose-m", "face106", (256, 256), _PTH + "rtmpose-m_simcc-lapa_pt-aic-coco_120e-256x256-762b1ae2_20230422.pth", accuracy="LaPa NME 1.29", data="LaPa"),
    _pose("rtmpose-m-face-wflw", "rtmpose-m", "wflw98", (256, 256), _PTH + "rtmpose-m_simcc-wflw_pt-aic-coco_60e-256x256-dc1dcdcf_20230228.pth", accuracy="WFLW NME 4.01", data="WFLW"),
    # -- detectors (section 2) --
    _det("rtmdet-nano", "rtmdet", "rtmdet-nano", 320, "https://download.openmmlab.com/mmpose/v1/projects/rtmpose/rtmpose-cpu.zip", member="rtmpose-ort/rtmdet-nano/end2end.onnx", params_m=0.99, flops_g=0.31, accuracy="COCO person AP 40.3", data="COCO + Objects365 person", notes="only published inside the rtmpose-cpu.zip SDK demo bundle"),
    _det("rtmdet-m", "rtmdet", "rtmdet-m", 640, "https://download.openmmlab.com/mmpose/v1/projects/rtmpose/rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth", params_m=24.66, flops_g=38.95, accuracy="COCO person AP 62.5", data="COCO + Objects365 person", notes="an onnx_sdk zip of this name appears only in third-party code (unconfirmed)"),
    _det("rtmdet-nano-hand", "rtmdet", "rtmdet-nano", 320, _P + "rtmdet_nano_8xb32-300e_hand-267f9c8f.zip", flops_g=0.31, accuracy="OneHand10K AP 76.0", data="5 hand datasets", notes="detects hands, not people"),
    _det("rtmdet-tiny-humanart", "rtmdet", "rtmdet-tiny", 640, _PTH + "rtmdet_tiny_8xb32-300e_humanart-7da5554e.pth", accuracy="Human-Art AP 46.6", data=_HA),
    _det("rtmdet-s-humanart", "rtmdet", "rtmdet-s", 640, _PTH + "rtmdet_s_8xb32-300e_humanart-af5bd52d.pth", accuracy="Human-Art AP 50.6", data=_HA),
    _det("yolox-nano-humanart", "yolox", "yolox-nano", 416, _P + "yolox_nano_8xb8-300e_humanart-40f6f0d0.zip", accuracy="Human-Art AP 38.9", data=_HA),
    _det("yolox-tiny-humanart", "yolox", "yolox-tiny", 416, _P + "yolox_tiny_8xb8-300e_humanart-6f3252f9.zip", params_m=5.06, accuracy="Human-Art AP 47.7", data=_HA),
    _det("yolox-s-humanart", "yolox", "yolox-s", 640, _P + "yolox_s_8xb8-300e_humanart-3ef259a7.zip", accuracy="Human-Art AP 54.6", data=_HA),
    _det("yolox-m-humanart", "yolox", "yolox-m", 640, _P + "yolox_m_8xb8-300e_humanart-c2c7a14a.zip", params_m=25.3, accuracy="Human-Art AP 59.1", data=_HA),
    _det("yolox-l-humanart", "yolox", "yolox-l", 640, _P + "yolox_l_8xb8-300e_humanart-ce1d7a62.zip", accuracy="Human-Art AP 60.2", data=_HA),
    _det("yolox-x-humanart", "yolox", "yolox-x", 640, _P + "yolox_x_8xb8-300e_humanart-a39d44ed.zip", accuracy="Human-Art AP 61.3", data=_HA),
    # Megvii's own exports: 80 COCO classes, raw head (no NMS in the graph), static batch 1
    _det("yolox-nano-coco", "yolox", "yolox-nano", 416, _MEGVII + "yolox_nano.onnx", output_format=DetectorOutput.YOLOX_RAW, accuracy="COCO mAP 25.8", data="COCO (80 classes)"),
    _det("yolox-tiny-coco", "yolox", "yolox-tiny", 416, _MEGVII + "yolox_tiny.onnx", output_format=DetectorOutput.YOLOX_RAW, params_m=5.06, accuracy="COCO mAP 32.8", data="COCO (80 classes)"),
    _det("yolox-s-coco", "yolox", "yolox-s", 640, _MEGVII + "yolox_s.onnx", output_format=DetectorOutput.YOLOX_RAW, accuracy="COCO mAP 40.5", data="COCO (80 classes)"),
    _det("yolox-m-coco", "yolox", "yolox-m", 640, _MEGVII + "yolox_m.onnx", output_format=DetectorOutput.YOLOX_RAW, params_m=25.3, accuracy="COCO mAP 47.2", data="COCO (80 classes)"),
    _det("yolox-l-coco", "yolox", "yolox-l", 640, _MEGVII + "yolox_l.onnx", output_format=DetectorOutput.YOLOX_RAW, accuracy="COCO mAP 50.1", data="COCO (80 classes)"),
    _det("yolox-darknet53-coco", "yolox", "yolox-darknet53", 640, _MEGVII + "yolox_darknet.onnx", output_format=DetectorOutput.YOLOX_RAW, accuracy="COCO mAP 48.0", data="COCO (80 classes)"),
    _det("yolox-x-coco", "yolox", "yolox-x", 640, _MEGVII + "yolox_x.onnx", output_format=DetectorOutput.YOLOX_RAW, accuracy="COCO mAP 51.5", data="COCO (80 classes)"),
)  # fmt: skip

REGISTRY: dict[str, RegistryEntry] = {entry.name: entry for entry in ENTRIES}


class UnknownModelError(KeyError):
    """A name that is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_entry(name: str) -> RegistryEntry:
    """Look a model up by name.

    Raises:
        UnknownModelError: with the closest names, when ``name`` is not registered.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} `python -m service.models list` shows every name."
        ) from None
