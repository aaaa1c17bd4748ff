"""The check engine's own epoll for TCP_CHECK connects (check/connect_poller.py), on real sockets."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from keepalived_py.check.connect_poller import ConnectPoller


def connecting(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    assert sock.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
    return sock


@pytest.fixture
def listener():
    with socket.create_server(("127.0.0.1", 0)) as s:
        yield s.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_completed_or_refused_connect_is_reported_once(listener):
    async def main():
        loop = asyncio.get_running_loop()
        poller = ConnectPoller(loop)
        seen: list[str] = []
        up, refused = connecting(listener), connecting(closed_port())
        poller.watch(up.fileno(), lambda: seen.append("up"))
        poller.watch(refused.fileno(), lambda: seen.append("refused"))
        for _ in range(50):  # the sockets stay writable: a level-triggered watch would report them again
            await asyncio.sleep(0.01)
        assert refused.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
        poller.close()
        up.close()
        refused.close()
        return sorted(seen), len(poller)

    assert asyncio.run(main()) == (["refused", "up"], 0)


def test_a_forgotten_socket_is_never_reported_and_its_number_reused_belongs_to_the_new_one(listener):
    async def main():
        loop = asyncio.get_running_loop()
        poller = ConnectPoller(loop)
        seen: list[str] = []
        old = connecting(listener)
        fd = old.fileno()
        poller.watch(fd, lambda: seen.append("old"))
        poller.forget(fd)
        old.close()  # before the loop ran: its event (if any) must not reach the new socket's callback
        assert len(poller) == 0
        new = connecting(listener)
        assert new.fileno() == fd  # the lowest free number, as the kernel hands them out
        poller.watch(fd, lambda: seen.append("new"))
        for _ in range(20):
            await asyncio.sleep(0.01)
        poller.close()
        new.close()
        return seen

    assert asyncio.run(main()) == ["new"]


def test_a_failing_handler_loses_no_other_socket_s_event(listener):
    async def main():
        loop = asyncio.get_running_loop()
        poller = ConnectPoller(loop)
        seen: list[int] = []
        socks = [connecting(listener) for _ in range(4)]

        def ready(i: int) -> None:
            seen.append(i)
            if i == 0:
                raise RuntimeError("bug")

        for i, s in enumerate(socks):
            poller.watch(s.fileno(), lambda i=i: ready(i))
        for _ in range(20):
            await asyncio.sleep(0.01)
        poller.close()
        for s in socks:
            s.close()
        return sorted(seen)

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_a_connect_the_poller_cannot_watch_is_down_with_the_reason_and_its_socket_closed(listener):
    """epoll_ctl refused (max_user_watches, no memory): that check fails with the kernel's reason, at once,
    and leaves no socket open; the engine's catch-all 'internal error' is not needed."""
    from keepalived_py.check.probe_socket import NO_SOURCE
    from keepalived_py.check.tcp_probe import TcpConnect

    class Refusing:
        def watch(self, fd, ready):
            raise OSError(errno.ENOSPC, "No space left on device")

        def forget(self, fd):
            raise AssertionError("nothing was watched")

    async def main():
        results = []
        probe = TcpConnect(asyncio.get_running_loop(), "127.0.0.1", listener, 5.0, NO_SOURCE,
                           results.append, Refusing())
        return results, probe.deadline, probe._sock

    results, deadline, sock = asyncio.run(main())
    assert [(r.ok, r.reason) for r in results] in (
        [(False, "connect: No space left on device")],
        [(True, "")],  # the connect completed at once (never watched): up
    )
    assert deadline is None and sock is None
