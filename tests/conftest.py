"""Shared test set-up: markers by directory, the real assets beside the project."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
SHARED_ASSETS = ROOT.parent / "shared" / "assets"
RTMDET_NANO_ONNX = SHARED_ASSETS / "weights" / "rtmdet-nano-person.onnx"
COCO4 = SHARED_ASSETS / "coco4"


MARKERS = {
    "unit": pytest.mark.unit,
    "integration": pytest.mark.integration,
    "deploy": pytest.mark.deploy,
    "browser": pytest.mark.browser,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder under tests/ (unit, integration, deploy, browser)."""
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if path.is_relative_to(TESTS) and (marker := MARKERS.get(path.relative_to(TESTS).parts[0])):
            item.add_marker(marker)


@pytest.fixture(scope="session")
def rtmdet_nano_onnx() -> Path:
    """The real trained RTMDet-nano export of ../shared/assets (skips where absent)."""
    if not RTMDET_NANO_ONNX.exists():
        pytest.skip(f"real RTMDet-nano export not found at {RTMDET_NANO_ONNX} (../shared/assets is absent)")
    return RTMDET_NANO_ONNX


@pytest.fixture(scope="session")
def coco4() -> Path:
    """Four real COCO val2017 images with annotations (skips where absent)."""
    if not (COCO4 / "test_coco.json").exists():
        pytest.skip(f"COCO test images not found at {COCO4} (../shared/assets is absent)")
    return COCO4
