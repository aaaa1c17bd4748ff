"""An engine starved of CPU runs its checks late and says so; it never declares a healthy server down
(issue 13: past saturation, healthy real servers were failed because their answers waited for the loop)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from fake_ipvs import FakeIpvs
from health_server import health_server

from keepalived_py.check.engine import CheckEngine
from keepalived_py.config import load_config
from keepalived_py.loop_lag import LoopLagMonitor
from lab import wait_for_async

SERVERS = 30
#: the hog holds the loop this long, lets it run one turn, again and again
HOG = 1.2


@pytest.fixture
def http_port():
    """A healthy HTTP server in a thread: it answers while the probing loop is starved."""
    with health_server("0.0.0.0") as port:
        yield port


def test_a_starved_engine_runs_checks_late_and_never_fails_a_healthy_server(write_conf, http_port, caplog):
    rss = "".join(f"""
    real_server 127.0.0.{i} {http_port} {{
        HTTP_GET {{
            url {{
                path /health
            }}
            connect_timeout 1
            retry 0
            warmup 0
        }}
    }}""" for i in range(1, SERVERS + 1))
    text = f"virtual_server 192.0.2.10 80 {{\n    protocol TCP\n    lb_algo rr\n    lb_kind NAT\n" \
           f"    delay_loop 1\n{rss}\n}}\n"
    result = load_config(write_conf(text), host_checks=False)
    assert int(result.exit_code) == 0, result.diagnostics
    ipvs = FakeIpvs()
    caplog.set_level(logging.INFO, logger="kpd")

    async def main():
        loop = asyncio.get_running_loop()
        monitor = LoopLagMonitor.start()  # as the checker child runs it
        engine = CheckEngine(result.config, ipvs)
        engine.open()
        task = asyncio.create_task(engine.run())
        everyone = {f"127.0.0.{i}:{http_port}": 1 for i in range(1, SERVERS + 1)}
        await wait_for_async(lambda: ipvs.weights().get("TCP 192.0.2.10:80") == everyone, timeout=30)
        await asyncio.sleep(2.5)  # every checker's first verdict given (servers start up)
        ops = len(ipvs.ops)
        stop = loop.time() + 8.0

        def hold() -> None:  # the engine's loop kept busy HOG seconds out of every turn
            end = time.perf_counter() + HOG
            while time.perf_counter() < end:
                pass
            if loop.time() < stop:
                loop.call_soon(hold)

        loop.call_soon(hold)
        while loop.time() < stop + 1.0:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # the checks that ran late have ended and been applied
        failed = [r.getMessage() for r in caplog.records if " failed: " in r.getMessage()]
        changes = ipvs.ops[ops:]
        stats, summary, table = dict(engine.stats), engine.summary(), ipvs.weights()
        engine.stop()
        await task
        await engine.shutdown()
        assert monitor.task is not None
        monitor.task.cancel()
        return failed, changes, stats, summary, table, everyone

    failed, changes, stats, summary, table, everyone = asyncio.run(main())
    assert not failed and not changes, (failed[:5], changes[:5])
    assert table == {"TCP 192.0.2.10:80": everyone}
    # late, and saying so: a warning, and the figures in the status the parent gets
    assert stats["late_probes"] > 0 and stats["max_lateness"] > 1.0, stats
    assert summary["late_probes"] == stats["late_probes"] and summary["max_lateness"] > 1.0
    assert any(r.levelno == logging.WARNING and "late" in r.getMessage() for r in caplog.records)
