"""The control client: retries a full listen backlog until a deadline; reads private reply files safely."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keepalived_py import wire
from keepalived_py.control import client
from keepalived_py.control.client import ControlError, request
from keepalived_py.runtime_files import write_private_reply
from promptly import promptly


@pytest.fixture
def run() -> Iterator[Path]:
    """A short runtime dir (a Unix socket path must fit in 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="kpd-client-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def listener(run: Path, backlog: int = 16) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.bind(str(run / client.CONTROL_SOCKET))
    sock.listen(backlog)
    sock.settimeout(60)
    return sock


def fill_backlog(run: Path) -> list[socket.socket]:
    """Idle connections until the listener's queue is full (a non-blocking connect says EAGAIN)."""
    idle = []
    for _ in range(1000):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK)
        try:
            sock.connect(str(run / client.CONTROL_SOCKET))
        except BlockingIOError:
            sock.close()
            return idle
        idle.append(sock)
    raise AssertionError("the listen backlog never filled")


def serve_one(sock: socket.socket, answer: Callable[[bytes], bytes], skip: int = 0) -> threading.Thread:
    """Accept ``skip`` idle connections, then answer one request; in a thread."""

    def run() -> None:
        kept = [sock.accept()[0] for _ in range(skip)]
        conn, _ = sock.accept()
        with conn:
            conn.send(answer(conn.recv(wire.MAX_FRAME + 1)))
        for c in kept:
            c.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def respond(ok: bool, body: dict[str, Any]) -> Callable[[bytes], bytes]:
    return lambda _data: wire.encode(wire.Response(ok, body))


# --- connecting ---------------------------------------------------------------------------------------------


def test_a_request_is_answered(run):
    with listener(run) as sock:
        serve_one(sock, respond(True, {"message": "ok"}))
        assert request(run, "status") == {"message": "ok"}


def test_a_full_backlog_is_retried_until_a_slot_frees(run):
    with listener(run, backlog=1) as sock:
        idle = fill_backlog(run)
        assert idle

        def free_a_slot_later() -> None:
            time.sleep(0.5)  # the client is retrying meanwhile; it only has to succeed eventually
            serve_one(sock, respond(True, {"message": "ok"}), skip=len(idle)).join()

        helper = threading.Thread(target=free_a_slot_later, daemon=True)
        helper.start()
        try:
            assert request(run, "status", connect_timeout=60) == {"message": "ok"}
        finally:
            helper.join(60)
            for s in idle:
                s.close()


def test_a_backlog_that_stays_full_fails_clearly_at_the_deadline(run):
    with listener(run, backlog=1):
        idle = fill_backlog(run)
        try:
            with pytest.raises(ControlError, match="busy"):
                request(run, "status", connect_timeout=0.3)
        finally:
            for s in idle:
                s.close()


def test_no_daemon_is_a_clear_error(run):
    with pytest.raises(ControlError, match="no kpd is running"):
        request(run, "status")


# --- private reply files ------------------------------------------------------------------------------------


def test_a_reply_file_is_read_and_removed(run):
    path = write_private_reply(run, {"instances": ["VI_1"] * 10})
    with listener(run) as sock:
        serve_one(sock, respond(True, {"reply_file": str(path)}))
        assert request(run, "status") == {"instances": ["VI_1"] * 10}
    assert not path.exists()


def test_a_refusal_through_a_reply_file_is_an_error_with_its_diagnostics(run):
    path = write_private_reply(run, {"error": "reload rejected", "diagnostics": ["line 3: bad"]})
    with listener(run) as sock:
        serve_one(sock, respond(False, {"reply_file": str(path)}))
        with pytest.raises(ControlError, match="reload rejected\nline 3: bad"):
            request(run, "reload")
    assert not path.exists()


def test_two_clients_get_their_own_answers(run):
    first = write_private_reply(run, {"n": 1})
    second = write_private_reply(run, {"n": 2})
    with listener(run) as sock:
        serve_one(sock, respond(True, {"reply_file": str(first)}))
        assert request(run, "status") == {"n": 1}
        serve_one(sock, respond(True, {"reply_file": str(second)}))
        assert request(run, "status") == {"n": 2}


@pytest.mark.parametrize("where", ["outside", "wrong-name", "traversal"])
def test_a_reply_naming_another_file_is_neither_read_nor_removed(run, tmp_path, where):
    victim = {
        "outside": tmp_path / f"control-reply-{'a' * 32}.json",
        "wrong-name": run / "kpd.pid",
        "traversal": tmp_path / f"control-reply-{'b' * 32}.json",
    }[where]
    victim.write_text(json.dumps({"secret": 1}))
    named = str(victim)
    if where == "traversal":
        named = f"{run}/../{os.path.relpath(victim, run.parent)}"
    with listener(run) as sock:
        serve_one(sock, respond(True, {"reply_file": named}))
        with pytest.raises(ControlError, match="bad answer"):
            request(run, "status")
    assert victim.exists()


