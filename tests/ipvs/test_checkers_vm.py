"""kpd's Checkers against the real IPVS of the test VM, with `ipvsadm -Ln` as the oracle.

One VM boot runs tests/ipvs/checkers_vm_scenario.py (a namespace lab with HTTP real servers, a client, kpd,
then real keepalived); each test below checks one behaviour in its report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(1860)]  # two VM runs at most

SCENARIO = Path(__file__).with_name("checkers_vm_scenario.py")
MARGIN = 4.0  # the VM emulates its CPU: Python is about ten times slower there


@pytest.fixture(scope="module")
def report(run_in_vm):
    r = run_in_vm([sys.executable, str(SCENARIO)], timeout=900)  # generous: a loaded machine emulates slowly
    doc = json.loads(r.files.get("report.json", b"{}") or b"{}")
    doc["_output"] = r.stdout[-6000:] + r.stderr[-3000:]
    doc["_log"] = r.files.get("kpd.log", b"").decode("utf-8", "replace")[-8000:]
    assert r.returncode == 0, doc["_output"]
    assert not doc.get("errors"), "\n".join(doc["errors"]) + "\n" + doc["_output"] + doc["_log"]
    return doc


def step(report, name):
    assert name in report["steps"], f"step {name} did not run:\n{report['_output']}\n{report['_log']}"
    return report["steps"][name]


def test_services_and_real_servers_appear_exactly_as_configured(report):
    s = step(report, "start")
    assert s["table"] == s["expected"], s


def test_quorum_up_script_runs_at_start(report):
    assert "quorum_up" in step(report, "start")["marks"]


def test_client_traffic_through_the_vip_reaches_every_real_server_in_nat_mode(report):
    bodies = step(report, "traffic")["bodies"]
    assert set(bodies) == {"rs1", "rs2", "rs3"}, bodies


def test_stopped_real_server_is_removed_within_the_check_bound(report):
    s = step(report, "rs_down")
    assert s["seconds"] is not None and s["seconds"] <= s["bound"] + MARGIN, s


def test_inhibit_on_failure_sets_weight_zero_instead(report):
    s = step(report, "rs_down")
    assert s["inhibited"] == ["Masq", 0] and s["inhibited_after"] <= s["bound"] + MARGIN, s


def test_no_request_goes_to_a_removed_real_server(report):
    bodies = step(report, "traffic_after_removal")["bodies"]
    assert "rs2" not in bodies and set(bodies) == {"rs1", "rs3"}, bodies


def test_restarted_real_server_is_added_back(report):
    assert step(report, "rs_up")["seconds"] is not None


def test_misc_dynamic_weights_reach_the_kernel(report):
    for r in step(report, "misc_dynamic")["results"]:
        assert r["seconds"] is not None, r
        assert r["got"] == ["Masq", r["want"]], r


def test_sorry_server_takes_over_when_all_are_down_and_quorum_scripts_run(report):
    s = step(report, "sorry_server")
    assert s["table"] == {"10.0.1.14:8080": ["Masq", 1]}, s
    assert s["bodies"] == ["rs4", "rs4"]
    assert s["marks"][-1] == "quorum_down"
    back = step(report, "quorum_back")
    assert back["seconds"] is not None, back
    assert back["marks"][-1] == "quorum_up"


def test_external_ipvsadm_flush_is_repaired(report):
    assert step(report, "external_flush")["seconds"] is not None


def test_reload_changing_one_weight_changes_only_that_weight(report):
    s = step(report, "reload_weight")
    assert s["exit"] == 0, s
    assert s["seconds"] is not None, s
    assert s["ops"] == 1, s


def test_reload_with_a_broken_config_is_rejected_and_shown(report):
    s = step(report, "reload_broken")
    assert s["exit"] != 0 and "rejected" in s["output"], s
    assert s["reload"]["ok"] is False and s["reload"]["errors"], s
    assert s["table"]["TCP 10.0.2.100:80 rr"]["10.0.1.13:8080"] == ["Masq", 4]


def test_hung_checker_child_is_replaced_and_its_ipvs_state_adopted_not_flushed(report):
    s = step(report, "checker_hung")
    assert s["new"] and s["new"] != s["old"], s
    assert s["table_disturbed_at"] == [], s
    assert s["settled"] is not None, f"the new child's checks never all passed: {s}"
    assert s["new_child_ops"] == 0, s


def test_status_shows_virtual_and_real_servers(report):
    text = step(report, "status")["text"]
    assert "VIRTUAL SERVER" in text and "[10.0.1.13]:tcp:8080" in text, text


def test_stop_releases_the_services(report):
    s = step(report, "stop")
    assert s["exit"] == 0 and s["table"] == {}, s


def test_real_keepalived_builds_the_same_table(report):
    assert report.get("keepalived_table") == report.get("kpd_table")


def value(report, step_name, metric, **labels):
    """The sum of the step's samples of ``metric`` whose labels include ``labels``."""
    return sum(v for n, got, v in step(report, step_name)["samples"]
               if n == metric and all(got.get(k) == x for k, x in labels.items()))


