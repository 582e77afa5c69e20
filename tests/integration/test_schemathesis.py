"""Property-based run of the OpenAPI schema against the real server: no 5xx, no schema violation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import Server

CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(server: Server, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json", "--checks", CHECKS,
        "--max-time", "45", "--max-examples", "30", "--seed", "1", "--output-truncate", "true",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    summary = run.stdout[-3000:]
    assert run.returncode == 0, summary
    assert " passed" in summary
