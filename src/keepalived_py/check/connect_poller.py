"""The check engine's sockets waiting for their connect to complete, on one epoll of its own.

asyncio's ``add_writer``/``remove_writer`` cost each TCP_CHECK two ``epoll_ctl`` calls, a handle with a
copied context, a selector key and, on a descriptor's first registration, a ``KeyError`` raised and
caught. A :class:`ConnectPoller` registers the socket once, ``EPOLLOUT | EPOLLONESHOT`` (the event
disarms itself, and closing the socket drops it from the epoll), and the event loop watches the one epoll
descriptor as a reader: the connects completed in a turn are dispatched together, in that turn.
"""

from __future__ import annotations

import asyncio
import logging
import select
from collections.abc import Callable

log = logging.getLogger("kpd.check")

#: completed connects taken from the epoll in one read (more wait for the next turn)
BATCH = 512


class ConnectPoller:
    """Calls ``ready()`` once when the socket ``watch``\\ ed with it becomes writable (connected, refused or
    reset), unless :meth:`forget` came first. Single-threaded: the loop's thread only."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._epoll = select.epoll()
        self._waiting: dict[int, Callable[[], None]] = {}
        loop.add_reader(self._epoll.fileno(), self._dispatch)

    def watch(self, fd: int, ready: Callable[[], None]) -> None:
        self._epoll.register(fd, select.EPOLLOUT | select.EPOLLONESHOT)
        self._waiting[fd] = ready

    def forget(self, fd: int) -> None:
        """``fd`` is about to be closed (which takes it out of the epoll): never call its ``ready``."""
        self._waiting.pop(fd, None)

    def __len__(self) -> int:
        return len(self._waiting)

    def close(self) -> None:
        if self._epoll.closed:
            return
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._waiting.clear()

    def _dispatch(self) -> None:
        for fd, _ in self._epoll.poll(0, BATCH):
            ready = self._waiting.pop(fd, None)
            if ready is None:
                continue  # forgotten meanwhile
            try:
                ready()
            except Exception:  # one probe's bug must not lose the others' events
                log.exception("a TCP_CHECK's connect handler failed")
