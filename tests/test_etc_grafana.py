"""etc/grafana/kpd.json: an importable Grafana dashboard whose queries parse and select only kpd's metrics.

The PromQL of every panel is parsed by the real promtool: written, with the Grafana variables replaced by
concrete values, as the recording rules of a generated rules file that ``promtool check rules`` checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from metric_names import EXPECTED_METRICS, exposed_series_names, family_of, metric_names_in
from promtool import check_rules

DASHBOARD = Path(__file__).resolve().parents[1] / "etc" / "grafana" / "kpd.json"

#: Grafana's variables as the dashboard uses them -> a value Prometheus accepts in their place
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "job": "kpd",
}
_VARIABLE_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(panel title/refId, expr)`` of every query of every panel."""
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            yield f"{panel['title']}/{target['refId']}", target["expr"]


def substitute(expr: str) -> str:
    """The expression with Grafana's variables replaced; KeyError for a variable this test does not know."""
    return _VARIABLE_RE.sub(lambda m: GRAFANA_VARIABLES[m.group(1) or m.group(2)], expr)


def check_exprs_parse(queries: list[tuple[str, str]], tmp_path: Path):
    """``promtool check rules`` on a rules file with each expression as a recording rule."""
    rules = [
        {"record": f"kpd_dashboard:query_{n}", "expr": substitute(expr), "labels": {"query": where}}
        for n, (where, expr) in enumerate(queries)
    ]
    path = tmp_path / "dashboard-queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "kpd-dashboard", "rules": rules}]}, sort_keys=False))
    return check_rules(path)


def test_the_dashboard_is_importable_json_with_title_uid_and_variables() -> None:
    dashboard = load()
    assert dashboard["title"] == "kpd"
    assert dashboard["uid"] == "kpd"
    assert isinstance(dashboard["schemaVersion"], int) and 36 <= dashboard["schemaVersion"] <= 41
    assert "id" not in dashboard or dashboard["id"] is None  # an id would clash on import
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    job = variables["job"]
    assert job["type"] == "query"
    assert job["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert "job" in job["definition"]
    # the jobs offered are those with a kpd metric
    assert metric_names_in(job["definition"]) <= exposed_series_names()
    assert metric_names_in(job["definition"]), job["definition"]


def test_every_panel_has_a_unique_id_and_prometheus_queries_with_an_expr() -> None:
    dashboard = load()
    panels = list(all_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), ids
    queried = [p for p in panels if p["type"] != "row"]
    assert len(queried) >= 15
    for panel in queried:
        assert panel["title"], panel["id"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert isinstance(target["expr"], str) and target["expr"].strip(), panel["title"]


def test_the_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in load()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, (panel["title"], taken.get((x, y)))
                taken[(x, y)] = panel["title"]


def test_the_dashboard_uses_only_metrics_kpd_exposes() -> None:
    exposed = exposed_series_names()
    for where, expr in exprs(load()):
        names = metric_names_in(expr)
        assert names, (where, expr)
        unknown = {n: family_of(n) for n in names - exposed}
        assert not unknown, f"{where} uses metrics kpd does not expose: {unknown}"


def test_every_metric_kpd_exposes_is_on_the_dashboard() -> None:
    shown = {family_of(n) for _, expr in exprs(load()) for n in metric_names_in(expr)}
    assert set(EXPECTED_METRICS) - shown == set()


def test_the_panels_show_the_required_views() -> None:
    queries = [expr for _, expr in exprs(load())]

    def some(pattern: str) -> bool:
        return any(re.search(pattern, q, re.S) for q in queries)

    assert some(r'kpd_vrrp_instance_state\{[^}]*state="MASTER"')  # states / masters per VRID
    assert some(r'increase\(kpd_vrrp_transitions_total\{[^}]*to="MASTER"')  # failovers
    assert some(r"kpd_vrrp_effective_priority")
    assert some(r"kpd_vrrp_adverts_dropped_total.*\breason\b|\breason\b.*kpd_vrrp_adverts_dropped_total")
    assert some(r"kpd_real_server_up")
    assert some(r'kpd_real_server_checks_total\{[^}]*result="failure"')
    assert some(r"histogram_quantile\(0\.95,.*kpd_real_server_check_duration_seconds_bucket")
    assert some(r"histogram_quantile\(0\.99,.*kpd_child_loop_lag_seconds_bucket")
    for counter in ("connections", "packets", "bytes"):
        assert some(rf"rate\(kpd_ipvs_service_{counter}_total"), counter
    assert some(r'kpd_ipvs_operations_total\{[^}]*result="error"')
    assert some(r"kpd_child_restarts_total")
    assert some(r"kpd_child_heartbeat_age_seconds")
    assert some(r"kpd_child_resident_memory_bytes")
    assert some(r"rate\(kpd_child_cpu_seconds_total")


def test_every_selector_is_limited_to_the_selected_job() -> None:
    for where, expr in exprs(load()):
        for match in re.finditer(r"(?<![\w:])(kpd_\w+)(\{[^}]*\})?", expr):
            assert match.group(2) and 'job="$job"' in match.group(2), (where, match.group(0))


def test_every_dashboard_expression_parses(tmp_path: Path) -> None:
    queries = list(exprs(load()))
    for where, expr in queries:
        assert "$" not in substitute(expr), (where, expr)
    result = check_exprs_parse(queries, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_the_expression_check_rejects_a_broken_expression(tmp_path: Path) -> None:
    queries = [*exprs(load())][:3]
    unclosed = 'sum by (job) (rate(kpd_child_cpu_seconds_total{job="$job"}[$__rate_interval])'
    queries.append(("broken", unclosed))
    result = check_exprs_parse(queries, tmp_path)
    assert result.returncode != 0
    assert "broken" in (tmp_path / "dashboard-queries.rules.yml").read_text()
