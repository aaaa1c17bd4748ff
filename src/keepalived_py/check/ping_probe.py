"""PING_CHECK: one ICMP (ICMPv6) echo request, answered by an echo reply within ``connect_timeout``.

keepalived (``check_ping.c``, 2.2.7) sends 136 bytes (8 of header, 128 of "keepalived check - " repeated) on
a new unprivileged ping socket (``SOCK_DGRAM``/``IPPROTO_ICMP``) per attempt, the kernel choosing the
identifier and filtering the replies; the first datagram read must be an echo reply of at least 8 bytes. To
open ping sockets as root it rewrites ``net.ipv4.ping_group_range`` (and restores it at exit).

kpd sends the same request on a ping socket too, but does not touch the sysctl: where the range excludes it
(the default "1 0" of a new network namespace), it uses a raw socket instead, filtered to echo replies from
the server, and matches the reply's identifier and sequence number itself. Everything waits on the event
loop; the verdict is keepalived's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import socket
import struct

from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.probe_deadline import network_timeout

PAYLOAD = (b"keepalived check - " * 7)[:128]
ECHO_REQUEST, ECHO_REPLY = 8, 0
ECHO_REQUEST6, ECHO_REPLY6 = 128, 129
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_sequence = itertools.count(1)
#: ping sockets are refused to kpd's group here (ping_group_range): go raw at once
_raw_only: set[int] = set()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _open(family: int) -> tuple[socket.socket, bool]:
    """A ping socket, or a raw one where ping sockets are not allowed: (socket, raw)."""
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    if family not in _raw_only:
        try:
            return socket.socket(family, socket.SOCK_DGRAM, proto), False
        except PermissionError:
            _raw_only.add(family)
        except OSError as err:
            if err.errno not in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT):
                raise
            _raw_only.add(family)
    sock = socket.socket(family, socket.SOCK_RAW, proto)
    with contextlib.suppress(OSError):
        if family == socket.AF_INET6:
            blocked = [0xFFFFFFFF] * 8
            blocked[ECHO_REPLY6 >> 5] &= ~(1 << (ECHO_REPLY6 & 31))
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *blocked))
        else:
            sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", 0xFFFFFFFF & ~(1 << ECHO_REPLY)))
    return sock, True


async def probe_ping(host: str, *, timeout: float) -> ProbeResult:
    """One echo request to ``host``; never raises."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    v6 = family == socket.AF_INET6
    try:
        sock, raw = _open(family)
    except OSError as err:
        return ProbeResult.down(f"ICMP{'v6' if v6 else ''} socket: {err.strerror or err}")
    try:
        sock.setblocking(False)
        seq = next(_sequence) & 0xFFFF
        ident = (os.getpid() ^ id(sock)) & 0xFFFF
        request = ECHO_REQUEST6 if v6 else ECHO_REQUEST
        header = _HEADER.pack(request, 0, 0, ident, seq)
        if raw and not v6:  # the kernel sums ping sockets and ICMPv6; a raw ICMP packet is ours to sum
            header = _HEADER.pack(request, 0, _checksum(header + PAYLOAD), ident, seq)
        if raw:
            sock.connect((host, 0))  # only the server's packets
        try:
            sock.sendto(header + PAYLOAD, (host, 0))
        except OSError as err:
            return ProbeResult.down(
                f"send ICMP{'v6' if v6 else ''} packet fail: {os.strerror(err.errno or 0)}"
            )
        return await _reply(sock, raw, v6, ident, seq, timeout)
    finally:
        sock.close()


async def _reply(
    sock: socket.socket, raw: bool, v6: bool, ident: int, seq: int, timeout: float
) -> ProbeResult:
    try:
        async with network_timeout(timeout):
            return await _first_reply(sock, raw, v6, ident, seq)
    except TimeoutError:
        return ProbeResult.down(f"ICMP echo timeout after {timeout:g} s")


async def _first_reply(sock: socket.socket, raw: bool, v6: bool, ident: int, seq: int) -> ProbeResult:
    loop = asyncio.get_running_loop()
    want = ECHO_REPLY6 if v6 else ECHO_REPLY
    while True:
        try:
            data = await loop.sock_recv(sock, 2048)
        except OSError as err:
            return ProbeResult.down(
                f"recv ICMP{'v6' if v6 else ''} packet error: {os.strerror(err.errno or 0)}"
            )
        if raw and not v6:
            data = data[(data[0] & 0x0F) * 4 :] if data else data  # past the IP header
        if len(data) < _HEADER.size:
            if raw:
                continue
            return ProbeResult.down(f"Error, got short ICMP packet, {len(data)} bytes")
        kind, _, _, their_ident, their_seq = _HEADER.unpack_from(data)
        if raw and (kind != want or their_ident != ident or their_seq != seq):
            continue  # another prober's, or an old one: a raw socket sees every reply from the server
        if kind != want:
            return ProbeResult.down(f"Got ICMP packet with type 0x{kind:x}")
        return ProbeResult.up()
