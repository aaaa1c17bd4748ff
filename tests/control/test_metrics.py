"""The metric declarations and the families built from the parent's snapshot (pure: no daemon)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from keepalived_py.control.metrics import METRICS, Snapshot, SnapshotCollector, families, reference
from keepalived_py.histogram import Histogram


def exposition(snap: Snapshot) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snap))
    return generate_latest(registry).decode()


def samples(snap: Snapshot) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in text_string_to_metric_families(exposition(snap)):
        for s in fam.samples:
            out[s.name, frozenset(s.labels.items())] = s.value
    return out


def full_snapshot() -> Snapshot:
    """A snapshot with every part filled: every declared metric has a sample."""
    lag = Histogram((0.001, 0.01))
    for x in (0.0005, 0.002, 0.5):
        lag.observe(x)
    durations = Histogram((0.01, 0.1))
    for x in (0.005, 0.05, 0.05):
        durations.observe(x)
    instance = {
        "name": "VI_1", "vrid": 51, "state": "MASTER", "base_priority": 150, "effective_priority": 130,
        "master_address": "10.0.0.1", "last_transition": 1000.0,
        "transitions": [{"to": "BACKUP", "reason": "startup", "count": 1},
                        {"to": "MASTER", "reason": "master_down", "count": 2}],
        "counters": {"adverts_sent": 10, "adverts_received": 4, "priority_zero_sent": 1,
                     "priority_zero_received": 2, "became_master": 2, "released_master": 1},
        "drops": {"ttl": 3, "version": 1},
        "trackers": [{"type": "script", "name": "chk", "weight": -20, "reverse": False, "up": False},
                     {"type": "interface", "name": "eth1", "weight": 10, "reverse": True, "up": True}],
    }
    rs = {"name": "[10.0.0.2]:tcp:80", "state": "UP", "weight": 3, "in_ipvs": True, "last_change": 1090.0,
          "checks": [{"type": "TCP_CHECK", "probes": 5, "failures": 1, "durations": durations.to_json()},
                     {"type": "HTTP_GET", "probes": 2, "failures": 0, "durations": durations.to_json()},
                     {"type": "HTTP_GET", "probes": 3, "failures": 2, "durations": durations.to_json()}]}
    return Snapshot(
        status={
            "instances": [instance],
            "children": {
                "vrrp": {"healthy": True, "restarts_by_reason": {"died": 2}, "heartbeat_age": 0.2,
                         "rss_bytes": 4096, "cpu_seconds": 1.5, "open_fds": 12,
                         "loop_lag": {"histogram": lag.to_json()}},
                "checker": {"healthy": False, "restarts_by_reason": {"hung": 1}, "late_checks": 7},
            },
            "config_generation": 3,
            "reload": {"ok": False},
        },
        checker={
            "virtual_servers": [{"name": "10.0.0.1:80", "quorum": "DOWN", "real_servers": [rs]}],
            "ipvs_ops": [{"service": "TCP 10.0.0.1:80", "kind": "add_dest", "result": "ok", "count": 4},
                         {"service": "TCP 10.0.0.1:80", "kind": "add_dest", "result": "error", "count": 1}],
        },
        reloads={"accepted": 3, "rejected": 1},
        ipvs_stats={"TCP 10.0.0.1:80": {"connections": 5, "packets_in": 50, "packets_out": 40,
                                        "bytes_in": 5000, "bytes_out": 40000}},
        time=1100.0,
    )


def test_every_declared_metric_is_exposed_from_a_full_snapshot() -> None:
    names = {fam.name for fam in text_string_to_metric_families(exposition(full_snapshot()))}
    declared = {m.name.removesuffix("_total") if m.type == "counter" else m.name for m in METRICS}
    assert names == declared


def test_declared_names_follow_prometheus_conventions() -> None:
    for m in METRICS:
        assert m.name.startswith("kpd_"), m.name
        assert m.name.endswith("_total") == (m.type == "counter"), m.name
        assert m.help.endswith("."), m.name
        assert "instance" not in m.labels or m.name.startswith("kpd_vrrp_"), m.name
    assert len({m.name for m in METRICS}) == len(METRICS)


def test_vrrp_instance_values() -> None:
    s = samples(full_snapshot())
    state = {dict(labels)["state"]: v for (n, labels), v in s.items() if n == "kpd_vrrp_instance_state"}
    assert state == {"INIT": 0, "BACKUP": 0, "MASTER": 1, "FAULT": 0, "STOP": 0, "UNKNOWN": 0}
    assert s["kpd_vrrp_transitions_total", frozenset(
        {"instance": "VI_1", "to": "MASTER", "reason": "master_down"}.items())] == 2
    assert s["kpd_vrrp_adverts_dropped_total", frozenset({"instance": "VI_1", "reason": "ttl"}.items())] == 3
    assert s["kpd_vrrp_seconds_since_last_transition", frozenset({"instance": "VI_1"}.items())] == 100
    assert s["kpd_vrrp_tracker_up", frozenset(
        {"instance": "VI_1", "type": "script", "name": "chk"}.items())] == 0
    # reverse weights are shown negative: what the tracker does to the priority when up
    assert s["kpd_vrrp_tracker_weight", frozenset(
        {"instance": "VI_1", "type": "interface", "name": "eth1"}.items())] == -10


def test_checks_are_summed_by_checker_type_and_durations_are_cumulative_buckets() -> None:
    s = samples(full_snapshot())
    rs = {"virtual_server": "10.0.0.1:80", "real_server": "[10.0.0.2]:tcp:80"}

    def get(name: str, **labels: str) -> float:
        return s[name, frozenset({**rs, **labels}.items())]

    assert get("kpd_real_server_checks_total", checker="HTTP_GET", result="success") == 3
    assert get("kpd_real_server_checks_total", checker="HTTP_GET", result="failure") == 2
    assert get("kpd_real_server_checks_total", checker="TCP_CHECK", result="failure") == 1
    # two HTTP_GETs of one real server: one histogram with both checkers' observations
    assert get("kpd_real_server_check_duration_seconds_bucket", checker="HTTP_GET", le="0.01") == 2
    assert get("kpd_real_server_check_duration_seconds_bucket", checker="HTTP_GET", le="0.1") == 6
    assert get("kpd_real_server_check_duration_seconds_bucket", checker="HTTP_GET", le="+Inf") == 6
    assert get("kpd_real_server_check_duration_seconds_count", checker="HTTP_GET") == 6
    assert math.isclose(get("kpd_real_server_check_duration_seconds_sum", checker="HTTP_GET"), 0.21)
    assert get("kpd_real_server_seconds_since_last_change") == 10
    assert s["kpd_virtual_server_quorum_up", frozenset({"virtual_server": "10.0.0.1:80"}.items())] == 0


def test_child_reload_and_kernel_values() -> None:
    s = samples(full_snapshot())
    assert s["kpd_child_restarts_total", frozenset({"child": "vrrp", "reason": "died"}.items())] == 2
    assert s["kpd_child_restarts_total", frozenset({"child": "checker", "reason": "hung"}.items())] == 1
    assert s["kpd_child_up", frozenset({"child": "checker"}.items())] == 0
    assert s["kpd_child_loop_lag_seconds_bucket", frozenset({"child": "vrrp", "le": "0.01"}.items())] == 2
    assert s["kpd_checks_late_total", frozenset()] == 7
    assert s["kpd_reloads_total", frozenset({"result": "rejected"}.items())] == 1
    assert s["kpd_last_reload_successful", frozenset()] == 0
    assert s["kpd_ipvs_service_bytes_total", frozenset(
        {"service": "TCP 10.0.0.1:80", "direction": "out"}.items())] == 40000
    assert s["kpd_ipvs_operations_total", frozenset(
        {"service": "TCP 10.0.0.1:80", "kind": "add_dest", "result": "error"}.items())] == 1


def test_an_empty_snapshot_says_only_what_is_known() -> None:
    s = samples(Snapshot(status={}))
    assert s == {("kpd_reloads_total", frozenset({("result", "accepted")})): 0,
                 ("kpd_reloads_total", frozenset({("result", "rejected")})): 0,
                 ("kpd_last_reload_successful", frozenset()): 1}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(instance=st.dictionaries(st.sampled_from(
    ["name", "vrid", "state", "base_priority", "transitions", "counters", "drops", "master_address",
     "last_transition", "trackers"]), json_values),
    rs=st.dictionaries(st.sampled_from(["name", "state", "weight", "in_ipvs", "last_change", "checks"]),
                       json_values),
    child=st.dictionaries(st.sampled_from(["healthy", "restarts_by_reason", "loop_lag", "rss_bytes"]),
                          json_values))
def test_malformed_status_files_never_break_a_scrape(instance: dict[str, Any], rs: dict[str, Any],
                                                     child: dict[str, Any]) -> None:
    snap = Snapshot(status={"instances": [instance], "children": {"vrrp": child}},
                    checker={"virtual_servers": [{"name": "vs", "real_servers": [rs]}]})
    families(snap)
    text_string_to_metric_families(exposition(snap))


def test_docs_metrics_md_is_generated_from_the_declarations() -> None:
    committed = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
    assert committed.read_text() == reference() + "\n", "run `make docs` and commit docs/metrics.md"


def test_the_parent_imports_prometheus_client_only_when_metrics_are_served() -> None:
    """12 MB and 60 ms that a daemon without metrics does not pay."""
    code = ("import sys, keepalived_py.cli, keepalived_py.control.arbiter; "
            "print('prometheus_client' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
