"""The check engine on a fake IPVS table and scripted probes: adoption, resync, reload diff, stop."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import ip_address

from fake_ipvs import FakeIpvs
from silent_listener import silent_listener

from keepalived_py.check import tcp_probe
from keepalived_py.check.engine import CheckEngine, run_probe
from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.specs import FailedSpec
from keepalived_py.config import load_config
from keepalived_py.ipvs.reconcile import OpKind
from keepalived_py.ipvs.state import Dest, Entry, Forward, Service, ServiceKey
from lab import wait_for_async

VS = ServiceKey.for_address("TCP", ip_address("192.0.2.10"), 80)
FOREIGN = ServiceKey.for_address("UDP", ip_address("198.51.100.1"), 53)


def config(write_conf, weights=(1, 1), extra_vs: str = "", name: str = "keepalived.conf"):
    rss = "".join(f"""
    real_server 10.0.0.{i} 8080 {{
        weight {w}
        TCP_CHECK {{
            connect_timeout 1
            retry 0
            warmup 0
        }}
    }}""" for i, w in enumerate(weights, 1))
    text = f"""
virtual_server 192.0.2.10 80 {{
    protocol TCP
    lb_algo rr
    delay_loop 0.2
{rss}
}}
{extra_vs}
"""
    result = load_config(write_conf(text, name), host_checks=False)
    assert result.config is not None
    return result.config


class Probes:
    """Scripted probe results by host; counts calls."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.calls: dict[str, int] = {}

    async def __call__(self, spec) -> ProbeResult:
        self.calls[spec.host] = self.calls.get(spec.host, 0) + 1
        return ProbeResult.down("refused") if spec.host in self.down else ProbeResult.up()


def run(coro):
    return asyncio.run(coro)


def test_start_adopts_existing_rules_and_leaves_foreign_ones(write_conf):
    foreign = Entry.of(Service(FOREIGN, "rr"), [Dest(ip_address("10.1.1.1"), 53, Forward.MASQ, 1)])
    existing = Entry.of(Service(VS, "rr"), [Dest(ip_address("10.0.0.1"), 8080, Forward.MASQ, 1)])
    ipvs = FakeIpvs({FOREIGN: foreign, VS: existing})

    async def main():
        engine = CheckEngine(config(write_conf), ipvs, probe=Probes())
        engine.open()
        await engine.settled()
        return engine

    run(main())
    assert ipvs.flushes == 0
    assert [(o.kind, str(o.item.key)) for o in ipvs.ops] == [(OpKind.ADD_DEST, "10.0.0.2:8080")]
    assert FOREIGN in ipvs.table


def test_failed_server_leaves_and_external_flush_is_repaired(write_conf):
    ipvs = FakeIpvs()
    probes = Probes()
    probes.down.add("10.0.0.2")

    async def main():
        engine = CheckEngine(config(write_conf), ipvs, probe=probes, resync_interval=0.5)
        engine.open()
        task = asyncio.create_task(engine.run())
        only_the_live_one = {"TCP 192.0.2.10:80": {"10.0.0.1:8080": 1}}
        await wait_for_async(lambda: ipvs.weights() == only_the_live_one)
        repairs = engine.stats["repairs"]
        ipvs.table.clear()  # `ipvsadm -C` behind kpd's back
        await wait_for_async(lambda: engine.stats["repairs"] > repairs)
        assert ipvs.weights() == only_the_live_one
        engine.stop()
        await task
        await engine.shutdown()

    run(main())
    assert ipvs.table == {}  # released on stop


def test_reload_changing_one_weight_changes_only_that_weight(write_conf):
    ipvs = FakeIpvs()

    async def main():
        engine = CheckEngine(config(write_conf, (1, 1)), ipvs, probe=Probes())
        engine.open()
        await engine.settled()
        before = len(ipvs.ops)
        await engine.reload(config(write_conf, (1, 5), name="new.conf"))
        await engine.settled()
        return ipvs.ops[before:]

    ops = run(main())
    assert [str(o) for o in ops] == ["set-dest TCP 192.0.2.10:80 -> 10.0.0.2:8080 Masq weight 5"]


