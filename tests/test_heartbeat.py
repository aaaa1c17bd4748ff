"""The children's heartbeat sender: a frame per interval, at once on a change, and never too large."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from keepalived_py import wire
from keepalived_py.heartbeat import HeartbeatSender, send_heartbeats


@pytest.mark.parametrize("instances", [
    20000,  # more than a frame holds
    5000,  # within a frame (about 225 KB), but more than the socket's default send buffer (wmem_default)
])
def test_a_state_too_large_for_a_frame_still_heartbeats_with_a_summary(tmp_path, instances):
    path = str(tmp_path / "hb.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)
    huge = {"instances": {f"VI_{i}": {"state": "MASTER", "priority": 100} for i in range(instances)},
            "generation": 3, "loop_lag": {"max_ms": 1.5, "p99_ms": 0.5, "window_s": 60.0}}

    async def main() -> list[wire.Heartbeat]:
        changed = asyncio.Event()
        sender = HeartbeatSender("vrrp", path)
        task = asyncio.create_task(send_heartbeats(sender, 0.05, lambda: huge, changed))
        loop = asyncio.get_running_loop()
        conn, _ = await loop.run_in_executor(None, listener.accept)
        beats = []
        for _ in range(2):
            data = await loop.run_in_executor(None, conn.recv, wire.MAX_FRAME + 1)
            msg = wire.decode(data)
            assert isinstance(msg, wire.Heartbeat)
            beats.append(msg)
        task.cancel()
        conn.close()
        return beats

    beats = asyncio.run(main())
    assert [b.seq for b in beats] == [0, 1]
    if instances == 5000 and os.geteuid() == 0:  # the send buffer was raised for it: the whole state
        assert beats[0].state == {**huge, "full": True} and beats[1].state == {"generation": 3}
        return
    for beat in beats:  # each a full beat, truncated: the parent never holds half of a state
        assert beat.state == {"generation": 3, "truncated": True, "full": True,
                              "loop_lag": {"max_ms": 1.5, "p99_ms": 0.5, "window_s": 60.0}}
    listener.close()


def test_a_child_heartbeats_from_the_start_while_it_is_still_starting(tmp_path):
    """Start-up beats come before the engine runs, so a slow start is never mistaken for a hang."""
    import subprocess
    import sys

    conf = tmp_path / "keepalived.conf"
    conf.write_text("virtual_server 192.0.2.1 80 {\n  real_server 192.0.2.2 80 {\n"
                    "    TCP_CHECK {\n    }\n  }\n}\n")
    path = str(tmp_path / "hb.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(60)
    child = subprocess.Popen([sys.executable, "-m", "keepalived_py.check.child", "--config", str(conf),
                              "--runtime-dir", str(tmp_path), "--heartbeat-socket", path,
                              "--heartbeat-interval", "0.01", "--log-console"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn, _ = listener.accept()
        conn.settimeout(60)
        first = wire.decode(conn.recv(wire.MAX_FRAME + 1))
        assert isinstance(first, wire.Heartbeat)
        assert first.child == "checker" and first.pid == child.pid
        assert first.state["starting"] is True and first.state["phase"]
        conn.close()
    finally:
        child.kill()
        child.wait()
        listener.close()


def test_loop_beats_carry_only_what_changed_and_the_parent_merges_them(tmp_path):
    """The instances go out once, then only when they change; the parent's record holds the whole state."""
    from keepalived_py.control.lifecycle import ChildRecord

    path = str(tmp_path / "hb.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)
    states = [
        {"instances": {"VI_1": {"state": "BACKUP", "priority": 100}}, "generation": 1, "lag": 0.5},
        {"instances": {"VI_1": {"state": "BACKUP", "priority": 100}}, "generation": 1, "lag": 0.7},
        {"instances": {"VI_1": {"state": "MASTER", "priority": 100}}, "generation": 1, "lag": 0.2},
        {"instances": {"VI_1": {"state": "MASTER", "priority": 100}}, "generation": 2, "lag": 0.1},
    ]
    sender = HeartbeatSender("vrrp", path)
    sent = []
    conn = None
    for state in states:
        sender.send(state)
        if conn is None:
            conn, _ = listener.accept()
        msg = wire.decode(conn.recv(wire.MAX_FRAME + 1))
        assert isinstance(msg, wire.Heartbeat)
        sent.append(msg.state)
    assert [("instances" in s, s.get("full", False)) for s in sent] == [
        (True, True), (False, False), (True, False), (False, False)]
    record = ChildRecord("vrrp")
    record.spawned(1234, 0.0)
    for i, state in enumerate(sent):
        record.heartbeat(float(i), state)
        assert record.last_state == states[i]
    conn.close()
    listener.close()


def _listener(tmp_path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "hb.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)
    return listener, path


def _read_events(conn: socket.socket) -> list[wire.Events]:
    """Every frame waiting on ``conn`` (heartbeats skipped)."""
    conn.setblocking(False)
    out = []
    while True:
        try:
            data = conn.recv(wire.MAX_FRAME + 1)
        except BlockingIOError:
            return out
        msg = wire.decode(data)
        if isinstance(msg, wire.Events):
            out.append(msg)


def test_events_go_in_frames_that_fit_the_budget_in_order(tmp_path):
    from keepalived_py.events import EventBuffer

    listener, path = _listener(tmp_path)
    sender = HeartbeatSender("checker", path)
    sender.send({"n": 1})  # connects
    conn, _ = listener.accept()
    buf = EventBuffer()
    for i in range(1000):
        buf.emit("ipvs_operation", i=i, detail="add-dest TCP 192.0.2.10:80 -> 10.0.0.1:8080 Masq weight 1")
    frames = sender.send_events(buf, frame_bytes=16 * 1024)
    got = _read_events(conn)
    assert frames == len(got) > 1 and len(buf) == 0
    assert all(len(wire.encode(f)) <= 16 * 1024 for f in got)
    assert [e["i"] for f in got for e in f.events] == list(range(1000))
    assert all(f.child == "checker" and f.pid == sender.pid and f.dropped == 0 for f in got)
    conn.close()
    listener.close()


def test_events_the_socket_cannot_take_now_wait_for_the_next_turn_and_a_loss_is_reported_once(tmp_path):
    from keepalived_py.events import EventBuffer

    listener, path = _listener(tmp_path)
    sender = HeartbeatSender("vrrp", path)
    sender.send({"n": 1})
    conn, _ = listener.accept()
    buf = EventBuffer(maxlen=4000)
    for i in range(4100):  # 100 lost to the bound
        buf.emit("vrrp_transition", i=i, reason_text="x" * 300)
    sender.send_events(buf)
    assert len(buf) > 0, "the parent reads nothing: the socket must have filled"
    assert sender._sock is not None  # a full socket is no reason to drop the connection
    got = _read_events(conn)
    while len(buf):
        sender.send_events(buf)
        got += _read_events(conn)
    assert [e["i"] for f in got for e in f.events] == list(range(100, 4100))
    assert [f.dropped for f in got if f.dropped] == [100]
    conn.close()
    listener.close()


def test_the_loop_beat_task_flushes_the_events_after_each_beat(tmp_path):
    from keepalived_py.events import EventBuffer

    listener, path = _listener(tmp_path)

    async def main() -> list[wire.Heartbeat | wire.Events]:
        changed = asyncio.Event()
        buf = EventBuffer(on_emit=changed.set)
        sender = HeartbeatSender("vrrp", path)
        task = asyncio.create_task(send_heartbeats(sender, 30.0, lambda: {"n": 1}, changed, buf))
        loop = asyncio.get_running_loop()
        conn, _ = await loop.run_in_executor(None, listener.accept)
        frames = [wire.decode(await loop.run_in_executor(None, conn.recv, wire.MAX_FRAME + 1))]
        buf.emit("vrrp_transition", to="MASTER")  # wakes the task long before the 30 s interval
        for _ in range(2):
            frames.append(wire.decode(await loop.run_in_executor(None, conn.recv, wire.MAX_FRAME + 1)))
        task.cancel()
        conn.close()
        return frames

    first, beat, events = asyncio.run(main())
    assert isinstance(first, wire.Heartbeat) and isinstance(beat, wire.Heartbeat)
    assert isinstance(events, wire.Events) and [e["to"] for e in events.events] == ["MASTER"]
    listener.close()
