"""The notification layer shared by the VRRP and checker daemons.

Three parts:

* :class:`NotifyQueue` runs notify scripts strictly one at a time, in submission order, each under a
  timeout, without ever blocking the caller.  (keepalived forks every notify script at once and never
  waits for it; we serialise them so that a ``MASTER`` script can never overtake the ``BACKUP`` script
  submitted before it, and bound each one so a hung script cannot hold the queue.)
* :class:`NotifyFifo` writes keepalived-format lines to a notify FIFO (``notify_fifo``,
  ``vrrp_notify_fifo``, ``lvs_notify_fifo``) exactly as keepalived opens and writes it.
* Pure formatting functions for those lines and for the arguments keepalived appends to the generic
  ``notify`` script.

The only project import is :mod:`keepalived_py.script_runner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import ipaddress
import logging
import os
import pwd
import signal
import socket
import stat
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from keepalived_py.runtime_files import read_runtime_json, write_json_atomic
from keepalived_py.script_runner import ScriptResult, run_script
from keepalived_py.script_security import ScriptPolicy, UserSpec

__all__ = [
    "FIFO_EVENTS",
    "NOTIFY_STATES",
    "NotifyFifo",
    "NotifyQueue",
    "NotifyStats",
    "fifo_line_group",
    "fifo_line_instance",
    "fifo_line_real_server",
    "fifo_line_virtual_server",
    "format_real_server",
    "format_service",
    "format_virtual_server",
    "notify_args",
]

logger = logging.getLogger(__name__)

# --- line and argument formats (keepalived/vrrp/vrrp_notify.c, keepalived/check/ipwrapper.c) ------------

#: States a VRRP instance or sync group reports to scripts and FIFOs.
NOTIFY_STATES = frozenset({"MASTER", "BACKUP", "FAULT", "STOP", "DELETED"})

#: Everything keepalived can write after the name on a VRRP FIFO line: the states plus the events
#: ``MASTER_RX_LOWER_PRI`` (a master received an advert with a lower priority) and ``MASTER_PRIORITY`` /
#: ``BACKUP_PRIORITY`` (``vrrp_notify_priority_changes``: the effective priority changed).
FIFO_EVENTS = NOTIFY_STATES | {"MASTER_RX_LOWER_PRI", "MASTER_PRIORITY", "BACKUP_PRIORITY"}

_UNKNOWN = "{UNKNOWN}"


def _state_word(state: str, allowed: frozenset[str]) -> str:
    # keepalived prints "{UNKNOWN}" for any state it has no word for (INIT, for instance).
    word = str(state)
    return word if word in allowed else _UNKNOWN


def fifo_line_instance(name: str, state: str, priority: int) -> str:
    """The FIFO line for a VRRP instance: ``INSTANCE "VI_1" MASTER 100\\n``.

    ``state`` is one of :data:`FIFO_EVENTS` (a ``StrEnum`` member works); anything else is written as
    ``{UNKNOWN}``, as keepalived does.  ``priority`` is the instance's effective priority.
    """
    return f'INSTANCE "{name}" {_state_word(state, FIFO_EVENTS)} {int(priority)}\n'


def fifo_line_group(name: str, state: str) -> str:
    """The FIFO line for a sync group: ``GROUP "G1" BACKUP 0\\n`` (keepalived always writes priority 0)."""
    return f'GROUP "{name}" {_state_word(state, FIFO_EVENTS)} 0\n'


def notify_args(kind: str, name: str, state: str, priority: int = 0) -> list[str]:
    """The words keepalived appends to the generic ``notify`` script of an instance or sync group.

    ``script INSTANCE|GROUP NAME MASTER|BACKUP|FAULT|STOP|DELETED PRIORITY``: the name unquoted, the
    priority in decimal, always 0 for a ``GROUP``; an unknown state is passed as ``{UNKNOWN}``.
    (The per-state scripts - ``notify_master`` and the like - get no extra words.)
    """
    if kind not in ("INSTANCE", "GROUP"):
        raise ValueError(f"notify kind must be INSTANCE or GROUP, not {kind!r}")
    prio = 0 if kind == "GROUP" else int(priority)
    return [kind, name, _state_word(state, NOTIFY_STATES), str(prio)]


_PROTOCOLS = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp", 132: "sctp", 0: "none"}


def _protocol_word(protocol: str | int | None) -> str:
    if protocol is None:
        return "none"
    if isinstance(protocol, int):
        return _PROTOCOLS.get(protocol, "?")
    word = protocol.lower()
    return word if word in ("tcp", "udp", "sctp", "none") else "?"


def _address_text(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return socket.inet_ntop(family, ip.packed)  # glibc's spelling, as keepalived prints it


def format_service(
    address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, protocol: str | int | None
) -> str:
    """keepalived's address/protocol/port trio: ``[192.0.2.1]:tcp:80``, ``[2001:db8::1]:udp:53``.

    ``protocol`` is a name (tcp, udp, sctp) or an IP protocol number; none/0 prints ``none`` and an
    unknown one ``?``, as keepalived does.
    """
    return f"[{_address_text(address)}]:{_protocol_word(protocol)}:{int(port)}"


def format_virtual_server(
    *,
    address: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
    port: int = 0,
    protocol: str | int | None = "tcp",
    fwmark: int | None = None,
    group: str | None = None,
) -> str:
    """How keepalived names a virtual server on the FIFO (``format_vs()``).

    ``[GROUPNAME]:PORT`` for ``virtual_server group``, ``FWM 7`` for ``virtual_server fwmark``, else the
    :func:`format_service` trio.  Exactly one of ``group``, ``fwmark`` and ``address`` is expected; they
    are tried in that order.
    """
    if group is not None:
        return f"[{group}]:{int(port)}"
    if fwmark is not None:
        return f"FWM {int(fwmark)}"
    if address is None:
        raise ValueError("a virtual server needs an address, a fwmark or a group")
    return format_service(address, port, protocol)


def format_real_server(
    address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, protocol: str | int | None
) -> str:
    """How keepalived names a real server (``format_rs()``): the trio with the *virtual* server's protocol."""
    return format_service(address, port, protocol)


