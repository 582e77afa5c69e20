"""Numpy reference of the ops in the convolutional part, for calibrating synthetic BatchNorm.

While a materialized graph is built, every node whose inputs are known is also
evaluated here on a small calibration batch; folded Conv+BN layers then use the
measured per-channel statistics of their own pre-activations, exactly as a
trained BatchNorm would. Arrays are ``[N, C, H, W]`` float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# a node's attributes as onnx.helper.make_node takes them (int, float, str or lists of them; Any there too)
Attrs = dict[str, Any]


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, pad: int, groups: int) -> np.ndarray:
    """``Conv`` without bias: ``x [N, C, H, W]``, ``w [O, C / groups, k, k]`` -> ``[N, O, Ho, Wo]``."""
    k = w.shape[-1]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # [N, C, Ho, Wo, k, k]
    n, c, ho, wo = win.shape[:4]
    if groups == 1:
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
        out = cols @ w.reshape(w.shape[0], -1).T
        return out.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)
    if groups == c and w.shape[0] == c:
        return np.einsum("nchwij,cij->nchw", win, w[:, 0], optimize=True)
    per_in, per_out = c // groups, w.shape[0] // groups
    parts = [
        conv2d(x[:, i * per_in : (i + 1) * per_in], w[i * per_out : (i + 1) * per_out], stride, pad, 1)
        for i in range(groups)
    ]
    return np.concatenate(parts, axis=1)


def _maxpool(x: np.ndarray, a: Attrs) -> np.ndarray:
    k = int(a["kernel_shape"][0])
    p = int(a["pads"][0])
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    return sliding_window_view(xp, (k, k), axis=(2, 3)).max(axis=(-1, -2))


def _depth_to_space(x: np.ndarray, a: Attrs) -> np.ndarray:
    b = int(a["blocksize"])
    n, c, h, w = x.shape
    y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def _slice(x: np.ndarray, starts: np.ndarray, ends: np.ndarray, axes: np.ndarray, steps: np.ndarray) -> np.ndarray:
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        index[int(ax)] = slice(int(s), int(min(e, np.iinfo(np.int32).max)), int(st))
    return x[tuple(index)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


# op type -> f(input arrays, attributes) -> output array
EAGER: dict[str, Callable[[list[np.ndarray], Attrs], np.ndarray]] = {
    "Sigmoid": lambda v, a: _sigmoid(v[0]),
    "Relu": lambda v, a: np.maximum(v[0], 0),
    "Mul": lambda v, a: v[0] * v[1],
    "Add": lambda v, a: v[0] + v[1],
    "Concat": lambda v, a: np.concatenate(v, axis=int(a["axis"])),
    "GlobalAveragePool": lambda v, a: v[0].mean(axis=(2, 3), keepdims=True),
    "HardSigmoid": lambda v, a: np.clip(float(a["alpha"]) * v[0] + float(a["beta"]), 0.0, 1.0).astype(np.float32),
    "MaxPool": lambda v, a: _maxpool(v[0], a),
    "Resize": lambda v, a: v[0].repeat(2, axis=2).repeat(2, axis=3),  # only the nearest 2x upsample is built
    "DepthToSpace": lambda v, a: _depth_to_space(v[0], a),
    "Slice": lambda v, a: _slice(*v),
}


CALIBRATION_SEED = 20230315  # fixed: the calibration data is not part of the model seed
CALIBRATION_IMAGES = 2
CHROMA = 0.25  # colour noise relative to luminance
OCTAVE_EXPONENT = 0.8  # octave amplitude ~ block side^0.8


def calibration_batch(width: int, height: int, *, raw_pixels: bool = False) -> np.ndarray:
    """Calibration images ``[2, 3, height, width]`` with a roughly natural spectrum and colour.

    A sum of blocky noise octaves (blocks of 1 to 32 pixels, coarser octaves
    stronger: sharp edges and flat areas, as in photos), mostly luminance shared
    by the three channels plus a little chroma, scaled like a normalised image
    (zero mean, unit variance) or, with ``raw_pixels``, like 0-255 pixels
    (mean 114, std 58, clipped).
    """
    rng = np.random.default_rng(CALIBRATION_SEED)
    n = CALIBRATION_IMAGES
    image = np.zeros((n, 3, height, width), dtype=np.float32)
    for block in (1, 2, 4, 8, 16, 32):
        h, w = -(-height // block), -(-width // block)
        luma = rng.standard_normal((n, 1, h, w), dtype=np.float32)
        chroma = rng.standard_normal((n, 3, h, w), dtype=np.float32)
        octave = (luma + CHROMA * chroma).repeat(block, axis=2).repeat(block, axis=3)[:, :, :height, :width]
        image += np.float32(block**OCTAVE_EXPONENT) * octave
    image /= image.std()
    if raw_pixels:
        return np.clip(114.0 + 58.0 * image, 0.0, 255.0).astype(np.float32)
    return image
