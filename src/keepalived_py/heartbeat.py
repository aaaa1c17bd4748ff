"""The children's side of the heartbeat: a frame to the parent from inside the event loop, every interval.

Sent from a task on the child's own loop, so a wedged loop stops heartbeating and the parent notices.
``changed`` makes the next beat go out at once (a state change the parent should know about now).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from keepalived_py import wire

log = logging.getLogger("kpd.heartbeat")


async def send_heartbeats(
    kind: str, path: str, interval: float, state: Callable[[], dict[str, Any]], changed: asyncio.Event
) -> None:
    sock: socket.socket | None = None
    seq = 0
    pid = os.getpid()
    while True:
        try:
            doc = state()
            try:
                frame = wire.encode(wire.Heartbeat(kind, pid, seq, doc))
            except ValueError:  # too many instances for one frame: the beat itself matters most
                small = {k: v for k, v in doc.items() if not isinstance(v, dict | list) or k == "loop_lag"}
                frame = wire.encode(wire.Heartbeat(kind, pid, seq, {**small, "truncated": True}))
            if sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK)
                sock.connect(path)
            sock.send(frame)
            seq += 1
        except OSError as err:
            log.debug("heartbeat to %s failed: %s", path, err)
            if sock is not None:
                sock.close()
            sock = None
        changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), interval)
