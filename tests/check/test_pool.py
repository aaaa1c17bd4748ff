"""Real/virtual server policy against the reconciler and a fake IPVS table: inhibit, sorry server, quorum."""

from __future__ import annotations

from ipaddress import ip_address

from fake_ipvs import FakeIpvs

from keepalived_py.check.checker import Verdict
from keepalived_py.check.pool import Pool
from keepalived_py.check.specs import build
from keepalived_py.config import load_config
from keepalived_py.ipvs.reconcile import plan
from keepalived_py.ipvs.state import Forward, ServiceKey

VS = ServiceKey.for_address("TCP", ip_address("192.0.2.10"), 80)


def pool_of(write_conf, body: str, head: str = "") -> Pool:
    path = write_conf(head + body)
    result = load_config(path, host_checks=False)
    assert result.config is not None, [d.format() for d in result.diagnostics]
    errors = [d.format() for d in result.diagnostics if d.severity.name in ("ERROR", "FATAL")]
    assert not errors, errors
    return Pool(build(result.config))


def sync(pool: Pool, ipvs: FakeIpvs) -> None:
    for op in plan(pool.desired(), ipvs.dump(), managed=pool.managed_keys()):
        ipvs.apply(op)


def vs_conf(rs_lines: str, extra: str = "") -> str:
    return f"""
virtual_server 192.0.2.10 80 {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
    delay_loop 1
{extra}
{rs_lines}
}}
"""


def rs(addr: str, weight: int = 1, extra: str = "", port: int = 8080) -> str:
    return f"""
    real_server {addr} {port} {{
        weight {weight}
{extra}
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
"""


def fail(pool: Pool, addr: str) -> list:
    return set_state(pool, addr, False)


def set_state(pool: Pool, addr: str, up: bool, weight: int | None = None) -> list:
    notes = []
    for key in pool.checker_keys:
        if getattr(key.probe, "host", None) == addr or (
                hasattr(key.probe, "argv") and addr in key.probe.argv):
            notes += pool.verdict(key, Verdict(up, "" if up else "connect: Connection refused", weight))
    return notes


def test_live_real_servers_are_programmed_with_their_weights_and_method(write_conf):
    pool = pool_of(write_conf, vs_conf(rs("10.0.0.1", 3) + rs("10.0.0.2", 5)))
    ipvs = FakeIpvs()
    sync(pool, ipvs)
    assert ipvs.weights() == {"TCP 192.0.2.10:80": {"10.0.0.1:8080": 3, "10.0.0.2:8080": 5}}
    entry = ipvs.table[VS]
    assert entry.service.scheduler == "rr"
    assert {d.forward for d in entry.dests.values()} == {Forward.MASQ}
    assert plan(pool.desired(), ipvs.dump()) == []


def test_failed_real_server_is_removed_and_comes_back(write_conf):
    pool = pool_of(write_conf, vs_conf(rs("10.0.0.1") + rs("10.0.0.2")))
    ipvs = FakeIpvs()
    sync(pool, ipvs)
    notes = fail(pool, "10.0.0.1")
    assert [n.fifo_line for n in notes] == ["RS [10.0.0.1]:tcp:8080 [192.0.2.10]:tcp:80 DOWN\n"]
    sync(pool, ipvs)
    assert ipvs.weights() == {"TCP 192.0.2.10:80": {"10.0.0.2:8080": 1}}
    set_state(pool, "10.0.0.1", True)
    sync(pool, ipvs)
    assert ipvs.weights() == {"TCP 192.0.2.10:80": {"10.0.0.1:8080": 1, "10.0.0.2:8080": 1}}


def test_inhibit_on_failure_sets_weight_zero_instead_of_removing(write_conf):
    pool = pool_of(write_conf, vs_conf(rs("10.0.0.1", 4) + rs("10.0.0.2"), "    inhibit_on_failure"))
    ipvs = FakeIpvs()
    sync(pool, ipvs)
    fail(pool, "10.0.0.1")
    ops = plan(pool.desired(), ipvs.dump())
    assert [str(o) for o in ops] == ["set-dest TCP 192.0.2.10:80 -> 10.0.0.1:8080 Masq weight 0"]


