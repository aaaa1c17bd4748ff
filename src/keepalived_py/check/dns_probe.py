"""DNS_CHECK: a query over UDP, answered with RCODE 0 (NOERROR) within ``connect_timeout``.

As keepalived's ``check_dns.c`` (2.2.7): a connected UDP socket; a query with a new random id, RD set, one
question (``name``, ``type``, class IN) and no EDNS; datagrams with another id or without QR are ignored
(the wait goes on: ``connect_timeout`` bounds the whole exchange); a reply with a non-zero RCODE is a
failure; an ICMP port unreachable is a failure. keepalived looks at the reply's header only; kpd also parses
the whole message (with dnspython) and requires the question to be the one asked: a malformed reply
(compression loops, records past the end, garbage) is a failed check, never an exception. Replies are read
into 64 KiB at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.probe_deadline import network_timeout
from keepalived_py.check.probe_socket import NO_SOURCE, Source, destination, open_probe_socket

_HEADER_SIZE = 12
_QR = 0x80


def make_query(name: str, rdtype: str, query_id: int) -> bytes:
    """keepalived's query: ``name`` (empty: the root), ``rdtype``, class IN, RD, no EDNS."""
    qname = dns.name.from_text(name or ".")
    msg = dns.message.Message(id=query_id)
    msg.flags = dns.flags.RD
    msg.find_rrset(msg.question, qname, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), create=True)
    return msg.to_wire()


def judge_reply(data: bytes, query: bytes) -> ProbeResult | None:
    """The verdict on one datagram; None when it is not the reply (too short, another id, no QR)."""
    if len(data) < _HEADER_SIZE or data[:2] != query[:2] or not data[2] & _QR:
        return None
    rcode = data[3] & 0x0F
    if rcode != 0:
        name = dns.rcode.to_text(dns.rcode.Rcode(rcode))
        return ProbeResult.down(f"read error occurred. (rcode = {rcode} {name})")
    try:
        reply = dns.message.from_wire(data, ignore_trailing=True)
        asked = dns.message.from_wire(query)
    except (dns.exception.DNSException, ValueError, IndexError) as err:
        return ProbeResult.down(f"malformed reply: {err.__class__.__name__}: {str(err)[:80]}")
    if reply.question != asked.question:
        return ProbeResult.down("reply to another question")
    return ProbeResult.up()


async def probe_dns(
    host: str,
    port: int,
    *,
    name: str,
    rdtype: str,
    timeout: float,
    source: Source = NO_SOURCE,
    rng: random.Random | None = None,
) -> ProbeResult:
    """One query; never raises."""
    loop = asyncio.get_running_loop()
    query = make_query(name, rdtype, (rng or random).getrandbits(16))
    try:
        sock = open_probe_socket(host, socket.SOCK_DGRAM, source)
    except OSError as err:
        return ProbeResult.down(f"failed to create socket: {err.strerror or err}")
    try:
        sock.connect(destination(host, port, source))
        if sock.send(query) != len(query):
            return ProbeResult.down("failed to write all of the datagram.")
        try:
            async with network_timeout(timeout):
                while (verdict := judge_reply(await loop.sock_recv(sock, 65535), query)) is None:
                    pass  # not the answer to this query
        except TimeoutError:
            return ProbeResult.down("read timeout from socket")
        return verdict
    except OSError as err:
        return ProbeResult.down(f"failed to read socket; errno {err.errno} ({os.strerror(err.errno or 0)})")
    finally:
        with contextlib.suppress(OSError):
            sock.close()
