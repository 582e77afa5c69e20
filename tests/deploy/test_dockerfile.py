"""The Dockerfile: hadolint, and what the deployment files rely on (stages, user, ports, settings, volumes)."""

from __future__ import annotations

import re
import shlex
import tomllib

from service.config import Settings
from tests.deploy.tools import DEPLOY, ROOT, default, run, tool

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def stages() -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for instruction, args in instructions():
        if instruction == "FROM":
            current = []
            result[args.split(" AS ")[1].strip()] = current
        current.append((instruction, args))
    return result


def env(stage: list[tuple[str, str]]) -> dict[str, str]:
    pairs = [p for instruction, args in stage if instruction == "ENV" for p in shlex.split(args)]
    return dict(pair.split("=", 1) for pair in pairs)


def test_hadolint_passes() -> None:
    result = run(tool("hadolint"), DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_default_target_is_cpu_and_both_images_run_as_the_unprivileged_user() -> None:
    names = list(stages())
    assert names[-1] == "cpu"
    assert "gpu" in names
    for target in ("cpu", "gpu"):
        users = [args for instruction, args in stages()[target] if instruction == "USER"]
        assert users == ["10001:10001"], target  # numeric: Kubernetes' runAsNonRoot can check it


def test_the_base_is_the_one_the_local_debootstrap_script_tags() -> None:
    [base] = [args for instruction, args in instructions() if instruction == "ARG" and args.startswith("BASE_IMAGE=")]
    assert base == "BASE_IMAGE=debian:bookworm-slim"
    script = (DEPLOY / "image" / "debian-base.sh").read_text()
    assert "TAG=docker.io/library/debian:${SUITE}-slim" in script
    assert "SUITE=${1:-bookworm}" in script


def test_runtime_settings_are_real_settings_and_ports_are_exposed() -> None:
    runtime = env(stages()["runtime"])
    fields = {f"POSE_{name.upper()}" for name in Settings.model_fields}
    pose = {k: v for k, v in runtime.items() if k.startswith("POSE_")}
    assert set(pose) <= fields
    assert pose["POSE_MODEL_REPOSITORY"] == "/models"
    assert pose["POSE_TRT_CACHE"] == "/cache/trt"
    [exposed] = [args for instruction, args in stages()["runtime"] if instruction == "EXPOSE"]
    assert exposed.split() == [pose["POSE_HTTP_PORT"], pose["POSE_GRPC_PORT"]]
    assert {int(pose["POSE_HTTP_PORT"]), int(pose["POSE_GRPC_PORT"])} == {default("http_port"), default("grpc_port")}
    assert all(instruction != "VOLUME" for instruction, _ in instructions())  # named by the orchestrator


def test_health_check_and_command() -> None:
    runtime = dict(stages()["runtime"])
    assert runtime["HEALTHCHECK"].endswith('CMD ["python", "-m", "service.probe", "/readyz"]')
    assert runtime["CMD"] == '["sh", "-c", "python -m service.models ensure && exec python -m service"]'


def test_the_build_context_holds_exactly_what_the_image_copies() -> None:
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"  # everything is left out, then what the COPY lines need is let in
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    sources = {
        source.rstrip("/")
        for instruction, args in instructions()
        if instruction == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    }
    assert sources == included
    assert all((ROOT / source).exists() for source in sources)


def test_the_cpu_image_carries_openvino_but_serves_exact_fp32_unless_asked() -> None:
    """The openvino extra is installed as ``make install`` installs it; no backend or precision is set for the user."""
    installs = [args for instruction, args in stages()["venv-cpu"] if instruction == "RUN" and "pip install" in args]
    assert any('pip install ".[cpu,openvino]"' in args for args in installs), installs
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"cpu", "openvino"} <= set(extras)
    assert "cpu,openvino" in (ROOT / "Makefile").read_text()  # make install: the same extras
    for target in ("runtime", "cpu"):
        assert not {"POSE_BACKEND", "POSE_PRECISION"} & set(env(stages()[target])), target
    assert Settings.model_fields["backend"].default is None  # each model's config: onnxruntime fp32
    assert Settings.model_fields["precision"].default is None