def test_reload_removing_a_virtual_server_deletes_it_and_keeps_check_state(write_conf):
    ipvs = FakeIpvs()
    probes = Probes()
    probes.down.add("10.0.0.1")
    other = """
virtual_server 192.0.2.11 80 {
    protocol TCP
    delay_loop 0.2
    real_server 10.0.0.9 80 {
    }
}"""

    async def main():
        engine = CheckEngine(config(write_conf, extra_vs=other), ipvs, probe=probes)
        engine.open()
        task = asyncio.create_task(engine.run())
        await wait_for_async(lambda: "10.0.0.1:8080" not in ipvs.weights()["TCP 192.0.2.10:80"])
        before = len(ipvs.ops)
        await engine.reload(config(write_conf, name="new.conf"))
        await engine.settled()
        ops = ipvs.ops[before:]
        engine.stop()
        await task
        return ops

    ops = run(main())
    # the dead server stays out (its checker state carried over); only the dropped service goes
    assert [str(o) for o in ops] == ["del-service TCP 192.0.2.11:80"]


def test_identical_probe_referenced_twice_runs_once_per_round(write_conf):
    twin = """
virtual_server 192.0.2.11 80 {
    protocol TCP
    lb_algo rr
    delay_loop 0.2
    real_server 10.0.0.1 8080 {
        TCP_CHECK {
            connect_timeout 1
            retry 0
            warmup 0
        }
    }
}"""
    probes = Probes()

    async def main():
        engine = CheckEngine(config(write_conf, (1,), extra_vs=twin), FakeIpvs(), probe=probes)
        engine.open()
        task = asyncio.create_task(engine.run())
        await asyncio.sleep(2.0)
        engine.stop()
        await task

    run(main())
    # first run at 1 s (bootstrap delay), then every 0.2 s: about 5 rounds, not 10
    assert 3 <= probes.calls["10.0.0.1"] <= 7, probes.calls


def test_dont_release_ipvs_keeps_the_rules_on_stop(write_conf):
    ipvs = FakeIpvs()

    async def main():
        engine = CheckEngine(config(write_conf), ipvs, probe=Probes(), release_on_stop=False)
        engine.open()
        await engine.settled()
        engine.stop()
        await engine.shutdown()

    run(main())
    assert ipvs.weights() == {"TCP 192.0.2.10:80": {"10.0.0.1:8080": 1, "10.0.0.2:8080": 1}}


def test_ha_suspend_skips_checks_while_the_address_is_not_local(write_conf):
    probes = Probes()
    local = {"now": False}
    cfg = config(write_conf).__class__
    text = config(write_conf)
    vs = text.virtual_servers[0]
    from dataclasses import replace

    conf = replace(text, virtual_servers=(replace(vs, ha_suspend=True),))

    async def main():
        engine = CheckEngine(conf, FakeIpvs(), probe=probes, is_local=lambda a: local["now"])
        engine.open()
        task = asyncio.create_task(engine.run())
        await asyncio.sleep(1.5)
        assert probes.calls == {}
        local["now"] = True
        await wait_for_async(lambda: probes.calls.get("10.0.0.1", 0) >= 1)
        engine.stop()
        await task

    assert cfg is not None
    run(main())
    assert probes.calls.get("10.0.0.1", 0) >= 1


def test_lvs_notify_fifo_gets_keepalived_s_lines_and_notify_scripts_run(write_conf, tmp_path):
    import os

    fifo = tmp_path / "lvs.fifo"
    marks = tmp_path / "marks"
    text = f"""
global_defs {{
    lvs_notify_fifo {fifo}
}}
virtual_server 192.0.2.10 80 {{
    protocol TCP
    lb_algo rr
    delay_loop 0.2
    real_server 10.0.0.1 8080 {{
        notify_down "/bin/sh -c 'echo down >> {marks}'"
        TCP_CHECK {{
            connect_timeout 1
            retry 0
            warmup 0
        }}
    }}
}}
"""
    result = load_config(write_conf(text), host_checks=False)
    assert result.config is not None
    probes = Probes()
    probes.down.add("10.0.0.1")

    async def main() -> bytes:
        engine = CheckEngine(result.config, FakeIpvs(), probe=probes)
        engine.open()
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        task = asyncio.create_task(engine.run())
        await wait_for_async(lambda: engine.stats["verdicts"] >= 1)  # the first probe (at 1 s) fails
        engine.stop()
        await task
        await engine.shutdown()
        data = os.read(reader, 65536)
        os.close(reader)
        return data

    lines = run(main()).decode().splitlines()
    assert "RS [10.0.0.1]:tcp:8080 [192.0.2.10]:tcp:80 DOWN" in lines
    assert "VS [192.0.2.10]:tcp:80 DOWN" in lines  # quorum lost: the only real server is down
    assert marks.read_text() == "down\n"


