"""Network inputs: detector letterbox, top-down crop geometry, affine warp, normalisation.

Reproduces MMPose's test-time pipeline for top-down models (``GetBBoxCenterScale``
-> ``TopdownAffine`` with ``use_udp=False`` -> ``PoseDataPreprocessor``) and
mmdet's ``Resize(keep_ratio=True)`` + ``Pad(114)`` for RTMDet/YOLOX, batch-first.

Coordinates follow cv2/MMPose: pixel centres sit at integer coordinates, boxes are
(x1, y1, x2, y2) in the same frame, sizes are (width, height).

Legend:
    N: crops (people) in the batch.
    H, W: source image height and width.
    h, w: network input height and width (``input_size = (w, h)``).
"""

from __future__ import annotations

from typing import TypeVar

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "LETTERBOX_PAD_VALUE",
    "bbox_xyxy_to_center_scale",
    "fix_aspect_ratio",
    "get_warp_matrices",
    "letterbox",
    "normalize_to_nchw",
    "warp_crops",
]

_T = TypeVar("_T", bound=np.generic)
LETTERBOX_PAD_VALUE = 114  # mmdet Pad / rtmlib canvas value for RTMDet and YOLOX


def letterbox(
    image: NDArray[np.uint8],
    size: tuple[int, int],
    out: NDArray[np.uint8] | None = None,
    *,
    pad_value: int = LETTERBOX_PAD_VALUE,
) -> tuple[NDArray[np.uint8], tuple[float, float]]:
    """Resize keeping the aspect ratio into a ``size`` canvas, image at the top-left.

    The resized size is mmcv's ``rescale_size``: ``int(side * r + 0.5)`` with
    ``r = min(w / W, h / H)`` (mmcv's long-edge rule, for the square inputs detectors
    use); bilinear (``cv2.INTER_LINEAR``); the rest of the canvas is ``pad_value``.
    Channels are left as they are.

    Args:
        image: (H, W, 3) uint8 image.
        size: Canvas (w, h).
        out: Optional preallocated (h, w, 3) uint8 canvas (e.g. one slot of a batch buffer).

    Returns:
        canvas: (h, w, 3) uint8, ``out`` when given.
        ratio: (ratio_x, ratio_y), resized / original size per axis: mmdet's
            ``scale_factor``. Divide letterboxed coordinates by it to get image pixels.
    """
    width, height = size
    src_h, src_w = image.shape[:2]
    scale = min(width / src_w, height / src_h)
    new_w = min(width, max(1, int(src_w * scale + 0.5)))
    new_h = min(height, max(1, int(src_h * scale + 0.5)))
    canvas = np.empty((height, width, 3), np.uint8) if out is None else out
    if canvas.shape != (height, width, 3) or canvas.dtype != np.uint8:
        raise ValueError(f"out must be ({height}, {width}, 3) uint8, got {canvas.shape} {canvas.dtype}")
    # resize straight into the canvas (cv2 writes into the strided view)
    region = canvas[:new_h, :new_w]
    if (new_w, new_h) == (src_w, src_h):
        region[...] = image
    else:
        resized = cv2.resize(image, (new_w, new_h), dst=region, interpolation=cv2.INTER_LINEAR)
        if not np.may_share_memory(resized, canvas):
            region[...] = resized
    canvas[new_h:] = pad_value
    canvas[:new_h, new_w:] = pad_value
    return canvas, (new_w / src_w, new_h / src_h)


