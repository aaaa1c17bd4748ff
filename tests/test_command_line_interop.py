"""keepalived's command line on ``kpd start``, beside keepalived 2.2.7: ``-P`` runs only the VRRP child
(a configuration with virtual servers too starts no Checkers child), ``-p``/``-r`` write the parent's and
the VRRP child's pid files (removed at stop); and kpd's ``-g``/``-G`` (Debian's keepalived is built without
log files): each process logs to its own file, ``FILE`` and ``FILE_vrrp``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

pytestmark = pytest.mark.netns

CONFIG = """\
global_defs {
    router_id cmdline
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 71
    priority 100
    advert_int 0.5
    virtual_ipaddress {
        192.0.2.171/24
    }
}
virtual_server 192.0.2.171 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.1 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    import shutil

    if os.geteuid() != 0 or shutil.which("keepalived") is None:
        pytest.skip("needs root and keepalived")
    with Lab(("a",)) as the_lab:
        yield the_lab


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait(pred, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.mark.parametrize("kind", ["kpd", "keepalived"])
def test_vrrp_only_with_pid_files(lab: Lab, kind: str) -> None:
    work = lab.workdir / kind
    work.mkdir(mode=0o700)
    conf = work / "keepalived.conf"
    conf.write_text(CONFIG)
    pid, vrrp_pid = work / "main.pid", work / "vrrp.pid"
    if kind == "kpd":
        cmd = [sys.executable, "-m", "keepalived_py", "start", "--config", str(conf)]
        cmd += ["--runtime-dir", str(work), "-l", "-P", "-p", str(pid), "-r", str(vrrp_pid)]
    else:
        cmd = ["keepalived", "-n", "-l", "-P", "-f", str(conf), "-p", str(pid), "-r", str(vrrp_pid)]
    proc = lab.popen("a", *cmd)
    try:
        _wait(lambda: pid.exists() and vrrp_pid.exists(), 15, "both pid files")
        main = int(pid.read_text().split()[0])
        child = int(vrrp_pid.read_text().split()[0])
        assert _ppid(child) == main
        time.sleep(1.0)
        assert _children(main) == [child], "only the VRRP child runs (-P), no Checkers child"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(15)
    _wait(lambda: not pid.exists() and not vrrp_pid.exists(), 5, "pid files removed at stop")


def test_log_files_per_process(lab: Lab) -> None:
    work = lab.workdir / "logs"
    work.mkdir(mode=0o700)
    conf = work / "keepalived.conf"
    conf.write_text(CONFIG)
    log = work / "kpd.log"
    cmd = [sys.executable, "-m", "keepalived_py", "start", "--config", str(conf), "--runtime-dir", str(work)]
    cmd += ["-P", "-G", "-g", str(log)]
    proc = lab.popen("a", *cmd)
    try:
        vrrp_log = work / "kpd_vrrp.log"
        _wait(lambda: vrrp_log.exists() and "Entering" in vrrp_log.read_text(), 15, "the VRRP child logs")
        assert "started vrrp child" in log.read_text()
        assert not (work / "kpd_check.log").exists()  # -P: no Checkers child
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(15)


@pytest.mark.parametrize("kind", ["kpd", "keepalived"])
def test_process_names(lab: Lab, kind: str) -> None:
    """``process_names`` and ``process_name``: ps and pgrep see keepalived's names for the children and the
    one given for the parent."""
    work = lab.workdir / kind
    work.mkdir(mode=0o700)
    conf = work / "keepalived.conf"
    conf.write_text(CONFIG.replace("    router_id cmdline\n", "    router_id cmdline\n    process_names\n"
                                   "    process_name kpd-test-main\n"))
    pid = work / "main.pid"
    if kind == "kpd":
        cmd = [sys.executable, "-m", "keepalived_py", "start", "--config", str(conf)]
        cmd += ["--runtime-dir", str(work), "-l", "-P", "-p", str(pid)]
    else:
        cmd = ["keepalived", "-n", "-l", "-P", "-f", str(conf), "-p", str(pid), "-r", str(work / "v.pid")]
    proc = lab.popen("a", *cmd)
    try:
        main = int(_wait(lambda: pid.exists() and pid.read_text().strip(), 15, "pid file"))
        _wait(lambda: _children(main), 10, "the VRRP child")
        (child,) = _children(main)
        _wait(lambda: Path(f"/proc/{child}/comm").read_text().strip() == "keepalived_vrrp", 10, "child name")
        assert Path(f"/proc/{main}/comm").read_text().strip() == "kpd-test-main"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(15)