def test_a_real_server_checked_by_bfd_only_is_never_taken_for_up(write_conf):
    """kpd has no BFD process: BFD_CHECK always fails (it used to be ignored, the server always up), from
    the start (never added, even before the first probe); check-config says so (exit 5)."""
    text = """
virtual_server 192.0.2.10 80 {
    protocol TCP
    lb_algo rr
    delay_loop 0.2
    real_server 10.0.0.1 8080 {
        BFD_CHECK {
            name bfd1
        }
    }
    real_server 10.0.0.2 8080 {
        TCP_CHECK {
            connect_timeout 1
            retry 0
            warmup 0
        }
    }
}
"""
    result = load_config(write_conf(text), host_checks=False)
    assert int(result.exit_code) == 5 and result.unsupported == ["BFD_CHECK"]
    ipvs = FakeIpvs()

    async def probe(spec):  # the real verdict of BFD_CHECK; every other probe succeeds
        return await run_probe(spec) if isinstance(spec, FailedSpec) else ProbeResult.up()

    async def main():
        engine = CheckEngine(result.config, ipvs, probe=probe)
        engine.open()
        task = asyncio.create_task(engine.run())
        seen = []
        for _ in range(20):
            seen.append(ipvs.weights())
            await asyncio.sleep(0.05)
        engine.stop()
        await task
        await engine.shutdown()
        return seen

    seen = run(main())
    assert seen[-1] == {"TCP 192.0.2.10:80": {"10.0.0.2:8080": 1}}
    assert all("10.0.0.1:8080" not in table.get("TCP 192.0.2.10:80", {}) for table in seen)


def test_real_servers_of_every_checker_kind_are_judged_by_real_probes_never_always_up(write_conf, tmp_path):
    """SMTP_CHECK, UDP_CHECK, DNS_CHECK and PING_CHECK used to be ignored (their real servers always up):
    with nothing listening each server stays out of the table; PING of this host's loopback is up."""
    closed = []
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        closed.append(s.getsockname()[1])
        s.close()
    smtp, udp, dns = closed
    common = "connect_timeout 1\n            retry 0\n            warmup 0"
    text = f"""
virtual_server 192.0.2.10 80 {{
    protocol TCP
    lb_algo rr
    lb_kind NAT
    delay_loop 0.3
    quorum 1
    real_server 127.0.0.1 {smtp} {{
        SMTP_CHECK {{
            {common}
        }}
    }}
    real_server 127.0.0.1 {udp} {{
        UDP_CHECK {{
            {common}
        }}
    }}
    real_server 127.0.0.1 {dns} {{
        DNS_CHECK {{
            {common}
        }}
    }}
    real_server 127.0.0.1 9 {{
        PING_CHECK {{
            {common}
        }}
    }}
}}
"""
    result = load_config(write_conf(text), host_checks=False)
    assert int(result.exit_code) == 0, result.diagnostics
    ipvs = FakeIpvs()

    async def main():
        engine = CheckEngine(result.config, ipvs)
        engine.open()
        task = asyncio.create_task(engine.run())
        only_ping = {"127.0.0.1:9": 1}
        await wait_for_async(lambda: ipvs.weights().get("TCP 192.0.2.10:80") == only_ping, timeout=20)
        await asyncio.sleep(1.0)  # every checker has run (first runs within 1 s + warmup 0)
        seen = ipvs.weights()
        engine.stop()
        await task
        await engine.shutdown()
        return seen

    assert run(main()) == {"TCP 192.0.2.10:80": {"127.0.0.1:9": 1}}


