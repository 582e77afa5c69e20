#!/bin/sh
# Last step of a venv stage of the Dockerfile: drop what the service never runs from /opt/venv,
# pip and setuptools, and the test suites and test data that numpy, onnx and others ship.
set -eu
SITE=/opt/venv/lib/python3.11/site-packages
pip uninstall -y -q pip setuptools
find "$SITE" -depth -type d \( -name tests -o -path "$SITE/onnx/backend/test" \) -exec rm -rf {} +
