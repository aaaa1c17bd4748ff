"""The IPVS driver against a real kernel IPVS (in the test VM), with `ipvsadm -Ln` as the oracle."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm
SCRIPT = Path(__file__).with_name("driver_vm_script.py")


@pytest.fixture(scope="module")
def result(run_in_vm):
    r = run_in_vm([sys.executable, str(SCRIPT)], env={"PYTHONPATH": str(Path(__file__).parents[2] / "src")})
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_every_kind_of_service_and_forwarding_method_round_trips(result):
    c = result["create"]
    assert c["failures"] == [] and c["equal"], c


def test_a_plan_against_what_was_just_applied_is_empty(result):
    assert result["create"]["replan"] == []


def test_ipvsadm_sees_the_rules_as_configured(result):
    text = result["create"]["ipvsadm"]
    expected = [
        r"^TCP\s+10\.0\.0\.1:80 rr persistent 300 mask 255\.255\.255\.0$",
        r"^\s+->\s+10\.0\.1\.1:8080\s+Masq\s+3\s",
        r"^\s+->\s+10\.0\.1\.2:80\s+Route\s+1\s",
        r"^\s+->\s+10\.0\.1\.3:80\s+Tunnel\s+0\s",
        r"^UDP\s+10\.0\.0\.1:53 wrr$",
        r"^SCTP\s+10\.0\.0\.1:9999 sh ops$",
        r"^FWM\s+7 wlc$",
        r"^\s+->\s+10\.0\.1\.5:0\s+Route\s+5\s",
        r"^TCP\s+\[2001:db8::1\]:443 lc persistent 60$",
        r"^\s+->\s+\[2001:db8::10\]:8443\s+Masq\s+4\s",
    ]
    for pattern in expected:
        assert re.search(pattern, text, re.M), f"{pattern}\n{text}"


def test_one_weight_change_is_one_set_dest(result):
    w = result["weight"]
    assert w["ops"] == ["set-dest UDP 10.0.0.1:53 -> 10.0.1.1:53 Masq weight 9"] and w["equal"], w
    assert re.search(r"^\s+->\s+10\.0\.1\.1:53\s+Masq\s+9\s", w["ipvsadm"], re.M)


def test_external_changes_are_seen_and_repaired(result):
    assert result["external_weight"]["ops"] == ["set-dest TCP 10.0.0.1:80 -> 10.0.1.1:8080 Masq weight 3"]
    assert result["external_flush"]["equal"]


def test_deletions_of_a_real_server_and_of_a_managed_service(result):
    d = result["delete"]
    assert d["ops"] == ["del-service SCTP 10.0.0.1:9999", "del-dest TCP 10.0.0.1:80 -> 10.0.1.1:8080"], d
    assert d["equal"] and "SCTP" not in d["ipvsadm"]


def test_a_refused_operation_says_what_and_why(result):
    assert result["error"] == "add-service UDP 10.0.0.1:53 wrr: File exists"


def test_flush_empties_the_table(result):
    assert result["flush"]["empty"]
