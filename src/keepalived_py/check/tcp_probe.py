"""TCP_CHECK: a real server is up when a TCP connection to it completes within connect_timeout.

The timeout counts from the probe's start (never from when the check was due); a connection that completed
while the engine's loop was late is up, even if the loop saw the timeout first.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket

from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.probe_deadline import network_timeout
from keepalived_py.check.probe_socket import NO_SOURCE, Source, destination, open_probe_socket


async def probe_tcp(
    host: str,
    port: int,
    *,
    timeout: float,
    source: Source = NO_SOURCE,
) -> ProbeResult:
    """Connect (from ``source``) and close; never raises."""
    if not port:
        return ProbeResult.down("no port to connect to (set connect_port)")
    loop = asyncio.get_running_loop()
    try:
        sock = open_probe_socket(host, socket.SOCK_STREAM, source)
    except OSError as err:
        return ProbeResult.down(f"socket: {err.strerror or err}")
    try:
        try:
            async with network_timeout(timeout):
                await loop.sock_connect(sock, destination(host, port, source))
        except TimeoutError:
            # The timeout and the connection's completion handled in the same turn of a late loop: the
            # server answered in time, the engine was late; only a connection still pending is a timeout.
            if not _connected(sock):
                raise
        # An RST instead of a FIN at close: no TIME_WAIT pile-up on either side at thousands of checks/s.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return ProbeResult.up()
    except TimeoutError:
        return ProbeResult.down(f"connect timeout after {timeout:g} s")
    except OSError as err:
        code = err.errno
        text = os.strerror(code) if code else str(err)
        if code == errno.EADDRNOTAVAIL and source.bindto is not None:
            text += f" (bindto {source.bindto})"
        return ProbeResult.down(f"connect: {text}")
    finally:
        sock.close()


def _connected(sock: socket.socket) -> bool:
    """True when the non-blocking connect of ``sock`` has completed successfully."""
    try:
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            return False
        sock.getpeername()
    except OSError:
        return False
    return True
