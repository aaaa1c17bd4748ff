"""`make demo` as an end-to-end test: scripts/demo/lab.py in the kpd test VM (real IPVS, real kpd, real HTTP
servers and client traffic); every step of the demo must meet its expectation (the lab's exit status)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

LAB = Path(__file__).resolve().parents[1] / "scripts" / "demo" / "lab.py"


@pytest.mark.timeout(1860)  # two VM runs at most (a guest kernel lockup is run again)
def test_demo_every_step_meets_its_expectation(run_in_vm):
    r = run_in_vm([sys.executable, str(LAB)], timeout=900)  # 3 min usually: a loaded machine emulates slowly
    assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-4000:]
    assert "every step met its expectation" in r.stdout
    assert "lab removed" in r.stdout
    # it shows where each director's metrics are, and what they say: a MASTER, real servers up, traffic
    assert "--- metrics of director a: http://127.0.0.1:9650/metrics" in r.stdout
    shown = r.stdout.split("--- metrics of director a", 1)[1]
    master = r'kpd_vrrp_instance_state\{instance="VI_WEB",state="MASTER",vrid="\d+"\} 1\.0'
    assert re.search(master, shown), r.stdout[-20000:]
    assert re.search(r"kpd_real_server_up\{.*\} 1\.0", shown), shown
    assert re.search(r"kpd_ipvs_service_connections_total\{.*\} [1-9]", shown), shown
    # and the events, one line each: time, sequence number, source, kind
    events = r.stdout.split("--- events of director b", 1)[1].split("\n---", 1)[0]
    assert len(re.findall(r"^\S+Z \d+ (?:parent|vrrp|checker) [a-z_]+", events, re.M)) == 8, events
