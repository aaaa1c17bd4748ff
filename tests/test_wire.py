"""The heartbeat/control wire format: round trips, and any bytes fail only with WireError, bounded."""

from __future__ import annotations

import contextlib
import json
import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepalived_py.wire import (
    MAX_DEPTH,
    MAX_FRAME,
    MAX_INT_DIGITS,
    Events,
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
        Events("checker", 99, [{"kind": "check_verdict", "time": 1.5, "up": False, "weight": None,
                                "check": "TCP_CHECK 10.0.0.1:80", "reason": "refused"}], 3),
        Events("vrrp", 1, [], 0),
        Request("events", {"since": 10, "limit": 5, "follow": True}),
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
        # events: a list of flat objects, each with a string kind and a numeric time
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0, "events": {}}', WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0, "events": [1]}', WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0, "events": [{"time": 1}]}',
         WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0, "events": [{"kind": "", "time": 1}]}',
         WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0, "events": [{"kind": 5, "time": 1}]}',
         WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0, "events": [{"kind": "'
         + b"k" * 65 + b'", "time": 1}]}', WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0, "events": [{"kind": "x"}]}',
         WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0,'
         b' "events": [{"kind": "x", "time": true}]}', WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0,'
         b' "events": [{"kind": "x", "time": NaN}]}', WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0,'
         b' "events": [{"kind": "x", "time": 1, "d": -Infinity}]}', WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0,'
         b' "events": [{"kind": "x", "time": 1, "nested": {"a": 1}}]}', WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": 0,'
         b' "events": [{"kind": "x", "time": 1, "list": [1]}]}', WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "dropped": -1, "events": []}', WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 1, "events": []}', WireReason.FIELD),
        (b'{"type": "events", "child": "parent", "pid": 1, "dropped": 0, "events": []}', WireReason.FIELD),
        (b'{"type": "events", "child": "vrrp", "pid": 0, "dropped": 0, "events": []}', WireReason.FIELD),
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


def _events_ish(draw_bytes: bytes) -> bytes:
    """An events frame whose list of events is followed by arbitrary bytes."""
    head = b'{"type": "events", "child": "checker", "pid": 7, "dropped": 0, "events": [{"kind": "x", '
    return head + draw_bytes


events_docs = st.builds(
    lambda events, dropped: json.dumps({"type": "events", "child": "vrrp", "pid": 3, "dropped": dropped,
                                        "events": events}).encode(),
    st.lists(st.dictionaries(st.sampled_from(["kind", "time", "up", "x"]),
                             st.none() | st.booleans() | st.integers() | st.floats()
                             | st.text(max_size=8) | st.lists(st.integers(), max_size=2), max_size=4),
             max_size=4),
    st.integers(-2, 2),
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=2048),
        st.builds(_json_ish, st.binary(max_size=64), st.integers(1, 6000)),
        st.builds(_events_ish, st.binary(max_size=64)),
        events_docs,
        st.builds(lambda d, n: b"[" + b"1" * n + d, st.binary(max_size=16), st.integers(4000, 6000)),
    )
)
def test_arbitrary_bytes_raise_only_wire_errors(data):
    try:
        msg = decode(data)
    except WireError:
        return
    assert isinstance(msg, Heartbeat | Events | Request | Response)
    if isinstance(msg, Events):  # what decodes is what the parent relies on
        assert msg.dropped >= 0
        for event in msg.events:
            assert isinstance(event["kind"], str) and event["kind"]
            assert isinstance(event["time"], int | float) and not isinstance(event["time"], bool)
            assert all(v is None or isinstance(v, str | int | bool)
                       or (isinstance(v, float) and math.isfinite(v)) for v in event.values())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in ("kind", "time")),
                             st.none() | st.booleans() | st.integers() | st.text(max_size=20)
                             | st.floats(allow_nan=False, allow_infinity=False), max_size=5), max_size=8),
    st.integers(0, 2**31),
)
def test_generated_events_round_trip(fields, dropped):
    events = [{"kind": f"k{i}", "time": 1.0 + i, **f} for i, f in enumerate(fields)]
    msg = Events("checker", 5, events, dropped)
    assert decode(encode(msg)) == msg


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
