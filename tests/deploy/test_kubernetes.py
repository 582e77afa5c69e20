"""deploy/k8s: every overlay renders, passes strict schema validation, and its objects fit together and the service."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config import Settings
from tests.deploy.tools import OVERLAYS, adapter_rules, render, run, tool

OUR_CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
# the oldest Kubernetes the manifests are meant for, and the newest schema the validator has
KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")
UID = 10001  # the Dockerfile's USER
# per overlay: POSE_DEVICE and the image (Dockerfile target) it runs
DEVICE_AND_IMAGE = {"cpu": ("cpu", "cpu"), "gpu": ("cuda", "gpu"), "cpu-bf16": ("cpu", "cpu")}
# the node-feature-discovery label of AVX512-BF16 (cpu-cpuid.<flag>, the flag as klauspost/cpuid names it:
# docs/usage/features.md of kubernetes-sigs/node-feature-discovery); OpenVINO reports bf16 there
BF16_NODE_LABEL = "feature.node.kubernetes.io/cpu-cpuid.AVX512BF16"


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "Deployment")["spec"]["template"]["spec"]


def server(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [container] = [c for c in pod_spec(objects)["containers"] if c["name"] == "server"]
    return container


def settings_of(objects: list[dict[str, Any]]) -> dict[str, str]:
    return one(objects, "ConfigMap")["data"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def validate(path: Path, version: str) -> tuple[int, str]:
    result = run(tool("kubernetes-validate"), "--strict", "-k", version, path)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_objects_pass_strict_schema_validation(
    overlay: tuple[str, list[dict[str, Any]]], version: str, tmp_path: Path
) -> None:
    name, objects = overlay
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    code, output = validate(path, version)
    assert code == 0, output
    unchecked = {(o["apiVersion"], o["kind"]) for o in objects} - OUR_CUSTOM_KINDS
    for api_version, kind in unchecked:
        assert f"Couldn't find schema for kind {kind} " not in output, f"{kind} {api_version} was not validated"
    assert output.count("passed for resource") == len(objects) - len(
        [o for o in objects if (o["apiVersion"], o["kind"]) in OUR_CUSTOM_KINDS]
    )


def test_strict_validation_rejects_a_misspelt_field(overlay: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    """The validation above can fail: a probe under a misspelt key is refused."""
    _, objects = overlay
    deployment = copy.deepcopy(one(objects, "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {"httpGet": {"path": "/healthz"}}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(deployment))
    code, output = validate(path, KUBERNETES_VERSIONS[-1])
    assert code != 0
    assert "livenessprobe" in output


def test_pods_run_non_root_with_a_read_only_root_filesystem(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    spec = pod_spec(objects)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == UID
    assert spec["securityContext"]["fsGroup"] == UID  # the models volume is writable by the service's group
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in spec["initContainers"] + spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]
        assert "add" not in context["capabilities"], container["name"]


def test_every_written_path_is_a_volume_and_every_volume_exists(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    spec = pod_spec(objects)
    volumes = {v["name"]: v for v in spec["volumes"]}
    claims = {o["metadata"]["name"] for o in by_kind(objects, "PersistentVolumeClaim")}
    for volume in volumes.values():
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in claims
    for container in spec["initContainers"] + spec["containers"]:
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert all(m["name"] in volumes for m in mounts.values())
        assert "/tmp" in mounts  # multipart uploads spool there
        env = env_of(container)
        assert env["POSE_MODEL_REPOSITORY"] in mounts
    init = spec["initContainers"][0]
    assert init["command"] == ["python", "-m", "service.models", "ensure"]
    assert not {m["mountPath"]: m for m in init["volumeMounts"]}["/models"].get("readOnly", False)
    mounts = {m["mountPath"]: m for m in server(objects)["volumeMounts"]}
    assert env_of(server(objects))["POSE_TRT_CACHE"] in mounts
    assert not mounts[env_of(server(objects))["POSE_TRT_CACHE"]].get("readOnly", False)


def test_settings_are_real_and_valid(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    values = dict(settings_of(objects))
    for container in pod_spec(objects)["initContainers"] + pod_spec(objects)["containers"]:
        assert container["envFrom"] == [{"configMapRef": {"name": one(objects, "ConfigMap")["metadata"]["name"]}}]
        values |= {k: v for k, v in env_of(container).items() if isinstance(v, str)}
    fields = {f"POSE_{name.upper()}": name for name in Settings.model_fields}
    assert set(values) <= set(fields), f"not settings: {set(values) - set(fields)}"
    Settings.model_validate({fields[key]: value for key, value in values.items()})  # raises on a bad value


def test_probes_and_ports_follow_the_service(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    container = server(objects)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = env_of(container)
    assert ports == {"http": int(env["POSE_HTTP_PORT"]), "grpc": int(env["POSE_GRPC_PORT"])}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    for service in services.values():
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
            assert port["appProtocol"] == {"http": "http", "grpc": "kubernetes.io/h2c"}[port["targetPort"]]
    assert services["rtmpose-grpc"]["spec"]["clusterIP"] == "None"  # one DNS record per pod for gRPC balancing
    pods = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for service in services.values():
        assert service["spec"]["selector"].items() <= pods.items()
    for spread in pod_spec(objects)["topologySpreadConstraints"]:
        assert spread["labelSelector"]["matchLabels"].items() <= pods.items()


def test_termination_grace_outlasts_the_drain(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    spec = pod_spec(objects)
    pre_stop = server(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = Settings.model_validate({"shutdown_grace_s": settings_of(objects)["POSE_SHUTDOWN_GRACE_S"]})
    assert spec["terminationGracePeriodSeconds"] > float(pre_stop[1]) + drain.shutdown_grace_s


def test_devices_and_resources_per_overlay(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = overlay
    container = server(objects)
    limits = container["resources"]["limits"]
    device, image = DEVICE_AND_IMAGE[name]
    assert settings_of(objects)["POSE_DEVICE"] == device
    images = {c["image"] for c in pod_spec(objects)["initContainers"] + pod_spec(objects)["containers"]}
    assert images == {f"rtmpose-service:{image}"}
    if name == "gpu":
        assert limits["nvidia.com/gpu"] == 1
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod_spec(objects)[
            "tolerations"
        ]
    else:
        assert "nvidia.com/gpu" not in limits
        threads = env_of(container)["POSE_CPU_THREADS"]["resourceFieldRef"]
        assert threads == {"containerName": "server", "resource": "limits.cpu", "divisor": "1"}
        assert "cpu" in limits


def test_only_the_bf16_overlay_leaves_exact_fp32(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    """The default stays exact: the cpu overlay sets no backend or precision (ONNX Runtime fp32, each model's
    config); cpu-bf16 asks for bf16 explicitly, never auto, so a node without it fails the start, not the answer."""
    name, objects = overlay
    settings = settings_of(objects)
    asked = (settings.get("POSE_BACKEND"), settings.get("POSE_PRECISION"))
    assert asked == {"cpu": (None, None), "gpu": (None, "auto"), "cpu-bf16": ("openvino", "bf16")}[name]
    affinity = pod_spec(objects).get("affinity", {})
    if name == "cpu-bf16":
        required = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        [term] = required["nodeSelectorTerms"]  # one term: every node it selects has bf16
        assert term == {"matchExpressions": [{"key": BF16_NODE_LABEL, "operator": "In", "values": ["true"]}]}
    else:
        assert BF16_NODE_LABEL not in str(affinity)


def _without_config_hash(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects with the ConfigMap's hashed name made constant (its data differs on purpose)."""
    name = one(objects, "ConfigMap")["metadata"]["name"]
    kept = [o for o in objects if o["kind"] != "ConfigMap"]
    return [yaml.safe_load(yaml.safe_dump(o).replace(name, "rtmpose-config")) for o in kept]


