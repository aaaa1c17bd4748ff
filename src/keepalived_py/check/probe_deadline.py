"""A probe's timeout that counts the time the network had, not the time the engine was late.

``async with network_timeout(seconds):`` is :func:`asyncio.timeout` for a probe with one difference: when
the deadline comes, the seconds the event loop was kept busy meanwhile (its lag monitor's samples since the
probe began, :func:`keepalived_py.loop_lag.stalled`, and how late the deadline's own timer woke) are added to
it, again and again, until the probe has had ``seconds`` of a loop free to serve it. An engine starved of
CPU thus runs its checks late (the schedule stretches; the engine counts and reports the lateness) but never
declares a healthy server down because the server's answer waited in the loop's queue. A server that does
not answer still fails: after ``seconds`` on a loop that kept up, and never later than ``MAX_STRETCH`` times
``seconds`` whatever the loop does.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from keepalived_py.loop_lag import stalled

#: a probe never takes longer than this many times its timeout, however late the loop
MAX_STRETCH = 10.0


def stretched_deadline(start: float, seconds: float, busy: float, due: float, now: float) -> float | None:
    """When a probe of ``seconds`` started at ``start``, whose deadline ``due`` has come at ``now``,
    expires instead: its timeout plus the time the loop was busy since it started (``busy``, or how late
    this wake-up is, whichever is more), at most :data:`MAX_STRETCH` times its timeout; None: it expires
    now."""
    busy = max(busy, now - due)
    later = min(start + seconds + busy, start + seconds * MAX_STRETCH)
    return later if later > now else None


class network_timeout:
    __slots__ = ("_handle", "_loop", "_stalled", "_start", "_timeout", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def __aenter__(self) -> network_timeout:
        loop = self._loop = asyncio.get_running_loop()
        self._timeout = asyncio.timeout(None)
        await self._timeout.__aenter__()
        self._start = now = loop.time()
        self._stalled = stalled()
        due = now + self.seconds
        self._handle = loop.call_at(due, self._expire, due)
        return self

    def _expire(self, due: float) -> None:
        now = self._loop.time()
        later = stretched_deadline(self._start, self.seconds, stalled() - self._stalled, due, now)
        if later is not None:
            self._handle = self._loop.call_at(later, self._expire, later)
        else:
            self._timeout.reschedule(now)  # expires: the task is cancelled, TimeoutError on exit

    def expired(self) -> bool:
        return self._timeout.expired()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._handle.cancel()
        await self._timeout.__aexit__(kind, exc, tb)  # raises TimeoutError when it expired
