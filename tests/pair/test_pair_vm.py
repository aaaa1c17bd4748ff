"""The LVS director pair as a whole, with real IPVS in the kpd test VM: kpd pairs in NAT and DR, and a mixed
pair of kpd and real keepalived, in front of real HTTP servers, with a client looping requests to the VIP.

One VM boot runs tests/pair/pair_vm_scenario.py (three labs of scripts/demo/lab.py, one after the other);
each test below checks one behaviour in its report. Times are measured in the VM, whose emulated CPU is
about ten times slower than a host: protocol bounds (Master_Down_Interval, the check bound) get the slack
named here, nothing else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# the timeout: two VM runs at most (a guest kernel lockup is run again)
pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.interop, pytest.mark.timeout(3060)]

SCENARIO = Path(__file__).with_name("pair_vm_scenario.py")
#: the issue's bound is Master_Down_Interval + 1 s from the crash to the first request served again
SERVED_AGAIN_SLACK = 1.0
#: removal of a dead real server: delay_loop + connect_timeout, plus the emulated VM's scheduling
CHECK_SLACK = 4.0


@pytest.fixture(scope="module")
def report(run_in_vm):
    r = run_in_vm([sys.executable, str(SCENARIO)], timeout=1500)  # generous: a loaded machine emulates slowly
    doc = json.loads(r.files.get("report.json", b"{}") or b"{}")
    logs = {name: data.decode("utf-8", "replace")[-4000:] for name, data in r.files.items()
            if name.endswith(".log")}
    doc["_output"] = r.stdout[-8000:] + r.stderr[-3000:] + "".join(
        f"\n--- {name}\n{text}" for name, text in sorted(logs.items()))
    assert r.returncode == 0, doc["_output"]
    return doc


def lab(report, name):
    errors = [e for e in report.get("errors", []) if e.startswith(f"{name}:")]
    assert not errors, "\n".join(errors) + "\n" + report["_output"]
    assert name in report.get("labs", {}), f"lab {name} did not run:\n{report['_output']}"
    return report["labs"][name]


def assert_takeover(step, output):
    """Served again through the new master within Master_Down_Interval + 1 s of the crash, no failure
    after the first success, the VIP and the connections on the new master."""
    assert step["served_again_after"] is not None, output
    assert step["served_again_after"] <= step["master_down_interval"] + SERVED_AGAIN_SLACK, step
    assert step["failed_after_first_success"] == 0 and step["requests_after"] > 20, step
    assert step["conns_through_backup"] > 0 and step["backup_state"] == "MASTER", step


# ------------------------------------------------------------------------------------------ NAT
def test_nat_pair_elects_one_master_and_serves_the_client_through_it(report):
    s = lab(report, "nat")["start"]
    assert s["states"] == ["MASTER", "BACKUP"], s
    t = s["traffic"]
    assert t["failed"] == 0 and t["bodies"] == ["rs1", "rs2", "rs3"] and t["conns"] > 0, s


def test_nat_master_crash_backup_serves_within_master_down_interval_plus_one_second(report):
    assert_takeover(lab(report, "nat")["crash"], report["_output"])


def test_nat_returning_master_preempts_and_serves_the_client(report):
    s = lab(report, "nat")["preempt"]
    assert s["vip_on_returning_master_after"] is not None and s["state"] == "MASTER", s
    assert s["other_backup"], s
    t = s["traffic"]
    assert t["failed"] == 0 and t["conns"] > 0 and t["bodies"] == ["rs1", "rs2", "rs3"], s


def test_real_server_dying_during_failover_is_removed_on_the_new_master(report):
    s = lab(report, "nat")["crash_with_rs_death"]
    assert s["rs_removed_on_backup_after"] is not None, s
    assert s["rs_removed_on_backup_after"] <= s["check_bound"] + CHECK_SLACK, s
    assert_takeover(s, report["_output"])
    # after the removal the dead server gets no request (which of the others IPVS picks is the kernel's
    # wlc: connections in TIME_WAIT from the first failover weigh on its choice for two minutes)
    assert s["bodies_after"] and "rs2" not in s["bodies_after"], s


# ------------------------------------------------------------------------------------------- DR
def test_dr_real_servers_answer_the_client_directly(report):
    s = lab(report, "dr")["start"]
    assert s["states"] == ["MASTER", "BACKUP"], s
    assert all(" 192.0.2.100/32 " in line for line in s["rs_lo"]), s["rs_lo"]
    assert s["arp_ignore"] == ["1", "1", "1"], s
    # every reply from VIP:80 reaching the client comes from a real server's MAC, none via a director
    assert s["replies"]["segments"] > 0 and set(s["replies"]["senders"]) <= {"rs1", "rs2", "rs3"}, s
    # the director only sees the client's side of each connection
    assert s["ipvs_a"]["inpkts"] > 0 and s["ipvs_a"]["outpkts"] == 0, s
    assert s["traffic"]["failed"] == 0 and s["traffic"]["bodies"] == ["rs1", "rs2", "rs3"], s


def test_dr_master_crash_backup_forwards_directly_within_master_down_interval_plus_one_second(report):
    s = lab(report, "dr")["crash"]
    assert_takeover(s, report["_output"])
    assert s["replies"]["segments"] > 0 and set(s["replies"]["senders"]) <= {"rs1", "rs2", "rs3"}, s
    assert s["ipvs_b"]["inpkts"] > 0 and s["ipvs_b"]["outpkts"] == 0, s


# ---------------------------------------------------------------------------------------- mixed
def test_kpd_master_and_keepalived_backup_elect_and_serve(report):
    s = lab(report, "mixed")["start"]
    assert s["states"] == ["MASTER", "BACKUP"], s
    assert s["traffic"]["failed"] == 0 and s["traffic"]["conns"] > 0, s


def test_keepalived_backup_takes_over_from_crashed_kpd_master(report):
    assert_takeover(lab(report, "mixed")["kpd_crash"], report["_output"])


def test_kpd_returns_as_backup_of_keepalived_master_without_disturbing_it(report):
    s = lab(report, "mixed")["kpd_backup"]
    assert s["states"] == ["BACKUP", "MASTER"] and s["vip"] == [False, True], s
    t = s["traffic"]
    assert t["failed"] == 0 and t["conns"] > 0, s
    assert t["bodies"] and set(t["bodies"]) <= {"rs1", "rs2", "rs3"}, s
    # keepalived's table is whole; which servers a few seconds of requests reach is the scheduler's choice
    # (wlc counts the connections of the earlier steps: once, rs2 got none of 75)
    assert s["ipvs_b"] == s["weights"], s


def test_kpd_backup_takes_over_from_crashed_keepalived_master(report):
    assert_takeover(lab(report, "mixed")["keepalived_crash"], report["_output"])