def test_a_fifo_planted_as_a_reply_file_is_refused_promptly(run):
    fifo = run / f"control-reply-{'c' * 32}.json"
    os.mkfifo(fifo, 0o600)
    with listener(run) as sock:
        serve_one(sock, respond(True, {"reply_file": str(fifo)}))
        try:
            with pytest.raises(ControlError, match="FIFO"):
                promptly(lambda: request(run, "status"), timeout=60)
        finally:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))


def test_a_symlink_planted_as_a_reply_file_is_not_followed(run, tmp_path):
    (tmp_path / "secret").write_text(json.dumps({"secret": 1}))
    link = run / f"control-reply-{'d' * 32}.json"
    link.symlink_to(tmp_path / "secret")
    with listener(run) as sock:
        serve_one(sock, respond(True, {"reply_file": str(link)}))
        with pytest.raises(ControlError, match="symlink"):
            request(run, "status")
    assert (tmp_path / "secret").exists()


def test_a_reply_file_that_is_not_an_object_is_a_bad_answer(run):
    path = write_private_reply(run, [1, 2])
    with listener(run) as sock:
        serve_one(sock, respond(True, {"reply_file": str(path)}))
        with pytest.raises(ControlError, match="bad answer"):
            request(run, "status")


def test_a_socket_nobody_listens_on_is_a_clear_error(run):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.bind(str(run / client.CONTROL_SOCKET))
    sock.close()  # a stale socket file, as a killed daemon leaves
    with pytest.raises(ControlError, match="nothing is listening"):
        request(run, "status")


def serve_stream(sock: socket.socket, frames: list[bytes], requests: list[wire.Message]) -> threading.Thread:
    """Accept one connection, record its request, send ``frames``, then close; in a thread."""

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            requests.append(wire.decode(conn.recv(wire.MAX_FRAME + 1)))
            for frame in frames:
                conn.send(frame)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def events_frame(*seqs: int, **extra: Any) -> bytes:
    return wire.encode(wire.Response(True, {"events": [{"seq": s, "kind": "k", "time": 0.0} for s in seqs],
                                            **extra}))


def test_follow_yields_the_answer_then_each_streamed_event_until_the_daemon_closes(run):
    requests: list[wire.Message] = []
    answers: list[dict[str, Any]] = []
    with listener(run) as sock:
        thread = serve_stream(sock, [events_frame(1, 2, last_seq=2), events_frame(3), events_frame(4, 5)],
                              requests)
        got = [e["seq"] for e in client.follow(run, {"since": 0}, on_answer=answers.append)]
        thread.join(10)
    assert got == [1, 2, 3, 4, 5] and answers[0]["last_seq"] == 2
    assert requests == [wire.Request("events", {"since": 0, "follow": True})]


def test_follow_reads_a_large_first_answer_from_its_reply_file(run):
    path = write_private_reply(run, {"events": [{"seq": 1, "kind": "k", "time": 0.0}], "last_seq": 1})
    with listener(run) as sock:
        thread = serve_stream(sock, [wire.encode(wire.Response(True, {"reply_file": str(path)})),
                                     events_frame(2)], [])
        assert [e["seq"] for e in client.follow(run)] == [1, 2]
        thread.join(10)
    assert not path.exists()


def test_follow_raises_the_daemons_refusal(run):
    with listener(run) as sock:
        refusal = wire.encode(wire.Response(False, {"error": "'since' must be a whole number"}))
        thread = serve_stream(sock, [refusal], [])
        with pytest.raises(ControlError, match="whole number"):
            list(client.follow(run, {"since": "x"}))
        thread.join(10)


def test_an_event_line_has_utc_millisecond_time_seq_source_kind_and_sorted_quoted_fields():
    event = {"seq": 42, "time": 1700000000.5, "source": "vrrp", "kind": "vrrp_transition", "to": "MASTER",
             "reason_text": "master down timer expired", "priority": 100, "error": None, "ok": True,
             "empty": "", "quote": 'a"b', "duration": 0.1234567891}
    assert client.format_event(event) == (
        "2023-11-14T22:13:20.500Z 42 vrrp vrrp_transition duration=0.123457 empty=\"\" error=- ok=true "
        "priority=100 quote=\"a\\\"b\" reason_text=\"master down timer expired\" to=MASTER")
    assert json.loads(client.event_json(event)) == event
    assert list(json.loads(client.event_json(event))) == sorted(event)
