"""Starting a child by forking the parent, then running the child's entry point in the fork.

The children used to be started as new interpreters (``python -m keepalived_py.vrrp.child ...``): each then
imported the interpreter's start-up modules, the configuration front end and the standard library on its
own, so nothing of that was shared between the processes (about 10 MiB per child). Like keepalived, which
forks its children from the parent, :func:`fork_entry_point` forks the parent and runs the child's module
in the fork exactly as ``python -m MODULE ARGS`` would (``runpy``, ``__name__ == "__main__"``, ``sys.argv``),
so the pages of everything the parent had already imported stay shared, copy-on-write. The parent still
never imports a child's layer: the module is named, as it was on the command line, and imported only in the
fork.

What the fork must not inherit is undone before the entry point runs:

* the parent's signal handlers (they only enqueue to the parent's loop) and its wake-up descriptor: back to
  the defaults (what ``exec`` gave the child); signals the parent ignores stay ignored, as through ``exec``;
* the parent's descriptors (its listening sockets, its clients, the selector, the reload worker's pipe): each
  one not kept is replaced by ``/dev/null`` rather than closed, so that a parent object that closes "its"
  descriptor later in the child (a logging handler dropped when the child sets up its own logging) closes
  that harmless duplicate, never a descriptor the child opened in its place;
* the cyclic garbage collector's view of the inherited objects: they are frozen (``gc.freeze``), so the
  child's collections never walk them and so never write to (and un-share) their pages.

Threads of the parent (the metrics import, the IPVS counters worker) do not exist in the fork. Python
resets its global import lock and the logging locks after ``fork``, but not the lock of a module another
thread is importing at that moment: the child would wait for it forever as soon as it imports that module
too (seen in the VM, where importing prometheus_client takes seconds). The parent's threads therefore
import under :func:`importing`, and a fork waits until no thread is importing. The fork ends with
``os._exit`` and the entry point's exit code: it never returns into the parent's code, and never runs the
parent's ``atexit`` handlers.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

#: how often :meth:`ForkedChild.wait` looks for the child's exit (seconds)
_WAIT_POLL = 0.01
#: held while a thread of the parent imports; a fork takes it too
_IMPORTING = threading.Lock()


@contextmanager
def importing() -> Iterator[None]:
    """Import (from a thread other than the one that forks) with no fork made meanwhile."""
    with _IMPORTING:
        yield


def import_in_thread(name: str) -> ModuleType:
    """``importlib.import_module(name)`` under :func:`importing` (a thread's target)."""
    with importing():
        return importlib.import_module(name)


class ForkedChild:
    """The parent's handle on a forked child (what it used of ``subprocess.Popen``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        #: the exit code (``-N`` for signal N) once the child has been reaped (by :meth:`wait`, or recorded
        #: by whoever reaped it: the parent's ``waitpid(-1)`` loop)
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int | None:
        """Reap the child, waiting at most ``timeout`` seconds (``subprocess.TimeoutExpired`` after); its
        exit code, or None when it was reaped elsewhere and nobody recorded the code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere without recording it: the code is unknown
                return None
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(_WAIT_POLL)
        return self.returncode


def fork_entry_point(module: str, args: Sequence[str], *, keep_fds: Collection[int] = ()) -> ForkedChild:
    """Fork; in the child, run ``module`` as ``python -m module *args`` would and exit with its code (never
    returning); in the parent, the child's handle. ``keep_fds``: descriptors the child keeps (besides 0-2)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()  # else what is buffered would be written twice
    with _IMPORTING:  # no thread of the parent is importing (see the module's doc)
        pid = os.fork()
    if pid:
        return ForkedChild(pid)
    code = 1
    try:
        gc.freeze()
        _reset_signals()
        _neutralise_descriptors(keep_fds)
        gc.enable()
        code = _run_module(module, args)
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    raise AssertionError("unreachable")  # pragma: no cover


def _run_module(module: str, args: Sequence[str]) -> int:
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        return _exit_code(stop.code)
    return 0


def _exit_code(code: object) -> int:
    """``SystemExit.code`` as the interpreter would exit with it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _reset_signals() -> None:
    """The signal dispositions a freshly executed child has: handlers back to the default, ignored signals
    still ignored, nothing blocked, no wake-up descriptor."""
    signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        with contextlib.suppress(OSError, ValueError):
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _neutralise_descriptors(keep: Collection[int]) -> None:
    """Replace every inherited descriptor above 2 that is not in ``keep`` by ``/dev/null`` (close-on-exec)."""
    inherited = [int(name) for name in os.listdir("/proc/self/fd")]
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    for fd in inherited:
        if fd <= 2 or fd == null or fd in keep:
            continue
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            continue  # the directory listing's own descriptor, closed since
        os.dup2(null, fd, inheritable=False)
    os.close(null)