class BatchIpvs(FakeIpvs):
    """A driver with apply_all: records each batch; refuses the ops ``refuse`` picks (as IpvsDriver does:
    the failure with its op, the others applied)."""

    def __init__(self, refuse) -> None:
        super().__init__()
        self.refuse = refuse
        self.batches: list[int] = []

    def apply_all(self, ops):
        self.batches.append(len(ops))
        failed = []
        for op in ops:
            if self.refuse(op):
                failed.append((op, OSError(17, f"{op}: File exists")))
            else:
                self.apply(op)
        return failed


def test_a_driver_with_apply_all_gets_batches_and_a_refused_op_is_counted_alone(write_conf):
    refused = "10.0.0.2:8080"
    ipvs = BatchIpvs(lambda op: op.kind is OpKind.ADD_DEST and str(op.item.key) == refused)

    async def main():
        engine = CheckEngine(config(write_conf, weights=(1,) * 40), ipvs, probe=Probes())
        engine.open()
        await engine.settled()
        return engine

    engine = run(main())
    assert ipvs.batches[:2] == [32, 9]  # the service and 40 real servers
    assert engine.stats["ipvs_errors"] == 1 and engine.stats["ipvs_ops"] == 40
    # for the metrics: by service, kind and result
    (service,) = {key[0] for key in engine.ipvs_ops}
    assert engine.ipvs_ops == {(service, "add_service", "ok"): 1, (service, "add_dest", "ok"): 39,
                               (service, "add_dest", "error"): 1}
    assert engine.kernel == ipvs.table  # the mirror has every op but the refused one
    assert refused not in {str(k) for k in ipvs.table[VS].dests}
    assert len(ipvs.table[VS].dests) == 39


def test_verdicts_and_ipvs_operations_are_events_with_their_outcome(write_conf):
    refused = "10.0.0.3:8080"
    ipvs = BatchIpvs(lambda op: op.kind is OpKind.ADD_DEST and str(op.item.key) == refused)
    probes = Probes()
    probes.down.add("10.0.0.2")

    async def main():
        engine = CheckEngine(config(write_conf, weights=(1, 1, 1)), ipvs, probe=probes)
        engine.open()
        task = asyncio.create_task(engine.run())
        await wait_for_async(lambda: any(e["kind"] == "check_verdict" and not e["up"]
                                         for e in engine.events.pending()))
        engine.stop()
        await task
        return engine.events.pending()

    events = run(main())
    (down,) = [e for e in events if e["kind"] == "check_verdict" and not e["up"]]
    assert down["check"].endswith("10.0.0.2:8080") and down["reason"] == "refused" and down["weight"] is None
    ops = [e for e in events if e["kind"] == "ipvs_operation"]
    added = [e for e in ops if e["op"] == "add_service"]
    assert len(added) == 1 and added[0]["ok"] is True and added[0]["error"] is None
    assert added[0]["service"] == str(VS) and added[0]["detail"].startswith("add-service TCP 192.0.2.10:80")
    failed = [e for e in ops if not e["ok"]]  # refused, and refused again at each repair
    assert failed and all(e["op"] == "add_dest" and refused in e["detail"] and "File exists" in e["error"]
                          for e in failed)
    assert all(isinstance(v, str | int | float | bool) or v is None for e in events for v in e.values())


def _tcp_checked(write_conf, port: int, hosts: tuple[int, ...], *, delay_loop: float, connect_timeout: float):
    """A virtual server of TCP_CHECKed real servers 127.0.0.H:port (retry 0, no warmup), loaded."""
    text = f"""
virtual_server 192.0.2.10 80 {{
    protocol TCP
    delay_loop {delay_loop}
""" + "".join(f"""
    real_server 127.0.0.{i} {port} {{
        TCP_CHECK {{
            connect_timeout {connect_timeout}
            retry 0
            warmup 0
        }}
    }}""" for i in hosts) + "\n}\n"
    result = load_config(write_conf(text), host_checks=False)
    assert result.config is not None
    return result


