"""Generated documents stay in sync: docs/openapi.json, the README's tables, the gRPC stubs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from service.api.http.app import openapi_document
from service.config import Settings, settings_table
from service.models.__main__ import markdown_table

ROOT = Path(__file__).resolve().parents[3]


def test_openapi_json_is_current() -> None:
    checked_in = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert checked_in == openapi_document(), "docs/openapi.json is stale: run `make docs`"


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
    assert section(readme, "config-table") == settings_table(), "run `make docs`"
    assert section(readme, "model-table") == markdown_table(), "run `make docs`"


def test_readme_names_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`POSE_{name.upper()}`" in readme


def test_grpc_stubs_are_current(tmp_path: Path) -> None:
    """service/wire/_proto is what `make proto` makes of proto/pose/v1/pose.proto with the pinned grpcio-tools."""
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("grpcio-tools is not installed (the dev extra has it)")
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec is not None
    assert spec.loader is not None
    gen_proto = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_proto)
    written = gen_proto.generate(tmp_path)
    checked_in = ROOT / "service" / "wire" / "_proto"
    assert {p for p in checked_in.rglob("*") if p.is_file() and "__pycache__" not in p.parts} == {
        checked_in / p for p in written
    }, "run `make proto`"
    for path in written:
        assert (checked_in / path).read_text() == (tmp_path / path).read_text(), f"{path} is stale: run `make proto`"
