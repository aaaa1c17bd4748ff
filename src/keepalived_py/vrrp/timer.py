"""A precise event-loop timer for VRRP deadlines: one Linux ``timerfd`` and a heap of deadlines.

asyncio's own timers wake up late by up to a millisecond or more (the selector's timeout is rounded up to
whole milliseconds), which would add straight onto every takeover. A ``timerfd`` armed with an absolute
CLOCK_MONOTONIC deadline (the clock of ``loop.time()``) fires within microseconds, and its descriptor is
watched by the loop like any socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import heapq
import itertools
import os
import time
from collections.abc import Callable, Hashable

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = 0o4000
TFD_CLOEXEC = 0o2000000
TFD_TIMER_ABSTIME = 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


#: How early a precise deadline wakes the loop, which then waits out the rest (the wake-up latency of a
#: process on a busy or virtualised host is a few hundred microseconds).
PRECISE_EARLY = 0.0005
#: At most this many keys fire early with one wake-up: what shares a wake-up also shares the wire, and a
#: burst of adverts larger than a receiver's socket buffer would lose the same instances' adverts every
#: interval.
EARLY_PER_WAKE = 32


class DeadlineTimer:
    """Calls ``fire(key)`` for every key whose deadline has come, each as soon as it comes.

    A *precise* deadline (a BACKUP's Master_Down timer: it fires only when a master is gone, so this is
    rare) wakes the loop :data:`PRECISE_EARLY` seconds before it and waits the remainder out, so it fires
    at the deadline rather than one wake-up latency after it; never before it.

    A deadline set with ``early`` may fire up to that many seconds before it when the timer wakes for
    another key anyway (a MASTER's advert: the adverts of many instances then share one wake-up), at most
    :data:`EARLY_PER_WAKE` of them per wake-up; alone, it fires at its deadline.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fire: Callable[[Hashable], None]) -> None:
        fd = _libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self._fd = fd
        self._loop = loop
        self._fire = fire
        self._heap: list[tuple[float, int, Hashable]] = []
        self._current: dict[Hashable, float] = {}
        self._precise: set[Hashable] = set()
        self._early: dict[Hashable, float] = {}
        #: at least the largest ``early`` in force: how far past now a wake-up looks for keys to fire
        self._max_early = 0.0
        self._seq = itertools.count()
        self._armed: float | None = None
        loop.add_reader(fd, self._on_ready)

    def set(
        self, key: Hashable, deadline: float | None, *, precise: bool = False, early: float = 0.0
    ) -> None:
        """Arm ``key`` for ``deadline`` (loop.time() seconds), or disarm it with None. ``early``: seconds
        before the deadline from which another key's wake-up may fire it too (not with ``precise``)."""
        if early > 0 and not precise and deadline is not None:
            self._early[key] = early
            self._max_early = max(self._max_early, early)
        else:
            self._early.pop(key, None)
        if deadline is None:
            self._current.pop(key, None)
            self._precise.discard(key)
        elif self._current.get(key) != deadline or (key in self._precise) != precise:
            # (the same deadline again keeps its entry: a second one would fire the key twice)
            self._current[key] = deadline
            if precise:
                self._precise.add(key)
            else:
                self._precise.discard(key)
            wake = deadline - PRECISE_EARLY if precise else deadline
            heapq.heappush(self._heap, (wake, next(self._seq), key))
        self._arm()

    def _valid(self, entry: tuple[float, int, Hashable]) -> bool:
        wake, _, key = entry
        deadline = self._current.get(key)
        if deadline is None:
            return False
        return wake == (deadline - PRECISE_EARLY if key in self._precise else deadline)

    def _arm(self) -> None:
        heap = self._heap
        while heap and not self._valid(heap[0]):
            heapq.heappop(heap)  # superseded entries
        when = heap[0][0] if heap else None
        armed = self._armed
        if armed is not None and (when is None or when >= armed):
            # Armed for earlier (or now nothing): left as it is; if it fires with nothing due it is armed
            # again then. A BACKUP's every advert moves its Master_Down deadline later: re-arming the
            # timerfd each time cost a system call per advert, this costs one spare wake-up per
            # Master_Down_Interval for all the instances together.
            return
        self._armed = when
        spec = _Itimerspec()
        if when is not None:
            when = max(when, 1e-9)
            spec.it_value.tv_sec = int(when)
            spec.it_value.tv_nsec = int((when - int(when)) * 1e9) or 1
        if _libc.timerfd_settime(self._fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def _on_ready(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._fd, 8)
        self._armed = None
        now = self._loop.time()
        due: list[Hashable] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._valid(entry):
                due.append(entry[2])
        if due and self._early:
            # awake anyway: the keys that may go early go now (the others wait for their own wake-up)
            later = []
            room = EARLY_PER_WAKE
            while heap and room > 0 and heap[0][0] <= now + self._max_early:
                entry = heapq.heappop(heap)
                if not self._valid(entry):
                    continue
                if entry[0] - self._early.get(entry[2], 0.0) <= now:
                    due.append(entry[2])
                    room -= 1
                else:
                    later.append(entry)
            for entry in later:
                heapq.heappush(heap, entry)
        for key in due:
            deadline = self._current.pop(key)
            self._early.pop(key, None)
            if key in self._precise:
                self._precise.discard(key)
                while time.monotonic() < deadline:  # at most PRECISE_EARLY seconds
                    pass
            self._fire(key)
        self._arm()

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