def test_tcp_checks_run_without_tasks_and_judge_up_refused_and_timeout(write_conf):
    """The engine's own TCP_CHECK (no task, no timer of its own per check) against real sockets: a
    listener is up, a closed port down at once with the kernel's reason, a silent one down at its
    connect_timeout; with max_in_flight 1 the checks wait their turn and each still gets its verdict."""
    up = socket.create_server(("127.0.0.1", 0))
    port = up.getsockname()[1]
    result = _tcp_checked(write_conf, port, (1, 2, 3), delay_loop=0.3, connect_timeout=0.5)
    ipvs = FakeIpvs()

    async def main():
        loop = asyncio.get_running_loop()
        created = []

        def factory(loop, coro, **kw):
            created.append(getattr(coro, "__qualname__", ""))
            return asyncio.Task(coro, loop=loop, **kw)

        loop.set_task_factory(factory)
        engine = CheckEngine(result.config, ipvs, max_in_flight=1)
        engine.open()
        runner = loop.create_task(engine.run())
        reasons = {}

        def judged():
            for vs in engine.pool.virtual_servers:
                for rs in vs.real_servers:
                    reasons[str(rs.spec.dest.address)] = (rs.alive, rs.last_reason)
            reasons["ipvs"] = {str(d.address) for e in ipvs.table.values() for d in e.dests.values()}
            return engine.stats["probes"] >= 9 and not reasons["127.0.0.3"][0] \
                and not reasons["127.0.0.2"][0] and reasons["ipvs"] == {"127.0.0.1"}

        await wait_for_async(judged, timeout=30)
        assert "CheckEngine._run" not in created    # the TCP checks ran without a task each
        engine.stop()
        await runner
        await engine.shutdown()
        return reasons

    with up, silent_listener("127.0.0.3", port):
        reasons = run(main())
    assert reasons["127.0.0.1"][0] is True
    assert "Connection refused" in reasons["127.0.0.2"][1]
    assert "connect timeout after 0.5 s" in reasons["127.0.0.3"][1]


def test_a_tcp_check_whose_deadline_handling_crashes_is_down_and_keeps_being_checked(write_conf, monkeypatch):
    """A bug in a TCP_CHECK's timeout handling is that check's failure ("internal error"), logged: the
    checker is not left running forever, the next round checks it again, and the other checkers go on."""
    up = socket.create_server(("127.0.0.1", 0))
    port = up.getsockname()[1]
    result = _tcp_checked(write_conf, port, (1, 3), delay_loop=0.2, connect_timeout=0.2)
    expired = []

    def buggy_expire(probe) -> None:
        expired.append(probe.host)
        raise RuntimeError("bug")

    monkeypatch.setattr(tcp_probe.TcpConnect, "expire", buggy_expire)

    async def main():
        engine = CheckEngine(result.config, FakeIpvs())
        engine.open()
        runner = asyncio.get_running_loop().create_task(engine.run())
        reasons = {}

        def judged():
            assert not runner.done(), runner
            for vs in engine.pool.virtual_servers:
                for rs in vs.real_servers:
                    reasons[str(rs.spec.dest.address)] = (rs.alive, rs.last_reason)
            return expired.count("127.0.0.3") >= 3 and reasons["127.0.0.1"][0] is True

        await wait_for_async(judged, timeout=30)
        engine.stop()
        await runner
        await engine.shutdown()
        return reasons

    with up, silent_listener("127.0.0.3", port):
        reasons = run(main())
    assert reasons["127.0.0.3"] == (False, "internal error: RuntimeError('bug')")


def test_verdicts_that_change_nothing_sync_nothing(write_conf):
    """Every checker's first success at start (the pool presumed it up) leaves the virtual server alone;
    a failure syncs it once."""
    probes = Probes()

    async def main():
        engine = CheckEngine(config(write_conf, weights=(1,) * 6), FakeIpvs(), probe=probes)
        dirty = []
        original = engine._mark_dirty
        engine._mark_dirty = lambda vs: (dirty.append(vs), original(vs))  # type: ignore[method-assign]
        engine.open()
        task = asyncio.get_running_loop().create_task(engine.run())
        await wait_for_async(lambda: engine.stats["verdicts"] >= 6)
        quiet = len(dirty)
        probes.down.add("10.0.0.3")
        await wait_for_async(lambda: engine.stats["verdicts"] >= 7)
        engine.stop()
        await task
        await engine.shutdown()
        return quiet, len(dirty)

    assert run(main()) == (0, 1)
