"""A TCP listener that never answers: its accept backlog is full, so SYNs to it go unanswered and a
connect to it times out (as to a server that hangs)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def silent_listener(address: str = "127.0.0.1", port: int = 0) -> Iterator[int]:
    """Listen on ``address``:``port`` (0: a free one) with a full backlog; yields the port."""
    s = socket.socket()
    fillers: list[socket.socket] = []
    try:
        s.bind((address, port))
        s.listen(0)
        port = s.getsockname()[1]
        for _ in range(8):
            f = socket.socket()
            fillers.append(f)
            f.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                f.connect((address, port))
        yield port
    finally:
        for f in fillers:
            f.close()
        s.close()
