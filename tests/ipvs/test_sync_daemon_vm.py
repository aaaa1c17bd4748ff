"""lvs_sync_daemon on real IPVS: two kpd directors in the test VM, a TCP connection surviving the failover.

One VM boot runs tests/ipvs/sync_daemon_vm_scenario.py; the tests read its report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(960)]

SCENARIO = Path(__file__).with_name("sync_daemon_vm_scenario.py")


@pytest.fixture(scope="module")
def report(run_in_vm, tmp_path_factory):
    r = run_in_vm([sys.executable, str(SCENARIO)], timeout=900)
    kept = tmp_path_factory.mktemp("vm-sync")
    for name, data in r.files.items():
        (kept / name).write_bytes(data)
    doc = json.loads(r.files.get("report.json", b"{}") or b"{}")
    doc["_output"] = r.stdout[-6000:] + r.stderr[-3000:]
    doc["_log"] = "".join(r.files.get(f"{n}.log", b"").decode("utf-8", "replace")[-4000:]
                          for n in ("dira", "dirb"))
    assert r.returncode == 0, doc["_output"]
    assert not doc.get("errors"), "\n".join(doc["errors"]) + "\n" + doc["_output"] + doc["_log"]
    return doc


def test_the_master_runs_the_master_sync_daemon_and_the_backup_the_backup_one(report):
    before = report["daemons_before"]
    assert "master" in before["dira"] and "syncid=51" in before["dira"].replace(" ", ""), before
    assert "backup" in before["dirb"], before


def test_the_backup_director_holds_the_connection_before_the_failover(report):
    assert report["synced_after"] is not None, report["conns_b_before"]
    assert "10.0.0.2:" in report["conns_b_before"]


def test_the_new_master_runs_the_master_daemon_and_holds_the_connection(report):
    assert report["b_master_after"] is not None, report["_log"]
    assert "master" in report["daemons_after"]["dirb"], report["daemons_after"]
    assert "10.0.0.2:" in report["conns_b_after"] and "ESTABLISHED" in report["conns_b_after"]


def test_the_clients_connection_survives_the_failover(report):
    client = report["client"]
    assert client.get("error") is None, (client, report["client_err"], report["_log"])
    assert client["last"] > report["failover_at"] + 5, client  # echoes went on well after the failover


def test_the_daemon_is_stopped_with_kpd(report):
    assert "master" not in report["daemons_stopped"] and "backup" not in report["daemons_stopped"]