def test_metrics_show_the_kernel_s_ipvs_counters_of_the_vip_traffic(report):
    """The client's requests through the VIP are in the kernel's counters of the service, which the
    parent reads for a scrape (kpd_ipvs_service_*)."""
    s = step(report, "metrics_traffic")
    assert s["seconds"] is not None, s
    svc = "TCP 10.0.2.100:80"
    assert value(report, "metrics_traffic", "kpd_ipvs_service_connections_total", service=svc) >= 6
    for direction in ("in", "out"):
        assert value(report, "metrics_traffic", "kpd_ipvs_service_packets_total", service=svc,
                     direction=direction) >= 6 * 3
        assert value(report, "metrics_traffic", "kpd_ipvs_service_bytes_total", service=svc,
                     direction=direction) > 6 * 100
    assert value(report, "metrics_traffic", "kpd_ipvs_operations_total", service=svc, kind="add_dest",
                 result="ok") == 3
    assert value(report, "metrics_traffic", "kpd_ipvs_operations_total", result="error") == 0


def test_metrics_show_real_server_health_checks_and_their_durations(report):
    s = step(report, "metrics_rs_down")
    assert s["seconds"] is not None, s
    down = {"virtual_server": next(got["virtual_server"] for n, got, _v in s["samples"]
                                   if n == "kpd_real_server_up" and "10.0.2.100" in got["virtual_server"]),
            "real_server": next(got["real_server"] for n, got, _v in s["samples"]
                                if n == "kpd_real_server_up" and "10.0.1.12" in got["real_server"])}
    assert value(report, "metrics_rs_down", "kpd_real_server_up", **down) == 0
    assert value(report, "metrics_rs_down", "kpd_real_server_checks_total", result="failure", **down) >= 1
    assert value(report, "metrics_rs_down", "kpd_real_server_checks_total", result="success", **down) >= 1
    assert value(report, "metrics_rs_down", "kpd_real_server_check_duration_seconds_count", **down) >= 2
    assert value(report, "metrics_rs_down", "kpd_real_server_seconds_since_last_change", **down) < 60
    assert value(report, "metrics_rs_down", "kpd_virtual_server_quorum_up",
                 virtual_server=down["virtual_server"]) == 1
    assert "kpd_real_server_weight" not in {n for n, got, _v in s["samples"] if got == down}, \
        "a removed real server has no weight in IPVS"


def test_a_checker_child_starved_of_cpu_runs_checks_late_says_so_and_fails_no_server(report):
    """Issue 13's overload rule through the parent: SIGSTOP of the Checkers child for 1 s (under its hung
    timeout); `kpd status` counts the late checks and so does kpd_checks_late_total; the IPVS table does not
    change (no healthy real server failed for the checks that waited)."""
    s = step(report, "checker_starved")
    assert s["seconds"] is not None and s["late_after"] > s["late_before"], s
    assert s["metric_seconds"] is not None and s["late_metric"] > s["late_before"], s
    assert s["same_child"], s
    assert s["table_disturbed"] == 0 and s["table"] == s["want"], s
