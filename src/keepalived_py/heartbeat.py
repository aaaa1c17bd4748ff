"""The children's side of the heartbeat: frames to the parent, from start-up on.

A child beats from the moment it starts: while it imports and reads the kernel's state a thread sends
start-up beats (``{"starting": true, "phase": ...}``), so a slow start (an emulated machine, a huge
configuration) is never mistaken for a hang; only silence is. Once the child's event loop runs, the beats
come from a task on that loop (:func:`send_heartbeats`) and the thread stops, so a wedged loop stops
heartbeating and the parent notices. ``changed`` makes the next loop beat go out at once (a state change the
parent should know about now).

Loop beats carry deltas: the summary's big parts (the instances, their states and priorities) only when
they differ from what the parent last got on this connection; a beat with ``"full": true`` carries all of
it (the first one on each connection), the others only what changed (:meth:`ChildRecord.heartbeat
<keepalived_py.control.lifecycle.ChildRecord.heartbeat>` merges them).

After each loop beat the child's pending structured events (:mod:`keepalived_py.events`) follow on the same
connection, batched into frames of at most :data:`EVENTS_FRAME` bytes; what the socket cannot take now
stays queued for the next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from keepalived_py import wire
from keepalived_py.events import FRAME_ENVELOPE, EventBuffer, take_batch

log = logging.getLogger("kpd.heartbeat")

#: the largest events frame sent: well under :data:`~keepalived_py.wire.MAX_FRAME`, and under the socket's
#: send buffer (a Unix datagram larger than the sender's buffer is refused with EMSGSIZE)
EVENTS_FRAME = 64 * 1024


class HeartbeatSender:
    """One connection to the parent's heartbeat socket, shared by the start-up thread and the loop."""

    def __init__(self, kind: str, path: str):
        self.kind = kind
        self.path = path
        self.pid = os.getpid()
        self._sock: socket.socket | None = None
        self._seq = 0
        self._lock = threading.Lock()
        self._starting: threading.Event | None = None
        self._phase = "starting"
        #: the big parts of the summary the parent has from this connection (see :meth:`_delta`)
        self._sent: dict[str, Any] = {}

    def send(self, doc: dict[str, Any]) -> None:
        with self._lock:
            try:
                if self._sock is None:
                    self._connect()
                doc = self._delta(doc)
                try:
                    frame = wire.encode(wire.Heartbeat(self.kind, self.pid, self._seq, doc))
                except ValueError:  # too many instances for one frame: the beat itself matters most
                    frame = self._truncated(doc)
                assert self._sock is not None
                try:
                    self._sock.send(frame)
                except OSError as err:
                    if err.errno != errno.EMSGSIZE:
                        raise
                    # larger than the socket's send buffer (which could not be raised): the beat alone
                    self._sock.send(self._truncated(doc))
                self._seq += 1
            except OSError as err:
                log.debug("heartbeat to %s failed: %s", self.path, err)
                if self._sock is not None:
                    self._sock.close()
                self._sock = None
                self._sent = {}

    def _truncated(self, doc: dict[str, Any]) -> bytes:
        """A beat without the big parts of the summary (flagged ``truncated``)."""
        small = {k: v for k, v in doc.items() if not isinstance(v, dict | list) or k == "loop_lag"}
        small["truncated"] = True
        self._sent = {}  # the parent did not get them: the next beat is full again
        return wire.encode(wire.Heartbeat(self.kind, self.pid, self._seq, small))

    def send_events(self, buffer: EventBuffer, frame_bytes: int = EVENTS_FRAME) -> int:
        """Send the buffer's pending events (and its count of dropped ones), as many per frame as fit in
        ``frame_bytes``, on the heartbeat connection; the number of frames sent. What the socket cannot take
        now (it would block, or there is no connection) stays pending for the next turn; an event too large
        for a frame on its own is dropped and counted."""
        budget = min(frame_bytes, wire.MAX_FRAME) - FRAME_ENVELOPE
        frames = 0
        with self._lock:
            while self._sock is not None and (len(buffer) or buffer.dropped):
                count, _size = take_batch(buffer.peek(), budget)
                if count == 0 and len(buffer):
                    buffer.discard(1)
                    continue
                dropped = buffer.dropped
                frame = wire.encode(wire.Events(self.kind, self.pid, buffer.pending(count), dropped))
                try:
                    self._sock.send(frame)
                except BlockingIOError:
                    break  # the parent is behind: the events wait for the next turn
                except OSError as err:
                    log.debug("events to %s failed: %s", self.path, err)
                    self._sock.close()
                    self._sock = None
                    self._sent = {}
                    break
                buffer.consume(count, dropped)
                frames += 1
        return frames

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.settimeout(1.0)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        # A datagram larger than the send buffer is refused (EMSGSIZE), and the default buffer
        # (net.core.wmem_default, 208 KiB) is smaller than a frame may be: room for two, where allowed.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_SNDBUFFORCE", 32), 2 * wire.MAX_FRAME)
        self._sock = sock
        self._sent = {}

    def _delta(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A loop beat without the big parts the parent already has from this connection ("full" when it
        has none yet). Start-up beats go whole."""
        if doc.get("starting"):
            return doc
        sent = self._sent
        if not sent:
            self._sent = {k: v for k, v in doc.items() if isinstance(v, dict | list)}
            return {**doc, "full": True}
        out = {}
        for key, value in doc.items():
            if isinstance(value, dict | list):
                if sent.get(key) == value:
                    continue
                sent[key] = value
            out[key] = value
        return out

    # --- start-up beats -----------------------------------------------------------------------------

    def start_up(self, interval: float) -> None:
        """Beat from a thread every ``interval`` seconds until :meth:`started`."""
        stop = self._starting = threading.Event()

        def beat() -> None:
            while not stop.is_set():
                self.send({"starting": True, "phase": self._phase})
                stop.wait(interval)

        threading.Thread(target=beat, name="startup-heartbeat", daemon=True).start()

    def progress(self, phase: str) -> None:
        """What the start-up is doing now (shown by ``kpd status``)."""
        self._phase = phase

    def started(self) -> None:
        if self._starting is not None:
            self._starting.set()
            self._starting = None


def start_up_from_argv(kind: str, argv: list[str], default_interval: float) -> HeartbeatSender | None:
    """Start-up beats as the very first thing a child does, before it imports anything heavy: the
    ``--heartbeat-socket PATH`` and ``--heartbeat-interval SECONDS`` of its command line, or None."""
    def value(flag: str) -> str | None:
        for i, arg in enumerate(argv):
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
        return None

    path = value("--heartbeat-socket")
    if not path:
        return None
    try:
        interval = float(value("--heartbeat-interval") or default_interval)
    except ValueError:
        interval = default_interval
    sender = HeartbeatSender(kind, path)
    sender.start_up(max(interval, 0.01))
    return sender


async def send_heartbeats(
    sender: HeartbeatSender, interval: float, state: Callable[[], dict[str, Any]], changed: asyncio.Event,
    events: EventBuffer | None = None,
) -> None:
    """Beat from the event loop every ``interval`` seconds (at once when ``changed`` is set); after each
    beat, the pending ``events`` follow on the same connection."""
    sender.started()
    while True:
        sender.send(state())
        changed.clear()
        if events is not None:
            sender.send_events(events)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), interval)
