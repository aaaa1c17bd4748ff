"""Structured events: what happened, for ``kpd events`` (docs/events.md).

A small shared base (no project imports). Each child holds one :class:`EventBuffer`: its engine (and the
scripts it runs) :meth:`~EventBuffer.emit` flat events, ``{"time": UNIX time, "kind": ..., **fields}``,
whose field values are JSON scalars (str, int, float, bool, None). The child's heartbeat task sends them to
the parent after each beat (:meth:`keepalived_py.heartbeat.HeartbeatSender.send_events`), which numbers
them and keeps the last ones in a bounded ring that ``kpd events`` reads and follows.

The buffer is bounded: when it is full the oldest pending event is dropped and :attr:`EventBuffer.dropped`
grows; the count goes to the parent with the next batch, which records an ``events_lost`` event, so a loss
is always visible, never silent.

:func:`take_batch` cuts a list of events into frames that fit a byte budget (the heartbeat socket's frames,
the control socket's follow frames).
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

#: events a child holds before the oldest is dropped (and counted)
MAX_PENDING = 4096
#: longest string field value kept (longer ones are cut, ending in "...")
MAX_VALUE_CHARS = 512
#: names the event itself and the parent use: never a field
RESERVED = frozenset({"time", "kind", "seq", "source"})

Scalar = str | int | float | bool | None
Event = dict[str, Any]
#: where ``emit``-like calls go: ``sink(kind, **fields)``
EventSink = Callable[..., None]


def scalar(value: Any) -> Scalar:
    """``value`` as a JSON scalar: scalars as they are (strings cut to :data:`MAX_VALUE_CHARS`), anything
    else (a non-finite float too: JSON has none) as its ``str``."""
    if value is None or isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS - 3] + "..."
    return text


class EventBuffer:
    """A child's pending events, oldest first, at most ``maxlen`` of them.

    ``on_emit`` (set by the child runtime) is called after every :meth:`emit`: it wakes the heartbeat task
    so the event goes out at once rather than after the next beat interval.
    """

    def __init__(self, maxlen: int = MAX_PENDING, on_emit: Callable[[], None] | None = None) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be positive, not {maxlen!r}")
        self.maxlen = maxlen
        self.on_emit = on_emit
        self._pending: deque[Event] = deque()
        #: events dropped (the buffer was full) and not yet reported to the parent
        self.dropped = 0
        #: events ever emitted, and ever dropped
        self.emitted = 0
        self.dropped_total = 0

    def __len__(self) -> int:
        return len(self._pending)

    def emit(self, kind: str, **fields: Any) -> None:
        """Record an event now. Field names in :data:`RESERVED` are a programming error (TypeError)."""
        clash = RESERVED.intersection(fields)
        if clash:
            raise TypeError(f"event field names {sorted(clash)} are reserved")
        event: Event = {"time": time.time(), "kind": kind}
        for name, value in fields.items():
            event[name] = scalar(value)
        if len(self._pending) >= self.maxlen:
            self._pending.popleft()
            self.dropped += 1
            self.dropped_total += 1
        self._pending.append(event)
        self.emitted += 1
        if self.on_emit is not None:
            self.on_emit()

    def pending(self, limit: int | None = None) -> list[Event]:
        """The (first ``limit``) pending events, oldest first; still pending: :meth:`consume` removes them
        once sent."""
        return list(itertools.islice(self._pending, limit))

    def peek(self) -> Iterator[Event]:
        """The pending events, oldest first, without copying (do not emit while iterating)."""
        return iter(self._pending)

    def consume(self, count: int, dropped: int) -> None:
        """``count`` of the oldest pending events and a report of ``dropped`` losses reached the parent."""
        for _ in range(min(count, len(self._pending))):
            self._pending.popleft()
        self.dropped = max(0, self.dropped - dropped)

    def discard(self, count: int) -> None:
        """The ``count`` oldest pending events can never be sent (each alone too large a frame): dropped,
        and counted as such."""
        count = min(count, len(self._pending))
        for _ in range(count):
            self._pending.popleft()
        self.dropped += count
        self.dropped_total += count


def encoded_size(event: Mapping[str, Any]) -> int:
    """The bytes ``event`` takes in a compact JSON frame (with the separating comma)."""
    return len(json.dumps(event, separators=(",", ":"), sort_keys=True).encode()) + 1


#: the bytes a frame of events keeps for its envelope (type, sender, counters) beside the events
FRAME_ENVELOPE = 256


def take_batch(events: Iterable[Mapping[str, Any]], budget: int) -> tuple[int, int]:
    """How many of the first ``events`` fit in ``budget`` bytes of JSON, and how many bytes they take.
    Zero when even the first one alone does not fit (the caller drops it)."""
    count = used = 0
    for event in events:
        size = encoded_size(event)
        if used + size > budget:
            break
        count += 1
        used += size
    return count, used