def test_the_bf16_overlay_is_the_cpu_overlay_on_bf16_nodes() -> None:
    """Same probes, resources, security, volumes, Services, HPA, PDB and ServiceMonitor as the cpu overlay: only the
    node affinity and the two settings differ."""
    bf16, cpu = _without_config_hash(render("cpu-bf16")), _without_config_hash(render("cpu"))
    deployment = one(bf16, "Deployment")
    del deployment["spec"]["template"]["spec"]["affinity"]
    assert bf16 == cpu
    extra = set(settings_of(render("cpu-bf16")).items()) - set(settings_of(render("cpu")).items())
    assert extra == {("POSE_BACKEND", "openvino"), ("POSE_PRECISION", "bf16")}


def test_autoscaler_disruption_budget_and_adapter_fit_together(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    deployment = one(objects, "Deployment")
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}  # fmt: skip
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    [metric] = hpa["spec"]["metrics"]
    served = {rule["name"]["as"] for rule in adapter_rules()}
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] in served
    assert not by_kind(objects, "ScaledObject")  # one autoscaler per overlay, never KEDA beside the HPA
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    assert (
        pdb["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )


def test_adapter_rules_map_pods_and_namespaces() -> None:
    for rule in adapter_rules():
        assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        assert re.fullmatch(rule["name"]["matches"], rule["name"]["as"])
        assert "<<.Series>>" in rule["metricsQuery"]
        assert "<<.LabelMatchers>>" in rule["metricsQuery"]
        assert "<<.GroupBy>>" in rule["metricsQuery"]


def test_service_monitor_scrapes_the_http_port_of_the_main_service(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    """ServiceMonitor (a custom resource, no schema offline): checked field by field and against the Service."""
    _, objects = overlay
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) == {"selector", "endpoints"}
    selected = [
        s for s in by_kind(objects, "Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]  # fmt: skip
    assert [s["metadata"]["name"] for s in selected] == ["rtmpose"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "honorLabels", "scheme"}
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert re.fullmatch(r"\d+[smh]", endpoint["interval"])
    assert endpoint["honorLabels"] is True  # our `endpoint` label must not become `exported_endpoint`
    assert monitor["metadata"]["namespace"] == selected[0]["metadata"]["namespace"]
