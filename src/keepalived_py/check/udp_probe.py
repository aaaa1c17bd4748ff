"""UDP_CHECK: one datagram to the server; what comes back (or does not) decides.

As keepalived's ``check_udp.c`` and ``udp_bind_connect``/``udp_socket_error`` (2.2.7):

* a connected UDP socket with ``IP_RECVERR`` (``IPV6_RECVERR``) sends the ``payload``, or without one 32 bytes
  of "keepalived check - " repeated;
* an ICMP destination unreachable (any code; ICMPv6 type 1) read from the socket's error queue fails the
  check; any other error-queue entry does not;
* without ``require_reply``, any datagram is an immediate success, and silence until ``connect_timeout`` is a
  success too (nothing said the port is closed);
* with ``require_reply``, silence is a failure; with a reply pattern, the reply must be
  ``min_reply_length``..``max_reply_length`` bytes long (it is read into max + 1 bytes) and match the
  pattern over the shorter of the two lengths, an ``x`` nibble matching anything (keepalived's mutual-prefix
  rule: a reply that is a prefix of the pattern passes).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import struct

from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.probe_deadline import network_timeout
from keepalived_py.check.probe_socket import NO_SOURCE, Source, destination, open_probe_socket

#: what keepalived sends without a payload (``udp_bind_connect``)
DEFAULT_PAYLOAD = (b"keepalived check - " * 2)[:32]

IP_RECVERR = 11
IPV6_RECVERR = 25
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
ICMP_DEST_UNREACH = 3
ICMPV6_DEST_UNREACH = 1
_UNREACHABLE = ((SO_EE_ORIGIN_ICMP, ICMP_DEST_UNREACH), (SO_EE_ORIGIN_ICMP6, ICMPV6_DEST_UNREACH))
#: struct sock_extended_err: errno, origin, type, code, pad, info, data
_EXTENDED_ERR = struct.Struct("=IBBBBII")


def reply_matches(reply: bytes, pattern: bytes, care: bytes, min_length: int, max_length: int) -> bool:
    """keepalived's ``check_udp_reply``: the length within bounds, the common prefix equal (care bits)."""
    if not min_length <= len(reply) <= max_length:
        return False
    return all((r ^ p) & c == 0 for r, p, c in zip(reply, pattern, care, strict=False))


async def probe_udp(
    host: str,
    port: int,
    *,
    timeout: float,
    payload: bytes | None = None,
    require_reply: tuple[bytes, bytes] | None = None,
    min_reply_length: int = 0,
    max_reply_length: int = 255,
    source: Source = NO_SOURCE,
) -> ProbeResult:
    """Send one datagram and judge what comes back; never raises."""
    try:
        sock = open_probe_socket(host, socket.SOCK_DGRAM, source)
    except OSError as err:
        return ProbeResult.down(f"socket: {err.strerror or err}")
    try:
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        sock.connect(destination(host, port, source))
        data = payload if payload is not None else DEFAULT_PAYLOAD
        if sock.send(data) != len(data):
            return ProbeResult.down("short send")
        reply = await _wait(sock, timeout, max_reply_length + 1)
    except OSError as err:
        return ProbeResult.down(f"UDP connection failed: {os.strerror(err.errno or 0) or err}")
    finally:
        sock.close()
    if isinstance(reply, str):
        return ProbeResult.down(reply)
    if reply is _NOT_UNREACHABLE:
        return ProbeResult.up()  # keepalived: an error other than an ICMP unreachable is not a failure
    if reply is None:
        if require_reply is not None:
            return ProbeResult.down(f"no reply within {timeout:g} s")
        return ProbeResult.up()
    assert isinstance(reply, bytes)
    if require_reply is not None and require_reply[0]:
        pattern, care = require_reply
        if not reply_matches(reply, pattern, care, min_reply_length, max_reply_length):
            return ProbeResult.down("reply data mismatch")
    return ProbeResult.up()


_NOT_UNREACHABLE = object()


async def _wait(sock: socket.socket, timeout: float, size: int) -> bytes | str | object | None:
    """The reply datagram, an error text (an ICMP unreachable), ``_NOT_UNREACHABLE`` (another error was
    queued), or None when nothing came in time."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        async with network_timeout(timeout):
            while True:
                await ready
                queued = _error_queue(sock)
                if queued is not None:
                    return queued or _NOT_UNREACHABLE
                try:
                    return sock.recv(size)
                except BlockingIOError:
                    ready = loop.create_future()
                except OSError as err:
                    if err.errno == errno.ECONNREFUSED:
                        return "ICMP port unreachable"
                    return f"recv: {os.strerror(err.errno or 0)}"
    except TimeoutError:
        return None
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(sock.fileno())


def _error_queue(sock: socket.socket) -> str | None:
    """keepalived's ``udp_socket_error``: the reason for an ICMP destination unreachable waiting in the
    error queue; "" for another queued error (not a failure); None for an empty queue."""
    try:
        _, ancdata, _, _ = sock.recvmsg(512, socket.CMSG_SPACE(_EXTENDED_ERR.size + 32), socket.MSG_ERRQUEUE)
    except BlockingIOError:
        return None
    except OSError:
        return ""
    for level, kind, data in ancdata:
        if len(data) < _EXTENDED_ERR.size:
            continue
        if (level, kind) not in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)):
            continue
        ee_errno, origin, icmp_type, code, _, _, _ = _EXTENDED_ERR.unpack_from(data)
        if (origin, icmp_type) in _UNREACHABLE:
            return f"ICMP destination unreachable (code {code}: {os.strerror(ee_errno)})"
    return ""
