"""The shipped Prometheus rules, their promtool unit tests, the example scrape config and the Grafana
dashboard (deploy/): promtool accepts them and the rules pass their tests, every alert has a test case that
fires it, and every metric name the rules and the dashboard use is one of the exporter's (deploy/metrics.txt,
the contract the exporter's own test holds its output to).

promtool is Debian's `prometheus` package (.ci/run installs it). Without it these tests fail, never skip."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "cockpit-rules.yml"
RULE_TESTS = PROMETHEUS / "cockpit-rules.test.yml"
CONFIG = PROMETHEUS / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "cockpit-dashboard.json"
METRICS = ROOT / "deploy" / "metrics.txt"

# Names Prometheus makes itself, not the exporter.
PROMETHEUS_SERIES = {"up"}
# PromQL words that look like names: keywords and operators (functions are told apart by their "(").
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left"}
KEYWORDS |= {"group_right", "inf", "nan", "atan2"}
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
MATCHERS = re.compile(r"\{[^{}]*\}")
RANGE = re.compile(r"\[[^\[\]]*\]")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
NAME = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)\b(?!\s*\()")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found: install Debian's prometheus package "
            "(`apt-get install prometheus`, as .ci/run does) — these tests never skip"
        )
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    # promtool resolves rule_files relative to the file it reads; run it from that folder all the same
    return subprocess.run(
        [promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60, check=False
    )


def assert_promtool_ok(*args: str) -> str:
    done = run_promtool(*args)
    output = f"$ promtool {' '.join(args)}\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, output
    return output


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: strings, label matchers, ranges and grouping label lists
    are removed first, then every name not called as a function and not a keyword is a metric."""
    text = STRING.sub('""', expr)
    text = MATCHERS.sub("", text)
    text = RANGE.sub("", text)
    text = GROUPING.sub("", text)
    return {name for name in NAME.findall(text) if name not in KEYWORDS}


def contract() -> set[str]:
    names = [line.strip() for line in METRICS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(names) == len(set(names)), "deploy/metrics.txt names a metric twice"
    return set(names)


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rule_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    return tests


def dashboard_panels() -> list[dict[str, Any]]:
    def walk(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [q for p in panels for q in [p, *walk(p.get("panels", []))]]

    return walk(json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"])


def dashboard_exprs() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dashboard_panels() for t in p.get("targets", [])]


# ----- promtool ---------------------------------------------------------------------------------------------
def test_promtool_accepts_the_rules() -> None:
    output = assert_promtool_ok("check", "rules", RULES.name)
    assert f"SUCCESS: {len(rules())} rules found" in output, output


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    output = assert_promtool_ok("test", "rules", RULE_TESTS.name)
    assert "SUCCESS" in output, output


def test_promtool_accepts_the_example_scrape_config_and_its_rule_file() -> None:
    output = assert_promtool_ok("check", "config", CONFIG.name)
    assert "SUCCESS: 1 rule files found" in output, output


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """Each panel query, with the dashboard's $instance filled in, is a recording rule promtool accepts."""
    exprs = [expr.replace("$instance", ".+") for _, expr in dashboard_exprs()]
    recording = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"q{i}", "expr": e} for i, e in enumerate(exprs)]}
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(recording), encoding="utf-8")
    output = assert_promtool_ok("check", "rules", str(path))
    assert f"SUCCESS: {len(exprs)} rules found" in output, output


# ----- every alert tested -----------------------------------------------------------------------------------
def test_every_alert_has_a_test_that_fires_it_and_one_that_does_not() -> None:
    alerts = [rule["alert"] for rule in rules() if "alert" in rule]
    fired: set[str] = set()
    quiet: set[str] = set()
    for test in rule_tests():
        for case in test.get("alert_rule_test", []):
            (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert len(alerts) == len(set(alerts)), "an alert name is used twice"
    assert [a for a in alerts if a not in fired] == [], "alerts no promtool test case fires"
    assert [a for a in alerts if a not in quiet] == [], "alerts with no case where they must stay quiet"
    assert sorted(fired | quiet) == sorted(alerts), "test cases for alerts the rules do not have"


def test_every_alert_has_a_severity_summary_description_and_runbook() -> None:
    for rule in rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, rule["alert"]
        assert re.match(r"runbook 00[0-4] ", annotations["runbook"]), rule["alert"]
        assert "`cockpit " in annotations["description"], f"{rule['alert']}: no command to run"


# ----- metric names -----------------------------------------------------------------------------------------
def test_metric_name_parser_reads_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, job) (rate(a_bucket{x="b_c",instance=~"$instance"}[5m]))) > 1 '
        "and on (job, instance) (time() - b_seconds offset 5m > 120) unless c == bool 0"
    )
    assert metric_names(expr) == {"a_bucket", "b_seconds", "c"}


