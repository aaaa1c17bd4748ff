"""A probe's timeout counts the time the network had, not the time a starved loop kept the answer waiting:
healthy servers pass on a loop kept busy most of the time; a server that does not answer still fails."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import pytest
from health_server import health_server

from keepalived_py.check.dns_probe import probe_dns
from keepalived_py.check.http_probe import HttpTarget, probe_http
from keepalived_py.check.probe_deadline import MAX_STRETCH, network_timeout
from keepalived_py.check.smtp_probe import probe_smtp
from keepalived_py.check.tcp_probe import probe_tcp
from keepalived_py.loop_lag import LoopLagMonitor

#: the hog holds the loop this long, lets it run one turn, again and again
HOG = 0.4


@pytest.fixture(scope="module")
def http_port():
    """A healthy HTTP server in a thread: it answers while the probing loop is starved."""
    with health_server("127.0.0.1") as port:
        yield port


@pytest.fixture(scope="module")
def smtp_port():
    listener = socket.create_server(("127.0.0.1", 0))

    def converse(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.sendall(b"220 ok\r\n")
            conn.recv(100)
            conn.sendall(b"250 ok\r\n")
            conn.recv(100)
            conn.sendall(b"221 bye\r\n")

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=converse, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


async def starved(probes, hog: float = HOG):
    """Run the probes on a loop that a callback keeps busy ``hog`` seconds out of every turn or so (the
    lag monitor runs, as in the checker child); their results."""
    loop = asyncio.get_running_loop()
    monitor = LoopLagMonitor.start()
    stop = False

    def hold() -> None:
        end = time.perf_counter() + hog
        while time.perf_counter() < end:
            pass
        if not stop:
            loop.call_soon(hold)

    loop.call_soon(hold)
    try:
        return await asyncio.gather(*probes)
    finally:
        stop = True
        assert monitor.task is not None
        monitor.task.cancel()


@pytest.mark.parametrize("kind", ["http", "tcp", "smtp"])
def test_healthy_servers_pass_on_a_loop_starved_of_cpu(http_port, smtp_port, kind):
    """Every answer arrives in time on the wire; the loop gets to each a few turns later, over the 1 s
    timeout: that is the engine's lateness, not the server's."""
    def probe():
        if kind == "http":
            return probe_http(HttpTarget("127.0.0.1", http_port, "/", timeout=1.0))
        if kind == "tcp":
            return probe_tcp("127.0.0.1", http_port, timeout=1.0)
        return probe_smtp("127.0.0.1", smtp_port, helo_name="kpd", timeout=1.0)

    results = asyncio.run(starved([probe() for _ in range(8)]))
    assert all(r.ok for r in results), [r.reason for r in results]


def test_a_silent_server_still_fails_on_a_starved_loop_within_the_bound():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # a DNS server that never answers
    port = silent.getsockname()[1]

    async def timed():
        start = time.monotonic()
        r = await probe_dns("127.0.0.1", port, rdtype="SOA", name="", timeout=0.5)
        return r, time.monotonic() - start

    ((r, took),) = asyncio.run(starved([timed()]))
    silent.close()
    assert not r.ok and r.reason == "read timeout from socket"
    # the stretch's bound, and the few turns of the starved loop it takes to act on it
    assert took < 0.5 * MAX_STRETCH + 8 * HOG


def test_on_a_free_loop_the_timeout_is_the_timeout():
    async def main():
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            async with network_timeout(0.3):
                await asyncio.sleep(5)
        return time.monotonic() - start

    assert 0.3 <= asyncio.run(main()) < 0.3 + 0.5


def test_the_stretch_is_bounded_however_late_the_loop():
    async def main():
        loop = asyncio.get_running_loop()
        monitor = LoopLagMonitor.start(interval=0.01)
        monitor.stalled = 1e9  # as if the loop had always been late
        start = loop.time()
        with pytest.raises(TimeoutError):
            async with network_timeout(0.1):
                monitor.stalled += 1e9
                await asyncio.sleep(5)
        assert monitor.task is not None
        monitor.task.cancel()
        return loop.time() - start

    assert 0.1 * MAX_STRETCH <= asyncio.run(main()) < 0.1 * MAX_STRETCH + 0.5
