"""Running external scripts safely, the way keepalived runs its notify and check scripts.

This is a small shared base: its only project imports are :mod:`keepalived_py.script_security` (the
``PATH`` scripts run with) and :mod:`keepalived_py.events`.  Whether a script may run, and as whom, is
decided there, not here.

Every run ends in a ``script_run`` event (docs/events.md) sent to the ``events`` sink the caller gives, or
else to the module's :data:`default_events` sink: the child runtime sets it to its engine's event buffer,
so the many places that run scripts (notify queues, vrrp_script trackers, MISC_CHECK probes, FIFO reader
scripts) need not each carry a sink; they only say what the script is for (``purpose``).

What :func:`run_script` does, and the keepalived rule behind each part (``lib/notify.c``):

* **No shell.** The argument vector is exec'd directly (keepalived ``execve()``s ``args[0]`` with the
  split words).  A bare command name is looked up in the ``PATH`` of the script's environment.
* **Own process group.** The script runs in a new session, hence its own process group (keepalived
  ``setpgid(0, 0)`` "so if the script needs to be killed all its child processes will also be killed").
* **Timeout.** At the deadline the whole group gets ``SIGTERM`` and, ``kill_grace`` seconds later, the
  whole group gets ``SIGKILL`` (keepalived: ``kill(-pgid, SIGTERM)``, then ``SIGKILL`` after a grace
  period).  The leader is always reaped.
* **Leftover children.** keepalived never reads script output; we capture it, so a background child that
  keeps the output pipe open after the leader exits must not hang us: after the leader exits we wait at
  most ``drain_grace`` seconds for end-of-file, then ``SIGTERM`` the group, then ``SIGKILL`` it, then stop
  reading.  Children that closed the pipe (properly daemonised helpers) are left alone, as keepalived
  leaves them.
* **Bounded output.** stdout and stderr share one pipe; the pipe is read continuously and only the last
  ``max_output`` bytes are kept, so a script writing gigabytes costs CPU, not memory.
* **Credentials.** ``user``/``group`` are names resolved like keepalived's ``set_uid_gid()``: the user's
  primary group unless a group is named, and the supplementary groups reduced to that one group
  (keepalived ``setgid(); setgroups(1, &gid); setuid()``).  An unknown name is reported in
  :attr:`ScriptResult.error`, never raised.
* **Environment.** keepalived passes its own ``environ`` through untouched and sets no variables for
  scripts; we deliberately pass a minimal one instead (``PATH`` only, plus what the caller adds), so the
  daemon's environment never leaks into scripts.  The working directory is ``/`` (keepalived has
  ``chdir("/")``'d when it daemonised).  stdin is ``/dev/null``; other descriptors are closed.
* **No shebang.** keepalived, finding with libmagic that a script is not an executable, runs it through
  ``system()``, i.e. ``/bin/sh``.  We do the equivalent without a command string: when ``execve`` fails
  with ``ENOEXEC`` the file is run as ``/bin/sh FILE ARGS...``.

Not mirrored: keepalived also sets ``PR_SET_PDEATHSIG`` (``SIGTERM`` when keepalived dies) and resets
every signal disposition and the signal mask in the child.  Both need code running between ``fork`` and
``exec`` (``preexec_fn``), which is unsafe in a threaded process; Python already restores ``SIGPIPE`` and
``SIGXFSZ`` to their defaults, exec resets every handled signal, and the daemons do not block signals.

keepalived's quoting/escaping rules for a script string are in :mod:`keepalived_py.command_line`, its script
security rule in :mod:`keepalived_py.script_security`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shlex
import shutil
import signal as _signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keepalived_py.events import EventSink
from keepalived_py.procname import die_with_parent as die_with_parent_signal
from keepalived_py.script_security import SCRIPT_PATH, resolve_ids

__all__ = [
    "DEFAULT_PATH",
    "ScriptResult",
    "run_script",
]

logger = logging.getLogger(__name__)

#: ``PATH`` given to every script unless the caller's ``env`` overrides it.
DEFAULT_PATH = SCRIPT_PATH

#: How long to wait for a leader that survived ``SIGKILL`` (uninterruptible sleep) before giving up.
_REAP_WAIT = 5.0
#: Longest command line (argv joined) put in a ``script_run`` event.
EVENT_ARGV_CHARS = 200

#: Where ``script_run`` events go when a caller names no sink (the child runtime sets it); None: nowhere.
default_events: EventSink | None = None


def set_default_events(sink: EventSink | None) -> None:
    """Send the ``script_run`` events of every run that names no sink of its own to ``sink``."""
    global default_events
    default_events = sink


# --- result -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptResult:
    """What happened to one script run.

    ``returncode`` is the exit status when the script exited, ``signal`` the signal number when it was
    killed by one (then ``returncode`` is None).  ``error`` is set when the script could not be started
    at all ("not found", "permission denied", "unknown user x", ...); both codes are None then.
    ``output`` holds the *last* ``max_output`` bytes of stdout+stderr (``output_truncated`` says whether
    earlier bytes were discarded).  ``pid`` is the leader's pid, which is also the script's process
    group id.  ``orphans_killed`` says that children the script left holding its output pipe were killed.
    """

    argv: tuple[str, ...]
    returncode: int | None
    signal: int | None
    timed_out: bool
    output: bytes
    output_truncated: bool
    duration: float
    error: str | None = None
    pid: int | None = None
    orphans_killed: bool = False

    @property
    def ok(self) -> bool:
        """True when the script ran, was not timed out, and exited with status 0."""
        return self.returncode == 0 and not self.timed_out and self.error is None

    def describe(self) -> str:
        """One line for the log: the command, how it ended, and the last line of its output."""
        cmd = shlex.join(self.argv) if self.argv else "(empty command)"
        if len(cmd) > 200:
            cmd = cmd[:197] + "..."
        started = self.returncode is not None or self.signal is not None or self.timed_out
        if not started:
            text = f"{cmd}: {self.error or 'did not run'}"
        else:
            if self.timed_out:
                how = f"timed out after {self.duration:.2f}s"
                if self.signal is not None:
                    how += f" (killed by {_signal_name(self.signal)})"
                elif self.returncode is not None:
                    how += f" (exited with status {self.returncode})"
            elif self.signal is not None:
                how = f"killed by {_signal_name(self.signal)} after {self.duration:.2f}s"
            else:
                how = f"exited with status {self.returncode} after {self.duration:.2f}s"
            text = f"{cmd}: {how}"
            if self.error is not None:
                text += f"; {self.error}"
            if self.orphans_killed:
                text += "; killed children left holding its output"
        tail = _last_line(self.output)
        if tail:
            text += f"; output: {tail!r}"
        return text


def _signal_name(signum: int) -> str:
    try:
        return _signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _last_line(output: bytes, limit: int = 200) -> str:
    lines = [line for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1].strip()
    return last if len(last) <= limit else last[: limit - 3] + "..."


# --- running ------------------------------------------------------------------------------------------------


class _Capture(asyncio.SubprocessProtocol):
    """Collects the merged stdout/stderr into a bounded buffer and reports exit and end-of-file."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_output: int) -> None:
        self._max = max_output
        self.buffer = bytearray()
        self.truncated = False
        self.exited: asyncio.Future[None] = loop.create_future()
        self.output_closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        if not data:
            return
        self.buffer += data
        excess = len(self.buffer) - self._max
        if excess > 0:
            del self.buffer[:excess]
            self.truncated = True

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1 and not self.output_closed.done():
            self.output_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def _wait_done(futures: Sequence[asyncio.Future[None]], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for all ``futures``; True if they all completed."""
    pending = [f for f in futures if not f.done()]
    if not pending:
        return True
    if timeout <= 0:
        return False
    _done, still = await asyncio.wait(pending, timeout=timeout)
    return not still


def _die_with_parent() -> None:
    """In the forked child, after the user/group switch (which would clear it): SIGTERM when the parent
    dies."""
    die_with_parent_signal(_signal.SIGTERM)


def _signal_group(pgid: int, signum: int) -> None:
    """Signal a whole process group, ignoring a group that no longer exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _credentials(user: str | None, group: str | None) -> dict[str, Any] | str:
    """Popen keyword arguments switching to ``user``/``group``, or an error message."""
    if user is None and group is None:
        return {}
    ids = resolve_ids(user, group)
    if isinstance(ids, str):
        return ids
    uid, gid = ids
    kwargs: dict[str, Any] = {}
    euid = os.geteuid()
    if uid != euid:
        kwargs["user"] = uid
    if gid != os.getegid():
        kwargs["group"] = gid
    if euid == 0 or kwargs:
        # keepalived's setgroups(1, &gid): the script keeps no other supplementary group.
        kwargs["extra_groups"] = [gid]
    return kwargs


def _spawn_error(exc: OSError, argv0: str, cwd: str) -> str:
    if exc.filename is not None and os.fsdecode(exc.filename) == cwd and argv0 != cwd:
        return f"cannot change directory to {cwd}: {exc.strerror}"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "not found"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.EPERM:
        return "permission denied (cannot switch user/group)"
    return f"cannot execute: {exc.strerror or exc}"


def _report(result: ScriptResult, purpose: str, sink: EventSink | None) -> None:
    sink = sink if sink is not None else default_events
    if sink is None:
        return
    cmd = shlex.join(result.argv) if result.argv else ""
    if len(cmd) > EVENT_ARGV_CHARS:
        cmd = cmd[:EVENT_ARGV_CHARS - 3] + "..."
    try:
        sink(
            "script_run",
            script=result.argv[0] if result.argv else "",
            argv=cmd,
            purpose=purpose,
            ok=result.ok,
            exit_status=result.returncode,
            signal=_signal_name(result.signal) if result.signal is not None else None,
            timed_out=result.timed_out,
            duration=round(result.duration, 6),
            error=result.error,
        )
    except Exception:  # an event must never break a script's caller
        logger.exception("cannot record a script_run event")


async def run_script(
    argv: Sequence[str],
    *,
    timeout: float,
    user: str | None = None,
    group: str | None = None,
    env: Mapping[str, str] | None = None,
    max_output: int = 64 * 1024,
    kill_grace: float = 1.0,
    cwd: str = "/",
    drain_grace: float = 0.5,
    on_spawn: Callable[[int], None] | None = None,
    die_with_parent: bool = False,
    purpose: str = "script",
    events: EventSink | None = None,
) -> ScriptResult:
    """Run ``argv`` (no shell) and return how it ended; never raises for script failures.

    A ``script_run`` event saying what the script was for (``purpose``: ``notify``, ``vrrp_script``,
    ``misc_check``...) goes to ``events``, else to :data:`default_events`; a cancelled run has none.
    The other arguments are :func:`_run_script`'s.
    """
    result = await _run_script(argv, timeout=timeout, user=user, group=group, env=env,
                               max_output=max_output, kill_grace=kill_grace, cwd=cwd,
                               drain_grace=drain_grace, on_spawn=on_spawn, die_with_parent=die_with_parent)
    _report(result, purpose, events)
    return result


async def _run_script(
    argv: Sequence[str],
    *,
    timeout: float,
    user: str | None = None,
    group: str | None = None,
    env: Mapping[str, str] | None = None,
    max_output: int = 64 * 1024,
    kill_grace: float = 1.0,
    cwd: str = "/",
    drain_grace: float = 0.5,
    on_spawn: Callable[[int], None] | None = None,
    die_with_parent: bool = False,
) -> ScriptResult:
    """Run ``argv`` (no shell) and return how it ended; never raises for script failures.

    ``timeout`` bounds the script's run time; at the deadline its process group gets ``SIGTERM`` and,
    ``kill_grace`` seconds later, ``SIGKILL``.  ``drain_grace`` bounds how long the output pipe may stay
    open after the leader exits (held by a background child) before the group is killed.  ``env`` is
    added to a minimal environment holding only ``PATH`` (:data:`DEFAULT_PATH`).  ``user``/``group`` are
    names; unknown names, a missing program or a permission problem come back in ``error``.
    ``on_spawn`` is called with the script's pid (= its process group) once it runs; ``die_with_parent``
    makes the kernel send it SIGTERM when the process that started it dies (a long-running script must not
    outlive a killed child).

    Cancelling the call kills the script's process group.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, not {timeout!r}")
    if max_output < 0:
        raise ValueError(f"max_output must not be negative, not {max_output!r}")
    args = tuple(argv)
    start = time.monotonic()

    def failed(message: str) -> ScriptResult:
        return ScriptResult(args, None, None, False, b"", False, time.monotonic() - start, message)

    if not args:
        return failed("empty command")
    creds = _credentials(user, group)
    if isinstance(creds, str):
        return failed(creds)
    full_env = {"PATH": DEFAULT_PATH, **(env or {})}

    loop = asyncio.get_running_loop()

    async def spawn(exec_argv: Sequence[str]) -> tuple[asyncio.SubprocessTransport, _Capture]:
        return await loop.subprocess_exec(
            lambda: _Capture(loop, max_output),
            *exec_argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            close_fds=True,
            start_new_session=True,
            cwd=cwd,
            env=full_env,
            preexec_fn=_die_with_parent if die_with_parent else None,
            **creds,
        )

    try:
        try:
            transport, capture = await spawn(args)
        except OSError as exc:
            if exc.errno != errno.ENOEXEC:
                raise
            # No "#!" line: run it as a shell script, as keepalived's system() fallback does.
            path = args[0] if "/" in args[0] else shutil.which(args[0], path=full_env.get("PATH"))
            if path is None:
                raise
            logger.warning("script %s has no #! line; running it with /bin/sh", args[0])
            transport, capture = await spawn(("/bin/sh", path, *args[1:]))
    except OSError as exc:
        return failed(_spawn_error(exc, args[0], cwd))
    except (ValueError, TypeError) as exc:  # e.g. an argument holding a NUL character
        return failed(f"invalid command: {exc}")

    pid = transport.get_pid()
    if on_spawn is not None:
        on_spawn(pid)
    timed_out = False
    orphans_killed = False
    note: str | None = None
    try:
        if not await _wait_done([capture.exited], timeout - (time.monotonic() - start)):
            timed_out = True
            _signal_group(pid, _signal.SIGTERM)
            await _wait_done([capture.exited, capture.output_closed], kill_grace)
            # Unconditionally: children that ignore SIGTERM must not outlive a timed-out script.
            _signal_group(pid, _signal.SIGKILL)
            if not await _wait_done([capture.exited], _REAP_WAIT):
                note = "did not exit after SIGKILL"
        if capture.exited.done() and not await _wait_done([capture.output_closed], drain_grace):
            # The leader is gone but something in its group still holds the output pipe.
            orphans_killed = True
            _signal_group(pid, _signal.SIGTERM)
            if not await _wait_done([capture.output_closed], kill_grace):
                _signal_group(pid, _signal.SIGKILL)
                await _wait_done([capture.output_closed], drain_grace)
    except BaseException:
        # Cancelled (or worse): never leave the script behind.
        _signal_group(pid, _signal.SIGKILL)
        transport.close()
        raise
    returncode = transport.get_returncode()
    transport.close()  # closes our end of a pipe still held by an escaped child

    sig: int | None = None
    if returncode is not None and returncode < 0:
        sig, returncode = -returncode, None
    return ScriptResult(
        argv=args,
        returncode=returncode,
        signal=sig,
        timed_out=timed_out,
        output=bytes(capture.buffer),
        output_truncated=capture.truncated,
        duration=time.monotonic() - start,
        error=note,
        pid=pid,
        orphans_killed=orphans_killed,
    )
