"""ONNX metadata every synthesized model carries, so nobody mistakes it for trained weights."""

from __future__ import annotations

from service.models.synth.graph import GENERATOR


def synthetic_metadata(arch: str, seed: int) -> dict[str, str]:
    """``metadata_props`` of a synthesized model: ``weights=synthetic``, its arch, seed and generator."""
    return {"weights": "synthetic", "arch": arch, "seed": str(seed), "generator": GENERATOR}
