"""``vrrp_track_process``: which processes match, and whether their number is a quorum -- pure logic.

keepalived's rules (``core/track_process.c``, ``vrrp/vrrp_parser.c``, v2.2.7):

* **Matching** is exact, never a pattern (``pgrep "^name$"``): the process name (``/proc/PID/comm``, at
  most 15 characters) equals ``process``; with ``full_command`` (implied by parameters or ``param_match``)
  ``argv[0]`` does. Parameters compare as ``param_match`` says: ``exact`` (the default with parameters;
  ``param_match`` alone means "no parameters at all"), ``partial`` (the first ones are equal, more may follow)
  or ``initial`` (as partial, and the last configured one may be only the start of the process's).
  Zombies never count.
* **Quorum**: the tracker is up while ``quorum <= count <= quorum_max``. It only changes when the count
  crosses a bound. A quorum gained by a *fork* counts after ``fork_delay`` (a quorum lost in the meantime
  cancels it, at once); a quorum lost by an *exit* counts after ``terminate_delay`` (a process appearing in
  the meantime cancels it). A process that ``exec``\\ s or renames itself into a match counts at once, and
  one that stops matching that way stops counting at once.

:class:`ProcessQuorum` is the per-tracker state machine (events in, "changed" out, the clock injected);
:func:`matches` the matching. The I/O is :mod:`keepalived_py.vrrp.process_watcher`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from keepalived_py.config.model import TrackProcess

__all__ = ["ProcessQuorum", "matches", "params_match"]


def params_match(tp: TrackProcess, params: Sequence[str]) -> bool:
    """keepalived's ``check_params``: the process's parameters (``argv[1:]``) against the configured ones."""
    want = tp.params
    if tp.param_match == "none":
        return True
    if tp.param_match == "exact":
        return tuple(params) == tuple(want)
    if not want:
        return True
    if len(params) < len(want):
        return False
    if tp.param_match == "partial":
        return tuple(params[: len(want)]) == tuple(want)
    # initial: the last configured parameter may be the start of the process's
    return tuple(params[: len(want) - 1]) == tuple(want[:-1]) and params[len(want) - 1].startswith(want[-1])


def matches(tp: TrackProcess, comm: str | None, argv: Sequence[str] | None) -> bool:
    """Whether a process (its ``comm`` and ``argv``, None when unknown) is one ``tp`` counts."""
    if tp.full_command:
        if not argv:
            return False
        return argv[0] == tp.process and params_match(tp, argv[1:])
    return comm is not None and comm == tp.process


@dataclass
class ProcessQuorum:
    """The processes one ``vrrp_track_process`` counts and whether they make a quorum (``up``).

    Each event method returns True when ``up`` changed; :attr:`deadline` is when :meth:`expire` must be
    called next (a fork or terminate delay running), None when no delay runs.
    """

    config: TrackProcess
    pids: set[int] = field(default_factory=set)
    up: bool = False
    deadline: float | None = None
    #: the delay running is a terminate delay (else a fork delay)
    _delaying_down: bool = False

    def in_quorum(self, count: int | None = None) -> bool:
        n = len(self.pids) if count is None else count
        high = self.config.quorum_max
        return self.config.quorum <= n and (high is None or n <= high)

    def reset(self, pids: set[int]) -> bool:
        """The processes counted now, from a scan of the process table (no delay applies)."""
        self.pids = set(pids)
        self.deadline = None
        return self._set(self.in_quorum())

    def add(self, pid: int, now: float, *, forked: bool) -> bool:
        """``pid`` matches now: a fork of a counted process (``forked``), or an exec or a rename."""
        if pid in self.pids:
            return False
        self.pids.add(pid)
        count = len(self.pids)
        high = self.config.quorum_max
        if count != self.config.quorum and (high is None or count != high + 1):
            return False  # no bound crossed
        delay = self.config.fork_delay
        if self.deadline is not None and self._delaying_down:
            self.deadline = None  # a terminate delay runs: the exit it delays is undone
        elif forked and delay:
            self.deadline, self._delaying_down = now + delay, False
            return False
        return self._set(count == self.config.quorum)

    def remove(self, pid: int, now: float, *, exited: bool) -> bool:
        """``pid`` no longer counts: it exited (``exited``), or it exec'd or renamed itself away."""
        if pid not in self.pids:
            return False
        before = len(self.pids)
        self.pids.discard(pid)
        count = before - 1
        high = self.config.quorum_max
        if before != self.config.quorum and (high is None or count != high):
            return False
        delay = self.config.terminate_delay
        if self.deadline is not None and not self._delaying_down:
            self.deadline = None  # a fork delay runs: the fork it delays is undone
        elif exited and delay:
            self.deadline, self._delaying_down = now + delay, True
            return False
        return self._set(high is not None and count == high)

    def expire(self, now: float) -> bool:
        """A delay ran out: the quorum is what the count says now."""
        if self.deadline is None or now < self.deadline:
            return False
        self.deadline = None
        return self._set(self.in_quorum())

    def _set(self, up: bool) -> bool:
        changed = up != self.up
        self.up = up
        return changed
