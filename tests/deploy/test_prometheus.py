"""deploy/prometheus and the dashboard's queries, checked by promtool: config, rules, alert unit tests, PromQL."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from service.errors import PoseError
from tests.deploy.tools import DEPLOY, adapter_rules, alert_rules, dashboard, dashboard_queries, run, tool

PROMETHEUS = DEPLOY / "prometheus"


def test_config_is_valid_and_loads_its_rules() -> None:
    result = run(tool("promtool"), "check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_alert_rules_are_valid() -> None:
    result = run(tool("promtool"), "check", "rules", PROMETHEUS / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_as_their_unit_tests_say() -> None:
    result = run(tool("promtool"), "test", "rules", "alerts_test.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr


def as_promql(expr: str) -> str:
    """Grafana and adapter placeholders replaced by what they stand for, so promtool can parse the query."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
    expr = re.sub(r"\$\{?\w+\}?", ".*", expr)  # template variables ($instance): regex matchers
    expr = expr.replace("<<.Series>>", "pose_queue_depth").replace("<<.LabelMatchers>>", 'namespace="rtmpose"')
    expr = expr.replace("<<.GroupBy>>", "pod")
    return re.sub(r"^label_values\((.*), *\w+\)$", r"\1", expr)  # a variable's series selector


def test_every_dashboard_and_adapter_query_parses(tmp_path: Path) -> None:
    """promtool parses PromQL in recording rules: every query becomes one."""
    queries = dashboard_queries() + [rule[key] for rule in adapter_rules() for key in ("seriesQuery", "metricsQuery")]
    rules = {"groups": [{"name": "queries", "rules": [
        {"record": f"query_{i}", "expr": as_promql(q)} for i, q in enumerate(queries)
    ]}]}  # fmt: skip
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run(tool("promtool"), "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_a_broken_query_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": [{"record": "q", "expr": "sum(rate(x[5m])"}]}]}))
    assert run(tool("promtool"), "check", "rules", path).returncode != 0


def server_error_matchers() -> list[str]:
    """The ``code=~"..."`` matcher of the server-error alert and of the dashboard's error ratio."""
    [alert] = [rule["expr"] for rule in alert_rules() if rule["alert"] == "RTMPoseServerErrors"]
    [ratio] = [t["expr"] for p in dashboard()["panels"] if p["title"] == "Server error ratio" for t in p["targets"]]
    return [match for expr in (alert, ratio) for match in re.findall(r'code=~"([^"]+)"', expr)]


def error_classes(cls: type[PoseError] = PoseError) -> list[type[PoseError]]:
    return [cls] + [sub for child in cls.__subclasses__() for sub in error_classes(child)]


def test_server_errors_are_the_same_codes_for_both_protocols_in_alert_and_dashboard() -> None:
    """HTTP: every 5xx and nothing else. gRPC: the codes only 5xx errors answer with; a code that a client's
    error shares (DEADLINE_EXCEEDED: 504, and 408 for an idle stream) is no server error."""
    matchers = server_error_matchers()
    assert len(set(matchers)) == 1, matchers
    server_error = re.compile(f"^(?:{matchers[0]})$")
    client_codes = {error.grpc_code.name for error in error_classes() if error.http_status < 500}
    for error in error_classes():
        is_5xx = error.http_status >= 500
        assert bool(server_error.match(str(int(error.http_status)))) == is_5xx, error.__name__
        counted = is_5xx and error.grpc_code.name not in client_codes
        assert bool(server_error.match(error.grpc_code.name)) == counted, error.__name__
    assert not server_error.match("OK")
