"""``vrrp_notify_fifo`` with its ``vrrp_notify_fifo_script`` beside keepalived 2.2.7: the daemon starts the
script with the FIFO's path as its last argument; the script reads every state line; nothing is left running
after a stop (kpd used to report the script keyword as partly implemented and never start it).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, open_lab, vrrp_children, wait_until

from lab import Lab

pytestmark = pytest.mark.netns


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        yield the_lab


def readers(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return out.split()


def fifo_conf(lab: Lab, body: str, args: str = "") -> tuple[Path, Path, Vrrp]:
    """A vrrp_notify_fifo with a reader script (``$last``: the FIFO, its last argument); (fifo, reader,
    configuration)."""
    scripts = lab.workdir / "scripts"
    scripts.mkdir(mode=0o755)
    fifo = lab.workdir / "vrrp.fifo"
    reader = scripts / f"fifo-reader-{lab.workdir.name}"
    reader.write_text(f"#!/bin/sh\nfor last; do :; done\n{body}")
    os.chmod(reader, 0o755)
    script = f"{reader} {args}".strip()
    extra = ("enable_script_security", "script_user root", f"vrrp_notify_fifo {fifo}",
             f'vrrp_notify_fifo_script "{script}"')
    return fifo, reader, Vrrp(priority=100, advert_int=0.5, global_extra=extra)


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_fifo_script_reads_the_state_lines_and_stops_with_the_daemon(lab: Lab, kind: str) -> None:
    log = lab.workdir / "fifo.log"
    body = f'echo "started with $# arguments, last $last" >> {log}\nexec cat "$last" >> {log}\n'
    fifo, _, conf = fifo_conf(lab, body, "--from-config")
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    wait_until(lambda: a.holds_vip(), 15, what="a becomes MASTER")
    wait_until(lambda: 'INSTANCE "VI_1" MASTER 100' in log.read_text(), 5, what="the script read MASTER")
    text = log.read_text()
    assert f"started with 2 arguments, last {fifo}" in text
    assert 'INSTANCE "VI_1" BACKUP 100' in text
    assert readers(str(fifo)), "the reader (exec cat FIFO) runs while the daemon does"
    assert a.stop() == 0
    wait_until(lambda: not readers(str(fifo)), 10, what="the reader is gone after stop")
    assert not fifo.exists()  # created by the daemon, removed at stop


def test_a_killed_child_leaves_no_second_reader(lab: Lab) -> None:
    """kpd restarts a killed VRRP child; the reader the dead child started (a shell looping on the FIFO, as
    keepalived's examples do, which EOF does not end, and here ignoring SIGTERM) is killed, so the new child's
    reader is the only one."""
    # loops reopening the FIFO, and ignores SIGTERM: only SIGKILL ends it
    body = "trap '' TERM\nwhile true; do cat \"$last\" > /dev/null; sleep 0.1; done\n"
    fifo, reader, conf = fifo_conf(lab, body)
    a = Daemon(lab, "a", conf, kind=KPD)
    a.start()
    wait_until(lambda: len(readers(str(reader))) == 1, 15, what="one reader")
    (first,) = readers(str(reader))
    (pid,) = vrrp_children(a)
    os.kill(pid, 9)
    wait_until(lambda: first not in readers(str(reader)), 10, what="the dead child's reader is gone")
    wait_until(lambda: len(readers(str(reader))) == 1, 15, what="the new child's reader, alone")
    time.sleep(1)
    assert len(readers(str(reader))) == 1
    assert len(readers(f"^cat {fifo}")) <= 1, "the dead child's reader left its cat behind"
    assert a.stop() == 0
    wait_until(lambda: not readers(str(reader)), 10, what="no reader after stop")
