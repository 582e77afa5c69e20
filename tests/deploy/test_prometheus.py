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


def fault_selectors() -> list[str]:
    """The ``code`` matchers of the fault alert and of the dashboard's fault ratio (numerator)."""
    [alert] = [rule["expr"] for rule in alert_rules() if rule["alert"] == "RTMPoseServerErrors"]
    [ratio] = [t["expr"] for p in dashboard()["panels"] if p["title"] == "Fault ratio" for t in p["targets"]]
    return [", ".join(re.findall(r'code(?:=~|!~)"[^"]+"', expr)) for expr in (alert, ratio)]


def counted(code: str, selector: str) -> bool:
    """Whether a series with label ``code`` passes every ``code=~`` / ``code!~`` matcher of ``selector``."""
    matchers = re.findall(r'code(=~|!~)"([^"]+)"', selector)
    return all(bool(re.fullmatch(pattern, code)) == (operator == "=~") for operator, pattern in matchers)


def error_classes(cls: type[PoseError] = PoseError) -> list[type[PoseError]]:
    return [cls] + [sub for child in cls.__subclasses__() for sub in error_classes(child)]


def test_faults_are_the_same_codes_for_both_protocols_in_alert_and_dashboard() -> None:
    """A fault: HTTP 5xx but shedding (503, 504); over gRPC the codes that only faults answer with."""
    selectors = fault_selectors()
    assert len(set(selectors)) == 1, selectors
    selector = selectors[0]
    fault = {error: error.http_status >= 500 and error.http_status not in (503, 504) for error in error_classes()}
    shared = {error.grpc_code.name for error, is_fault in fault.items() if not is_fault}
    for error, is_fault in fault.items():
        assert counted(str(int(error.http_status)), selector) == is_fault, error.__name__
        assert counted(error.grpc_code.name, selector) == (is_fault and error.grpc_code.name not in shared), error
    assert counted("INTERNAL", selector)
    assert not counted("OK", selector)
    assert not counted("200", selector)
