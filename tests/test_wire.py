"""The heartbeat/control wire format: round trips, and any bytes fail only with WireError, bounded."""

from __future__ import annotations

import contextlib
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepalived_py.wire import (
    MAX_DEPTH,
    MAX_FRAME,
    MAX_INT_DIGITS,
    Heartbeat,
    Request,
    Response,
    WireError,
    WireReason,
    decode,
    encode,
)


@pytest.mark.parametrize(
    "msg",
    [
        Heartbeat("vrrp", 1234, 7, {"instances": {"VI_1": "MASTER"}}),
        Request("status", {}),
        Request("reload", {"config": "/etc/keepalived/keepalived.conf"}),
        Response(True, {"pid": 1}),
    ],
)
def test_messages_round_trip(msg):
    assert decode(encode(msg)) == msg


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", WireReason.EMPTY),
        (b"x" * (MAX_FRAME + 1), WireReason.TOO_LARGE),
        (b"\xff\xfe", WireReason.ENCODING),
        (b"{not json", WireReason.JSON),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), WireReason.TOO_DEEP),
        (b"[1, 2]", WireReason.NOT_OBJECT),
        (b'{"type": "bogus"}', WireReason.TYPE),
        (b'{"type": "heartbeat", "child": "vrrp", "pid": "1", "seq": 0, "state": {}}', WireReason.FIELD),
        (b'{"type": "heartbeat", "child": "x", "pid": 1, "seq": 0, "state": {}}', WireReason.FIELD),
        (b'{"type": "heartbeat", "child": "vrrp", "pid": true, "seq": 0, "state": {}}', WireReason.FIELD),
        (b'{"type": "request", "cmd": "rm -rf"}', WireReason.FIELD),
        # longer than Python's int-max-str-digits (4,300): json.loads raises a bare ValueError
        (b'{"type": "heartbeat", "pid": ' + b"1" * 4301 + b"}", WireReason.JSON),
        (b"[" + b"9" * (MAX_FRAME - 2) + b"]", WireReason.JSON),
        (b'{"x": -' + b"1" * 5000 + b"}", WireReason.JSON),
    ],
)
def test_bad_frames_are_rejected_with_a_reason(data, reason):
    with pytest.raises(WireError) as err:
        decode(data)
    assert err.value.reason is reason


def test_oversized_messages_are_refused_when_encoding():
    with pytest.raises(ValueError):
        encode(Heartbeat("vrrp", 1, 1, {"blob": "x" * MAX_FRAME}))


def test_long_float_literals_and_many_keys_decode_or_fail_with_wire_errors():
    frames = [
        b'{"x": 1.' + b"1" * 200_000 + b"}",
        b'{"x": 1e' + b"9" * 200_000 + b"}",
        b'{"x": ' + b"1" * 4000 + b"." + b"1" * 4000 + b"}",
        b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(18_000)) + b"}",
    ]
    for data in frames:
        assert len(data) <= MAX_FRAME
        with contextlib.suppress(WireError):
            decode(data)


def _json_ish(draw_bytes: bytes, digits: int) -> bytes:
    return b'{"type": "heartbeat", "child": "vrrp", "pid": ' + b"7" * digits + b", " + draw_bytes


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=2048),
        st.builds(_json_ish, st.binary(max_size=64), st.integers(1, 6000)),
        st.builds(lambda d, n: b"[" + b"1" * n + d, st.binary(max_size=16), st.integers(4000, 6000)),
    )
)
def test_arbitrary_bytes_raise_only_wire_errors(data):
    try:
        msg = decode(data)
    except WireError:
        return
    assert isinstance(msg, Heartbeat | Request | Response)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=10), json_values, max_size=6),
    st.integers(1, 2**31),
    st.integers(0, 2**31),
)
def test_generated_heartbeats_round_trip(state, pid, seq):
    msg = Heartbeat("checker", pid, seq, state)
    try:
        data = encode(msg)
    except ValueError:
        return
    try:
        assert decode(data) == msg
    except WireError as err:
        assert err.reason is WireReason.TOO_DEEP


def test_huge_integers_are_refused_even_without_the_interpreters_digit_limit():
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        with pytest.raises(WireError) as err:
            decode(b'{"type": "heartbeat", "pid": ' + b"1" * (MAX_FRAME - 64) + b"}")
    finally:
        sys.set_int_max_str_digits(old)
    assert err.value.reason is WireReason.JSON


def test_integers_up_to_the_digit_limit_decode():
    pid = int("9" * MAX_INT_DIGITS)
    msg = Heartbeat("vrrp", pid, 0, {"n": -pid})
    assert decode(encode(msg)) == msg