def test_sorry_server_replaces_the_pool_when_quorum_is_lost_and_leaves_when_gained(write_conf):
    pool = pool_of(write_conf, vs_conf(rs("10.0.0.1") + rs("10.0.0.2"), "    sorry_server 10.9.9.9 8080"))
    ipvs = FakeIpvs()
    pool.start()
    sync(pool, ipvs)
    fail(pool, "10.0.0.1")
    notes = fail(pool, "10.0.0.2")
    assert notes[-1].fifo_line == "VS [192.0.2.10]:tcp:80 DOWN\n"
    sync(pool, ipvs)
    assert ipvs.weights() == {"TCP 192.0.2.10:80": {"10.9.9.9:8080": 1}}
    notes = set_state(pool, "10.0.0.2", True)
    assert notes[-1].fifo_line == "VS [192.0.2.10]:tcp:80 UP\n"
    sync(pool, ipvs)
    assert ipvs.weights() == {"TCP 192.0.2.10:80": {"10.0.0.2:8080": 1}}


def test_sorry_server_inhibit_keeps_it_with_weight_zero(write_conf):
    pool = pool_of(write_conf, vs_conf(rs("10.0.0.1"),
                                       "    sorry_server 10.9.9.9 8080\n    sorry_server_inhibit"))
    ipvs = FakeIpvs()
    pool.start()
    sync(pool, ipvs)
    assert ipvs.weights() == {"TCP 192.0.2.10:80": {"10.0.0.1:8080": 1, "10.9.9.9:8080": 0}}
    fail(pool, "10.0.0.1")
    sync(pool, ipvs)
    assert ipvs.weights() == {"TCP 192.0.2.10:80": {"10.9.9.9:8080": 1}}


def test_quorum_with_hysteresis_runs_quorum_scripts_at_the_thresholds(write_conf):
    extra = ("    quorum 3\n    hysteresis 1\n"
             "    quorum_up \"/bin/echo up\"\n    quorum_down \"/bin/echo down\"")
    pool = pool_of(write_conf, vs_conf("".join(rs(f"10.0.0.{i}") for i in range(1, 6)), extra))
    start = pool.start()
    assert start[0].up and [x.argv for x in start[0].scripts] == [("/bin/echo", "up")]
    assert [n.what for n in fail(pool, "10.0.0.1")] == ["rs"]  # live weight 4
    assert [n.what for n in fail(pool, "10.0.0.2")] == ["rs"]  # 3
    assert [n.what for n in fail(pool, "10.0.0.3")] == ["rs"]  # 2, not below 3 - 1: quorum kept
    notes = fail(pool, "10.0.0.4")  # weight 1 < 2: lost
    assert [(n.what, n.up) for n in notes] == [("rs", False), ("vs", False)]
    assert [x.argv for x in notes[-1].scripts] == [("/bin/echo", "down")]
    assert [n.what for n in set_state(pool, "10.0.0.1", True)] == ["rs"]  # 2 < 3 + 1
    assert [n.what for n in set_state(pool, "10.0.0.2", True)] == ["rs"]  # 3 < 4
    notes = set_state(pool, "10.0.0.3", True)  # 4 >= 4: gained
    assert [(n.what, n.up) for n in notes] == [("rs", True), ("vs", True)]


def test_misc_dynamic_weight_reaches_the_table(write_conf):
    extra = """
        MISC_CHECK {
            misc_path "/bin/true 10.0.0.1"
            misc_dynamic
        }
"""
    body = vs_conf(f"""
    real_server 10.0.0.1 8080 {{
        weight 1
{extra}
    }}
""")
    pool = pool_of(write_conf, body)
    ipvs = FakeIpvs()
    sync(pool, ipvs)
    set_state(pool, "10.0.0.1", True, weight=7)
    sync(pool, ipvs)
    assert ipvs.weights() == {"TCP 192.0.2.10:80": {"10.0.0.1:8080": 7}}


def test_notify_scripts_of_a_real_server(write_conf):
    pool = pool_of(write_conf, vs_conf(rs("10.0.0.1", extra='        notify_down "/bin/echo gone"')))
    notes = fail(pool, "10.0.0.1")
    assert [x.argv for x in notes[0].scripts] == [("/bin/echo", "gone")]


def test_identical_probe_shared_by_two_virtual_servers_is_one_checker(write_conf):
    body = vs_conf(rs("10.0.0.1")) + vs_conf(rs("10.0.0.1")).replace("192.0.2.10 80", "192.0.2.11 80")
    pool = pool_of(write_conf, body)
    assert len(pool.checker_keys) == 1
    ipvs = FakeIpvs()
    sync(pool, ipvs)
    fail(pool, "10.0.0.1")
    sync(pool, ipvs)
    assert ipvs.weights() == {"TCP 192.0.2.10:80": {}, "TCP 192.0.2.11:80": {}}


