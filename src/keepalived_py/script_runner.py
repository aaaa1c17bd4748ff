"""Running external scripts safely, the way keepalived runs its notify and check scripts.

This is a small shared base: it imports nothing from the rest of ``keepalived_py``.

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

:func:`split_command_line` implements keepalived's quoting/escaping rules for a script string
(``alloc_strvec_quoted_escaped()`` in ``lib/parser.c``) and :func:`script_is_secure` its script security
rule (``check_security()`` in ``lib/notify.c``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import logging
import os
import pwd
import shlex
import shutil
import signal as _signal
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PATH",
    "ScriptResult",
    "run_script",
    "script_is_secure",
    "script_needs_protection",
    "split_command_line",
]

logger = logging.getLogger(__name__)

#: ``PATH`` given to every script unless the caller's ``env`` overrides it.
DEFAULT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

#: How long to wait for a leader that survived ``SIGKILL`` (uninterruptible sleep) before giving up.
_REAP_WAIT = 5.0


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

    @property
    def output_text(self) -> str:
        """The captured output decoded as UTF-8 (undecodable bytes replaced)."""
        return self.output.decode("utf-8", "replace")

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


def _signal_group(pgid: int, signum: int) -> None:
    """Signal a whole process group, ignoring a group that no longer exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _credentials(user: str | None, group: str | None) -> dict[str, Any] | str:
    """Popen keyword arguments switching to ``user``/``group``, or an error message."""
    if user is None and group is None:
        return {}
    uid: int | None = None
    gid: int | None = None
    if user is not None:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            return f"unknown user {user}"
        uid, gid = pw.pw_uid, pw.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            return f"unknown group {group}"
    kwargs: dict[str, Any] = {}
    euid = os.geteuid()
    if uid is not None and uid != euid:
        kwargs["user"] = uid
    if gid is not None and gid != os.getegid():
        kwargs["group"] = gid
    if gid is not None and (euid == 0 or kwargs):
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
) -> ScriptResult:
    """Run ``argv`` (no shell) and return how it ended; never raises for script failures.

    ``timeout`` bounds the script's run time; at the deadline its process group gets ``SIGTERM`` and,
    ``kill_grace`` seconds later, ``SIGKILL``.  ``drain_grace`` bounds how long the output pipe may stay
    open after the leader exits (held by a background child) before the group is killed.  ``env`` is
    added to a minimal environment holding only ``PATH`` (:data:`DEFAULT_PATH`).  ``user``/``group`` are
    names; unknown names, a missing program or a permission problem come back in ``error``.

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


# --- keepalived's script-string splitting -----------------------------------------------------------------

_WHITE_SPACE = frozenset(b" \t\f\n\r\v")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_OCTAL_DIGITS = frozenset(b"01234567")
_SIMPLE_ESCAPES = {
    ord("a"): 0x07,
    ord("b"): 0x08,
    ord("E"): 0x1B,
    ord("f"): 0x0C,
    ord("n"): 0x0A,
    ord("r"): 0x0D,
    ord("t"): 0x09,
    ord("v"): 0x0B,
}
_BACKSLASH, _SQUOTE, _DQUOTE = ord("\\"), ord("'"), ord('"')


def split_command_line(text: str) -> list[str]:
    """Split a script string into words by keepalived's rules (``alloc_strvec_quoted_escaped()``).

    * Words are separated by runs of blanks (space, ``\\t``, ``\\f``, ``\\n``, ``\\r``, ``\\v``).
    * ``'...'`` and ``"..."`` quote blanks and the other quote character; quotes can join parts of one
      word (``a'b c'd`` is ``ab cd``) and ``''`` is an empty word.
    * A backslash escapes the next character *everywhere*, inside either kind of quote too:
      ``\\a \\b \\E \\f \\n \\r \\t \\v`` are control characters, ``\\xHH...`` takes every hex digit that
      follows (keeping the low 8 bits), ``\\NNN`` up to three octal digits, ``\\cX`` the control
      character ``X & 0x1f``; any other character stands for itself (``\\\\``, ``\\'``, ``\\"``, ``\\ ``).
      ``\\x`` not followed by a hex digit is ``x``.
    * Escapes produce bytes; words are decoded like file names (UTF-8, undecodable bytes as surrogate
      escapes, so they exec as the exact bytes).  A word is cut at a NUL byte, as C strings are.

    Raises ``ValueError`` for an unterminated quote, a backslash at the very end, or a string with no
    words at all (keepalived rejects all three).

    keepalived applies these rules twice to ``notify_master "/bin/x 'a b'"``: once to the whole keyword
    line (giving the script string ``/bin/x 'a b'``) and once to the script string; this function is
    one pass.
    """
    data = os.fsencode(text)
    n = len(data)
    words: list[str] = []
    i = 0
    while i < n:
        while i < n and data[i] in _WHITE_SPACE:
            i += 1
        if i >= n:
            break
        word = bytearray()
        quote = 0
        while i < n:
            c = data[i]
            if c == _BACKSLASH:
                i += 1
                if i >= n:
                    raise ValueError(f"missing character after '\\' at the end of {text!r}")
                value, i = _escape(data, i)
                word.append(value)
            elif quote:
                if c == quote:
                    quote = 0
                else:
                    word.append(c)
                i += 1
            elif c in (_SQUOTE, _DQUOTE):
                quote = c
                i += 1
            elif c in _WHITE_SPACE:
                break
            else:
                word.append(c)
                i += 1
        if quote:
            raise ValueError(f"missing terminating {chr(quote)} in {text!r}")
        words.append(os.fsdecode(bytes(word).split(b"\0", 1)[0]))
    if not words:
        raise ValueError("empty command line")
    return words


def _escape(data: bytes, i: int) -> tuple[int, int]:
    """Decode the escape whose character (after the backslash) is at ``data[i]``: (byte, next index)."""
    n = len(data)
    c = data[i]
    if c == ord("x") and i + 1 < n and data[i + 1] in _HEX_DIGITS:
        value = 0
        i += 1
        while i < n and data[i] in _HEX_DIGITS:
            value = ((value << 4) | int(chr(data[i]), 16)) & 0xFF
            i += 1
        return value, i
    if c == ord("c") and i + 1 < n:
        return data[i + 1] & 0x1F, i + 2
    if c in _OCTAL_DIGITS:
        value = c - ord("0")
        i += 1
        for _ in range(2):
            if i < n and data[i] in _OCTAL_DIGITS:
                value = ((value << 3) + data[i] - ord("0")) & 0xFF
                i += 1
        return value, i
    return _SIMPLE_ESCAPES.get(c, c), i + 1


# --- keepalived's script security -------------------------------------------------------------------------


def script_needs_protection(path: str | os.PathLike[str], uid: int, gid: int) -> bool:
    """Whether keepalived would apply its path security check to this script.

    keepalived checks the path only when the script would run with root privileges: run as uid 0 or
    gid 0, or the file is set-uid root (and owner-executable) or set-gid root (and group-executable).
    A file that cannot be stat'ed needs no protection (it cannot run).
    """
    if uid == 0 or gid == 0:
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    mode = st.st_mode
    return (st.st_uid == 0 and bool(mode & stat.S_IXUSR) and bool(mode & stat.S_ISUID)) or (
        st.st_gid == 0 and bool(mode & stat.S_IXGRP) and bool(mode & stat.S_ISGID)
    )


def find_script(argv0: str) -> Path | None:
    """The file a script's first word names, resolved (bare names searched in :data:`DEFAULT_PATH`, the PATH
    scripts run with); None when there is no such regular file."""
    found = argv0 if "/" in argv0 else shutil.which(argv0, path=DEFAULT_PATH)
    if not found:
        return None
    try:
        path = Path(found).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return path if path.is_file() else None


def script_is_secure(path: str | os.PathLike[str]) -> str | None:
    """None if the script at ``path`` is secure by keepalived's rule, else a reason naming the culprit.

    The rule (``check_security()`` in keepalived's ``lib/notify.c``), applied to the resolved path
    (symbolic links and ``.``/``..`` removed) and checking every component from ``/`` down with
    ``lstat``:

    * every component must be owned by root;
    * a directory *without* the sticky bit, and the file itself, must not be writable by others, nor by
      its group unless that group is root (gid 0) — group write by root's group is allowed, and a
      world-writable sticky directory such as ``/tmp`` is allowed;
    * every component but the last must be a directory; the last must be a regular file (or a symbolic
      link, which is only checked for root ownership).

    Like keepalived, when ``path``'s file name is a symbolic link whose resolved directory holds a link
    of the same name to the same file, that name is checked as well as the real file.  A path that
    cannot be resolved is reported as not found.
    """
    given = os.fspath(path)
    try:
        real = os.path.realpath(given, strict=True)
    except (OSError, RuntimeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"{given}: not found ({why})"
    to_check = [real]
    real_dir, real_name = os.path.split(real)
    given_name = os.path.basename(given)
    if given_name and given_name != real_name:
        # keepalived keeps the name a script was invoked by if, in the resolved directory, that name
        # still reaches the same file (some programs behave according to their name).
        alias = os.path.join(real_dir, given_name)
        try:
            same = os.path.samestat(os.stat(alias), os.stat(real))
        except OSError:
            same = False
        if same:
            to_check.insert(0, alias)
    for candidate in to_check:
        reason = _insecure_component(candidate)
        if reason is not None:
            return reason
    return None


def _insecure_component(path: str) -> str | None:
    """Apply keepalived's per-component rule to the absolute ``path``."""
    parts = [p for p in path.split("/") if p]
    prefixes = ["/"] + ["/" + "/".join(parts[: k + 1]) for k in range(len(parts))]
    for index, component in enumerate(prefixes):
        last = index == len(prefixes) - 1
        try:
            st = os.lstat(component)
        except OSError as exc:
            return f"{component}: not found ({exc.strerror})"
        mode = st.st_mode
        if (not last and not stat.S_ISDIR(mode)) or (last and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode))):
            return f"{component}: wrong file type in script path"
        if st.st_uid != 0:
            return f"{component}: owned by uid {st.st_uid}, not root"
        if (stat.S_ISDIR(mode) and not mode & stat.S_ISVTX) or stat.S_ISREG(mode):
            if mode & stat.S_IWOTH:
                return f"{component}: writable by others"
            if st.st_gid != 0 and mode & stat.S_IWGRP:
                return f"{component}: writable by group {st.st_gid}"
    return None