def test_every_metric_the_rules_use_is_in_the_contract() -> None:
    known = contract() | PROMETHEUS_SERIES
    used = {rule.get("alert", rule.get("record")): metric_names(rule["expr"]) for rule in rules()}
    assert all(used.values()), f"a rule whose metric names were not found: {used}"
    unknown = {name: sorted(names - known) for name, names in used.items() if names - known}
    assert unknown == {}, "metric names not in deploy/metrics.txt"
    # and the queries an annotation template runs (the kill switch's cause)
    queried = {
        n for rule in rules() for n in re.findall(r"\bcockpit_\w+", json.dumps(rule.get("annotations")))
    }
    assert sorted(queried - known) == []


def test_every_metric_the_dashboard_uses_is_in_the_contract() -> None:
    known = contract() | PROMETHEUS_SERIES
    exprs = dashboard_exprs()
    assert len(exprs) >= 20, "the dashboard lost its panels"
    unknown = {f"{title}: {expr}": sorted(metric_names(expr) - known) for title, expr in exprs}
    assert {k: v for k, v in unknown.items() if v} == {}, "metric names not in deploy/metrics.txt"
    assert all(metric_names(expr) for _, expr in exprs), "a query with no metric name found"


def test_the_rules_test_series_are_contract_metrics_too() -> None:
    known = contract() | PROMETHEUS_SERIES
    series = {t["series"].split("{", 1)[0] for test in rule_tests() for t in test["input_series"]}
    assert sorted(series - known) == []


# ----- the dashboard ----------------------------------------------------------------------------------------
def test_dashboard_is_importable_with_a_datasource_input_and_an_instance_variable() -> None:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert board["schemaVersion"] >= 39
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["definition"] == "label_values(cockpit_engine_info, instance)"
    for panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'instance=~"$instance"' in target["expr"], f"{panel['title']}: not filtered by $instance"
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids)), "two panels share an id"


def test_dashboard_shows_the_runbook_panels() -> None:
    used = set().union(*(metric_names(expr) for _, expr in dashboard_exprs()))
    shown = {
        "equity and peak": {"cockpit_equity_usdt", "cockpit_peak_equity_usdt"},
        "drawdown": {"cockpit_drawdown_ratio"},
        "health per component": {"cockpit_health_ok"},
        "streams": {"cockpit_stream_connected", "cockpit_stream_stale_seconds"},
        "order latency": {"cockpit_order_latency_seconds_bucket"},
        "fill ratio": {"cockpit_fill_ratio"},
        "rate limit and 429s": {
            "cockpit_ratelimit_used_weight",
            "cockpit_ratelimit_limit_weight",
            "cockpit_rate_limited_total",
        },
        "clock offset": {"cockpit_clock_offset_seconds"},
        "kill switch": {"cockpit_kill_switch_engaged"},
        "positions": {"cockpit_position_notional_usdt", "cockpit_position_unrealized_pnl_usdt"},
        "store": {"cockpit_db_writer_queue_events", "cockpit_db_commit_latency_seconds_bucket"},
        "ticks": {"cockpit_ticks_total"},
        "incidents": {"cockpit_open_incidents"},
        "process": {"process_cpu_seconds_total", "process_resident_memory_bytes"},
    }
    missing = {what: sorted(names - used) for what, names in shown.items() if names - used}
    assert missing == {}
    drawdown = next(p for p in dashboard_panels() if p["title"] == "Drawdown")
    lines = [s["value"] for s in drawdown["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert {0.05, 0.07} <= set(lines), "the drawdown panel lost its 5 % and 7 % lines"
