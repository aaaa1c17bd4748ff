"""How a child process is scheduled: keepalived's ``{vrrp,checker}_priority`` (nice), ``_rt_priority``
(SCHED_RR), ``_cpu_affinity``, ``_no_swap`` (mlockall), ``_rlimit_rttime`` and ``max_auto_priority`` /
``min_auto_priority_delay`` (``lib/process.c``).

* A realtime priority switches the process to ``SCHED_RR`` (reset on fork, so scripts never inherit it);
  otherwise a nice value applies.
* ``max_auto_priority``: a process that finds itself running more than ``min_auto_priority_delay`` late (a
  timer woke that much after its time; kpd measures its event loop's lag) raises itself to realtime, the
  lowest SCHED_RR priority first and one more at each further delay, up to ``max_auto_priority`` (alone:
  the highest). 0 (the default) never does, -1 only silences keepalived's start-up notice.
* ``RLIMIT_RTTIME`` (the CPU a realtime process may use without blocking; its soft half warns with SIGXCPU,
  which is logged): keepalived applies its default 10 ms to every realtime switch. A Python process can
  exceed that on an ordinary reload, and the kernel would then kill it, so kpd sets the limit only when
  ``*_rlimit_rttime`` is configured.

:class:`AutoPriority` decides (pure, the setter injected); :func:`apply` is the thin I/O at start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass

from keepalived_py.config.model import GlobalDefs

log = logging.getLogger("kpd.child")

#: ``SCHED_RESET_ON_FORK``: children (scripts) start with the default policy again
SCHED_RESET_ON_FORK = 0x40000000
#: ``mlockall`` flags: current and future pages, locked as they are touched
MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4


@dataclass(frozen=True)
class Scheduling:
    """One child's scheduling settings (seconds for the delay, microseconds for the rlimit)."""

    nice: int = 0
    rt_priority: int = 0
    cpu_affinity: tuple[int, ...] = ()
    no_swap: bool = False
    rlimit_rttime: int | None = None
    max_auto_priority: int = 0
    min_auto_priority_delay: float = 1.0

    @classmethod
    def of(cls, gd: GlobalDefs, kind: str) -> Scheduling:
        """The settings of the ``kind`` ("vrrp" or "checker") child."""
        auto = (gd.max_auto_priority, gd.min_auto_priority_delay)
        if kind == "vrrp":
            own = (gd.vrrp_priority, gd.vrrp_rt_priority, gd.vrrp_cpu_affinity, gd.vrrp_no_swap,
                   gd.vrrp_rlimit_rttime)
        else:
            own = (gd.checker_priority, gd.checker_rt_priority, gd.checker_cpu_affinity, gd.checker_no_swap,
                   gd.checker_rlimit_rttime)
        return cls(*own, *auto)


def set_realtime(priority: int, rlimit_rttime: int | None) -> None:
    """SCHED_RR at ``priority`` (reset on fork), with ``RLIMIT_RTTIME`` if configured; OSError if refused."""
    os.sched_setscheduler(0, os.SCHED_RR | SCHED_RESET_ON_FORK, os.sched_param(priority))
    if rlimit_rttime:
        signal.signal(signal.SIGXCPU, _on_sigxcpu)
        resource.setrlimit(resource.RLIMIT_RTTIME, (rlimit_rttime // 2, rlimit_rttime))


def _on_sigxcpu(_signum: int, _frame: object) -> None:
    log.warning("realtime CPU time limit (rlimit_rttime) approached without blocking")


def apply(settings: Scheduling) -> None:
    """Apply the start-up settings to this process; what the kernel refuses is logged, never fatal."""
    if settings.cpu_affinity:
        try:
            os.sched_setaffinity(0, settings.cpu_affinity)
        except OSError as err:
            log.warning("unable to set cpu affinity to %s: %s", list(settings.cpu_affinity), err)
    if settings.rt_priority:
        try:
            set_realtime(settings.rt_priority, settings.rlimit_rttime)
        except OSError as err:
            log.warning("cannot set realtime priority %d: %s", settings.rt_priority, err)
    elif settings.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, settings.nice)
        except OSError as err:
            log.warning("Unable to set process priority to %d - %s", settings.nice, err)
    if settings.no_swap:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0:
            log.warning("Unable to lock process in memory - %s", os.strerror(ctypes.get_errno()))


class AutoPriority:
    """keepalived's ``increment_process_priority``: each time the process ran later than the minimum delay,
    one realtime priority more (the first time: the lowest), up to the maximum."""

    def __init__(
        self,
        settings: Scheduling,
        setter: Callable[[int, int | None], None] = set_realtime,
        lowest: int = 1,
        highest: int = 99,
    ) -> None:
        self.settings = settings
        self._set = setter
        self.lowest = lowest
        self.ceiling = min(highest, settings.max_auto_priority) if settings.max_auto_priority > 0 else 0
        #: the realtime priority now (0: not realtime)
        self.current = settings.rt_priority

    @property
    def enabled(self) -> bool:
        return self.ceiling > 0

    def late(self, lag: float) -> int | None:
        """The process ran ``lag`` seconds late; the priority it was raised to, if it was."""
        if not self.enabled or lag <= self.settings.min_auto_priority_delay:
            return None
        if self.current >= self.ceiling:
            return None
        wanted = self.current + 1 if self.current else self.lowest
        try:
            self._set(wanted, self.settings.rlimit_rttime)
        except OSError as err:
            log.warning("cannot raise realtime priority to %d: %s", wanted, err)
            self.ceiling = 0  # refused once, refused always: stop trying
            return None
        self.current = wanted
        log.info("Set realtime priority %d (ran %.3fs late)", wanted, lag)
        return wanted
