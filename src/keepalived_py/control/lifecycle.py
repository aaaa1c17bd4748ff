"""The life of one supervised child, as a pure state machine: the parent's decisions without its I/O.

A child is in one :class:`Phase` at a time::

    STARTING --first loop beat--> RUNNING --silent past the hung timeout--> HUNG (SIGKILLed)
    STARTING, RUNNING, HUNG --exits--> BACKOFF --respawn due--> STARTING (a successor)
                                   --> FATAL (a configuration/host exit code, or a crash loop)
    any --stop requested--> STOPPING (SIGTERM; SIGKILL after the grace) --exits--> STOPPED

Everything here is a function of the :class:`ChildRecord` and the time the caller passes in; the arbiter
(:mod:`keepalived_py.control.arbiter`) turns the returned :class:`Verdict` into signals and spawns. Time is
the parent's monotonic clock in seconds.

The watchdog judges only silence the parent itself witnessed: a heartbeat is stamped when the parent reads
it, and a stall of the parent's own loop (:meth:`ChildRecord.forgive`) restarts the silence count, so a busy
parent never condemns a healthy child for beats it did not read.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keepalived_py.control.backoff import STABLE_AFTER, Backoff
from keepalived_py.exitcodes import ExitCode

#: Quick deaths in a row (each within :data:`STABLE_AFTER` of its start) after which the daemon gives up.
MAX_QUICK_RESTARTS = 6
#: Exit codes of a child that mean "do not respawn me": the configuration or the host cannot run it.
NO_RESPAWN = frozenset({int(ExitCode.CONFIG_FATAL), int(ExitCode.CHILD_FATAL)})
#: A starting child (importing, reading the kernel's state) may be silent this long between its start-up
#: beats before it counts as hung, unless the kernel says it is using CPU (a slow start on an emulated or
#: loaded machine is not a hang; only a child that cannot run or waits without using CPU is).
STARTUP_SILENCE = 10.0
#: ... and may report start-up progress for at most this long before it counts as stuck.
STARTUP_LIMIT = 300.0
#: A silent child that keeps using CPU (a loaded or emulated machine, a big reload) is slow, not hung: it is
#: given this many hung timeouts (at least BUSY_LIMIT_MIN seconds) before it counts as spinning for good.
#: Killing a slow child cannot bring its adverts back sooner (its successor must start first); only a child
#: that cannot run (stopped) or waits without using CPU (blocked, deadlocked) is killed at the hung timeout.
BUSY_LIMIT_FACTOR = 10.0
BUSY_LIMIT_MIN = 10.0


class Phase(enum.StrEnum):
    STARTING = "starting"  # spawned; start-up beats only, not serving yet
    RUNNING = "running"  # its event loop heartbeats
    HUNG = "hung"  # silent too long: killed, waiting for the reaper
    STOPPING = "stopping"  # asked to stop (daemon stop or retired by a reload)
    BACKOFF = "backoff"  # dead; respawn due at ``respawn_at``
    FATAL = "fatal"  # exited with a code that forbids a respawn
    STOPPED = "stopped"  # exited after a stop request, not to be respawned


class Activity(enum.StrEnum):
    """What the kernel says a silent child is doing (the parent looks only once it is silent too long)."""

    BUSY = "busy"  # running and it used CPU since the parent last looked: slow, not hung
    IDLE = "idle"  # sleeping or blocked without using CPU: waiting for something that does not come
    STOPPED = "stopped"  # stopped (SIGSTOP, a debugger): it cannot run at all
    UNKNOWN = "unknown"


class Action(enum.StrEnum):
    NONE = "none"
    KILL = "kill"  # SIGKILL now
    SPAWN = "spawn"  # start a successor now
    STOP_DAEMON = "stop_daemon"  # the daemon cannot go on (fatal exit, crash loop)


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str = ""
    #: for STOP_DAEMON: the daemon's exit code
    exit_code: int = 0
    #: for SPAWN of a VRRP child: the instances to resume as MASTER
    resume: tuple[str, ...] = ()


NOTHING = Verdict(Action.NONE)


@dataclass
class ChildRecord:
    kind: str
    phase: Phase = Phase.BACKOFF
    pid: int | None = None
    started: float = 0.0
    #: when the parent last read a heartbeat (or last forgave a stall of its own); None before the first
    last_beat: float | None = None
    #: when the parent last read a heartbeat from the child's event loop (not a start-up beat)
    last_loop_beat: float | None = None
    last_state: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    #: restarts by reason ("died", "hung")
    restarts_by: dict[str, int] = field(default_factory=dict)
    quick_deaths: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    respawn_at: float | None = None
    #: STOPPING: when SIGKILL is due
    kill_at: float | None = None
    #: the last death left the child's kernel state in place (killed by a signal): its successor resumes
    kernel_state_kept: bool = False
    #: a reload dropped this child's part of the configuration: not respawned
    retired: bool = False
    died: float | None = None
    exit_code: int | None = None

    # --- events ---------------------------------------------------------------------------------------

    def spawned(self, pid: int, now: float) -> None:
        self.pid = pid
        self.phase = Phase.STARTING
        self.started = now
        self.last_beat = None
        self.last_loop_beat = None
        self.respawn_at = None
        self.kill_at = None

    def heartbeat(self, now: float, state: Mapping[str, Any]) -> None:
        """A heartbeat the parent has just read. Start-up beats carry ``starting: true``."""
        if self.phase not in (Phase.STARTING, Phase.RUNNING):
            return  # a dying child's last words change nothing
        self.last_beat = now
        if state.get("starting"):
            self.last_state = {**self.last_state, "starting": True, "phase": state.get("phase")}
            return
        self.last_loop_beat = now
        if state.get("full") or self.phase is not Phase.RUNNING:
            self.last_state = {k: v for k, v in state.items() if k != "full"}
        else:  # a delta: what it leaves out has not changed
            self.last_state = {**self.last_state, **state}
        self.phase = Phase.RUNNING

    def forgive(self, now: float) -> None:
        """The parent's own loop stalled: silence before ``now`` is not the child's fault."""
        if self.phase in (Phase.STARTING, Phase.RUNNING) and self.last_beat is not None:
            self.last_beat = max(self.last_beat, now)

    def stop(self, now: float, grace: float) -> Verdict:
        """A stop was requested: the caller sends SIGTERM (and SIGCONT); SIGKILL follows after ``grace``."""
        if self.pid is None:
            self.phase = Phase.STOPPED
            return NOTHING
        self.phase = Phase.STOPPING
        self.kill_at = now + grace
        return NOTHING

    def silent_for(self, now: float) -> float:
        """How long the running or starting child has been silent (since its start before its first beat);
        0 when it is in neither phase."""
        if self.pid is None or self.phase not in (Phase.STARTING, Phase.RUNNING):
            return 0.0
        return now - (self.last_beat if self.last_beat is not None else self.started)

    def watchdog(self, now: float, hung_timeout: float, activity: Activity = Activity.UNKNOWN) -> Verdict:
        """Run at every turn of the parent's loop: is this child hung, or overdue to die?

        ``activity`` matters only for a serving child silent past ``hung_timeout``: a BUSY one gets
        :data:`BUSY_LIMIT_FACTOR` times longer."""
        if self.pid is None:
            if self.phase is Phase.BACKOFF and self.respawn_at is not None and now >= self.respawn_at \
                    and not self.retired:
                return Verdict(Action.SPAWN, "respawn due")
            return NOTHING
        if self.phase is Phase.STOPPING:
            if self.kill_at is not None and now >= self.kill_at:
                self.kill_at = None  # once; the reaper takes it from here
                return Verdict(Action.KILL, "did not stop in time")
            return NOTHING
        if self.phase is Phase.STARTING:
            if now - self.started > STARTUP_LIMIT:
                return self._hung(f"still starting after {now - self.started:.0f} s")
            silent = self.silent_for(now)
            if silent > max(hung_timeout, STARTUP_SILENCE) and activity is not Activity.BUSY:
                return self._hung(f"sent no heartbeat for {silent:.1f} s while starting ({activity.value})")
            return NOTHING
        if self.phase is Phase.RUNNING:
            assert self.last_beat is not None
            silent = now - self.last_beat
            if silent <= hung_timeout:
                return NOTHING
            if activity is Activity.BUSY:
                limit = max(BUSY_LIMIT_FACTOR * hung_timeout, BUSY_LIMIT_MIN)
                if silent <= limit:
                    return NOTHING
                return self._hung(f"sent no heartbeat for {silent:.2f} s while using CPU (spinning)")
            return self._hung(f"sent no heartbeat for {silent:.2f} s ({activity.value})")
        return NOTHING

    def _hung(self, why: str) -> Verdict:
        """Killed at once with SIGKILL: a hung child must not run its shutdown path (which would release the
        addresses and IPVS rules its successor keeps)."""
        self.phase = Phase.HUNG
        return Verdict(Action.KILL, why)

    def exited(self, code: int, now: float, *, stopping: bool) -> Verdict:
        """The reaper collected the child with ``code`` (negative: killed by that signal)."""
        was = self.phase
        self.pid = None
        self.died = now
        self.exit_code = code
        if stopping or was is Phase.STOPPING or self.retired:
            self.phase = Phase.STOPPED
            return NOTHING
        if code in NO_RESPAWN:
            self.phase = Phase.FATAL
            what = "the configuration" if code == ExitCode.CONFIG_FATAL else "on this host"
            return Verdict(Action.STOP_DAEMON, f"cannot run {what}", exit_code=code)
        ran_for = now - self.started
        self.quick_deaths = self.quick_deaths + 1 if ran_for <= STABLE_AFTER else 0
        if self.quick_deaths >= MAX_QUICK_RESTARTS:
            self.phase = Phase.FATAL
            return Verdict(Action.STOP_DAEMON,
                           f"died {self.quick_deaths} times in a row within a minute of starting",
                           exit_code=int(ExitCode.FAILURE))
        reason = "hung" if was is Phase.HUNG else "died"
        self.restarts += 1
        self.restarts_by[reason] = self.restarts_by.get(reason, 0) + 1
        # A child that stopped by itself (exit code >= 0) released its addresses: the next one starts afresh.
        self.kernel_state_kept = code < 0
        # A hung child is replaced at once: its successor must be back within the Master_Down_Interval.
        delay = 0.0 if was is Phase.HUNG else self.backoff.next_delay(ran_for)
        self.respawn_at = now + delay
        self.phase = Phase.BACKOFF
        return Verdict(Action.SPAWN, reason) if delay == 0.0 else NOTHING

    # --- queries --------------------------------------------------------------------------------------

    def healthy(self, now: float, hung_timeout: float) -> bool:
        """Serving and has not missed two heartbeats (children beat every hung timeout / 6)."""
        return (self.phase is Phase.RUNNING and self.last_loop_beat is not None
                and now - self.last_loop_beat <= hung_timeout / 3)

    def resumable(self, now: float, takeover_after: Mapping[str, float]) -> tuple[str, ...]:
        """The instances the dead child reported MASTER that no backup can have taken over yet.

        ``takeover_after``: for each instance, the quickest possible backup's Master_Down_Interval.
        """
        if not self.kernel_state_kept or self.last_loop_beat is None:
            return ()
        silent_for = now - self.last_loop_beat
        out = []
        for name, info in self.last_state.get("instances", {}).items():
            if isinstance(info, dict) and info.get("state") == "MASTER" and name in takeover_after \
                    and silent_for < takeover_after[name]:
                out.append(name)
        return tuple(out)


# --- the watchdog's budget ------------------------------------------------------------------------------

#: The hung timeout when no VRRP instance bounds it (a Checkers-only configuration).
DEFAULT_HUNG_TIMEOUT = 3.0
#: The smallest derived hung timeout: below it a loaded machine's scheduling delays look like hangs.
MIN_HUNG_TIMEOUT = 0.25
#: Share of the budget (Master_Down_Interval less one advert interval) given to detection; the rest is for
#: the kill, the successor's start-up and its first advertisement.
DETECTION_SHARE = 0.3


@dataclass(frozen=True)
class HungTimeout:
    seconds: float
    #: where the value comes from, for ``kpd status``
    source: str


def derive_hung_timeout(takeover: Iterable[tuple[str, float, float]], override: float | None) -> HungTimeout:
    """The hung timeout in force.

    ``takeover``: (instance, quickest backup's Master_Down_Interval, advert interval) of every VRRP
    instance. A MASTER that hangs just before an advert leaves its backups Master_Down_Interval less one
    advert interval; detection, the kill and the successor's start must all fit in it, so detection gets
    :data:`DETECTION_SHARE` of the smallest such budget (at least :data:`MIN_HUNG_TIMEOUT`, at most
    :data:`DEFAULT_HUNG_TIMEOUT`). ``kpd_child_hung_timeout`` overrides it.
    """
    if override is not None:
        return HungTimeout(override, "kpd_child_hung_timeout")
    budgets = [(down - advert, name, down) for name, down, advert in takeover]
    if not budgets:
        return HungTimeout(DEFAULT_HUNG_TIMEOUT, "default (no VRRP instance)")
    budget, name, down = min(budgets)
    seconds = min(DEFAULT_HUNG_TIMEOUT, max(MIN_HUNG_TIMEOUT, round(DETECTION_SHARE * budget, 3)))
    return HungTimeout(seconds, f"derived from {name}'s Master_Down_Interval ({down:.3f} s)")
