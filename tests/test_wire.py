"""The heartbeat/control wire format: round trips, and any bytes fail only with WireError, bounded."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepalived_py.wire import (
    MAX_DEPTH,
    MAX_FRAME,
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
    ],
)
def test_bad_frames_are_rejected_with_a_reason(data, reason):
    with pytest.raises(WireError) as err:
        decode(data)
    assert err.value.reason is reason


def test_oversized_messages_are_refused_when_encoding():
    with pytest.raises(ValueError):
        encode(Heartbeat("vrrp", 1, 1, {"blob": "x" * MAX_FRAME}))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_wire_errors(data):
    with contextlib.suppress(WireError):
        decode(data)


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
