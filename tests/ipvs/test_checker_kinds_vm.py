"""SMTP_CHECK, UDP_CHECK, PING_CHECK, DNS_CHECK and FILE_CHECK in the test VM: kpd's IPVS table after each
step is the one real keepalived makes on the same configuration (`ipvsadm -Ln` the oracle).

One VM boot runs tests/ipvs/checker_kinds_vm_scenario.py (kpd, then keepalived, through the same steps).
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(960)]

SCENARIO = Path(__file__).with_name("checker_kinds_vm_scenario.py")
STEPS = ["start", "smtp_down", "dns_down", "udp_down", "ping_dropped", "file_weight", "file_quiesce",
         "file_gate", "regex_body", "all_back"]


@pytest.fixture(scope="module")
def report(run_in_vm, tmp_path_factory):
    r = run_in_vm([sys.executable, str(SCENARIO)], timeout=900)
    doc = json.loads(r.files.get("report.json", b"{}") or b"{}")
    kept = tmp_path_factory.mktemp("vm-kinds")
    for name, data in r.files.items():  # for a look after a failure
        (kept / name).write_bytes(data)
    doc["_output"] = r.stdout[-6000:] + r.stderr[-3000:]
    doc["_log"] = r.files.get("kpd.log", b"").decode("utf-8", "replace")[-8000:]
    assert r.returncode == 0, doc["_output"]
    assert not doc.get("errors"), "\n".join(doc["errors"]) + "\n" + doc["_output"] + doc["_log"]
    return doc


@pytest.mark.parametrize("step", STEPS)
def test_kpd_table_is_the_expected_one_after_each_step(report, step):
    s = report["kpd"].get(step)
    assert s is not None, report["_output"]
    assert s["table"] == s["expected"], (s, report["_log"])


@pytest.mark.parametrize("step", STEPS)
def test_keepalived_makes_the_same_table_on_the_same_configuration(report, step):
    """The expectation is keepalived's: real keepalived 2.2.7 reaches the same table at each step."""
    ours, theirs = report["kpd"].get(step), report["keepalived"].get(step)
    assert ours is not None and theirs is not None, report["_output"]
    assert theirs["table"] == theirs["expected"], theirs
    assert ours["table"] == theirs["table"]


def without_counters(text: str) -> list[str]:
    """`ipvsadm -Ln` lines without the connection counters (connections of one run linger into the next)."""
    return [" ".join(line.split()[:-2]) if line.lstrip().startswith("->") else line.rstrip()
            for line in text.splitlines()]


def test_tunnel_types_are_programmed_as_keepalived_programs_them(report):
    """lb_kind / lvs_method TUN type ipip|gue|gre [port N] [csum...]: `ipvsadm -Ln --tun-info` reads the
    same under kpd as under keepalived (a tunnel of another type used to fall back to NAT with a warning)."""
    ours, theirs = report["kpd"].get("tun_info"), report["keepalived"].get("tun_info")
    assert ours is not None and theirs is not None, report["_output"]
    assert "gue:6080:+c" in theirs and "gre:+c" in theirs, theirs  # the oracle shows the types
    assert without_counters(ours) == without_counters(theirs)


def test_scheduler_flags_persistence_and_fwmark_family_are_keepalived_s(report):
    """sh-port/sh-fallback, mh-fallback, flag-3, an IPv4 netmask and an IPv6 prefix for
    persistence_granularity, ip_family inet6 on a fwmark service: the same `ipvsadm -Ln`."""
    ours, theirs = report["kpd"].get("services"), report["keepalived"].get("services")
    assert ours is not None and theirs is not None, report["_output"]
    assert "FWM  9 IPv6" in theirs and "sh-fallback" in theirs.replace(",", " "), theirs
    assert without_counters(ours) == without_counters(theirs)


def test_lvs_timeouts_are_set_as_keepalived_sets_them(report):
    ours, theirs = report["kpd"].get("timeouts"), report["keepalived"].get("timeouts")
    assert theirs is not None and "901" in theirs and "61" in theirs and "201" in theirs, theirs
    assert ours == theirs


def test_a_reload_changing_scheduler_and_persistence_edits_the_service_and_a_connection_survives(report):
    r = report["kpd"].get("reload_in_place")
    assert r is not None, report["_output"]
    assert r["reload_exit"] == 0 and r["edited_after"] is not None, r
    client = json.loads(r["client"] or "{}")
    assert client.get("error") is None and client.get("echoed", 0) >= 20, r  # ran on through the reload
    assert client["last"] and client["last"][0] > r["reload_at"], r  # echoes after the reload
    assert "10.0.2.110:9000" in r["conns_before"] and "10.0.2.110:9000" in r["conns_after"], r
    assert not any("del-service" in op or "add-service" in op for op in r["ops"][1:]), r["ops"]
    assert any("set-service TCP 10.0.2.110:9000 wrr" in op for op in r["ops"]), r["ops"]


def test_alert_mails_of_every_checker_kind_are_keepalived_s(report):
    """The SMTP alerts of the whole run (SMTP, UDP, ICMP, DNS and HTTP checkers going down and up; none for
    FILE_CHECK): the same subjects and bodies as keepalived's."""
    ours, theirs = report["kpd"].get("mails"), report["keepalived"].get("mails")
    assert ours is not None and theirs is not None, report["_output"]
    bodies = {body for _, body in theirs}
    assert {"=> UDP CHECK failed on service <=", "=> DNS_CHECK: failed on service <="} <= bodies, theirs
    assert ours == theirs


def test_ssl_get_server_name_host_header_and_quiet_close_are_keepalived_s(report):
    """An SSL_GET without enable_sni sends no server name; with it, the url's, checker's or virtual
    server's virtualhost (not the real server's, which is in the Host header); neither answers the server's
    close_notify (keepalived's quiet shutdown). The server's records under kpd are keepalived's."""
    ours, theirs = report["kpd"].get("tls_seen"), report["keepalived"].get("tls_seen")
    assert ours is not None and theirs is not None, report["_output"]
    seen = [json.loads(line) for line in theirs]
    expected = {(8443, None, "vs.example"), (8444, "vs.example", "rs.example"),
                (8444, "u.example", "u.example")}
    assert {(r["port"], r["sni"], r["host"]) for r in seen} == expected, seen
    assert ours == theirs


def test_http_get_fetches_one_url_per_delay_loop_and_recovers_as_keepalived(report):
    """keepalived's HTTP_GET fetches one url per delay_loop (/a, /b, /c, /a ...); when a failed url (/b)
    passes again it starts over at the first url and the server is back only after /a, /b, /c have passed.
    The requests the real server saw under kpd are keepalived's."""
    seen = {}
    for who in ("kpd", "keepalived"):
        run = report[who]
        requests, back = run.get("url_requests"), run.get("url_back_at")
        assert requests and back, report["_output"]
        first = requests[:6]
        gaps = sorted(b["t"] - a["t"] for a, b in itertools.pairwise(first))
        after = [r["path"] for r in requests if r["t"] > back and r["status"] == 200][:4]
        seen[who] = ([r["path"] for r in first], gaps[len(gaps) // 2], after)
    (k_paths, k_gap, k_after), (o_paths, o_gap, o_after) = seen["keepalived"], seen["kpd"]
    assert k_paths == ["/a", "/b", "/c", "/a", "/b", "/c"] and k_after == ["/b", "/a", "/b", "/c"], seen
    assert o_paths == k_paths and o_after == k_after, seen
    assert abs(o_gap - k_gap) < 0.4 and 0.6 < k_gap < 1.6, seen  # one url per delay_loop (1 s)
