"""The process-connector decoder: fork, exec, rename and exit events of processes (threads left out), and
bad datagrams skipped, never an exception; and the real socket, where the kernel offers it."""

from __future__ import annotations

import os
import struct
import subprocess
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepalived_py.proc_events import (
    CN_IDX_PROC,
    CN_VAL_PROC,
    NLMSG_DONE,
    PROC_EVENT_COMM,
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    ProcEvent,
    ProcEventSocket,
    decode,
)


def frame(what: int, payload: bytes, *, idx: int = CN_IDX_PROC, msg_type: int = NLMSG_DONE) -> bytes:
    event = struct.pack("=IIQ", what, 0, 123) + payload
    cn = struct.pack("=IIIIHH", idx, CN_VAL_PROC, 0, 0, len(event), 0) + event
    return struct.pack("=IHHII", 16 + len(cn), msg_type, 0, 0, 0) + cn


def test_events_of_processes_are_decoded():
    data = (
        frame(PROC_EVENT_FORK, struct.pack("=iiii", 10, 10, 11, 11))
        + frame(PROC_EVENT_EXEC, struct.pack("=ii", 11, 11))
        + frame(PROC_EVENT_COMM, struct.pack("=ii", 11, 11) + b"haproxy\0" + bytes(8))
        + frame(PROC_EVENT_EXIT, struct.pack("=iiIIii", 11, 11, 0, 17, 10, 10))
    )
    assert list(decode(data)) == [
        ProcEvent("fork", 11, parent=10),
        ProcEvent("exec", 11),
        ProcEvent("comm", 11, comm="haproxy"),
        ProcEvent("exit", 11),
    ]


def test_threads_and_foreign_messages_are_left_out():
    data = (
        frame(PROC_EVENT_FORK, struct.pack("=iiii", 10, 10, 12, 10))  # a thread of 10
        + frame(PROC_EVENT_EXIT, struct.pack("=iiIIii", 12, 10, 0, 0, 10, 10))
        + frame(PROC_EVENT_EXEC, struct.pack("=ii", 5, 5), idx=4)  # another connector
        + frame(PROC_EVENT_EXEC, struct.pack("=ii", 5, 5), msg_type=2)  # an error message
        + frame(PROC_EVENT_EXEC, b"\1")  # truncated
    )
    assert list(decode(data)) == []


@given(st.binary(max_size=512))
def test_any_datagram_decodes_without_an_exception(data):
    for event in decode(data):
        assert event.kind in ("fork", "exec", "comm", "exit")


KINDS = st.sampled_from([0, PROC_EVENT_FORK, PROC_EVENT_EXEC, PROC_EVENT_COMM, PROC_EVENT_EXIT, 7])


@given(st.lists(st.tuples(KINDS, st.binary(max_size=40)), max_size=8))
def test_truncated_and_odd_events_in_a_datagram_never_raise(parts):
    data = b"".join(frame(what, payload) for what, payload in parts)
    list(decode(data))


def test_the_kernel_reports_an_exit_at_once():
    if os.geteuid() != 0:
        pytest.skip("the process connector needs root")
    try:
        events = ProcEventSocket.open()
    except OSError as err:
        pytest.skip(f"no process events here: {err}")
    try:
        child = subprocess.Popen(["sleep", "0.1"])
        child.wait()
        seen: list[ProcEvent] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and ProcEvent("exit", child.pid) not in seen:
            seen += events.read()
            time.sleep(0.01)
        assert ProcEvent("exit", child.pid) in seen
        assert any(e.kind == "fork" and e.pid == child.pid and e.parent == os.getpid() for e in seen)
    finally:
        events.close()
