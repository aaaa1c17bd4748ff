"""The kernel's process events (the netlink process connector, ``CN_IDX_PROC``): fork, exec, rename, exit.

keepalived's ``track_process`` listens to them so that a dying process is seen at once, not at the next poll.
The connector exists only in the initial network namespace: a socket opened in another one cannot
subscribe (``ECONNREFUSED`` -- keepalived 2.2.7 run with ``ip netns exec`` then never sees a process and
keeps the tracking instances in FAULT). keepalived opens its socket before it enters its ``net_namespace``;
kpd's VRRP child gets a handle on the namespace kpd started in, and :meth:`ProcEventSocket.open` opens the
socket there (or in the initial namespace, ``/proc/1/ns/net``) when the current one refuses: a helper
thread enters it for the ``socket()`` call, and the socket keeps working from anywhere. Without any (no
``CONFIG_PROC_EVENTS``, not allowed) it raises OSError and the caller polls the process table instead.

:func:`decode` is pure: the datagrams in, :class:`ProcEvent` values out. Threads are left out (their pid is
not their thread group id): only processes are counted.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["ProcEvent", "ProcEventSocket", "decode"]

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
NLMSG_DONE = 3
NLMSG_ERROR = 2

PROC_EVENT_NONE = 0x0
PROC_EVENT_FORK = 0x1
PROC_EVENT_EXEC = 0x2
PROC_EVENT_COMM = 0x200
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
#: what, cpu, timestamp_ns
_EVENT_HEAD = struct.Struct("=IIQ")
_RECV_SIZE = 1 << 16
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ProcEvent:
    """One process event: ``kind`` is fork / exec / comm / exit; ``pid`` the process it is about (the child
    for a fork, whose ``parent`` is set); ``comm`` the new name of a rename."""

    kind: str
    pid: int
    parent: int | None = None
    comm: str | None = None


def decode(data: bytes) -> Iterator[ProcEvent]:
    """The process events in one datagram (several netlink messages may share it); malformed or foreign
    messages are skipped."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return
        body = data[offset + _NLMSGHDR.size : offset + length]
        offset += (length + 3) & ~3
        if msg_type != NLMSG_DONE or len(body) < _CN_MSG.size + _EVENT_HEAD.size:
            continue
        idx, val, _s, _a, _len, _f = _CN_MSG.unpack_from(body)
        if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC):
            continue
        what, _cpu, _ts = _EVENT_HEAD.unpack_from(body, _CN_MSG.size)
        event = body[_CN_MSG.size + _EVENT_HEAD.size :]
        found = _event(what, event)
        if found is not None:
            yield found


def _event(what: int, data: bytes) -> ProcEvent | None:
    try:
        if what == PROC_EVENT_FORK:
            _ppid, _ptgid, pid, tgid = struct.unpack_from("=iiii", data)
            return ProcEvent("fork", pid, parent=_ptgid) if pid == tgid else None
        if what == PROC_EVENT_EXEC:
            pid, tgid = struct.unpack_from("=ii", data)
            return ProcEvent("exec", pid) if pid == tgid else None
        if what == PROC_EVENT_COMM:
            pid, tgid = struct.unpack_from("=ii", data)
            comm = data[8:24].split(b"\0", 1)[0].decode(errors="replace")
            return ProcEvent("comm", pid, comm=comm) if pid == tgid else None
        if what == PROC_EVENT_EXIT:
            pid, tgid = struct.unpack_from("=ii", data)
            return ProcEvent("exit", pid) if pid == tgid else None
    except struct.error:
        return None
    return None


def _in_namespace(namespace: int | str, make: Callable[[], _T]) -> _T:
    """``make()`` run by a thread that entered network namespace ``namespace`` (a descriptor or a path such
    as ``/proc/1/ns/net``); the calling thread's namespace does not change."""
    result: list[_T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            from pyroute2 import netns  # setns(2) for this thread only

            if isinstance(namespace, int):
                netns.setns(namespace, flags=0)
            else:
                fd = os.open(namespace, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    netns.setns(fd, flags=0)
                finally:
                    os.close(fd)
            result.append(make())
        except BaseException as err:  # handed to the caller
            failure.append(err)

    thread = threading.Thread(target=run, name="kpd-proc-events", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


class ProcEventSocket:
    """A subscribed, non-blocking process-connector socket: :meth:`fileno` for a loop, :meth:`read`."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    @classmethod
    def open(cls, *, rcvbuf: int = 1 << 20, home_netns: int | None = None) -> ProcEventSocket:
        """Subscribe, from this network namespace, else from ``home_netns`` (a descriptor), else from the
        initial one; OSError when none can."""

        def make() -> socket.socket:
            kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
            sock = socket.socket(socket.AF_NETLINK, kind, NETLINK_CONNECTOR)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                sock.bind((0, CN_IDX_PROC))
                op = struct.pack("=I", PROC_CN_MCAST_LISTEN)
                listen = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(op), 0) + op
                sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(listen), NLMSG_DONE, 0, 0, 0) + listen)
            except OSError:
                sock.close()
                raise
            return sock

        try:
            sock = make()
        except OSError as err:
            if err.errno not in (errno.ECONNREFUSED, errno.EPROTONOSUPPORT):
                raise
            failure: OSError = err
            for namespace in ((home_netns,) if home_netns is not None else ()) + ("/proc/1/ns/net",):
                try:
                    sock = _in_namespace(namespace, make)
                    break
                except OSError as other:
                    failure = other
            else:
                raise failure from None
        sock.setblocking(False)
        return cls(sock)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[ProcEvent]:
        """The events waiting (never blocks). OSError ``ENOBUFS``: events were lost (rescan)."""
        events: list[ProcEvent] = []
        while True:
            try:
                data = self._sock.recv(_RECV_SIZE)
            except BlockingIOError:
                return events
            events.extend(decode(data))

    def close(self) -> None:
        self._sock.close()
