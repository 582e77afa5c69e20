"""docker-compose.yml: valid against the Compose spec, and every service, volume, port and file it names exists."""

from __future__ import annotations

from typing import Any

import pytest

from service.config import Settings
from tests.deploy.tools import DEPLOY, ROOT, default, load_yaml, run, tool

COMPOSE = ROOT / "docker-compose.yml"
POSE_SERVICES = ("pose", "pose-bf16", "pose-gpu")
UID = "10001:10001"  # the Dockerfile's USER


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cpu_by_default_gpu_by_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["pose"]["profiles"] == ["cpu"]
    assert services["pose"]["build"]["target"] == "cpu"
    assert services["pose-gpu"]["profiles"] == ["gpu"]
    assert services["pose-gpu"]["build"]["target"] == "gpu"
    assert services["pose-gpu"]["environment"]["POSE_DEVICE"] == "cuda"
    [device] = services["pose-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    env_file = (ROOT / ".env").read_text().splitlines()
    assert "COMPOSE_PROFILES=cpu" in env_file


def test_bf16_is_one_profile_away_and_the_default_stays_exact(compose: dict[str, Any]) -> None:
    services = compose["services"]
    default_env = services["pose"]["environment"]
    assert not {"POSE_BACKEND", "POSE_PRECISION"} & set(default_env)  # ONNX Runtime fp32, each model's config
    bf16 = services["pose-bf16"]
    assert bf16["profiles"] == ["cpu-bf16"]
    assert (bf16["image"], bf16["build"]["target"]) == (services["pose"]["image"], "cpu")  # the same CPU image
    env = bf16["environment"]
    assert {k: v for k, v in env.items() if k not in {"POSE_BACKEND", "POSE_PRECISION"}} == default_env
    assert (env["POSE_BACKEND"], env["POSE_PRECISION"]) == ("openvino", "bf16")  # bf16, never auto: no silent fp32
    Settings.model_validate({"backend": env["POSE_BACKEND"], "precision": env["POSE_PRECISION"]})


def test_named_volumes_and_bind_mounts_exist(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
        for dependency in service.get("depends_on", []):
            assert dependency in compose["services"]
    assert used == declared


def test_service_containers_are_hardened_and_drain(compose: dict[str, Any]) -> None:
    for name in POSE_SERVICES:
        service = compose["services"][name]
        assert service["read_only"] is True
        assert service["user"] == UID
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert any(t.startswith("/tmp") for t in service["tmpfs"])
        env = service["environment"]
        assert set(env) <= {f"POSE_{field.upper()}" for field in Settings.model_fields}
        grace = Settings.model_validate({"shutdown_grace_s": env["POSE_SHUTDOWN_GRACE_S"]}).shutdown_grace_s
        assert float(service["stop_grace_period"].removesuffix("s")) > grace
        mounts = {v.split(":")[1] for v in service["volumes"]}
        assert {"/models", "/cache/trt"} <= mounts  # POSE_MODEL_REPOSITORY and POSE_TRT_CACHE in the image


def test_ports_are_the_service_defaults(compose: dict[str, Any]) -> None:
    for name in POSE_SERVICES:
        targets = {int(p.rsplit(":", 1)[1]) for p in compose["services"][name]["ports"]}
        assert targets == {default("http_port"), default("grpc_port")}


def test_prometheus_scrapes_the_pose_service_and_grafana_reads_prometheus(compose: dict[str, Any]) -> None:
    services = compose["services"]
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    [job] = config["scrape_configs"]
    [discovery] = job["dns_sd_configs"]
    for name in POSE_SERVICES:  # both profiles answer to the name Prometheus resolves
        assert discovery["names"] == services[name]["networks"]["default"]["aliases"]
    assert discovery["port"] == default("http_port")
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert "9090:9090" in services["prometheus"]["ports"]

    [datasource] = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    [provider] = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "rtmpose.yml")["providers"]
    grafana_mounts = dict(v.rsplit(":", 2)[:2] for v in services["grafana"]["volumes"] if v.startswith("."))
    assert grafana_mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert grafana_mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (DEPLOY / "grafana" / "dashboards" / home.rsplit("/", 1)[1]).exists()
