"""DNS_CHECK against a scripted DNS server on a real UDP socket; replies of every kind, garbage included."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepalived_py.check.dns_probe import judge_reply, make_query, probe_dns


class DnsServer:
    def __init__(self, answer):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.queries: list[dns.message.Message] = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            self.queries.append(query)
            for reply in self.answer(query, data):
                self.sock.sendto(reply, peer)

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def server():
    made: list[DnsServer] = []

    def make(answer):
        s = DnsServer(answer)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def answer_a(query, data, rcode=dns.rcode.NOERROR):
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    if rcode == dns.rcode.NOERROR:
        reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.1"))
    return [reply.to_wire()]


def probe(port, **kw):
    kw.setdefault("name", "www.example.com")
    kw.setdefault("rdtype", "A")
    kw.setdefault("timeout", 1.0)
    return asyncio.run(probe_dns("127.0.0.1", port, **kw))


def test_dns_check_sends_keepalived_query_and_is_up_on_noerror(server):
    s = server(answer_a)
    assert probe(s.port).ok
    (q,) = s.queries
    assert q.flags & dns.flags.RD and not q.flags & dns.flags.QR
    assert q.edns < 0  # no EDNS, as keepalived
    assert str(q.question[0].name) == "www.example.com." and q.question[0].rdtype == dns.rdatatype.A


def test_default_query_is_soa_of_the_root(server):
    s = server(answer_a)
    assert probe(s.port, name="", rdtype="SOA").ok
    assert str(s.queries[0].question[0].name) == "." and s.queries[0].question[0].rdtype == dns.rdatatype.SOA


@pytest.mark.parametrize("rcode", [dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL, dns.rcode.REFUSED])
def test_a_non_zero_rcode_fails(server, rcode):
    s = server(lambda q, d: answer_a(q, d, rcode))
    r = probe(s.port)
    assert not r.ok and f"rcode = {int(rcode)}" in r.reason


def test_nodata_passes_as_in_keepalived(server):
    s = server(lambda q, d: [dns.message.make_response(q).to_wire()])
    assert probe(s.port).ok


def test_replies_with_another_id_or_without_qr_are_ignored_until_the_real_one(server):
    def answer(q, data):
        good = answer_a(q, data)[0]
        other_id = struct.pack("!H", (q.id + 1) & 0xFFFF) + good[2:]
        no_qr = good[:2] + bytes([good[2] & 0x7F]) + good[3:]
        return [other_id, no_qr, b"\x00" * 5, good]

    s = server(answer)
    assert probe(s.port).ok


def test_only_ignored_datagrams_time_out_within_connect_timeout(server):
    s = server(lambda q, d: [b"\xff\xff" + b"\x00" * 10])
    t0 = time.monotonic()
    r = probe(s.port, timeout=0.5)
    assert not r.ok and "timeout" in r.reason
    assert time.monotonic() - t0 < 3


def test_port_unreachable_fails():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    r = probe(port, timeout=2.0)
    assert not r.ok and "errno" in r.reason


def test_a_compression_loop_is_a_failed_check_not_an_exception(server):
    def answer(q, data):
        good = bytearray(answer_a(q, data)[0])
        # the answer's owner name: a pointer to itself
        header_and_question = 12 + len(q.question[0].name.to_wire()) + 4
        good[header_and_question:header_and_question + 2] = struct.pack("!H", 0xC000 | header_and_question)
        return [bytes(good)]

    s = server(answer)
    r = probe(s.port)
    assert not r.ok and "malformed" in r.reason


def test_records_past_the_end_are_a_failed_check(server):
    s = server(lambda q, d: [answer_a(q, d)[0][:-3]])
    r = probe(s.port)
    assert not r.ok and "malformed" in r.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_datagram_gets_a_verdict_or_is_ignored_never_an_exception(tail):
    query = make_query("example.com", "A", 0x1234)
    header = b"\x12\x34\x81\x80"
    for data in (tail, header + tail):
        r = judge_reply(data, query)
        assert r is None or isinstance(r.ok, bool)
