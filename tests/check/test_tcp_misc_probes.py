"""TCP_CHECK and MISC_CHECK probes against real sockets and real scripts."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time

import pytest
from silent_listener import silent_listener

from keepalived_py.check import tcp_probe
from keepalived_py.check.misc_probe import probe_misc
from keepalived_py.check.probe_socket import Source
from keepalived_py.check.tcp_probe import probe_tcp


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s
    s.close()


def test_tcp_check_is_up_when_the_connection_completes(listener):
    assert run(probe_tcp("127.0.0.1", listener.getsockname()[1], timeout=1.0)).ok


def test_tcp_check_is_down_with_the_reason_when_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = run(probe_tcp("127.0.0.1", port, timeout=1.0))
    assert not r.ok and r.reason == "connect: Connection refused"


def test_tcp_check_times_out_within_connect_timeout():
    with silent_listener() as port:
        start = time.monotonic()
        r = run(probe_tcp("127.0.0.1", port, timeout=0.5))
        took = time.monotonic() - start
    assert not r.ok and "timeout" in r.reason
    assert took < 2.0


def test_tcp_check_binds_to_bindto(listener):
    port = listener.getsockname()[1]
    result = {}

    async def main():
        r = await probe_tcp("127.0.0.1", port, timeout=1.0, source=Source(bindto="127.0.0.2"))
        conn, peer = listener.accept()
        conn.close()
        result["peer"] = peer[0]
        return r

    assert run(main()).ok
    assert result["peer"] == "127.0.0.2"


def test_tcp_check_without_a_port_says_so():
    r = run(probe_tcp("127.0.0.1", 0, timeout=1.0))
    assert not r.ok and "connect_port" in r.reason


@pytest.mark.parametrize(
    ("code", "dynamic", "ok", "weight"),
    [(0, False, True, None), (1, False, False, None), (7, False, False, None),
     (0, True, True, None), (1, True, False, None), (2, True, True, 0), (12, True, True, 10),
     (255, True, True, 253)],
)
def test_misc_check_exit_codes(code, dynamic, ok, weight):
    r = run(probe_misc(("/bin/sh", "-c", f"exit {code}"), timeout=5.0, dynamic=dynamic))
    assert (r.ok, r.weight) == (ok, weight), r


def test_misc_check_that_hangs_is_killed_and_down_within_its_timeout():
    start = time.monotonic()
    r = run(probe_misc(("/bin/sh", "-c", "sleep 30"), timeout=0.5, kill_grace=0.5))
    assert not r.ok and "timed out" in r.reason
    assert time.monotonic() - start < 3.0


def test_misc_check_that_floods_output_is_bounded():
    r = run(probe_misc(("/bin/sh", "-c", "head -c 50000000 /dev/zero; exit 0"), timeout=10.0))
    assert r.ok


def test_misc_check_that_cannot_start_is_down_with_the_reason():
    r = run(probe_misc(("/nonexistent/check",), timeout=1.0))
    assert not r.ok
    assert "not found" in r.reason.lower() or "no such file" in r.reason.lower(), r.reason


def test_tcp_check_is_up_when_the_connection_completed_while_the_loop_was_late(listener):
    """A loop kept busy past the timeout while the connection completed (the completion and the timeout
    are handled in the same turn) must not fail a healthy server: the connection is there."""

    async def main():
        loop = asyncio.get_running_loop()
        probe = loop.create_task(probe_tcp("127.0.0.1", listener.getsockname()[1], timeout=0.05))
        # runs right after the probe's first step (its connect in progress): the loop is late by 0.2 s
        loop.call_soon(time.sleep, 0.2)
        return await probe

    r = run(main())
    assert r.ok, r.reason


class _FailingSockopt(socket.socket):
    """A probe socket whose getsockopt/setsockopt fail for the options named in ``fail``."""

    fail: frozenset[int] = frozenset()

    def getsockopt(self, level, option, *args):
        if option in self.fail:
            raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
        return super().getsockopt(level, option, *args)

    def setsockopt(self, level, option, *args):
        if option in self.fail:
            raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
        return super().setsockopt(level, option, *args)


@pytest.fixture
def failing_sockopt(monkeypatch):
    """Every TCP_CHECK socket fails the socket options put in the returned set."""
    failing: set[int] = set()
    real_open = tcp_probe.open_probe_socket

    def open_failing(host, kind, source):
        sock = _FailingSockopt(fileno=real_open(host, kind, source).detach())
        sock.fail = frozenset(failing)
        return sock

    monkeypatch.setattr(tcp_probe, "open_probe_socket", open_failing)
    return failing


def test_tcp_check_is_up_when_its_reset_on_close_option_cannot_be_set(listener, failing_sockopt):
    """SO_LINGER (close with an RST) is a courtesy: the connection completed, so the server is up, and
    the probe ends at once instead of never."""
    failing_sockopt.add(socket.SO_LINGER)
    r = run(asyncio.wait_for(probe_tcp("127.0.0.1", listener.getsockname()[1], timeout=0.5), 10))
    assert r.ok, r.reason


def test_tcp_check_whose_socket_error_cannot_be_read_is_down_with_the_reason_at_once(
        listener, failing_sockopt):
    """getsockopt(SO_ERROR) failing when the connect ends is a down with the kernel's reason, given at
    once, not a writer callback failing on every loop turn until the timeout."""
    failing_sockopt.add(socket.SO_ERROR)
    start = time.monotonic()
    r = run(asyncio.wait_for(probe_tcp("127.0.0.1", listener.getsockname()[1], timeout=20), 10))
    assert not r.ok and r.reason == "connect: Cannot allocate memory", r.reason
    assert time.monotonic() - start < 5
