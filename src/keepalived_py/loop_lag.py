"""Event-loop lag: how late a timer on a child's own loop wakes, i.e. how long the loop was kept busy.

:class:`LagStats` is the pure part: lag samples (seconds late, with the time they were taken) reduced to the
maximum and the 99th percentile over a sliding window (bounded memory: at most ``max_samples`` are kept),
plus the maximum since start. :class:`LoopLagMonitor` is the asyncio part: a task on the loop that sleeps
``interval`` seconds, again and again, and records how much later than asked it woke up. A callback that
blocks the loop for 300 ms shows as a sample of about 300 ms (less up to one interval, depending on where
the sleep was when it began).

The monitor also sums its samples (``stalled``: the seconds its loop has been kept busy since the monitor
started); :func:`stalled` reads the running loop's sum, so that a probe's timeout can leave out the time the
loop, not the network, kept it waiting (:mod:`keepalived_py.check.probe_deadline`).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from keepalived_py.histogram import LAG_BUCKETS, Histogram

#: how often the monitor wakes (seconds)
INTERVAL = 0.1
#: the window its max and p99 cover (seconds)
WINDOW = 60.0
#: a summary is computed again at most this often (seconds), unless a lag above its max came since: every
#: heartbeat asks for one, and an unchanged summary is not sent again
SUMMARY_EVERY = 1.0

OnLag = Callable[[float], object]

#: the monitor running on each loop (one per child)
_MONITORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLagMonitor] = weakref.WeakKeyDictionary()


def stalled() -> float:
    """Seconds the running loop has been late so far by its monitor's samples, and by how overdue the
    monitor's own wake-up is now (a stall still going on); 0.0 without a monitor."""
    loop = asyncio.get_running_loop()
    monitor = _MONITORS.get(loop)
    if monitor is None:
        return 0.0
    return monitor.stalled + max(0.0, loop.time() - monitor.asked)


class LagStats:
    """Max and p99 of lag samples over the last ``window`` seconds, and the max since start."""

    def __init__(self, window: float = WINDOW, max_samples: int = 1024) -> None:
        self.window = window
        self.max_samples = max_samples
        self._samples: deque[tuple[float, float]] = deque()
        #: the same lags, sorted: max and percentiles without sorting at every heartbeat
        self._sorted: list[float] = []
        self.max_since_start = 0.0
        self.count = 0
        #: every sample since start, in buckets (the parent's ``kpd_child_loop_lag_seconds``)
        self.histogram = Histogram(LAG_BUCKETS)

    def add(self, now: float, lag: float) -> None:
        """A sample taken at ``now``: the timer woke ``lag`` seconds late (negative counts as 0)."""
        lag = max(lag, 0.0)
        self.count += 1
        self.max_since_start = max(self.max_since_start, lag)
        self.histogram.observe(lag)
        if len(self._samples) >= self.max_samples:
            self._forget_oldest()
        self._samples.append((now, lag))
        bisect.insort(self._sorted, lag)
        self._expire(now)

    def _forget_oldest(self) -> None:
        _, lag = self._samples.popleft()
        del self._sorted[bisect.bisect_left(self._sorted, lag)]

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        while self._samples and self._samples[0][0] < horizon:
            self._forget_oldest()

    def samples(self) -> list[tuple[float, float]]:
        """The samples kept, oldest first, as (time taken, lag)."""
        return list(self._samples)

    def max(self, now: float) -> float:
        self._expire(now)
        return self._sorted[-1] if self._sorted else 0.0

    def percentile(self, now: float, p: float) -> float:
        """The ``p`` (0..1) quantile of the window's samples (nearest rank); 0 with none."""
        self._expire(now)
        lags = self._sorted
        if not lags:
            return 0.0
        return lags[min(len(lags) - 1, max(0, math.ceil(p * len(lags)) - 1))]

    def summary(self, now: float) -> dict[str, Any]:
        """What the heartbeat carries: milliseconds, rounded to 0.1."""
        return {
            "max_ms": round(self.max(now) * 1000, 1),
            "p99_ms": round(self.percentile(now, 0.99) * 1000, 1),
            "window_s": self.window,
            "max_since_start_ms": round(self.max_since_start * 1000, 1),
            "histogram": self.histogram.to_json(),
        }


class LoopLagMonitor:
    """Measures the lag of the loop it runs on: ``LoopLagMonitor.start()`` from a coroutine on that loop
    (or ``loop.create_task(monitor.run())``)."""

    def __init__(
        self, interval: float = INTERVAL, window: float = WINDOW, on_lag: OnLag | None = None
    ) -> None:
        self.interval = interval
        #: told every sample (seconds late): keepalived's max_auto_priority acts on it
        self.on_lag = on_lag
        # room for every sample of the window, with a margin for timers that wake early
        self.stats = LagStats(window, max_samples=int(window / interval * 1.5) + 16)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        #: the sum of the samples: seconds the loop was kept busy past the monitor's wake-ups
        self.stalled = 0.0
        #: when the monitor's current sleep should end (loop time)
        self.asked = float("inf")
        self._summary: dict[str, Any] | None = None
        self._summary_at = float("-inf")
        #: the largest lag since the summary was computed
        self._peak = 0.0

    @classmethod
    def start(
        cls, interval: float = INTERVAL, window: float = WINDOW, on_lag: OnLag | None = None
    ) -> LoopLagMonitor:
        """A monitor running as a task on the running loop (until it is cancelled or the loop ends)."""
        monitor = cls(interval, window, on_lag)
        monitor.task = asyncio.get_running_loop().create_task(monitor.run(), name="loop lag")
        return monitor

    async def run(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        _MONITORS[loop] = self
        try:
            while True:
                asked = self.asked = loop.time() + self.interval
                await asyncio.sleep(self.interval)
                now = loop.time()
                self.asked = float("inf")
                lag = now - asked
                self.stats.add(now, lag)
                self._peak = max(self._peak, lag)
                if lag > 0:
                    self.stalled += lag
                if self.on_lag is not None:
                    self.on_lag(lag)
        finally:
            if _MONITORS.get(loop) is self:
                del _MONITORS[loop]

    def summary(self) -> dict[str, Any]:
        """:meth:`LagStats.summary`, computed again only after :data:`SUMMARY_EVERY` seconds or when a
        lag larger than the last summary's max came (a stall shows at once); else the same object."""
        now = self._loop.time() if self._loop is not None else 0.0
        last = self._summary
        if last is None or now - self._summary_at >= SUMMARY_EVERY or self._peak * 1000 > last["max_ms"]:
            last = self._summary = self.stats.summary(now)
            self._summary_at = now
            self._peak = 0.0
        return last
