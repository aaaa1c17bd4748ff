"""``vrrp_track_process`` beside keepalived 2.2.7: the same configuration, the daemon started in the host's
namespace with ``net_namespace`` (keepalived opens its process-event socket there before it moves, and kpd
too: the connector answers only in the initial namespace); the instance is MASTER while its processes run
and goes FAULT when they stop, as the kernel's process events report it. kpd used to report the blocks as not
implemented and track nothing.

Each test runs its own copy of ``sleep`` under a name of its own, so no other process on the machine counts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nodes import KEEPALIVED, KPD, open_lab, wait_until
from test_net_namespace import IFNAME, holds, start, stop

from lab import Lab

pytestmark = pytest.mark.netns

VIP = "192.0.2.200"


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        the_lab.add_segment(["a"], ifname=IFNAME)
        yield the_lab


class Sleepers:
    """Processes named ``name`` (a copy of sleep), started and stopped at will."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.path = workdir / name
        shutil.copy("/bin/sleep", self.path)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([str(self.path), *(args or ("1000",))])
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes] | None = None) -> None:
        for p in [proc] if proc is not None else list(self.procs):
            p.kill()
            p.wait()
            self.procs.remove(p)


@pytest.fixture
def sleepers(lab: Lab) -> Iterator[Sleepers]:
    found = Sleepers(lab.workdir, f"tp{os.getpid() % 100000}")
    yield found
    found.stop()


def config(namespace: str, process: str, *options: str, advert_int: float = 0.5) -> str:
    body = "".join(f"    {line}\n" for line in (f"process {process}", *options))
    return (
        f"net_namespace {namespace}\n"
        "global_defs {\n    router_id tp-test\n    vrrp_version 3\n}\n"
        f"vrrp_track_process TP {{\n{body}}}\n"
        "vrrp_instance VI_1 {\n    state BACKUP\n"
        f"    interface {IFNAME}\n    virtual_router_id 62\n    priority 100\n    advert_int {advert_int}\n"
        "    track_process {\n        TP\n    }\n"
        f"    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n"
    )


def run(lab: Lab, kind: str, text: str) -> subprocess.Popen[bytes]:
    conf = lab.workdir / f"{kind}.conf"
    conf.write_text(text)
    return start(lab, kind, conf)


def log(lab: Lab, kind: str) -> str:
    return (lab.workdir / f"{kind}.log").read_text(errors="replace")


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_the_instance_is_master_while_its_process_runs_and_faults_when_it_dies(
    lab: Lab, sleepers: Sleepers, kind: str
) -> None:
    sleepers.start()
    daemon = run(lab, kind, config(lab.ns("a"), sleepers.path.name))
    try:
        wait_until(lambda: holds(lab, VIP), 15, what="MASTER while the process runs")
        sleepers.stop()
        wait_until(lambda: not holds(lab, VIP), 5, what="FAULT (VIP released) when it dies")
        sleepers.start()
        wait_until(lambda: holds(lab, VIP), 10, what="MASTER again when it is back")
    finally:
        assert stop(daemon) == 0
    text = log(lab, kind)
    assert "Quorum lost for tracked process TP" in text and "Quorum gained for tracked process TP" in text
    if kind == KPD:
        assert "process events unavailable" not in text  # the kernel's events, not polling


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_parameters_and_quorum_decide_which_processes_count(lab: Lab, sleepers: Sleepers, kind: str) -> None:
    """``process PATH 1000`` (full command, exact parameters) with quorum 2: processes with other parameters
    do not count, and one matching process is not enough."""
    text = config(lab.ns("a"), f"{sleepers.path} 1000", "quorum 2")
    other = sleepers.start("2000")
    first = sleepers.start("1000")
    daemon = run(lab, kind, text)
    try:
        time.sleep(3)  # a Master_Down_Interval and more: no quorum, no MASTER
        assert not holds(lab, VIP)
        sleepers.start("1000")
        wait_until(lambda: holds(lab, VIP), 10, what="MASTER with two matching processes")
        sleepers.stop(other)
        time.sleep(1)
        assert holds(lab, VIP)  # the process that never counted changes nothing
        sleepers.stop(first)
        wait_until(lambda: not holds(lab, VIP), 5, what="FAULT with one left")
    finally:
        assert stop(daemon) == 0


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_terminate_delay_bridges_a_process_restart(lab: Lab, sleepers: Sleepers, kind: str) -> None:
    """With ``terminate_delay 3`` a process that is replaced within the delay never costs the mastership;
    one that stays away does, once the delay is over."""
    sleepers.start()
    daemon = run(lab, kind, config(lab.ns("a"), sleepers.path.name, "terminate_delay 3"))
    try:
        wait_until(lambda: holds(lab, VIP), 15, what="MASTER")
        sleepers.stop()
        time.sleep(0.5)
        sleepers.start()
        time.sleep(3.5)  # past the delay: it was cancelled by the new process
        assert holds(lab, VIP)
        sleepers.stop()
        time.sleep(1)
        assert holds(lab, VIP)  # within the delay
        wait_until(lambda: not holds(lab, VIP), 10, what="FAULT once the delay is over")
    finally:
        assert stop(daemon) == 0


def test_kpd_tracks_processes_even_when_started_inside_the_namespace(lab: Lab, sleepers: Sleepers) -> None:
    """Started with ``ip netns exec`` (no net_namespace), keepalived 2.2.7 cannot subscribe to process events
    and keeps the instance in FAULT for ever; kpd subscribes from the initial namespace, or polls."""
    sleepers.start()
    text = config(lab.ns("a"), sleepers.path.name).split("\n", 1)[1]  # without net_namespace
    conf = lab.workdir / "inside.conf"
    conf.write_text(text)
    run_dir = lab.workdir / "run-inside"
    run_dir.mkdir(mode=0o700)
    proc = lab.popen(
        "a", sys.executable, "-m", "keepalived_py", "start",
        "--config", str(conf), "--runtime-dir", str(run_dir), "--log-console", "--log-level", "debug",
    )
    try:
        wait_until(lambda: holds(lab, VIP), 15, what="MASTER while the process runs")
        sleepers.stop()
        wait_until(lambda: not holds(lab, VIP), 5, what="FAULT when it dies")
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
