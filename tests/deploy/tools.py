"""The deployment files and the tools that check them: every tool is found or its test skips with the reason."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS_BIN = ROOT / ".deploy-venv" / "bin"
OVERLAYS = ("cpu", "gpu", "cpu-bf16")


def default(setting: str) -> Any:
    """A setting's default (not the environment's value)."""
    return Settings.model_fields[setting].default


def tool(name: str) -> str:
    """Path of ``name`` from .deploy-venv/bin (``make deploy-tools``) or PATH; skips the test where absent."""
    local = TOOLS_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not found: `make deploy-tools` installs it into .deploy-venv/bin")
    return found


def run(*args: str | Path, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def kubectl_with_kustomize_v4() -> str:
    """kubectl whose built-in kustomize renders our overlays (v4+: `labels`, `patches`); else skip."""
    kubectl = tool("kubectl")
    version = run(kubectl, "version", "--client").stdout
    match = re.search(r"Kustomize Version: v(\d+)", version)
    if match is None or int(match.group(1)) < 4:
        pytest.skip(
            f"{kubectl} carries no kustomize v4+ ({version.strip()!r}): `make deploy-tools` brings kubectl 1.37"
        )
    return kubectl


def render(overlay: str) -> list[dict[str, Any]]:
    """The objects of ``deploy/k8s/overlays/<overlay>`` as ``kubectl kustomize`` renders them."""
    result = run(kubectl_with_kustomize_v4(), "kustomize", DEPLOY / "k8s" / "overlays" / overlay)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "rtmpose.json").read_text())


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and template variable queries."""
    board = dashboard()
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"] for rule in group["rules"]]


def adapter_rules() -> list[dict[str, Any]]:
    return load_yaml(DEPLOY / "k8s" / "prometheus-adapter" / "values.yaml")["rules"]["custom"]
