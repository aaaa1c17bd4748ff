"""Counts the processes of every tracked ``vrrp_track_process`` and feeds their quorum to the trackers.

:meth:`ProcessWatcher.start` reads the process table once (``psutil.pids()``; the name and state from
``/proc/PID/stat`` as keepalived reads them, the command line only when some tracker needs it) and then
follows the kernel's process events (:mod:`keepalived_py.proc_events`): a fork, exec, rename or exit is
applied as it happens, so an instance learns of a dying process at once. Events lost to a full socket buffer
(``ENOBUFS``) make it read the whole table again. Where process events cannot be had it polls the table every
:data:`POLL_INTERVAL` seconds instead (and says so once). Fork and terminate delays run on the loop's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

import psutil

from keepalived_py.proc_events import ProcEvent, ProcEventSocket
from keepalived_py.vrrp.track import Trackers
from keepalived_py.vrrp.track_process import ProcessQuorum, matches

log = logging.getLogger("kpd.vrrp")

#: without process events, the process table is read this often (seconds)
POLL_INTERVAL = 1.0
#: keepalived reads at most this much of /proc/PID/stat
_STAT_SIZE = 512

OnChange = Callable[[set[str]], None]


def read_comm(pid: int) -> str | None:
    """The process name of ``pid`` from ``/proc/PID/stat``; None for a zombie or a process gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(_STAT_SIZE)
    except OSError:
        return None
    start, end = stat.find(b"("), stat.rfind(b")")
    if start < 0 or end < start or stat[end + 2 : end + 3] == b"Z":
        return None
    return stat[start + 1 : end].decode(errors="replace")


def read_argv(pid: int) -> list[str] | None:
    """``/proc/PID/cmdline`` split at its NULs (None when unreadable; empty for a kernel thread or zombie)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if not raw:
        return []
    return [part.decode(errors="surrogateescape") for part in raw.rstrip(b"\0").split(b"\0")]


class ProcessWatcher:
    """The quorum of every tracked process, kept current from process events (or by polling)."""

    def __init__(
        self, trackers: Trackers, *, on_change: OnChange | None = None, home_netns: int | None = None
    ) -> None:
        self.trackers = trackers
        self.home_netns = home_netns
        self.on_change = on_change
        self.quorums = {tp.name: ProcessQuorum(tp) for tp in trackers.tracked_processes()}
        self._events: ProcEventSocket | None = None
        self._poller: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._needs_argv = any(q.config.full_command for q in self.quorums.values())

    def start(self) -> set[str]:
        """Subscribe to process events (else poll), read the process table now; the instances it changed."""
        if not self.quorums:
            return set()
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        if self._loop is not None:
            try:
                self._events = ProcEventSocket.open(home_netns=self.home_netns)
                self._loop.add_reader(self._events.fileno(), self._on_events)
            except OSError as err:
                log.warning("process events unavailable (%s): tracked processes are polled every %gs",
                            err, POLL_INTERVAL)
                self._poller = self._loop.create_task(self._poll_forever(), name="track_process poller")
        changed = self.rescan()
        for name, q in self.quorums.items():
            log.info("tracked process %s: %d running, quorum %s", name, len(q.pids), "up" if q.up else "down")
        return changed

    def _scan(self) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {name: set() for name in self.quorums}
        for pid in psutil.pids():
            comm = read_comm(pid)
            if comm is None:
                continue
            argv = read_argv(pid) if self._needs_argv else None
            for name, q in self.quorums.items():
                if matches(q.config, comm, argv):
                    found[name].add(pid)
        return found

    def rescan(self) -> set[str]:
        """Count from the process table again (at start; after lost events), without delays."""
        found = self._scan()
        return self._publish(name for name, q in self.quorums.items() if q.reset(found[name]))

    def poll(self) -> set[str]:
        """Polling: apply what changed since the last read as exits and forks (their delays apply)."""
        found = self._scan()
        now = self._now()
        changed: list[str] = []
        for name, q in self.quorums.items():
            for pid in q.pids - found[name]:
                if q.remove(pid, now, exited=True):
                    changed.append(name)
            for pid in found[name] - q.pids:
                if q.add(pid, now, forked=True):
                    changed.append(name)
        return self._publish(changed)

    def apply(self, events: Iterable[ProcEvent]) -> set[str]:
        """Apply process events (keepalived's check_process / _fork / _termination)."""
        now = self._now()
        changed: list[str] = []
        for event in events:
            if event.kind == "exit":
                changed += [n for n, q in self.quorums.items() if q.remove(event.pid, now, exited=True)]
            elif event.kind == "fork":
                changed += [
                    n for n, q in self.quorums.items()
                    if event.parent in q.pids and q.add(event.pid, now, forked=True)
                ]
            else:  # exec, or a rename (comm): does it match now?
                changed += self._check(event)
        return self._publish(changed)

    def _check(self, event: ProcEvent) -> list[str]:
        now = self._now()
        rename = event.kind == "comm"
        comm = event.comm if rename else read_comm(event.pid)
        argv = read_argv(event.pid) if self._needs_argv and not rename else None
        changed: list[str] = []
        for name, q in self.quorums.items():
            if rename and q.config.full_command:
                continue  # a rename changes the name, not the command line
            if comm is not None and matches(q.config, comm, argv):
                hit = q.add(event.pid, now, forked=False)
            else:
                hit = q.remove(event.pid, now, exited=False)
            if hit:
                changed.append(name)
        return changed

    def _publish(self, names: Iterable[str]) -> set[str]:
        changed: set[str] = set()
        for name in dict.fromkeys(names):
            q = self.quorums[name]
            log.info("Quorum %s for tracked process %s", "gained" if q.up else "lost", name)
            changed |= self.trackers.set_process(name, q.up)
        self._arm_timer()
        if changed and self.on_change is not None:
            self.on_change(changed)
        return changed

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _arm_timer(self) -> None:
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [q.deadline for q in self.quorums.values() if q.deadline is not None]
        if deadlines:
            self._timer = self._loop.call_at(min(deadlines), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._now()
        self._publish([name for name, q in self.quorums.items() if q.expire(now)])

    def _on_events(self) -> None:
        assert self._events is not None
        try:
            events = self._events.read()
        except OSError as err:
            log.warning("process events lost (%s): reading the process table again", err)
            self.rescan()
            return
        self.apply(events)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            try:
                self.poll()
            except Exception:
                log.exception("track_process polling failed")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._events is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._events.fileno())
            self._events.close()
            self._events = None
        task, self._poller = self._poller, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
