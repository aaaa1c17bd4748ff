"""The parent's side of ``kpd events``, piece by piece: the ring, the events request, followers, and which
connections may send events. Real sockets (socketpairs), a real child process for the peer check."""

from __future__ import annotations

import selectors
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from keepalived_py import wire
from keepalived_py.config.load import load_config
from keepalived_py.control import arbiter as arbiter_module
from keepalived_py.control.arbiter import EVENT_RING, FOLLOW_BACKLOG, Arbiter, Client, Supervised
from keepalived_py.control.lifecycle import ChildRecord, HungTimeout

CONF = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


@pytest.fixture
def arbiter(tmp_path: Path) -> Arbiter:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF)
    config = load_config(str(path), host_checks=False).config
    assert config is not None
    arb = Arbiter(config, config_path=str(path), runtime_dir=tmp_path)
    arb._sel = selectors.DefaultSelector()
    return arb


def client_pair(arb: Arbiter) -> tuple[socket.socket, socket.socket]:
    """(the parent's end, registered as a control client; the reader's end)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    arb._clients[ours] = Client(ours, time.monotonic() + arbiter_module.CLIENT_IDLE)
    return ours, theirs


def answer(sock: socket.socket) -> wire.Response:
    sock.settimeout(5)
    msg = wire.decode(sock.recv(wire.MAX_FRAME + 1))
    assert isinstance(msg, wire.Response)
    return msg


def drain(sock: socket.socket) -> list[dict[str, Any]]:
    """The events of every frame waiting on ``sock`` (not waiting for more)."""
    sock.setblocking(False)
    out: list[dict[str, Any]] = []
    while True:
        try:
            data = sock.recv(wire.MAX_FRAME + 1)
        except BlockingIOError:
            return out
        if not data:
            return out
        msg = wire.decode(data)
        assert isinstance(msg, wire.Response) and msg.ok
        out += msg.body["events"]


def test_the_ring_keeps_the_last_events_numbered_without_gaps(arbiter):
    for i in range(EVENT_RING + 50):
        arbiter.record_event("parent", "n", i=i)
    assert len(arbiter.events) == EVENT_RING
    assert [e["seq"] for e in arbiter.events] == list(range(51, EVENT_RING + 51))
    assert all(e["source"] == "parent" and e["kind"] == "n" and e["i"] == e["seq"] - 1
               for e in arbiter.events)
    newest = EVENT_RING + 50
    assert [e["seq"] for e in arbiter.events_since(newest - 10)] == list(range(newest - 9, newest + 1))
    assert [e["seq"] for e in arbiter.events_since(newest - 10, 3)] == [newest - 2, newest - 1, newest]
    assert [e["seq"] for e in arbiter.events_since(None, 2)] == [newest - 1, newest]
    assert len(arbiter.events_since(0)) == EVENT_RING  # older than the ring: all of it
    assert arbiter.events_since(newest) == [] and arbiter.events_since(newest + 5) == []
    assert arbiter.events_since(None, 0) == []


def test_an_events_request_answers_with_the_ring_and_a_follower_then_gets_each_new_event(arbiter):
    for kind in ("a", "b", "c"):
        arbiter.record_event("parent", kind)
    ours, theirs = client_pair(arbiter)
    arbiter._events_request(ours, {"since": 1, "follow": True})
    first = answer(theirs)
    assert first.ok and [e["kind"] for e in first.body["events"]] == ["b", "c"]
    assert first.body["last_seq"] == 3 and first.body["oldest_seq"] == 1
    assert first.body["ring_size"] == EVENT_RING
    arbiter.record_event("vrrp", "vrrp_transition", to="MASTER")
    arbiter.record_event("parent", "reload", ok=True)
    arbiter._feed_followers()
    streamed = drain(theirs)
    assert [(e["seq"], e["source"], e["kind"]) for e in streamed] == [
        (4, "vrrp", "vrrp_transition"), (5, "parent", "reload")]
    arbiter._feed_followers()  # nothing new: nothing sent twice
    assert drain(theirs) == []
    # followers are exempt from the idle timeout; an idle plain client is not
    idle, idle_peer = client_pair(arbiter)
    arbiter._clients[idle].deadline = time.monotonic() - 1
    arbiter._clients[ours].deadline = time.monotonic() - 1  # even so
    arbiter._housekeeping()
    assert ours in arbiter._clients and idle not in arbiter._clients
    theirs.close()
    idle_peer.close()


@pytest.mark.parametrize("args", [{"since": "1"}, {"limit": -1}, {"since": True}, {"follow": "yes"}])
def test_bad_events_arguments_are_refused(arbiter, args):
    ours, theirs = client_pair(arbiter)
    arbiter._events_request(ours, args)
    refused = answer(theirs)
    assert not refused.ok and "must be" in refused.body["error"]
    assert not arbiter._clients[ours].follower
    theirs.close()


def test_a_follower_that_does_not_read_is_disconnected_once_its_backlog_is_exceeded(arbiter):
    ours, theirs = client_pair(arbiter)
    arbiter._events_request(ours, {"follow": True})
    answer(theirs)
    # a socket that fills soon (it still takes a whole frame: a larger datagram is refused outright)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 70_000)
    client = arbiter._clients[ours]
    behind_when_dropped = None
    for _ in range(200):
        for _ in range(50):
            arbiter.record_event("checker", "ipvs_operation", detail="x" * 100)
        arbiter._feed_followers()
        if ours not in arbiter._clients:
            behind_when_dropped = arbiter._event_seq - client.cursor
            break
    assert behind_when_dropped is not None, "a follower that never reads must be disconnected"
    # at the first turn it was more than its backlog behind (50 events a turn), long before the ring's end
    assert FOLLOW_BACKLOG < behind_when_dropped <= FOLLOW_BACKLOG + 50
    got = drain(theirs)  # what was queued before, in order, then the end of the stream
    assert [e["seq"] for e in got] == list(range(1, len(got) + 1))
    assert theirs.recv(wire.MAX_FRAME + 1) == b""
    theirs.close()


def test_a_follower_that_keeps_up_gets_every_event_of_large_bursts(arbiter):
    ours, theirs = client_pair(arbiter)
    arbiter._events_request(ours, {"follow": True})
    answer(theirs)
    got: list[dict[str, Any]] = []
    for _ in range(10):
        for _ in range(FOLLOW_BACKLOG // 2 * 3):  # a burst larger than the backlog, within a turn
            arbiter.record_event("checker", "ipvs_operation", detail="x" * 100)
        arbiter._feed_followers()
        got += drain(theirs)
    arbiter._feed_followers()
    got += drain(theirs)
    assert ours in arbiter._clients
    assert [e["seq"] for e in got] == list(range(1, arbiter._event_seq + 1))
    theirs.close()


def test_child_events_are_accepted_only_on_the_childs_own_connection_and_losses_are_recorded(arbiter):
    child = subprocess.Popen(["sleep", "60"])
    try:
        arbiter.children["vrrp"] = Supervised("vrrp", [], ChildRecord("vrrp"), HungTimeout(3.0, "test"),
                                              proc=child)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        arbiter._beat_peers[ours] = child.pid  # the kernel's word for who opened it
        batch = [{"kind": "vrrp_transition", "time": 1.0, "to": "MASTER", "seq": 999, "source": "forged"}]
        theirs.send(wire.encode(wire.Events("vrrp", child.pid, batch, 2)))
        arbiter._read_beats(ours)
        lost, transition = arbiter.events
        assert lost["kind"] == "events_lost" and lost["source"] == "parent"
        assert lost["child"] == "vrrp" and lost["count"] == 2
        assert transition == {"time": 1.0, "kind": "vrrp_transition", "to": "MASTER", "seq": 2,
                              "source": "vrrp"}  # numbered by the parent, whatever the child says
        # a connection from another process, even claiming the child's pid, is not the child's
        other, other_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        other.setblocking(False)
        arbiter._beat_peers[other] = child.pid + 1
        other_peer.send(wire.encode(wire.Events("vrrp", child.pid, batch, 0)))
        other_peer.send(wire.encode(wire.Events("vrrp", child.pid + 1, batch, 0)))
        arbiter._read_beats(other)
        theirs.send(wire.encode(wire.Events("vrrp", child.pid + 1, batch, 0)))  # right socket, wrong pid
        arbiter._read_beats(ours)
        assert len(arbiter.events) == 2
        for sock in (ours, theirs, other, other_peer):
            sock.close()
    finally:
        child.kill()
        child.wait()


def test_a_rejected_reload_is_recorded_with_its_error_count_and_first_line(arbiter):
    arbiter._reject(["keepalived.conf:3:1: error: bad thing\n  context", "second error"])
    (event,) = arbiter.events
    assert event["kind"] == "reload" and event["source"] == "parent" and event["ok"] is False
    assert event["generation"] == 0 and event["errors"] == 2
    assert event["message"] == "rejected: keepalived.conf:3:1: error: bad thing"
