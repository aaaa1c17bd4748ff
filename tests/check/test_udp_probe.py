"""UDP_CHECK on real sockets: the ICMP port unreachable read from the error queue, replies, patterns."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from keepalived_py.check.udp_probe import DEFAULT_PAYLOAD, probe_udp, reply_matches


def closed_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Responder:
    """A UDP server answering each datagram with ``answer(data)`` (None: silence)."""

    def __init__(self, answer):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.received: list[bytes] = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.received.append(data)
            reply = self.answer(data)
            if reply is not None:
                self.sock.sendto(reply, peer)

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def responder():
    made: list[Responder] = []

    def make(answer):
        r = Responder(answer)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def run(**kw):
    kw.setdefault("timeout", 1.0)
    host, port = kw.pop("host", "127.0.0.1"), kw.pop("port")
    return asyncio.run(probe_udp(host, port, **kw))


def test_icmp_port_unreachable_fails_the_check_at_once():
    t0 = time.monotonic()
    r = run(port=closed_port(), timeout=3.0)
    assert not r.ok and "unreachable" in r.reason
    assert time.monotonic() - t0 < 2.0


def test_silence_is_success_without_require_reply(responder):
    server = responder(lambda data: None)
    r = run(port=server.port, timeout=0.3)
    assert r.ok
    assert server.received == [DEFAULT_PAYLOAD]  # keepalived's 32 bytes


def test_silence_is_failure_with_require_reply(responder):
    server = responder(lambda data: None)
    r = run(port=server.port, timeout=0.3, require_reply=(b"", b""))
    assert not r.ok and "no reply" in r.reason


def test_payload_is_sent_and_any_reply_passes_without_a_pattern(responder):
    server = responder(lambda data: b"whatever, of any length" * 50)
    r = run(port=server.port, payload=b"\x0a\x22\xfe", require_reply=(b"", b""))
    assert r.ok
    assert server.received == [b"\x0a\x22\xfe"]


@pytest.mark.parametrize(
    ("reply", "ok"),
    [
        (b"\x2a\x2b\x2c\xd4", True),
        (b"\x2a\x2b\x2c\xd4 and more", True),  # the common prefix matches
        (b"\x2a\x2b", True),  # keepalived's mutual-prefix rule: a shorter reply that matches passes
        (b"\x2a\x2c", False),
        (b"\x2a\x2b\x2c\xd5", False),
    ],
)
def test_reply_pattern_matches_as_keepalived(responder, reply, ok):
    server = responder(lambda data: reply)
    r = run(port=server.port, require_reply=(b"\x2a\x2b\x2c\xd4", b"\xff\xff\xff\xff"))
    assert r.ok is ok, r.reason


def test_wildcard_nibbles_and_length_bounds():
    care = b"\xff\xf0"
    assert reply_matches(b"\x01\x2f", b"\x01\x20", care, 0, 255)
    assert not reply_matches(b"\x02\x2f", b"\x01\x20", care, 0, 255)
    assert not reply_matches(b"\x01", b"\x01\x20", care, 2, 255)
    assert not reply_matches(b"\x01" * 300, b"\x01", b"\xff", 0, 255)


def test_a_reply_longer_than_max_reply_length_fails(responder):
    server = responder(lambda data: b"\x01" * 400)
    r = run(port=server.port, require_reply=(b"\x01", b"\xff"))
    assert not r.ok and "mismatch" in r.reason


def test_a_flood_of_stray_datagrams_does_not_hold_the_check(responder):
    # the connected socket only hears the server; the first datagram decides
    server = responder(lambda data: b"x")
    t0 = time.monotonic()
    assert run(port=server.port, timeout=5.0).ok
    assert time.monotonic() - t0 < 2.0