def test_virtual_server_group_expands_to_every_member(write_conf):
    body = """
virtual_server_group WEB {
    192.0.2.20-21 80
    fwmark 7
}
virtual_server group WEB {
    protocol TCP
    lb_algo wlc
    lb_kind DR
    delay_loop 1
    real_server 10.0.0.1 80 {
        weight 2
    }
}
"""
    pool = pool_of(write_conf, body)
    ipvs = FakeIpvs()
    sync(pool, ipvs)
    assert ipvs.weights() == {
        "TCP 192.0.2.20:80": {"10.0.0.1:80": 2},
        "TCP 192.0.2.21:80": {"10.0.0.1:80": 2},
        "FWM 7": {"10.0.0.1:0": 2},  # DR to a fwmark service: port 0, as keepalived programs it
    }
    assert all(d.forward is Forward.DROUTE for e in ipvs.table.values() for d in e.dests.values())


# --- SMTP alerts (keepalived's subjects and bodies) -------------------------------------------------------


def test_real_server_checker_changes_are_mailed_by_default(write_conf):
    """keepalived mails each real server checker change unless told not to (smtp_alert defaults on for real
    servers), and quorum changes only with the virtual server's smtp_alert."""
    pool = pool_of(write_conf, vs_conf(rs("10.0.0.1") + rs("10.0.0.2")))
    pool.start()
    assert pool.mails == []  # no quorum mail without smtp_alert on the virtual server
    fail(pool, "10.0.0.1")
    assert pool.mails == [
        (
            "Realserver [10.0.0.1]:tcp:8080 of virtual server [192.0.2.10]:tcp:80 - DOWN",
            "=> TCP CHECK failed on service <=",
        )
    ]
    pool.mails.clear()
    set_state(pool, "10.0.0.1", True)
    assert pool.mails == [
        (
            "Realserver [10.0.0.1]:tcp:8080 of virtual server [192.0.2.10]:tcp:80 - UP",
            "=> TCP CHECK succeed on service <=",
        )
    ]


def test_smtp_alert_off_and_quorum_mails(write_conf):
    head = "global_defs {\n    smtp_alert_checker off\n}\n"
    body = vs_conf(rs("10.0.0.1") + rs("10.0.0.2", extra="        smtp_alert on"), "    smtp_alert on")
    pool = pool_of(write_conf, body, head)
    pool.start()
    up = ("Virtualserver [192.0.2.10]:tcp:80 - UP", "=> Starting with quorum up 1+0=1 <= 2 <=")
    assert pool.mails == [up]
    pool.mails.clear()
    fail(pool, "10.0.0.1")  # smtp_alert_checker off: no mail for this one
    assert pool.mails == []
    fail(pool, "10.0.0.2")  # its own smtp_alert on; and the quorum is lost
    assert pool.mails == [
        (
            "Realserver [10.0.0.2]:tcp:8080 of virtual server [192.0.2.10]:tcp:80 - DOWN",
            "=> TCP CHECK failed on service <=",
        ),
        ("Virtualserver [192.0.2.10]:tcp:80 - DOWN", "=> Lost quorum 1+0=1 <= 0 <="),
    ]


def test_only_a_verdict_that_changes_a_real_server_touches_its_virtual_server(write_conf):
    """Each checker's first success at start confirms what the pool presumed: no virtual server to sync
    (one sync per such verdict recomputed the whole virtual server: quadratic at start-up)."""
    pool = pool_of(write_conf, vs_conf(rs("10.0.0.1") + rs("10.0.0.2")))
    pool.start()
    key = next(k for k in pool.checker_keys if k.probe.host == "10.0.0.1")
    assert pool.verdict_changes(key, Verdict(True, ""))[1] == []
    notes, touched = pool.verdict_changes(key, Verdict(False, "connect: Connection refused"))
    assert [vs.spec.name for vs in touched] == [pool.virtual_servers[0].spec.name] and notes
    assert pool.verdict_changes(key, Verdict(False, "connect: timeout"))[1] == []   # still down
    assert len(pool.verdict_changes(key, Verdict(True, ""))[1]) == 1                # back up
    assert len(pool.verdict_changes(key, Verdict(True, "", 7))[1]) == 1             # a new weight
