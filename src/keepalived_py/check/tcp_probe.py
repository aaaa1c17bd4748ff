"""TCP_CHECK: a real server is up when a TCP connection to it completes within connect_timeout.

The timeout counts from the probe's start (never from when the check was due) and, like every probe's
(:mod:`keepalived_py.check.probe_deadline`), only the time the network had: a loop kept busy meanwhile
stretches it. A connection that completed while the engine's loop was late is up, even if the loop saw the
timeout first.

:class:`TcpConnect` is the probe without a task, a future or a timer of its own: a non-blocking connect,
one writer callback (on the check engine's :class:`~keepalived_py.check.connect_poller.ConnectPoller`, or
the loop's ``add_writer``), and a deadline its owner keeps (the check engine keeps every probe's deadline
in one heap with one wake-up). :func:`probe_tcp` runs one on its own, for callers that await.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Callable

from keepalived_py.check.connect_poller import ConnectPoller
from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.probe_deadline import stretched_deadline
from keepalived_py.check.probe_socket import NO_SOURCE, Source, destination, open_probe_socket
from keepalived_py.loop_lag import stalled

#: SO_LINGER on, 0 s: close sends an RST instead of a FIN, so thousands of checks a second leave no
#: TIME_WAIT pile-up on either side
_RESET_ON_CLOSE = b"\x01\x00\x00\x00\x00\x00\x00\x00"


class TcpConnect:
    """One TCP_CHECK probe, started at construction. ``done(result)`` is called exactly once (possibly
    before the constructor returns), unless :meth:`cancel` comes first. While it runs, its owner calls
    :meth:`expire` when ``deadline`` (loop time) has come; ``deadline`` is None once it is done."""

    __slots__ = ("_busy_at_start", "_done", "_fd", "_loop", "_poller", "_sock", "deadline", "host", "source",
                 "started", "timeout")

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, timeout: float,
                 source: Source, done: Callable[[ProbeResult], object],
                 poller: ConnectPoller | None = None) -> None:
        self._loop = loop
        self._poller = poller  # None: the loop's own add_writer
        self._done = done
        self.host, self.timeout, self.source = host, timeout, source
        self._sock: socket.socket | None = None
        self._fd = -1
        self.deadline: float | None = None
        self.started = loop.time()
        self._busy_at_start = stalled()
        if not port:
            self._finish(ProbeResult.down("no port to connect to (set connect_port)"))
            return
        try:
            sock = open_probe_socket(host, socket.SOCK_STREAM, source)
        except OSError as err:
            self._finish(ProbeResult.down(f"socket: {err.strerror or err}"))
            return
        self._sock = sock
        try:
            code = sock.connect_ex(destination(host, port, source))
        except OSError as err:  # an address the socket cannot take at all
            self._finish(self._refused(err.errno or 0, str(err)))
            return
        if code == 0:
            self._finish(self._up())
        elif code in (errno.EINPROGRESS, errno.EAGAIN, errno.EINTR):
            try:
                if poller is not None:
                    poller.watch(sock.fileno(), self._on_writable)
                else:
                    loop.add_writer(sock.fileno(), self._on_writable)
            except OSError as err:  # epoll_ctl refused (max_user_watches, memory): this check fails
                self._finish(ProbeResult.down(f"connect: {err.strerror or err}"))
                return
            self._fd = sock.fileno()
            self.deadline = self.started + timeout
        else:
            self._finish(self._refused(code))

    def _on_writable(self) -> None:
        assert self._sock is not None
        try:
            code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError as err:  # the connect's outcome cannot be read: not a success
            self._finish(ProbeResult.down(f"connect: {err.strerror or err}"))
            return
        self._finish(self._up() if code == 0 else self._refused(code))

    def expire(self) -> None:
        """The deadline has come: the probe fails, or its deadline moves later by the time the loop was
        busy meanwhile (see :func:`stretched_deadline`)."""
        if self.deadline is None:
            return
        now = self._loop.time()
        later = stretched_deadline(self.started, self.timeout, stalled() - self._busy_at_start,
                                   self.deadline, now)
        if later is not None:
            self.deadline = later
            return
        # The completion and the timeout in the same turn of a late loop: the server answered in time.
        self._finish(self._up() if self._connected() else
                     ProbeResult.down(f"connect timeout after {self.timeout:g} s"))

    def abort(self, result: ProbeResult) -> None:
        """End now with ``result`` (its owner's way out when handling the probe failed)."""
        if self.deadline is not None:
            self._finish(result)

    def cancel(self) -> None:
        """Stop without a result (the engine is stopping, or the checker was removed)."""
        self._close()
        self.deadline = None

    def _up(self) -> ProbeResult:
        assert self._sock is not None
        with contextlib.suppress(OSError):  # a courtesy to both sides; the connection completed anyway
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
        return ProbeResult.up()

    def _refused(self, code: int, text: str = "") -> ProbeResult:
        text = os.strerror(code) if code else text
        if code == errno.EADDRNOTAVAIL and self.source.bindto is not None:
            text += f" (bindto {self.source.bindto})"
        return ProbeResult.down(f"connect: {text}")

    def _connected(self) -> bool:
        sock = self._sock
        if sock is None:
            return False
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return False
            sock.getpeername()
        except OSError:
            return False
        return True

    def _close(self) -> None:
        if self._fd >= 0:  # before the close: the descriptor's number may be reused at once
            if self._poller is not None:
                self._poller.forget(self._fd)
            else:
                self._loop.remove_writer(self._fd)
            self._fd = -1
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _finish(self, result: ProbeResult) -> None:
        self._close()
        self.deadline = None
        self._done(result)


async def probe_tcp(
    host: str,
    port: int,
    *,
    timeout: float,
    source: Source = NO_SOURCE,
) -> ProbeResult:
    """Connect (from ``source``) and close; never raises."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[ProbeResult] = loop.create_future()
    probe = TcpConnect(loop, host, port, timeout, source, result.set_result)
    handle: asyncio.TimerHandle | None = None

    def on_deadline() -> None:
        nonlocal handle
        probe.expire()
        handle = loop.call_at(probe.deadline, on_deadline) if probe.deadline is not None else None

    if probe.deadline is not None:
        handle = loop.call_at(probe.deadline, on_deadline)
    try:
        return await result
    finally:
        if handle is not None:
            handle.cancel()
        probe.cancel()
