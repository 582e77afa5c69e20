#!/bin/sh
# Last step of a venv stage of the Dockerfile: drop what the service never runs from /opt/venv,
# pip and setuptools, and the test suites and test data that numpy, onnx and others ship.
# Where OpenVINO is in (the CPU image), also its GPU and NPU plugins and the GPU kernel tuning
# cache (the service compiles for "CPU" only; the image has no GPU), and its C++ headers and
# CMake files: 64 MB of its 180 (deploy/README.md, Sizes).
set -eu
SITE=/opt/venv/lib/python3.11/site-packages
pip uninstall -y -q pip setuptools
find "$SITE" -depth -type d \( -name tests -o -path "$SITE/onnx/backend/test" \) -exec rm -rf {} +
if [ -d "$SITE/openvino" ]; then
    rm -rf "$SITE/openvino/libs/libopenvino_intel_gpu_plugin.so" "$SITE/openvino/libs/libopenvino_intel_npu_plugin.so" \
        "$SITE/openvino/libs/cache.json" "$SITE/openvino/include" "$SITE/openvino/cmake"
fi