def fifo_line_virtual_server(vs: str, up: bool) -> str:
    """The FIFO line for a virtual server's quorum: ``VS [192.0.2.1]:tcp:80 UP\\n`` (or ``DOWN``).

    ``vs`` comes from :func:`format_virtual_server`.
    """
    return f"VS {vs} {'UP' if up else 'DOWN'}\n"


def fifo_line_real_server(rs: str, vs: str, up: bool) -> str:
    """The FIFO line for a real server: ``RS [10.0.0.1]:tcp:80 [192.0.2.1]:tcp:80 DOWN\\n``."""
    return f"RS {rs} {vs} {'UP' if up else 'DOWN'}\n"


# --- the FIFO -----------------------------------------------------------------------------------------------


def open_fifos(configured: Sequence[NotifyFifoSpec | None]) -> list[NotifyFifo]:
    """Open the configured FIFOs (each path once: the first line naming it decides its owner)."""
    fifos: dict[str, NotifyFifo] = {}
    for spec in configured:
        if spec is None or spec.path in fifos:
            continue
        fifo = fifos[spec.path] = NotifyFifo.configured(spec.path, spec.user, spec.group)
        if not fifo.open():
            logger.warning("cannot open notify FIFO %s: %s", spec.path, fifo.error)
    return list(fifos.values())


#: A FIFO script runs as long as the daemon: its "timeout" (about 30 years).
_FOREVER = 1e9


