"""Behaviour of keepalived_py.notify: the serial script queue, the notify FIFO and its line formats."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from keepalived_py.notify import (
    NotifyFifo,
    NotifyQueue,
    fifo_line_group,
    fifo_line_instance,
    fifo_line_real_server,
    fifo_line_virtual_server,
    format_real_server,
    format_service,
    format_virtual_server,
    notify_args,
)
from keepalived_py.script_runner import ScriptResult
from lab import wait_for_async

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def append(path: Path, text: str) -> list[str]:
    """argv of a script appending ``text`` as a line to ``path``."""
    return ["/bin/sh", "-c", 'echo "$1" >> "$2"', "sh", text, str(path)]


# --- line formats (keepalived/vrrp/vrrp_notify.c, keepalived/check/ipwrapper.c) -------------------------


@pytest.mark.parametrize(
    ("state", "priority", "line"),
    [
        ("MASTER", 100, 'INSTANCE "VI_1" MASTER 100\n'),
        ("BACKUP", 90, 'INSTANCE "VI_1" BACKUP 90\n'),
        ("FAULT", 0, 'INSTANCE "VI_1" FAULT 0\n'),
        ("STOP", 0, 'INSTANCE "VI_1" STOP 0\n'),
        ("DELETED", 50, 'INSTANCE "VI_1" DELETED 50\n'),
        ("MASTER_RX_LOWER_PRI", 255, 'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 255\n'),
        ("MASTER_PRIORITY", 120, 'INSTANCE "VI_1" MASTER_PRIORITY 120\n'),
        ("BACKUP_PRIORITY", 80, 'INSTANCE "VI_1" BACKUP_PRIORITY 80\n'),
        ("INIT", 100, 'INSTANCE "VI_1" {UNKNOWN} 100\n'),
    ],
)
def test_instance_fifo_line_matches_keepalived(state: str, priority: int, line: str) -> None:
    assert fifo_line_instance("VI_1", state, priority) == line


def test_instance_fifo_line_accepts_str_enum_states() -> None:
    from keepalived_py.vrrp.fsm import State

    assert fifo_line_instance("VI_1", State.MASTER, 100) == 'INSTANCE "VI_1" MASTER 100\n'
    assert fifo_line_instance("VI_1", State.INIT, 100) == 'INSTANCE "VI_1" {UNKNOWN} 100\n'


def test_group_fifo_line_always_has_priority_zero() -> None:
    assert fifo_line_group("G1", "MASTER") == 'GROUP "G1" MASTER 0\n'
    assert fifo_line_group("G1", "STOP") == 'GROUP "G1" STOP 0\n'


def test_generic_notify_script_arguments() -> None:
    assert notify_args("INSTANCE", "VI_1", "MASTER", 100) == ["INSTANCE", "VI_1", "MASTER", "100"]
    assert notify_args("INSTANCE", "VI 2", "DELETED", 0) == ["INSTANCE", "VI 2", "DELETED", "0"]
    assert notify_args("GROUP", "G1", "BACKUP", 99) == ["GROUP", "G1", "BACKUP", "0"]
    # the priority-change events exist on the FIFO only; scripts get {UNKNOWN} like keepalived's default
    assert notify_args("INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", 1)[2] == "{UNKNOWN}"
    with pytest.raises(ValueError):
        notify_args("SERVER", "x", "MASTER", 1)


def test_lvs_fifo_lines_match_keepalived() -> None:
    vs = format_virtual_server(address="192.0.2.1", port=80, protocol="tcp")
    rs = format_real_server("10.0.0.1", 8080, "tcp")
    assert vs == "[192.0.2.1]:tcp:80" and rs == "[10.0.0.1]:tcp:8080"
    assert fifo_line_virtual_server(vs, True) == "VS [192.0.2.1]:tcp:80 UP\n"
    assert fifo_line_virtual_server(vs, False) == "VS [192.0.2.1]:tcp:80 DOWN\n"
    assert fifo_line_real_server(rs, vs, False) == "RS [10.0.0.1]:tcp:8080 [192.0.2.1]:tcp:80 DOWN\n"
    assert fifo_line_real_server(rs, vs, True).endswith(" UP\n")


def test_virtual_server_names_for_fwmark_group_and_ipv6() -> None:
    assert format_virtual_server(fwmark=7) == "FWM 7"
    assert format_virtual_server(group="web", port=443) == "[web]:443"
    assert format_virtual_server(address="2001:DB8:0:0::1", port=53, protocol="udp") == "[2001:db8::1]:udp:53"
    assert format_service("::ffff:192.0.2.1", 1, "sctp") == "[::ffff:192.0.2.1]:sctp:1"  # glibc spelling
    assert format_service("192.0.2.1", 0, None) == "[192.0.2.1]:none:0"
    assert format_service("192.0.2.1", 0, 6) == "[192.0.2.1]:tcp:0"
    assert format_service("192.0.2.1", 0, 99) == "[192.0.2.1]:?:0"
    with pytest.raises(ValueError):
        format_virtual_server()


# --- NotifyFifo ------------------------------------------------------------------------------------------


class FifoReader(threading.Thread):
    """Reads lines from a FIFO in a thread until ``count`` lines arrived (or it times out)."""

    def __init__(self, path: Path, count: int) -> None:
        super().__init__(daemon=True)
        self.path, self.count = path, count
        self.lines: list[str] = []
        self.ready = threading.Event()

    def run(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.ready.set()
        buf = b""
        deadline = time.monotonic() + 5
        try:
            while len(self.lines) < self.count and time.monotonic() < deadline:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    time.sleep(0.005)
                    continue
                if not chunk:
                    time.sleep(0.005)
                    continue
                buf += chunk
                *done, buf = buf.split(b"\n")
                self.lines.extend(line.decode() + "\n" for line in done)
        finally:
            os.close(fd)


@pytest.mark.timeout(10)
def test_fifo_lines_reach_a_real_reader(tmp_path: Path) -> None:
    path = tmp_path / "notify.fifo"
    lines = [fifo_line_instance(f"VI_{i}", "MASTER", i) for i in range(200)]
    with NotifyFifo(path) as fifo:
        assert fifo.is_open and fifo.created
        assert stat.S_ISFIFO(path.lstat().st_mode)
        reader = FifoReader(path, len(lines))
        reader.start()
        reader.ready.wait(2)
        for line in lines:
            assert fifo.write_line(line)
        reader.join(5)
    assert reader.lines == lines
    assert fifo.lines_written == 200 and fifo.lines_dropped == 0
    assert not path.exists()  # we created it, so close() removed it


@pytest.mark.timeout(10)
def test_fifo_created_with_keepalived_mode(tmp_path: Path) -> None:
    path = tmp_path / "f"
    old = os.umask(0o022)
    try:
        with NotifyFifo(path):
            assert stat.S_IMODE(path.lstat().st_mode) == 0o644
    finally:
        os.umask(old)


@pytest.mark.timeout(10)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_fifo_chowned_to_configured_user(tmp_path: Path) -> None:
    path = tmp_path / "f"
    with NotifyFifo(path, uid=65534, gid=65534):
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (65534, 65534)


@pytest.mark.timeout(10)
def test_lines_written_before_a_reader_attaches_are_buffered(tmp_path: Path) -> None:
    # keepalived opens the FIFO read-write, so a later reader still gets what the pipe buffer holds.
    path = tmp_path / "f"
    with NotifyFifo(path) as fifo:
        assert fifo.write_line(fifo_line_group("G1", "BACKUP"))
        reader = FifoReader(path, 1)
        reader.start()
        reader.join(5)
    assert reader.lines == ['GROUP "G1" BACKUP 0\n']


@pytest.mark.timeout(10)
def test_no_reader_never_blocks_nor_raises(tmp_path: Path) -> None:
    path = tmp_path / "f"
    with NotifyFifo(path) as fifo:
        start = time.monotonic()
        results = [fifo.write_line(fifo_line_instance("VI_1", "BACKUP", 100)) for _ in range(20000)]
        assert time.monotonic() - start < 2.0
    assert any(results) and not all(results)  # the pipe buffer filled, then lines were dropped
    assert fifo.lines_dropped == results.count(False) > 0
    assert fifo.lines_written == results.count(True)


def test_writing_to_an_unopened_or_closed_fifo_is_a_counted_drop(tmp_path: Path) -> None:
    fifo = NotifyFifo(tmp_path / "never")
    assert not fifo.write_line("x") and fifo.lines_dropped == 1
    fifo.open()
    fifo.close()
    fifo.close()  # idempotent
    assert not fifo.write_line("y") and fifo.lines_dropped == 2


def test_symlink_fifo_path_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.fifo"
    os.mkfifo(real)
    link = tmp_path / "link.fifo"
    link.symlink_to(real)
    fifo = NotifyFifo(link)
    assert not fifo.open() and not fifo.is_open
    assert fifo.error is not None and "symbolic link" in fifo.error
    assert link.is_symlink()  # left as it was


def test_dangling_symlink_fifo_path_is_refused_and_nothing_created(tmp_path: Path) -> None:
    target = tmp_path / "target"
    link = tmp_path / "link"
    link.symlink_to(target)
    fifo = NotifyFifo(link)
    assert not fifo.open()
    assert not target.exists() and link.is_symlink()


def test_existing_regular_file_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("keep me")
    fifo = NotifyFifo(path)
    assert not fifo.open() and fifo.error is not None and "not a FIFO" in fifo.error
    assert path.read_text() == "keep me"


def test_existing_fifo_is_used_and_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "f"
    os.mkfifo(path, 0o600)
    with NotifyFifo(path) as fifo:
        assert fifo.is_open and not fifo.created
    assert stat.S_ISFIFO(path.lstat().st_mode)


def test_unwritable_location_is_an_error_not_an_exception(tmp_path: Path) -> None:
    fifo = NotifyFifo(tmp_path / "missing-dir" / "f")
    assert not fifo.open() and fifo.error is not None


# --- NotifyQueue ------------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_scripts_run_in_submission_order(tmp_path: Path) -> None:
    log = tmp_path / "log"

    async def scenario() -> NotifyQueue:
        queue = NotifyQueue()
        for i in range(60):
            queue.submit(append(log, str(i)), timeout=5)
        await queue.drain()
        return queue

    queue = run(scenario())
    assert log.read_text().split() == [str(i) for i in range(60)]
    assert queue.stats.run == 60 and queue.stats.failed == 0 and queue.stats.dropped == 0


@pytest.mark.timeout(20)
def test_scripts_run_one_at_a_time(tmp_path: Path) -> None:
    log = tmp_path / "log"
    body = 'echo "start $1" >> "$2"; sleep 0.05; echo "end $1" >> "$2"'

    async def scenario() -> None:
        queue = NotifyQueue()
        for i in range(10):
            queue.submit(["/bin/sh", "-c", body, "sh", str(i), str(log)], timeout=5)
        await queue.drain()

    run(scenario())
    expected = [line for i in range(10) for line in (f"start {i}", f"end {i}")]
    assert log.read_text().splitlines() == expected


@pytest.mark.timeout(10)
def test_submit_returns_immediately() -> None:
    async def scenario() -> float:
        queue = NotifyQueue()
        start = time.monotonic()
        for _ in range(5):
            queue.submit(["sleep", "0.5"], timeout=5)
        took = time.monotonic() - start
        await queue.close(discard_pending=True)
        return took

    assert run(scenario()) < 0.1


@pytest.mark.timeout(10)
def test_hanging_script_delays_the_next_only_until_its_timeout(tmp_path: Path) -> None:
    log = tmp_path / "log"

    async def scenario() -> tuple[NotifyQueue, float]:
        queue = NotifyQueue(kill_grace=0.3)
        start = time.monotonic()
        queue.submit(["sleep", "1000"], timeout=0.4)
        queue.submit(append(log, "after"), timeout=5)
        await queue.drain()
        return queue, time.monotonic() - start

    queue, took = run(scenario())
    assert log.read_text() == "after\n"
    assert took < 2.0
    stats = queue.stats
    assert stats.run == 2 and stats.timed_out == 1 and stats.failed == 1


@pytest.mark.timeout(10)
def test_results_reach_the_hook_and_failures_are_counted() -> None:
    seen: list[ScriptResult] = []

    async def scenario() -> NotifyQueue:
        queue = NotifyQueue(on_result=seen.append)
        queue.submit(["true"], timeout=5)
        queue.submit(["sh", "-c", "exit 3"], timeout=5)
        queue.submit(["/nonexistent/kpd"], timeout=5)
        await queue.drain()
        return queue

    queue = run(scenario())
    assert [r.argv[0] for r in seen] == ["true", "sh", "/nonexistent/kpd"]
    assert [r.ok for r in seen] == [True, False, False]
    assert seen[1].returncode == 3 and seen[2].error == "not found"
    assert queue.stats.run == 3 and queue.stats.failed == 2


@pytest.mark.timeout(10)
def test_a_failing_hook_does_not_stop_the_queue(tmp_path: Path) -> None:
    log = tmp_path / "log"

    def hook(result: ScriptResult) -> None:
        raise RuntimeError("hook bug")

    async def scenario() -> None:
        queue = NotifyQueue(on_result=hook)
        queue.submit(append(log, "1"), timeout=5)
        queue.submit(append(log, "2"), timeout=5)
        await queue.drain()

    run(scenario())
    assert log.read_text().split() == ["1", "2"]


@pytest.mark.timeout(10)
def test_overflow_drops_the_oldest_pending(tmp_path: Path) -> None:
    log = tmp_path / "log"

    async def scenario() -> NotifyQueue:
        queue = NotifyQueue(max_pending=3)
        for i in range(10):  # no await in between: nothing has started yet
            queue.submit(append(log, str(i)), timeout=5)
        assert queue.pending == 3
        await queue.drain()
        return queue

    queue = run(scenario())
    assert log.read_text().split() == ["7", "8", "9"]
    assert queue.stats.dropped == 7 and queue.stats.run == 3 and queue.stats.submitted == 10


@pytest.mark.timeout(10)
def test_overflow_never_drops_the_running_script(tmp_path: Path) -> None:
    log = tmp_path / "log"

    async def scenario() -> NotifyQueue:
        queue = NotifyQueue(max_pending=2)
        queue.submit(["/bin/sh", "-c", 'sleep 0.3; echo first >> "$1"', "sh", str(log)], timeout=5)
        await wait_for_async(lambda: queue.pending == 0)  # it is running now (taken off the queue)
        for i in range(5):
            queue.submit(append(log, str(i)), timeout=5)
        await queue.drain()
        return queue

    queue = run(scenario())
    assert log.read_text().split() == ["first", "3", "4"]
    assert queue.stats.dropped == 3


@pytest.mark.timeout(10)
def test_close_runs_what_is_queued_then_refuses_more(tmp_path: Path) -> None:
    log = tmp_path / "log"

    async def scenario() -> NotifyQueue:
        queue = NotifyQueue()
        queue.submit(append(log, "a"), timeout=5)
        queue.submit(append(log, "b"), timeout=5)
        await queue.close()
        queue.submit(append(log, "late"), timeout=5)
        await queue.drain()
        return queue

    queue = run(scenario())
    assert log.read_text().split() == ["a", "b"]
    assert queue.stats.dropped == 1


@pytest.mark.timeout(10)
def test_close_discarding_kills_the_running_script(tmp_path: Path) -> None:
    log = tmp_path / "log"

    sleepers: list[int] = []

    async def scenario() -> tuple[NotifyQueue, float]:
        queue = NotifyQueue()
        queue.submit(["sleep", "1000"], timeout=600)
        queue.submit(append(log, "never"), timeout=5)
        sleepers.extend(await wait_for_async(lambda: _live_children_named("sleep")))
        start = time.monotonic()
        await queue.close(discard_pending=True)
        return queue, time.monotonic() - start

    queue, took = run(scenario())
    assert took < 1.0 and not log.exists()
    assert queue.stats.dropped == 1
    assert len(sleepers) == 1
    deadline = time.monotonic() + 2
    while sleepers[0] in _live_children_named("sleep") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sleepers[0] not in _live_children_named("sleep")


def _live_children_named(name: str) -> list[int]:
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == name and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


@pytest.mark.timeout(10)
def test_submit_before_the_loop_runs_starts_on_drain(tmp_path: Path) -> None:
    log = tmp_path / "log"
    queue = NotifyQueue()
    queue.submit(append(log, "early"), timeout=5)  # no running loop yet
    run(queue.drain())
    assert log.read_text() == "early\n"


@pytest.mark.timeout(10)
def test_queue_passes_user_to_the_runner() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch user")
    seen: list[ScriptResult] = []

    async def scenario() -> None:
        queue = NotifyQueue(on_result=seen.append)
        queue.submit(["id", "-u"], timeout=5, user="nobody")
        await queue.drain()

    run(scenario())
    assert seen[0].output == b"65534\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
@pytest.mark.parametrize(
    ("user", "group", "owner"),
    [("nobody", "nogroup", ("nobody", "nogroup")), ("nobody", None, ("nobody", None))],
)
def test_configured_fifo_is_owned_by_the_user_and_group_it_names(
    tmp_path: Path, user: str, group: str | None, owner: tuple[str, str | None]
) -> None:
    """``notify_fifo PATH USER [GROUP]``: keepalived creates the FIFO owned by them (kpd used to ignore
    both); without GROUP, the user's primary group."""
    import grp
    import pwd

    from keepalived_py.config.model import NotifyFifo as Configured
    from keepalived_py.notify import open_fifos

    path = tmp_path / "f"
    fifos = open_fifos([Configured(str(path), user, group), Configured(str(path), "root"), None])
    try:
        assert len(fifos) == 1  # one FIFO per path; the first line naming it decides
        st = path.lstat()
        want_gid = grp.getgrnam(owner[1]).gr_gid if owner[1] else pwd.getpwnam(user).pw_gid
        assert (st.st_uid, st.st_gid) == (pwd.getpwnam(owner[0]).pw_uid, want_gid)
    finally:
        for fifo in fifos:
            fifo.close()
