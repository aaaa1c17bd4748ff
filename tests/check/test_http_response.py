"""The HTTP response parser: golden responses, malformed input (CVE-2018-19115's class), limits."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepalived_py.check.http_response import MAX_HEADER_BYTES, MAX_STATUS_LINE, ResponseParser


def parse(*chunks: bytes, eof: bool = True) -> ResponseParser:
    p = ResponseParser(want_digest=True)
    for c in chunks:
        p.feed(c)
    if eof:
        p.eof()
    return p


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize(
    ("raw", "status", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloIGNORED", 200, b"hello"),
        (b"HTTP/1.0 404 Not Found\r\n\r\nmissing page", 404, b"missing page"),
        (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, b"ok"),  # bare LF line ends
        (b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 200, b""),  # no reason phrase
        # keepalived hashes a chunked body with its framing
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
         200, b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
    ],
)
def test_golden_responses(raw, status, body):
    p = parse(raw)
    assert p.error is None and p.done, p.error
    assert p.status == status
    assert p.digest == md5(body)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"HTTP/1.1 20\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 OK 200\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1200 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/11 200 OK\r\n\r\n", "malformed status line"),
        (b"ICY 200 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 O\x00K\r\n\r\n", "malformed status line"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", "malformed status line"),
        (b"", "connection closed without a response"),
        (b"HTTP/1.1 200 OK\r\nBroken header\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed before the response was complete"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "malformed Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", "chunk not followed by CRLF"),
    ],
)
def test_malformed_responses_fail_with_a_reason(raw, reason):
    p = parse(raw)
    assert p.error is not None and reason in p.error, p.error
    assert p.digest is None


def test_a_huge_status_line_fails_without_growing_memory():
    p = ResponseParser()
    p.feed(b"HTTP/1.1 200 " + b"A" * (MAX_STATUS_LINE + 100))
    assert p.error == "status line too long"
    for _ in range(100):
        p.feed(b"A" * 65536)
    assert len(p._buf) == 0


def test_endless_headers_fail_at_the_limit():
    p = ResponseParser()
    p.feed(b"HTTP/1.1 200 OK\r\n")
    fed = 0
    while p.error is None and fed < 10 * MAX_HEADER_BYTES:
        p.feed(b"X-Filler: " + b"y" * 100 + b"\r\n")
        fed += 112
    assert p.error in ("headers too large", "too many headers")
    assert fed <= MAX_HEADER_BYTES + 200


def test_too_many_small_headers_fail():
    p = parse(b"HTTP/1.1 200 OK\r\n" + b"A: b\r\n" * 300 + b"\r\n")
    assert p.error == "too many headers"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_any_bytes_in_any_split_never_raise(data, cuts):
    p = ResponseParser(want_digest=True)
    points = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for a, b in itertools.pairwise(points):
        p.feed(data[a:b])
        assert len(p._buf) <= MAX_HEADER_BYTES + 2
    p.eof()
    assert p.done or p.error is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=10),
       st.booleans(), st.data())
def test_a_valid_response_split_anywhere_gives_the_same_status_and_digest(body, chunk_sizes, chunked, data):
    if chunked:
        enc, rest, i = b"", body, 0
        while rest:
            n = chunk_sizes[i % len(chunk_sizes)]
            enc += f"{n if n < len(rest) else len(rest):x}\r\n".encode() + rest[:n] + b"\r\n"
            rest, i = rest[n:], i + 1
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + enc + b"0\r\n\r\n"
    else:
        raw = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    whole = parse(raw)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=10))
    points = sorted({0, len(raw), *cuts})
    split = parse(*(raw[a:b] for a, b in itertools.pairwise(points)))
    assert whole.error is None and split.error is None
    expected = md5(raw.split(b"\r\n\r\n", 1)[1]) if chunked else md5(body)
    assert (split.status, split.digest) == (whole.status, whole.digest) == (200, expected)