class FifoScript:
    """A notify FIFO's reader script (``notify_fifo_script``, ``vrrp_notify_fifo_script``,
    ``lvs_notify_fifo_script``), as keepalived runs it: started by each child that opens the FIFO, with the
    FIFO's path as its last argument, without a timeout, in a process group of its own; it is not restarted
    when it exits ("notify fifo script terminated" is logged). kpd also has the kernel send it SIGTERM if the
    child that started it dies, so a killed and restarted child never leaves a second reader behind.

    :meth:`stop` (at shutdown, after the FIFO was unlinked and closed) sends SIGTERM to its group and, if it
    is still there ``grace`` seconds later, SIGKILL.
    """

    def __init__(
        self, argv: Sequence[str], fifo_path: str, *, what: str, user: str | None = None,
        group: str | None = None, grace: float = 1.0, on_spawn: Callable[[], None] | None = None,
    ) -> None:
        self.on_spawn = on_spawn
        self.argv = (*argv, fifo_path)
        self.what = what
        self.user, self.group = user, group
        self.grace = grace
        self.pid: int | None = None
        self.result: ScriptResult | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.what} fifo script")

    async def _run(self) -> None:
        self.result = await run_script(
            self.argv, timeout=_FOREVER, user=self.user, group=self.group,
            on_spawn=self._spawned, die_with_parent=True, purpose="notify_fifo",
        )
        self.pid = None
        logger.info("%s notify fifo script terminated (%s)", self.what, self.result.describe())

    def _spawned(self, pid: int) -> None:
        self.pid = pid
        if self.on_spawn is not None:
            self.on_spawn()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), self.grace)
        if not task.done():
            task.cancel()  # run_script kills the whole group
            with contextlib.suppress(asyncio.CancelledError):
                await task


class FifoScripts:
    """The FIFO scripts of one child: started once its FIFOs are open, each through the script security
    rule (as the USER [GROUP] it names), stopped at shutdown.

    ``state_file`` (in the runtime dir) records each running script's process group, so that a child
    started after one that was killed first kills the scripts that child left (a reader that loops
    reopening the FIFO would otherwise read beside the new one).
    """

    def __init__(self, state_file: str | None = None) -> None:
        self.running: list[FifoScript] = []
        self.state_file = state_file

    def start(
        self, global_defs: object, fifos: Sequence[NotifyFifo],
        scripts: Sequence[tuple[str, NotifyFifoSpec | None, ScriptSpec | None]],
    ) -> None:
        """``scripts``: (what, the configured FIFO, its script) -- each script of an opened FIFO is run."""
        self._kill_leftovers()
        opened = {f.path for f in fifos if f.is_open}
        policy = ScriptPolicy.of(global_defs)
        for what, spec, script in scripts:
            if spec is None or script is None or spec.path not in opened:
                continue
            decision = policy.decide((*script.argv, spec.path), script.user)
            if decision.refused is not None:
                logger.warning(
                    "not running %s notify fifo script %s: %s", what, script.argv[0], decision.refused
                )
                continue
            runner = FifoScript(
                decision.argv[:-1], spec.path, what=what, user=decision.user, group=decision.group,
                on_spawn=self._record,
            )
            runner.start()
            self.running.append(runner)

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.running))
        self.running.clear()
        if self.state_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.state_file)

    def _record(self) -> None:
        if self.state_file is None:
            return
        doc = [{"pid": s.pid, "argv": list(s.argv)} for s in self.running if s.pid is not None]
        try:
            write_json_atomic(self.state_file, doc, sync=False)
        except OSError as err:
            logger.warning("cannot record the notify fifo scripts in %s: %s", self.state_file, err)

    def _kill_leftovers(self) -> None:
        """Kill the process group of every script an earlier child recorded that still runs it."""
        if self.state_file is None:
            return
        try:
            doc = read_runtime_json(self.state_file, 1 << 20)
        except (OSError, ValueError):
            return
        for entry in doc if isinstance(doc, list) else ():
            pid, argv = entry.get("pid"), entry.get("argv")
            if isinstance(pid, int) and pid > 1 and isinstance(argv, list) and _runs(pid, argv):
                logger.info("killing notify fifo script %s (pid %d) left by the previous child", argv[0], pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)


def _runs(pid: int, argv: list[str]) -> bool:
    """``pid`` still leads its process group running the script ``argv`` (not a reused pid)."""
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")  # noqa: SIM115
        pgrp = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[2])  # noqa: SIM115
    except (OSError, ValueError, IndexError):
        return False
    words = {os.fsdecode(w) for w in cmdline}
    return pgrp == pid and argv[0] in words and argv[-1] in words


class ScriptSpec(Protocol):
    """A configured script with the user it names (the config model's ``NotifyScript``)."""

    @property
    def argv(self) -> tuple[str, ...]: ...

    @property
    def user(self) -> UserSpec | None: ...


