"""Against the real service: every metric the dashboard, the alerts and the autoscaler query is really exported,
and the container health probe (``python -m service.probe``) tells ready from not."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import cv2
import grpc
import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire._proto.pose.v1 import pose_pb2_grpc
from tests.deploy.tools import ROOT, adapter_rules, alert_rules, dashboard_queries, load_yaml
from tests.helpers import Server, build_repository, free_port, start_server
from tests.oracles import draw_scene

# labels Prometheus (target labels) or the Prometheus Operator add to every series
TARGET_LABELS = {"instance", "job", "namespace", "pod", "service", "container"}
SELECTOR = re.compile(r"(?<![\w:])(pose_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?")
LABEL_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SERIES_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count",
                   "_created"), "summary": ("", "_sum", "_count", "_created"), "info": ("_info",)}  # fmt: skip

Exported = dict[str, set[str]]  # series name -> label names seen on its samples


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every query the deployment makes of the service's metrics."""
    found = [("dashboard", q) for q in dashboard_queries()]
    found += [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]
    found += [("prometheus-adapter", rule[key]) for rule in adapter_rules() for key in ("seriesQuery", "metricsQuery")]
    hpa = load_yaml(ROOT / "deploy" / "k8s" / "base" / "hpa.yaml")
    found += [("HorizontalPodAutoscaler", metric["pods"]["metric"]["name"]) for metric in hpa["spec"]["metrics"]]
    return found


def exported_series(exposition: str) -> tuple[Exported, set[str]]:
    """The series of a /metrics text (families without samples: named after their type), and those with samples."""
    series: Exported = {}
    sampled = set()
    for family in text_string_to_metric_families(exposition):
        for suffix in SERIES_SUFFIXES.get(family.type, ("",)):
            series.setdefault(family.name + suffix, set())
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
            sampled.add(sample.name)
    return series, sampled


def unknown_in(query: str, exported: Exported) -> list[str]:
    """What ``query`` asks of the service's metrics that ``exported`` does not have: names, then labels."""
    problems = []
    labels_in_query: set[str] = set()
    for name, matchers in SELECTOR.findall(query.replace("<<.Series>>", "pose_queue_depth")):
        if name not in exported:
            problems.append(f"metric {name}")
            continue
        known = exported[name] | TARGET_LABELS
        labels_in_query |= known
        for label in LABEL_MATCHER.findall(matchers):
            if label not in known:
                problems.append(f"label {label} of {name}")
    for group in GROUPING.findall(query):
        for label in filter(None, (part.strip() for part in group.split(","))):
            if not label.startswith("<<") and label not in labels_in_query:
                problems.append(f"grouping label {label}")
    return problems


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    repository = build_repository(tmp_path_factory.mktemp("repository"))
    log = tmp_path_factory.mktemp("logs") / "server.log"
    running = start_server(repository, log, POSE_MODEL="pose-oracle", POSE_DETECTOR="detector-oracle",
                           POSE_EXTRA_MODELS="poisoned-oracle")  # fmt: skip
    yield running
    running.stop()


def stream_one_frame(service: Server, image: np.ndarray) -> None:
    """A camera stream of one frame over gRPC (the stream metrics get their samples)."""
    frame = pb.Frame(frame_id=0, image=pb.Image(encoded=cv2.imencode(".png", image)[1].tobytes()))
    requests = [pb.StreamRequest(config=pb.StreamConfig()), pb.StreamRequest(frame=frame)]
    with grpc.insecure_channel(service.grpc_target) as channel:
        answers = list(pose_pb2_grpc.PoseServiceStub(channel).Stream(iter(requests), timeout=30))
    assert [a.frame_id for a in answers if not a.drops_only] == [0]


@pytest.fixture(scope="module")
def exposition(service: Server) -> tuple[Exported, set[str]]:
    """/metrics after a request that succeeds, one whose inference fails and a stream (so labelled series exist)."""
    image = draw_scene([((40, 60, 160, 400), (100.0, 200.0))])
    poisoned = image.copy()
    poisoned[100:110, 60:70, 1] = 255  # the poisoned model fails on saturated green
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for params, picture, status in (({}, image, 200), ({"model": "poisoned-oracle"}, poisoned, 500)):
            body = cv2.imencode(".png", picture)[1].tobytes()
            response = client.post("/v1/pose", params=params, content=body, headers={"Content-Type": "image/png"})
            assert response.status_code == status, response.text
        stream_one_frame(service, image)
        return exported_series(client.get("/metrics").text)


@pytest.mark.parametrize(("where", "query"), queries(), ids=lambda value: value[:60])
def test_every_queried_metric_and_label_is_exported(
    where: str, query: str, exposition: tuple[Exported, set[str]]
) -> None:
    exported, _ = exposition
    assert unknown_in(query, exported) == [], f"{where} queries what /metrics does not have: {query}"


def test_queried_metrics_have_samples_so_their_labels_were_checked(exposition: tuple[Exported, set[str]]) -> None:
    exported, sampled = exposition
    queried = {name for _, q in queries() for name, _ in SELECTOR.findall(q.replace("<<.Series>>", ""))}
    assert queried <= sampled


def test_the_check_catches_unknown_metrics_and_labels(exposition: tuple[Exported, set[str]]) -> None:
    exported, _ = exposition
    assert unknown_in("sum(rate(pose_requests_totl[5m]))", exported) == ["metric pose_requests_totl"]
    assert unknown_in('pose_queue_depth{modle="x"}', exported) == ["label modle of pose_queue_depth"]
    assert unknown_in("sum by (stage) (pose_queue_depth)", exported) == ["grouping label stage"]
    assert (
        unknown_in('sum by (le, stage) (rate(pose_stage_duration_seconds_bucket{instance=~".*"}[1m]))', exported) == []
    )


def probe(port: int, *args: str) -> int:
    environment = {**os.environ, "POSE_HOST": "0.0.0.0", "POSE_HTTP_PORT": str(port)}
    return subprocess.run([sys.executable, "-m", "service.probe", *args], cwd=ROOT, env=environment,
                          capture_output=True, timeout=30, check=False).returncode  # fmt: skip


def test_health_probe_passes_on_ready_and_fails_otherwise(service: Server) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    assert probe(port) == 0  # /readyz
    assert probe(port, "/healthz") == 0
    assert probe(port, "/no-such-path") == 1  # 404
    assert probe(free_port()) == 1  # nothing listens


def test_probe_url_asks_a_wildcard_bind_on_loopback() -> None:
    from service.config import Settings
    from service.probe import probe_url

    assert probe_url(Settings(host="0.0.0.0", http_port=8000), "/readyz") == "http://127.0.0.1:8000/readyz"
    assert probe_url(Settings(host="::", http_port=8001), "/readyz") == "http://[::1]:8001/readyz"
    assert probe_url(Settings(host="10.1.2.3", http_port=80), "/healthz") == "http://10.1.2.3:80/healthz"