def bbox_xyxy_to_center_scale(
    boxes: ArrayLike, padding: float = 1.25
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Boxes to MMPose (center, scale): ``GetBBoxCenterScale`` / ``bbox_xyxy2cs``.

    Args:
        boxes: (N, 4) boxes (x1, y1, x2, y2).
        padding: Factor applied to the box width and height (MMPose default 1.25).

    Returns:
        centers: (N, 2) float32 box centres (x, y).
        scales: (N, 2) float32 padded box sizes (w, h), not yet fixed to the model's aspect ratio.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centers = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    scales = (boxes[:, 2:] - boxes[:, :2]) * padding
    return centers.astype(np.float32), scales.astype(np.float32)


def fix_aspect_ratio(scales: ArrayLike, aspect_ratio: float) -> NDArray[np.float32]:
    """Grow the short side of each scale to ``aspect_ratio`` (MMPose ``TopdownAffine._fix_aspect_ratio``).

    Args:
        scales: (N, 2) sizes (w, h).
        aspect_ratio: Target w / h, i.e. ``input_w / input_h`` of the pose model.

    Returns:
        (N, 2) float32 sizes with ``w / h == aspect_ratio``.
    """
    scales = np.asarray(scales, dtype=np.float64).reshape(-1, 2)
    w, h = scales[:, :1], scales[:, 1:]
    fixed = np.where(w > h * aspect_ratio, np.hstack([w, w / aspect_ratio]), np.hstack([h * aspect_ratio, h]))
    return fixed.astype(np.float32)


def get_warp_matrices(
    centers: ArrayLike,
    scales: ArrayLike,
    output_size: tuple[int, int],
    inverse: bool = False,
) -> NDArray[np.float64]:
    """Affine matrices box -> network input: MMPose ``get_warp_matrix`` with rot=0, shift=0 (non-UDP).

    The box centre maps to (w / 2, h / 2) and the box *width* ``scales[:, 0]`` maps to w;
    both axes use that one factor ``s = w / scale_w`` (as MMPose, whose third point is
    the second rotated by 90 degrees), so scales must already be aspect-fixed.
    Computed in closed form in float64 rather than through ``cv2.getAffineTransform``
    on float32 points (the same matrix, without MMPose's float32 rounding).

    Args:
        centers: (N, 2) box centres (x, y).
        scales: (N, 2) aspect-fixed box sizes (w, h).
        output_size: Network input (w, h).
        inverse: False for image -> crop (to warp), True for crop -> image.

    Returns:
        (N, 2, 3) float64 matrices for ``cv2.warpAffine`` / ``cv2.transform``.
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    scale_w = np.asarray(scales, dtype=np.float64).reshape(-1, 2)[:, 0]
    out_w, out_h = output_size
    half = np.array([out_w * 0.5, out_h * 0.5])
    matrices = np.zeros((len(centers), 2, 3), dtype=np.float64)
    if inverse:
        factor = scale_w / out_w  # image pixels per crop pixel
        matrices[:, 0, 0] = matrices[:, 1, 1] = factor
        matrices[:, :, 2] = centers - half * factor[:, None]
    else:
        factor = out_w / scale_w
        matrices[:, 0, 0] = matrices[:, 1, 1] = factor
        matrices[:, :, 2] = half - centers * factor[:, None]
    return matrices


def warp_crops(
    image: NDArray[np.uint8],
    matrices: NDArray[np.floating],
    output_size: tuple[int, int],
    out: NDArray[np.uint8] | None = None,
) -> NDArray[np.uint8]:
    """Cut the crops: ``cv2.warpAffine`` (bilinear, constant 0 border) per matrix into one buffer.

    Args:
        image: (H, W, 3) uint8 source image.
        matrices: (N, 2, 3) image -> crop matrices (``get_warp_matrices(..., inverse=False)``).
        output_size: Crop (w, h).
        out: Optional preallocated (N, h, w, 3) uint8 buffer (C-contiguous per crop).

    Returns:
        (N, h, w, 3) uint8 crops, ``out`` when given.
    """
    width, height = output_size
    count = len(matrices)
    crops = np.empty((count, height, width, 3), np.uint8) if out is None else out
    if crops.shape != (count, height, width, 3) or crops.dtype != np.uint8:
        raise ValueError(f"out must be ({count}, {height}, {width}, 3) uint8, got {crops.shape} {crops.dtype}")
    for i in range(count):
        # warp straight into slot i (no per-crop allocation)
        warped = cv2.warpAffine(
            image,
            np.asarray(matrices[i], dtype=np.float64),
            (width, height),
            dst=crops[i],
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        if not np.may_share_memory(warped, crops):
            crops[i] = warped
    return crops


def normalize_to_nchw(
    batch: NDArray[np.uint8],
    mean: ArrayLike,
    std: ArrayLike,
    to_rgb: bool,
    out: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """uint8 NHWC -> normalised float32 NCHW, with the optional BGR -> RGB swap folded in.

    ``(x - mean) / std`` per channel, computed in float32 straight from the uint8
    input (no float64 intermediate, no separate channel-swap copy): the swap and the
    layout change are views, the arithmetic is two in-place ufunc passes over ``out``.

    Args:
        batch: (N, h, w, 3) uint8 images (BGR as decoded).
        mean: (3,) means in the order of the channels fed to the network, i.e. after the swap.
        std: (3,) standard deviations, same order.
        to_rgb: Reverse the channels (BGR -> RGB) first: True for RTMPose, False for RTMDet/YOLOX.
        out: Optional preallocated (N, 3, h, w) float32 buffer.

    Returns:
        (N, 3, h, w) float32, ``out`` when given.
    """
    if batch.ndim != 4 or batch.shape[3] != 3:
        raise ValueError(f"batch must be (N, h, w, 3), got {batch.shape}")
    count, height, width, _ = batch.shape
    result = np.empty((count, 3, height, width), np.float32) if out is None else out
    if result.shape != (count, 3, height, width) or result.dtype != np.float32:
        raise ValueError(f"out must be ({count}, 3, {height}, {width}) float32, got {result.shape} {result.dtype}")
    mean32 = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    inv_std32 = (1.0 / np.asarray(std, dtype=np.float64)).astype(np.float32).reshape(1, 3, 1, 1)
    channels = batch.transpose(0, 3, 1, 2)
    if to_rgb:
        channels = channels[:, ::-1]
    np.subtract(channels, mean32, out=result, dtype=np.float32)
    np.multiply(result, inv_std32, out=result)
    return result