class NotifyFifoSpec(Protocol):
    """A configured FIFO (the config model's ``NotifyFifo``)."""

    @property
    def path(self) -> str: ...

    @property
    def user(self) -> str | None: ...

    @property
    def group(self) -> str | None: ...


class NotifyFifo:
    """A notify FIFO opened and written the way keepalived does it (``fifo_open()`` in ``lib/notify.c``).

    * :meth:`open` creates the FIFO if absent (``mkfifo`` mode 0644, subject to the umask, then
      ``chown`` to ``uid``/``gid`` when given), and opens it ``O_RDWR | O_NONBLOCK | O_NOFOLLOW |
      O_CLOEXEC``.  Opening read-write, as keepalived does, means the open never fails with ``ENXIO``
      for lack of a reader and writes never get ``EPIPE``: with no reader, lines collect in the pipe
      buffer (64 KiB on Linux) and a reader that opens later receives them.
    * A path whose last component is a symbolic link is refused (``O_NOFOLLOW``), and so is anything
      that is not a FIFO (checked before and after opening - keepalived does not check, but writing
      lines into a regular file or a device by mistake is worse than no FIFO).
    * :meth:`write_line` makes one non-blocking ``write()``; when the pipe is full (no reader keeping
      up) the line is dropped and counted, as keepalived ignores the write error.  It never raises and
      never blocks.  Lines are far below ``PIPE_BUF``, so lines written by both daemons to the shared
      ``notify_fifo`` never interleave.
    * :meth:`close` unlinks the FIFO first if this object created it (so a reader looping on reopen
      cannot reopen it), then closes it.

    Use from one thread (the event loop's); no method awaits.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, uid: int | None = None, gid: int | None = None
    ) -> None:
        self.path = os.fspath(path)
        self.uid = uid
        self.gid = gid
        self.created = False
        self.error: str | None = None
        self.lines_written = 0
        self.lines_dropped = 0
        self._fd: int | None = None
        self._dropping = False

    @property
    def is_open(self) -> bool:
        """True while the FIFO is open for writing."""
        return self._fd is not None

    def open(self) -> bool:
        """Create (if needed) and open the FIFO; False, with :attr:`error` set and logged, on failure."""
        if self._fd is not None:
            return True
        self.error = None
        try:
            os.mkfifo(self.path, 0o644)
        except FileExistsError:
            pass
        except OSError as exc:
            return self._fail(f"cannot create notify FIFO {self.path}: {exc.strerror}")
        else:
            self.created = True
            self._chown()
        try:
            st = os.lstat(self.path)
        except OSError as exc:
            return self._fail(f"cannot stat notify FIFO {self.path}: {exc.strerror}")
        if stat.S_ISLNK(st.st_mode):
            return self._fail(f"notify FIFO {self.path} is a symbolic link; refusing it")
        if not stat.S_ISFIFO(st.st_mode):
            return self._fail(f"notify FIFO {self.path} exists and is not a FIFO")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return self._fail(f"notify FIFO {self.path} is a symbolic link; refusing it")
            return self._fail(f"cannot open notify FIFO {self.path}: {exc.strerror}")
        try:
            is_fifo = stat.S_ISFIFO(os.fstat(fd).st_mode)
        except OSError:
            is_fifo = False
        if not is_fifo:  # replaced between the check and the open
            os.close(fd)
            return self._fail(f"notify FIFO {self.path} is not a FIFO")
        self._fd = fd
        return True

    def _chown(self) -> None:
        uid = -1 if self.uid is None or self.uid == os.geteuid() else self.uid
        gid = -1 if self.gid is None or self.gid == os.getegid() else self.gid
        if uid == -1 and gid == -1:
            return
        try:
            os.chown(self.path, uid, gid, follow_symlinks=False)
        except OSError as exc:
            logger.info("failed to set uid:gid for notify FIFO %s: %s", self.path, exc.strerror)

    @classmethod
    def configured(cls, path: str, user: str | None = None, group: str | None = None) -> NotifyFifo:
        """The FIFO of a ``notify_fifo PATH [USER [GROUP]]`` line: created owned by USER (and GROUP, else
        USER's primary group), as keepalived does; an unknown name is logged and the FIFO stays ours."""
        uid = gid = None
        try:
            if user is not None:
                entry = pwd.getpwnam(user)
                uid, gid = entry.pw_uid, entry.pw_gid
            if group is not None:
                gid = grp.getgrnam(group).gr_gid
        except KeyError:
            logger.warning("notify FIFO %s: unknown user or group %s %s; not changing its owner", path,
                           user, group or "")
            uid = gid = None
        return cls(path, uid=uid, gid=gid)

    def _fail(self, message: str) -> bool:
        self.error = message
        logger.warning("%s", message)
        if self.created:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.created = False
        return False

    def write_line(self, line: str) -> bool:
        """Write one line (a newline is added if missing); True if written whole.  Never raises."""
        if self._fd is None:
            self.lines_dropped += 1
            return False
        data = (line if line.endswith("\n") else line + "\n").encode("utf-8", "surrogateescape")
        try:
            written = os.write(self._fd, data)
        except OSError as exc:
            self._note_drop(exc.strerror or str(exc))
            return False
        if written != len(data):
            self._note_drop(f"short write ({written} of {len(data)} bytes)")
            return False
        self.lines_written += 1
        if self._dropping:
            self._dropping = False
            logger.info("notify FIFO %s is being read again", self.path)
        return True

    def _note_drop(self, why: str) -> None:
        self.lines_dropped += 1
        if not self._dropping:
            self._dropping = True
            logger.warning("notify FIFO %s: dropping lines (%s); is its reader running?", self.path, why)

    def close(self) -> None:
        """Unlink the FIFO if we created it, then close it.  Never raises; safe to call twice."""
        if self.created:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.created = False
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __enter__(self) -> NotifyFifo:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NotifyFifo({self.path!r}, open={self.is_open})"


# --- the script queue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotifyStats:
    """Counters of a :class:`NotifyQueue`.

    ``run`` scripts finished (whatever the outcome); ``failed`` of those were not
    :attr:`~keepalived_py.script_runner.ScriptResult.ok` (non-zero exit, killed, not startable, or timed
    out); ``timed_out`` of those hit their timeout; ``dropped`` submissions never ran (queue overflow,
    submitted after :meth:`NotifyQueue.close`, or discarded by it).
    """

    submitted: int = 0
    run: int = 0
    failed: int = 0
    timed_out: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class _Job:
    argv: tuple[str, ...]
    timeout: float
    user: str | None
    group: str | None
    env: Mapping[str, str] | None


ResultHook = Callable[[ScriptResult], None]


class NotifyQueue:
    """A serial executor for notify scripts on the running asyncio loop.

    :meth:`submit` is synchronous and returns at once; a single worker task runs the scripts strictly in
    submission order, one at a time, each under its own timeout (then its process group is killed, see
    :func:`~keepalived_py.script_runner.run_script`).  The worker starts on the first :meth:`submit` made
    while a loop is running (or on :meth:`drain`).

    Overflow: at most ``max_pending`` scripts wait (the running one not counted).  Submitting to a full
    queue drops the *oldest* waiting script: state notifications supersede each other, so the most
    recent ones matter most and must not be the ones lost.  Drops are counted and logged.

    ``on_result`` is called with every :class:`~keepalived_py.script_runner.ScriptResult`; exceptions
    it raises are logged and ignored.  Without a hook, failures are logged at INFO.

    Use from the event loop's thread only.
    """

    def __init__(
        self,
        *,
        max_pending: int = 1000,
        kill_grace: float = 1.0,
        max_output: int = 64 * 1024,
        on_result: ResultHook | None = None,
        name: str = "notify",
        purpose: str = "notify",
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self.kill_grace = kill_grace
        self.max_output = max_output
        self.on_result = on_result
        self.name = name
        #: what its scripts are for, in their ``script_run`` events
        self.purpose = purpose
        self._pending: deque[_Job] = deque()
        self._current: _Job | None = None
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._submitted = 0
        self._run = 0
        self._failed = 0
        self._timed_out = 0
        self._dropped = 0

    # -- public API

    @property
    def stats(self) -> NotifyStats:
        """A snapshot of the counters."""
        return NotifyStats(self._submitted, self._run, self._failed, self._timed_out, self._dropped)

    @property
    def pending(self) -> int:
        """Scripts waiting to run (not counting the running one)."""
        return len(self._pending)

    @property
    def busy(self) -> bool:
        """True while a script runs or waits."""
        return self._current is not None or bool(self._pending)

    def submit(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        user: str | None = None,
        group: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Queue ``argv`` to run after everything submitted before it.  Never blocks, never raises
        for a full or closed queue (the script is dropped and counted instead)."""
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self._submitted += 1
        job = _Job(tuple(argv), float(timeout), user, group, env)
        if self._closed:
            self._dropped += 1
            logger.warning("%s queue closed; not running %s", self.name, list(job.argv))
            return
        if len(self._pending) >= self.max_pending:
            old = self._pending.popleft()
            self._dropped += 1
            logger.warning("%s queue full (%d waiting); dropped the oldest: %s",
                           self.name, self.max_pending, list(old.argv))
        self._pending.append(job)
        self._idle.clear()
        self._wakeup.set()
        self._ensure_worker()

    async def drain(self) -> None:
        """Wait until every script submitted so far has run."""
        self._ensure_worker()
        if self.busy:
            await self._idle.wait()

    async def close(self, *, discard_pending: bool = False) -> None:
        """Stop accepting scripts and stop the worker.

        By default the scripts already queued run first.  With ``discard_pending`` they are dropped
        (counted) and the running one is cancelled, which kills its process group.
        """
        self._closed = True
        if discard_pending:
            self._dropped += len(self._pending)
            self._pending.clear()
        else:
            await self.drain()
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._idle.set()

    # -- worker

    def _ensure_worker(self) -> None:
        if self._worker is not None and not self._worker.done():
            return
        if self._closed and not self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the jobs wait for the next submit() or drain() made inside one
        self._worker = loop.create_task(self._work(), name=f"{self.name}-queue")

    async def _work(self) -> None:
        try:
            while True:
                if not self._pending:
                    self._idle.set()
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                job = self._pending.popleft()
                self._current = job
                try:
                    result = await self._execute(job)
                finally:
                    self._current = None
                self._account(result)
        finally:
            # Also when cancelled: nobody must wait forever in drain() for a worker that is gone.
            self._current = None
            self._idle.set()

    async def _execute(self, job: _Job) -> ScriptResult:
        try:
            return await run_script(
                job.argv,
                timeout=job.timeout,
                user=job.user,
                group=job.group,
                env=job.env,
                max_output=self.max_output,
                kill_grace=self.kill_grace,
                purpose=self.purpose,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, not a script failure: keep the queue alive
            logger.exception("%s queue: running %s failed", self.name, list(job.argv))
            return ScriptResult(job.argv, None, None, False, b"", False, 0.0, f"internal error: {exc}")

    def _account(self, result: ScriptResult) -> None:
        self._run += 1
        if not result.ok:
            self._failed += 1
        if result.timed_out:
            self._timed_out += 1
        if self.on_result is None:
            if not result.ok:
                logger.info("%s script %s", self.name, result.describe())
            return
        try:
            self.on_result(result)
        except Exception:
            logger.exception("%s queue: on_result hook failed", self.name)


class CheckedScripts:
    """Notify scripts queued under the one script-security rule (:mod:`keepalived_py.script_security`), as
    the user it names, judged once per configuration like keepalived (a reload's new ``global_defs`` is
    judged afresh)."""

    def __init__(self, queue: NotifyQueue) -> None:
        self.queue = queue
        self._defs: object = None
        self._policy: ScriptPolicy | None = None

    def run(
        self, global_defs: object, argv: Sequence[str], *, timeout: float, user: UserSpec | None = None
    ) -> None:
        """Queue ``argv``, run as ``user`` (the script's own USER [GROUP]) or as the rule's default."""
        if self._policy is None or self._defs is not global_defs:
            self._policy = ScriptPolicy.of(global_defs)
            self._defs = global_defs
        decision = self._policy.decide(argv, user)
        if decision.refused is not None:
            logger.warning("not running script %s: %s", argv[0] if argv else "(empty)", decision.refused)
            return
        self.queue.submit(list(decision.argv), timeout=timeout, user=decision.user, group=decision.group)
