"""Regenerate the generated parts of the docs: README tables and docs/openapi.json (``make docs``)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.api.http.app import openapi_document  # noqa: E402
from service.config import settings_table  # noqa: E402
from service.models.__main__ import markdown_table  # noqa: E402


def replace_section(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name} -->\n).*?(\n<!-- /{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {name} --> section")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main() -> None:
    readme = ROOT / "README.md"
    text = replace_section(readme.read_text(), "config-table", settings_table())
    text = replace_section(text, "model-table", markdown_table())
    readme.write_text(text)
    (ROOT / "docs" / "openapi.json").write_text(json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
