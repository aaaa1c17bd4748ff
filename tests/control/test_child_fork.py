"""The children are forks of the parent running their entry point (control/child_fork.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keepalived_py.control.child_fork import fork_entry_point

ENTRY = """
import json, os, signal, sys

def fds():
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    return out

if __name__ == "__main__":
    report, code = sys.argv[1], sys.argv[2]
    with open(report, "w") as f:
        json.dump({"argv": sys.argv, "name": __name__, "fds": fds(),
                   "usr1": str(signal.getsignal(signal.SIGUSR1)),
                   "usr2": str(signal.getsignal(signal.SIGUSR2)),
                   "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, ()))}, f)
    if code == "sleep":
        signal.pause()
    sys.exit(int(code) if code.isdigit() else code)
"""


@pytest.fixture
def entry(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "kpd_fork_entry.py").write_text(textwrap.dedent(ENTRY))
    sys.path.insert(0, str(tmp_path))
    try:
        yield "kpd_fork_entry"
    finally:
        sys.path.remove(str(tmp_path))


def test_the_fork_runs_the_entry_module_as_main_with_its_arguments_and_exits_with_its_code(entry, tmp_path):
    report = tmp_path / "report.json"
    child = fork_entry_point(entry, [str(report), "7"])
    assert child.wait(timeout=30) == 7
    seen = json.loads(report.read_text())
    assert seen["name"] == "__main__"
    assert seen["argv"][1:] == [str(report), "7"]


def test_an_exit_with_a_message_exits_1(entry, tmp_path):
    child = fork_entry_point(entry, [str(tmp_path / "r.json"), "stopped: bad things"])
    assert child.wait(timeout=30) == 1


def test_the_parent_s_descriptors_are_dev_null_in_the_fork_except_those_kept(entry, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listening = str(listener.fileno())
    kept_r, kept_w = os.pipe()
    report = tmp_path / "report.json"
    try:
        child = fork_entry_point(entry, [str(report), "0"], keep_fds=(kept_r,))
        assert child.wait(timeout=30) == 0
    finally:
        listener.close()
        os.close(kept_w)
    fds = json.loads(report.read_text())["fds"]
    assert fds[str(kept_r)].startswith("pipe:")
    os.close(kept_r)
    assert fds[listening] == "/dev/null"
    sockets = [fd for fd, target in fds.items() if target.startswith("socket:")]
    assert sockets == [], f"the fork inherited sockets: {sockets}"
    for fd in ("0", "1", "2"):
        assert fd in fds


def test_a_port_the_parent_listened_on_can_be_bound_again_while_the_fork_lives(entry, tmp_path):
    """A reload moving the metrics endpoint, or a new parent after a crash, binds the port again: a child
    holding the parent's listening socket would keep it busy."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.listen()
    report = tmp_path / "report.json"
    child = fork_entry_point(entry, [str(report), "sleep"])
    try:
        _wait_for_file(report)
        listener.close()
        again = socket.socket()
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen()
        again.close()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL


def test_the_fork_has_default_handlers_where_the_parent_had_its_own_and_ignores_the_same(entry, tmp_path):
    report = tmp_path / "report.json"
    old1 = signal.signal(signal.SIGUSR1, lambda *_: None)
    old2 = signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        child = fork_entry_point(entry, [str(report), "0"])
        assert child.wait(timeout=30) == 0
    finally:
        signal.signal(signal.SIGUSR1, old1)
        signal.signal(signal.SIGUSR2, old2)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    seen = json.loads(report.read_text())
    assert seen["usr1"] == str(signal.SIG_DFL)
    assert seen["usr2"] == str(signal.SIG_IGN)
    assert seen["blocked"] == []


def test_waiting_for_a_fork_that_runs_on_times_out(entry, tmp_path):
    report = tmp_path / "report.json"
    child = fork_entry_point(entry, [str(report), "sleep"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.2)
        assert child.returncode is None
    finally:
        os.kill(child.pid, signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM


def test_a_fork_reaped_elsewhere_has_an_unknown_exit_code_never_a_success(entry, tmp_path):
    """The parent's waitpid(-1) loop records what it reaps; a fork reaped by anyone else left no code to
    report, and wait says so (None) instead of 0, which would read as a clean exit."""
    child = fork_entry_point(entry, [str(tmp_path / "report.json"), "3"])
    _, status = os.waitpid(child.pid, 0)  # reaped behind the handle's back
    assert os.waitstatus_to_exitcode(status) == 3
    assert child.wait(timeout=30) is None and child.returncode is None


def test_the_parent_image_holds_neither_the_children_s_layers_nor_openssl():
    """What the parent imports is in every child's image; what only a child uses is not in the parent's."""
    code = ("import sys, keepalived_py.cli, keepalived_py.control.arbiter\n"
            "top = ('asyncio', 'hashlib', '_hashlib', 'ssl')\n"
            "layers = ('keepalived_py.vrrp', 'keepalived_py.check', 'keepalived_py.ipvs', 'pyroute2')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in top or m.startswith(layers)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # the state machine's pure timing (Master_Down_Interval for the takeover watchdog) is the exception
    assert out.stdout.strip() == "['keepalived_py.vrrp', 'keepalived_py.vrrp.fsm']"


def _wait_for_file(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.02)


@pytest.mark.netns
def test_a_running_vrrp_child_shares_the_parent_s_pages_and_none_of_its_listening_sockets(lab):
    from kpd_nodes import CONFIG, Node

    from lab import wait_for

    conf = CONFIG.replace("kpd_child_hung_timeout 1.5", "kpd_child_hung_timeout 1.5\n    "
                          "kpd_metrics_listen 127.0.0.1:9661")
    node = Node(lab, "a", 150, conf).start()
    wait_for(lambda: node.state() == "MASTER" or None, timeout=15)
    (child,) = node.children()
    shared = {}
    for line in Path(f"/proc/{child}/smaps_rollup").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Shared_Dirty", "Anonymous"):
            shared[key] = int(value.split()[0])
    # an interpreter of its own would share no written page with the parent
    assert shared["Shared_Dirty"] > 1024, shared
    listeners = wait_for(lambda: lab.run("a", "ss", "-Hltnp").stdout or None, timeout=15)
    assert ":9661" in listeners
    assert "kpd-vrrp" not in listeners, listeners
    assert Path(f"/proc/{child}/cmdline").read_bytes() == Path(f"/proc/{node.proc.pid}/cmdline").read_bytes()


SLOW_MODULE = """
import time
time.sleep(1.0)  # a module that takes its time to import (prometheus_client in the emulated VM: seconds)
"""

IMPORTS_IT = """
import sys
if __name__ == "__main__":
    import kpd_slow_import
    sys.exit(0)
"""


def test_a_fork_made_while_a_thread_imports_waits_for_it_rather_than_leave_the_child_deadlocked(tmp_path):
    """The importing thread holds its module's lock and does not exist in the fork: a child importing the
    same module would wait for it forever."""
    import threading

    from keepalived_py.control.child_fork import import_in_thread

    (tmp_path / "kpd_slow_import.py").write_text(SLOW_MODULE)
    (tmp_path / "kpd_imports_it.py").write_text(IMPORTS_IT)
    sys.path.insert(0, str(tmp_path))
    try:
        thread = threading.Thread(target=import_in_thread, args=("kpd_slow_import",))
        thread.start()
        time.sleep(0.3)  # the thread is inside the slow import now
        child = fork_entry_point("kpd_imports_it", [])
        try:
            assert child.wait(timeout=30) == 0
        finally:
            if child.returncode is None:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(timeout=30)
        thread.join()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("kpd_slow_import", None)
