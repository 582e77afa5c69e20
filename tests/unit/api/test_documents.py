"""Generated documents stay in sync: docs/openapi.json and the README's tables."""

from __future__ import annotations

import json
from pathlib import Path

from service.api.http import openapi_document
from service.config import Settings, settings_table
from service.models.__main__ import markdown_table

ROOT = Path(__file__).resolve().parents[3]


def test_openapi_json_is_current() -> None:
    checked_in = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert checked_in == openapi_document(), "docs/openapi.json is stale: run `make openapi`"


def test_openapi_documents_every_option_and_error() -> None:
    document = openapi_document()
    pose = document["paths"]["/v1/pose"]["post"]
    parameters = {p["name"] for p in pose["parameters"]}
    assert {"model", "detector", "boxes", "max_people", "bbox_threshold", "keypoint_threshold", "flip_test", "format",
            "image_id", "render", "X-Request-Timeout", "X-Request-ID"} <= parameters  # fmt: skip
    assert {"200", "400", "401", "413", "415", "422", "429", "503", "504"} <= set(pose["responses"])
    assert set(pose["requestBody"]["content"]) >= {"multipart/form-data", "application/json", "image/jpeg"}


def section(text: str, name: str) -> str:
    start, end = f"<!-- {name} -->\n", f"\n<!-- /{name} -->"
    return text[text.index(start) + len(start) : text.index(end)]


def test_readme_tables_are_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert section(readme, "config-table") == settings_table(), "run `make readme`"
    assert section(readme, "model-table") == markdown_table(), "run `make readme`"


def test_readme_names_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`POSE_{name.upper()}`" in readme
