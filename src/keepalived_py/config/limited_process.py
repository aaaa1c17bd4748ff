"""Running a function in a forked child process under hard CPU, memory and wall-clock limits.

The child sets ``RLIMIT_CPU`` and ``RLIMIT_AS`` before it runs the function, and an interval timer for the
wall clock; crossing the CPU soft limit or the timer raises :class:`LimitExceeded` in the function (so it
can say where it was), and the hard limits end the child whatever it is doing: the CPU hard limit one
second later kills it, the memory limit makes allocations fail (``MemoryError``), and the caller kills it
at the wall-clock deadline plus a grace period. The function's result, a JSON value, comes back through a
pipe; the caller never trusts more than :data:`MAX_RESULT_BYTES` of it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

#: Largest result the caller reads from the child.
MAX_RESULT_BYTES = 1024 * 1024 * 1024
#: How long after the wall-clock limit the caller waits before it kills the child.
KILL_GRACE_SECONDS = 2.0

_EXIT_OK = 0
_EXIT_NO_MEMORY = 3
_EXIT_FAILED = 4


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float
    memory_bytes: int
    wall_seconds: float


class LimitExceeded(Exception):
    """Raised in the child when its CPU time or wall-clock time is used up; ``kind`` is "cpu" or "wall"."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Outcome:
    """The function's result, or why there is none: ``failure`` is "cpu", "wall", "memory" or "crashed"."""

    result: Any = None
    failure: str | None = None
    detail: str = ""


def run_limited(function: Callable[[], Any], limits: Limits) -> Outcome:
    """Run *function* in a forked child under *limits*; its JSON-serialisable return value, or why not."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage does not follow it
        code = _EXIT_FAILED
        try:
            os.close(read_fd)
            code = _child(function, limits, write_fd)
        except MemoryError:
            code = _EXIT_NO_MEMORY
        except BaseException:  # whatever happens, the child must never return to the caller
            code = _EXIT_FAILED
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        data, killed = _collect(read_fd, pid, time.monotonic() + limits.wall_seconds + KILL_GRACE_SECONDS)
    except BaseException:  # e.g. KeyboardInterrupt: the child must not outlive the call
        _kill(pid)
        raise
    finally:
        os.close(read_fd)
        status = _reap(pid)
    return _outcome(data, killed, status, limits)


def _child(function: Callable[[], Any], limits: Limits, write_fd: int) -> int:  # pragma: no cover
    # Nothing of the caller's signal handling applies here: its handlers would act on the caller's state.
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def exceeded(kind: str) -> Callable[[int, FrameType | None], None]:
        def handler(_sig: int, _frame: FrameType | None) -> None:
            raise LimitExceeded(kind)

        return handler

    signal.signal(signal.SIGXCPU, exceeded("cpu"))
    signal.signal(signal.SIGALRM, exceeded("wall"))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu = max(1, math.ceil(limits.cpu_seconds))
    _lower(resource.RLIMIT_CPU, cpu, cpu + 1)
    base = _address_space()
    _lower(resource.RLIMIT_AS, base + limits.memory_bytes, base + limits.memory_bytes)
    signal.setitimer(signal.ITIMER_REAL, limits.wall_seconds)
    result = function()
    signal.setitimer(signal.ITIMER_REAL, 0)
    payload = json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    del result
    view = memoryview(payload)
    while view:
        view = view[os.write(write_fd, view) :]
    return _EXIT_OK


def _lower(which: int, soft: int, hard: int) -> None:  # pragma: no cover - runs in the child
    _cur_soft, cur_hard = resource.getrlimit(which)
    if cur_hard != resource.RLIM_INFINITY:
        hard = min(hard, cur_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def _address_space() -> int:  # pragma: no cover - runs in the child
    """The bytes of address space this process already uses (the memory limit is on top of it)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _collect(fd: int, pid: int, deadline: float) -> tuple[bytes | None, bool]:
    """Read the child's result until end of file; (data or None when too large, killed at the deadline)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            _kill(pid)
            return None, True
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > MAX_RESULT_BYTES:
            _kill(pid)
            return None, False
        chunks.append(chunk)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int) -> tuple[int, float]:
    """(wait status, CPU seconds) of the child."""
    while True:
        try:
            _pid, status, usage = os.wait4(pid, 0)
            return status, usage.ru_utime + usage.ru_stime
        except ChildProcessError:
            return 0, 0.0
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue


def _outcome(data: bytes | None, killed: bool, status: tuple[int, float], limits: Limits) -> Outcome:
    wait_status, cpu = status
    if killed:
        return Outcome(failure="wall")
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_seconds - 0.5):
            return Outcome(failure="cpu")
        return Outcome(failure="crashed", detail=f"killed by signal {signal.Signals(sig).name}")
    code = os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else -1
    if code == _EXIT_NO_MEMORY:
        return Outcome(failure="memory")
    if code != _EXIT_OK or data is None:
        return Outcome(failure="crashed", detail=f"exit status {code}")
    try:
        return Outcome(result=json.loads(data.decode("utf-8", "surrogatepass")))
    except (ValueError, RecursionError) as exc:
        return Outcome(failure="crashed", detail=f"unreadable result: {exc}")
