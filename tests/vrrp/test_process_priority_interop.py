"""The VRRP child's scheduling beside keepalived 2.2.7: ``vrrp_rt_priority`` (SCHED_RR), ``vrrp_cpu_affinity``
and ``max_auto_priority`` (a child stopped longer than ``min_auto_priority_delay`` raises itself to realtime
when it runs again), read from the kernel (``sched_getscheduler``, ``sched_getparam``, ``sched_getaffinity``)
for the same configuration. kpd used to report these keywords as not implemented.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, open_lab, vrrp_children, wait_until

from lab import Lab

pytestmark = pytest.mark.netns


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        yield the_lab


def vrrp_child(daemon: Daemon) -> int | None:
    """The pid of the daemon's VRRP child (None before it runs)."""
    found = vrrp_children(daemon)
    return found[0] if found else None


def scheduling(pid: int) -> tuple[int, int]:
    """(policy without SCHED_RESET_ON_FORK, realtime priority)."""
    return os.sched_getscheduler(pid) & ~0x40000000, os.sched_getparam(pid).sched_priority


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_the_vrrp_child_runs_realtime_on_the_cpus_given(lab: Lab, kind: str) -> None:
    cpus = sorted(os.sched_getaffinity(0))[:1]
    extra = ("vrrp_rt_priority 7", f"vrrp_cpu_affinity {cpus[0]}", "vrrp_rlimit_rttime 2000000")
    conf = Vrrp(priority=100, advert_int=0.5, global_extra=extra)
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    pid = wait_until(lambda: vrrp_child(a), 15, what="the VRRP child")
    wait_until(lambda: scheduling(pid) == (os.SCHED_RR, 7), 10, what=f"SCHED_RR 7: {scheduling(pid)}")
    assert os.sched_getaffinity(pid) == set(cpus)
    assert a.stop() == 0


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_a_child_that_ran_late_raises_itself_to_realtime(lab: Lab, kind: str) -> None:
    # kpd's watchdog kills a stopped child at its hung timeout: long enough here for a 1.5 s stop
    watchdog = ("kpd_child_hung_timeout 5",) if kind == KPD else ()
    conf = Vrrp(priority=100, advert_int=0.5,
                global_extra=("max_auto_priority 5", "min_auto_priority_delay 200000", *watchdog))
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    a.wait_started()
    pid = wait_until(lambda: vrrp_child(a), 15, what="the VRRP child")
    time.sleep(1)
    assert scheduling(pid) == (os.SCHED_OTHER, 0)
    os.kill(pid, signal.SIGSTOP)
    time.sleep(1.5)  # later than any of its timers by more than the 0.2 s
    os.kill(pid, signal.SIGCONT)
    wait_until(lambda: scheduling(pid) == (os.SCHED_RR, 1), 10, what=f"SCHED_RR 1: {scheduling(pid)}")
    assert a.stop() == 0
