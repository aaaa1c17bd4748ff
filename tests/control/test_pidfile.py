"""The pid file: a stale one is replaced, a live kpd refused, planted symlinks and FIFOs refused promptly."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from keepalived_py.control.pidfile import PID_FILE, PidFileError, claim_pid_file
from lab import wait_for


def claim_promptly(run: Path, timeout: float = 20.0) -> Path:
    """claim_pid_file in a thread: a regression that blocks fails instead of hanging the suite."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = claim_pid_file(run)
        except BaseException as err:  # handed to the test
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        fd = os.open(run / PID_FILE, os.O_RDWR | os.O_NONBLOCK)  # release the blocked open
        os.close(fd)
        pytest.fail(f"claim_pid_file blocked for {timeout} s")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def live_kpd() -> Iterator[int]:
    """A process whose name (/proc/PID/comm) is ``kpd``, as the daemon's is."""
    code = (
        "import sys; from keepalived_py.procname import set_name; set_name('kpd'); "
        "print('ready', flush=True); sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        wait_for(lambda: Path(f"/proc/{proc.pid}/comm").read_text().strip() == "kpd", timeout=20)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_fresh_pid_file_holds_our_pid(run):
    path = claim_pid_file(run)
    assert path == run / PID_FILE
    assert path.read_text() == f"{os.getpid()}\n"
    assert os.stat(path).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", ["999999999\n", "", "garbage\n", f"{os.getpid()}\n", "x" * 10_000])
def test_a_stale_pid_file_is_replaced(run, content):
    (run / PID_FILE).write_text(content)
    claim_pid_file(run)
    assert (run / PID_FILE).read_text() == f"{os.getpid()}\n"


def test_a_stale_pid_file_naming_a_live_process_that_is_not_kpd_is_replaced(run):
    (run / PID_FILE).write_text(f"{os.getppid()}\n")
    claim_pid_file(run)
    assert (run / PID_FILE).read_text() == f"{os.getpid()}\n"


def test_a_live_kpd_is_refused(run, live_kpd):
    (run / PID_FILE).write_text(f"{live_kpd}\n")
    with pytest.raises(PidFileError, match=f"already running with pid {live_kpd}"):
        claim_pid_file(run)
    assert (run / PID_FILE).read_text() == f"{live_kpd}\n"


def test_a_symlink_is_refused_and_not_followed(run, tmp_path):
    (run / PID_FILE).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PidFileError, match="symlink"):
        claim_pid_file(run)
    assert not (tmp_path / "elsewhere").exists()
    assert (run / PID_FILE).is_symlink()


def test_a_planted_fifo_is_refused_promptly(run):
    os.mkfifo(run / PID_FILE, 0o600)
    with pytest.raises(PidFileError, match="FIFO"):
        claim_promptly(run)


def test_a_planted_directory_is_refused(run):
    (run / PID_FILE).mkdir()
    with pytest.raises(PidFileError, match="directory"):
        claim_pid_file(run)
