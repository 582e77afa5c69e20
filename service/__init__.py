"""RTMPose Service: multi-person 2D pose estimation served from ONNX models."""

__version__ = "0.1.0"
