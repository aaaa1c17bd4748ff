"""The control-plane parent (``kpd``): starts the children, watches their heartbeats, restarts them.

Like gunicorn's arbiter: signal handlers only enqueue the signal (and wake the loop through a pipe); one
loop reads heartbeats and control requests, dispatches signals, reaps with ``waitpid(-1, WNOHANG)`` and runs
the watchdog. The decisions (is a child hung, when does it respawn, which MASTER instances its successor
resumes) are pure functions of each child's :class:`~keepalived_py.control.lifecycle.ChildRecord`; this
module is the I/O around them.

- A child silent for its hung timeout (derived from the smallest Master_Down_Interval of the configuration,
  see :func:`~keepalived_py.control.lifecycle.derive_hung_timeout`) is SIGKILLed at once, so it never runs its
  shutdown path, and respawned at once; a VRRP successor resumes the instances its predecessor held as
  MASTER, so nothing flaps.
- A stop sends SIGTERM, then SIGKILL after ``child_wait_time``.
- A reload is loaded and validated by a worker process under CPU and memory limits
  (:mod:`~keepalived_py.control.reload_worker`) while the loop goes on reading heartbeats and serving
  ``kpd status``.
- Every handler is guarded: a bad peer costs its own connection, never the daemon. Control clients are
  capped and timed out; a heartbeat (or a batch of events) is accepted only on a connection whose
  kernel-reported peer is the child the parent started.
- Structured events (``kpd events``, docs/events.md): the children's, sent after their heartbeats, and the
  parent's own (children started and restarted, reloads) are numbered and kept in a bounded ring
  (:data:`EVENT_RING`). An ``events`` request reads it; with ``follow`` the connection then receives every
  new event, never blocking the loop: a follower the socket cannot keep up with is disconnected once
  :data:`FOLLOW_BACKLOG` events behind.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import itertools
import logging
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import sdnotify

from keepalived_py import wire
from keepalived_py.config.diagnostics import Diagnostic, Severity
from keepalived_py.config.load import LoadResult
from keepalived_py.config.model import Config
from keepalived_py.config.snapshot import write_snapshot
from keepalived_py.control.child_fork import ForkedChild, fork_entry_point, import_in_thread
from keepalived_py.control.ipvs_counters import IpvsCounters
from keepalived_py.control.lifecycle import (
    DEFAULT_HUNG_TIMEOUT,
    STARTUP_SILENCE,
    Action,
    Activity,
    ChildRecord,
    HungTimeout,
    Phase,
    Verdict,
    derive_hung_timeout,
)
from keepalived_py.control.metrics_http import MetricsServer
from keepalived_py.control.reload_worker import Failure, ReloadWorker
from keepalived_py.control.text_dump import data_text, stats_text
from keepalived_py.events import FRAME_ENVELOPE, Event, take_batch
from keepalived_py.exitcodes import ExitCode
from keepalived_py.net_namespace import home_fd
from keepalived_py.procname import become_subreaper, set_name
from keepalived_py.runtime_files import (
    read_runtime_json,
    remove_stale_replies,
    write_file_atomic,
    write_json_atomic,
    write_private_reply,
)
from keepalived_py.runtime_paths import (
    CHECK_STATUS,
    CONTROL_SOCKET,
    HEARTBEAT_SOCKET,
    SNAPSHOT_FILE,
    STATE_DUMP,
    STATS_DUMP,
    VRRP_STATUS,
)
from keepalived_py.vrrp.fsm import master_down_interval

if TYPE_CHECKING:  # prometheus_client (12 MB, 60 ms) is imported only when metrics are served
    from keepalived_py.control.metrics import Snapshot

log = logging.getLogger("kpd.control")

#: answers larger than this go through a private reply file named in the answer
REPLY_INLINE_MAX = 64 * 1024
#: the largest status file read from a child
MAX_STATUS_BYTES = 256 * 1024 * 1024
#: concurrent control clients; past it the one idle the longest is disconnected
MAX_CLIENTS = 64
CONTROL_BACKLOG = 128
#: a control client that sends nothing for this long is disconnected
CLIENT_IDLE = 5.0
#: reply files no client collected are removed after this long
REPLY_MAX_AGE = 60.0
#: after EMFILE on accept, the listener rests this long instead of spinning
ACCEPT_PAUSE = 0.5
_SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)
#: diagnostics that make a reload keep the running configuration
REJECTING = {Severity.FATAL, Severity.ERROR, Severity.SECURITY}
#: events the parent keeps for ``kpd events`` (then the oldest go)
EVENT_RING = 10_000
#: events a follower (``kpd events --follow``) may be behind, its socket full, before it is disconnected
FOLLOW_BACKLOG = 1_000
#: the largest frame of events sent to a follower
FOLLOW_FRAME = 64 * 1024
#: a follower's socket send buffer: a burst of events goes out at once to a reader that keeps up
FOLLOW_SNDBUF = 4 * 1024 * 1024
_SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)


@dataclass
class Supervised:
    """A child: its lifecycle record plus the parent's handles on it."""

    kind: str
    argv: list[str]
    record: ChildRecord
    hung: HungTimeout
    proc: ForkedChild | None = None
    #: the heartbeat interval the running child was started with
    beat_interval: float = DEFAULT_HUNG_TIMEOUT / 6
    #: the child's CPU seconds when the parent first looked at it in its current silence
    cpu_seen: float | None = None
    #: why the watchdog killed the running child as hung (for its ``child_restart`` event)
    kill_reason: str | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def judge_timeout(self) -> float:
        """The running child's hung timeout: never shorter than six of the beats it was started with."""
        return max(self.hung.seconds, 6 * self.beat_interval)


@dataclass
class Client:
    conn: socket.socket
    deadline: float
    #: ``kpd events --follow``: gets every new event; exempt from the idle timeout
    follower: bool = False
    #: a follower: the seq of the last event it was sent
    cursor: int = 0


@dataclass
class PendingReload:
    worker: ReloadWorker
    #: control clients waiting for the outcome
    waiting: list[socket.socket] = field(default_factory=list)


def takeover_times(config: Config) -> dict[str, tuple[float, float]]:
    """Each VRRP instance: (the quickest possible backup's Master_Down_Interval, its advert interval)."""
    out = {}
    for inst in config.vrrp_instances:
        version = inst.version or config.global_defs.vrrp_version
        out[inst.name] = (master_down_interval(version, 254, inst.advert_int), inst.advert_int)
    return out


def hung_timeouts(config: Config) -> dict[str, HungTimeout]:
    override = config.global_defs.kpd_child_hung_timeout
    vrrp = derive_hung_timeout(((n, d, a) for n, (d, a) in takeover_times(config).items()), override)
    checker = derive_hung_timeout((), override)
    return {"vrrp": vrrp, "checker": checker}


class Arbiter:
    def __init__(
        self,
        config: Config,
        *,
        config_path: str,
        runtime_dir: Path,
        vars_files: list[str] | None = None,
        config_id: str | None = None,
        log_console: bool = False,
        log_level: str = "info",
        release_vrrp: bool = True,
        release_ipvs: bool = True,
        diagnostics: Sequence[Diagnostic] = (),
        namespace_override: str | None = None,
        only: str | None = None,
        pid_files: dict[str, str] | None = None,
        log_args: Sequence[str] = (),
        log_files: dict[str, str] | None = None,
        metrics_listen: tuple[str, int] | None = None,
    ) -> None:
        self.config = config
        #: ``kpd start --metrics-listen``: where the metrics are served whatever the configuration says
        self.metrics_override = metrics_listen
        self._metrics: MetricsServer | None = None
        #: why the metrics endpoint is not serving where it should (None: it is, or none is configured)
        self._metrics_error: str | None = None
        self._ipvs: IpvsCounters | None = None
        #: reloads since start by result ("accepted", "rejected")
        self.reload_counts: Counter[str] = Counter()
        #: keepalived -P / -C: run only the "vrrp" or only the "checker" child
        self.only = only
        #: keepalived --vrrp_pid / --checkers_pid: child kind -> where its pid is written while it runs
        self.pid_files = dict(pid_files or {})
        #: ``kpd start --namespace``: the namespace we run in whatever the configuration says
        self.namespace_override = namespace_override
        self.config_path = config_path
        self.vars_files = list(vars_files or ())
        self.config_id = config_id
        #: the configuration generation the children should run (0 at start, +1 per accepted reload)
        self.generation = 0
        #: the last reload: {"generation", "ok", "time", "errors"}; None before the first
        self.last_reload: dict[str, Any] | None = None
        self._reload: PendingReload | None = None
        self._reload_again = False
        self._reloading = False
        #: the errors the running configuration was accepted with (a reload may not add new ones)
        self._accepted_errors = _error_keys(diagnostics)
        self.runtime_dir = runtime_dir
        self.children: dict[str, Supervised] = {}
        self._signals: deque[int] = deque()
        self._stopping = False
        self.exit_code = ExitCode.OK
        common = ["--config", config_path, "--runtime-dir", str(runtime_dir)]
        for v in vars_files or ():
            common += ["--vars", v]
        if config_id:
            common += ["--config-id", config_id]
        common += ["--log-level", log_level] + (["--log-console"] if log_console else []) + list(log_args)
        self._heartbeat_path = str(runtime_dir / HEARTBEAT_SOCKET)
        self._control_path = str(runtime_dir / CONTROL_SOCKET)
        common += ["--heartbeat-socket", self._heartbeat_path]
        files = log_files or {}
        vrrp_argv = [sys.executable, "-m", "keepalived_py.vrrp.child", *common]
        if "vrrp" in files:
            vrrp_argv += ["--log-file", files["vrrp"]]
        if not release_vrrp:
            vrrp_argv.append("--dont-release-vrrp")
        checker_argv = [sys.executable, "-m", "keepalived_py.check.child", *common]
        if "checker" in files:
            checker_argv += ["--log-file", files["checker"]]
        if not release_ipvs:
            checker_argv.append("--dont-release-ipvs")
        #: each child's command line, started when its part of the configuration is present
        self._argv = {"vrrp": vrrp_argv, "checker": checker_argv}
        self._hung = hung_timeouts(config)
        self._takeover = takeover_times(config)
        for kind in self._wanted(config):
            self.children[kind] = Supervised(kind, self._argv[kind], ChildRecord(kind), self._hung[kind])
        self.child_wait_time = config.global_defs.child_wait_time
        #: heartbeat connection -> the pid the kernel reports for its peer
        self._beat_peers: dict[socket.socket, int] = {}
        self._clients: dict[socket.socket, Client] = {}
        self._sel: selectors.BaseSelector | None = None
        self._listeners: dict[str, socket.socket] = {}
        self._paused: dict[str, float] = {}
        self._last_turn = time.monotonic()
        self._next_reply_sweep = 0.0
        self._systemd = sdnotify.SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None
        if self._systemd is not None and self._systemd.socket is not None:
            # Never block the parent on a notify socket nobody reads: the message is dropped instead.
            self._systemd.socket.setblocking(False)
        self._ready = False
        self._last_status = ""
        watchdog_usec = os.environ.get("WATCHDOG_USEC", "")
        #: how often WATCHDOG=1 goes out (half systemd's WatchdogSec), while every child heartbeats
        self._watchdog_every = int(watchdog_usec) / 2e6 if watchdog_usec.isdigit() else None
        self._watchdog_sent = 0.0
        #: the last :data:`EVENT_RING` events, oldest first, numbered by ``seq`` (1, 2, ... no gaps)
        self.events: deque[Event] = deque(maxlen=EVENT_RING)
        self._event_seq = 0

    # --- set-up -------------------------------------------------------------------------------------------

    def _wanted(self, config: Config) -> list[str]:
        """The children a configuration needs, as keepalived starts them: VRRP and/or Checkers (only the
        one ``-P``/``-C`` names)."""
        return [kind for kind, present in (("vrrp", config.has_vrrp), ("checker", config.has_checkers))
                if present and self.only in (None, kind)]

    @staticmethod
    def _listen(path: str, backlog: int) -> socket.socket:
        """A root-only (0600) SOCK_SEQPACKET listener at ``path``; peers are also checked by credentials."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        sock.listen(backlog)
        return sock

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signals.append(signum)  # only enqueue: the loop dispatches

    @property
    def _turn(self) -> float:
        """How long the loop may sleep: a fraction of the shortest hung timeout in force."""
        return min([0.1] + [c.judge_timeout() / 6 for c in self.children.values()])

    def run(self) -> int:
        set_name(self.config.global_defs.process_name or "kpd")
        become_subreaper()
        sel = self._sel = selectors.DefaultSelector()
        self._listeners = {"conn": self._listen(self._heartbeat_path, 16),
                           "client": self._listen(self._control_path, CONTROL_BACKLOG)}
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
                    signal.SIGUSR2):
            signal.signal(sig, self._on_signal)
        for kind, listener in self._listeners.items():
            sel.register(listener, selectors.EVENT_READ, ("listen", kind))
        sel.register(rfd, selectors.EVENT_READ, ("wakeup", None))
        write_snapshot(self.runtime_dir, self.generation, self.config)
        # the children are forks of this image: what it holds now stays shared with them as long as neither
        # writes to it, and the parent's own full collections would (they walk every object)
        gc.collect()
        gc.freeze()
        for child in self.children.values():
            self._spawn(child, resume=())
        self._serve_metrics()  # after the forks: its imports run in threads, which a fork waits for
        try:
            while not self._stopping:
                self._turn_once(sel, rfd)
        finally:
            self._sd("STOPPING=1")
            if self._reload is not None:
                self._reload.worker.close()
            self._stop_children()
            if self._metrics is not None:
                self._metrics.close()
            if self._ipvs is not None:
                self._ipvs.close()
            for conn in [*self._beat_peers, *self._clients]:
                conn.close()
            sel.close()
            for listener in self._listeners.values():
                listener.close()
            leftovers = (self._control_path, self._heartbeat_path, str(self.runtime_dir / SNAPSHOT_FILE))
            for path in (*leftovers, *self.pid_files.values()):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            for fd in (rfd, wfd):
                os.close(fd)
        return int(self.exit_code)

    def _turn_once(self, sel: selectors.BaseSelector, rfd: int) -> None:
        for key, mask in sel.select(timeout=self._turn):
            what, arg = key.data
            try:
                if what == "metrics":
                    if self._metrics is not None:
                        self._metrics.ready(arg, mask)
                elif what == "listen":
                    self._accept(arg)
                elif what == "client":
                    self._serve_client(key.fileobj)  # type: ignore[arg-type]
                elif what == "beat":
                    self._read_beats(key.fileobj)  # type: ignore[arg-type]
                elif what == "reload":
                    self._reload_readable()
                elif what == "wakeup":
                    _drain(rfd)
            except Exception:  # a bad peer costs its own connection, never the daemon
                log.exception("error while handling %s", what)
                if what in ("client", "beat"):
                    self._drop(key.fileobj)  # type: ignore[arg-type]
        now = time.monotonic()
        stalled = now - self._last_turn
        self._last_turn = now
        for child in self.children.values():
            if stalled > child.judge_timeout() / 2:
                # The parent itself did not look for a while: that silence is not the child's fault.
                log.warning("the control loop stalled for %.2f s; the watchdog restarts its count for the "
                            "%s child", stalled, child.kind)
                child.record.forgive(now)
        for step in (self._dispatch_signals, self._reap, self._watchdog, self._housekeeping,
                     self._notify_systemd, self._feed_followers):
            try:
                step()
            except Exception:
                log.exception("error in the control loop (%s); going on", step.__name__)

    # --- signals ------------------------------------------------------------------------------------------

    def _dispatch_signals(self) -> None:
        while self._signals:
            self._dispatch(self._signals.popleft())

    def _dispatch(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            log.info("received %s: stopping", signal.Signals(signum).name)
            self._stopping = True
        elif signum == signal.SIGHUP:
            log.info("received SIGHUP: reloading")
            self.reload()
        elif signum in (signal.SIGUSR1, signal.SIGUSR2):
            self._dump(state=signum == signal.SIGUSR1)
        # SIGCHLD: the loop reaps after every dispatch

    def _dump(self, *, state: bool) -> None:
        """SIGUSR1 (``state``) / SIGUSR2: kpd's JSON dump in the runtime directory and keepalived's text one
        where ``state_dump_file`` / ``stats_dump_file`` say."""
        gd = self.config.global_defs
        if state:
            doc = self.status()
            name, text_path, text = STATE_DUMP, gd.state_dump_file, data_text(self.config, doc["instances"])
        else:
            doc = self.stats()
            name, text_path, text = STATS_DUMP, gd.stats_dump_file, stats_text(doc["instances"])
        def as_json(path: Path) -> None:
            write_json_atomic(path, doc)

        def as_text(path: Path) -> None:
            write_file_atomic(path, text.encode())

        for path, write in ((self.runtime_dir / name, as_json), (Path(text_path), as_text)):
            try:
                write(path)
                log.info("wrote %s", path)
            except OSError as err:
                log.error("cannot write %s: %s", path, err)

    # --- connections --------------------------------------------------------------------------------------

    def _accept(self, kind: str) -> None:
        listener = self._listeners[kind]
        sel = self._sel
        assert sel is not None
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("cannot accept a %s connection: %s; pausing for %.1f s",
                              _listener_name(kind), err.strerror, ACCEPT_PAUSE)
                    self._pause(kind)
                    return
                raise
            try:
                pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, _SO_PEERCRED, 12))
                if uid not in (0, os.geteuid()):
                    log.warning("refused a %s connection from uid %d (pid %d)",
                                _listener_name(kind), uid, pid)
                    conn.close()
                    continue
                conn.setblocking(False)
                if kind == "client":
                    if len(self._clients) >= MAX_CLIENTS:
                        # The client idle the longest makes room: a flood of idle connections can neither
                        # exhaust the parent's descriptors nor keep ``kpd status`` out.
                        oldest = min(self._clients.values(), key=lambda c: c.deadline)
                        log.debug("%d control clients: disconnecting the one idle the longest", MAX_CLIENTS)
                        self._drop(oldest.conn)
                    self._clients[conn] = Client(conn, time.monotonic() + CLIENT_IDLE)
                    sel.register(conn, selectors.EVENT_READ, ("client", None))
                else:
                    self._beat_peers[conn] = pid
                    sel.register(conn, selectors.EVENT_READ, ("beat", None))
            except Exception:
                conn.close()
                raise

    def _pause(self, kind: str) -> None:
        """Stop watching a listener for a while (descriptors exhausted)."""
        assert self._sel is not None
        if kind not in self._paused:
            self._sel.unregister(self._listeners[kind])
            self._paused[kind] = time.monotonic() + ACCEPT_PAUSE

    def _resume_listeners(self, now: float) -> None:
        assert self._sel is not None
        for kind, until in list(self._paused.items()):
            if now >= until:
                del self._paused[kind]
                self._sel.register(self._listeners[kind], selectors.EVENT_READ, ("listen", kind))

    def _drop(self, conn: socket.socket) -> None:
        if self._sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(conn)
        self._clients.pop(conn, None)
        self._beat_peers.pop(conn, None)
        if self._reload is not None and conn in self._reload.waiting:
            self._reload.waiting.remove(conn)
        conn.close()

    def _recv(self, conn: socket.socket) -> bytes | None:
        """The next frame on a connection; None when there is none yet, or when the peer went (dropped)."""
        try:
            data = conn.recv(wire.MAX_FRAME + 1)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return None
        return data

    # --- control requests ---------------------------------------------------------------------------------

    def _serve_client(self, conn: socket.socket) -> None:
        """One request per datagram on the control socket; a bad frame gets an error answer."""
        data = self._recv(conn)
        if data is None:
            return
        self._clients[conn].deadline = time.monotonic() + CLIENT_IDLE
        try:
            msg = wire.decode(data)
            if not isinstance(msg, wire.Request):
                raise wire.WireError(wire.WireReason.TYPE, "the control socket takes requests")
        except wire.WireError as err:
            log.warning("bad control request: %s", err)
            self._answer(conn, wire.Response(False, {"error": str(err)}))
            return
        if msg.cmd == "events":
            self._events_request(conn, msg.args)
            return
        if msg.cmd == "reload":
            self.reload()  # the answer waits for the outcome
            if self._reload is not None:
                self._reload.waiting.append(conn)
                self._clients[conn].deadline = self._reload.worker.deadline + CLIENT_IDLE
            else:
                self._answer(conn, self._reload_response())
            return
        self._answer(conn, self._handle(msg))

    def _answer(self, conn: socket.socket, response: wire.Response) -> None:
        try:
            data = wire.encode(response)
            if len(data) > REPLY_INLINE_MAX:
                raise ValueError("large")
        except ValueError:
            # A large answer (status of thousands of instances) goes through a private root-only file.
            try:
                path = write_private_reply(self.runtime_dir, response.body)
                data = wire.encode(wire.Response(response.ok, {"reply_file": str(path)}))
            except OSError as err:
                log.warning("cannot write a reply file: %s", err)
                data = wire.encode(wire.Response(False, {"error": f"answer too large, and {err}"}))
        try:
            conn.send(data)
        except OSError as err:
            log.warning("cannot answer a control request: %s", err)
            self._drop(conn)

    def _handle(self, req: wire.Request) -> wire.Response:
        if req.cmd == "status":
            return wire.Response(True, self.status())
        if req.cmd == "stats":
            return wire.Response(True, self.stats())
        if req.cmd == "stop":
            self._signals.append(signal.SIGTERM)
            return wire.Response(True, {"message": "stopping"})
        if req.cmd == "dump":
            self._signals.append(signal.SIGUSR1)
            return wire.Response(True, {"file": str(self.runtime_dir / STATE_DUMP)})
        return wire.Response(False, {"error": f"unknown command {req.cmd!r}"})

    def _reload_response(self) -> wire.Response:
        outcome = self.last_reload or {}
        if outcome.get("ok"):
            return wire.Response(True, {"message": f"configuration generation {outcome['generation']} "
                                                   "accepted; the children are applying it"})
        return wire.Response(False, {
            "error": "the new configuration was rejected; the running one is kept",
            "diagnostics": outcome.get("errors", [])})

    # --- reload -------------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Start validating the configuration again, off the loop; a reload already running is followed
        by one more (the file may have changed since it started)."""
        if self._reload is not None:
            self._reload_again = True
            return
        self._sd("RELOADING=1")
        worker = ReloadWorker(self.config_path, vars_files=self.vars_files, config_id=self.config_id,
                              started=time.monotonic())
        self._reload = PendingReload(worker)
        assert self._sel is not None and worker.fd is not None
        self._sel.register(worker.fd, selectors.EVENT_READ, ("reload", None))

    def _reload_readable(self) -> None:
        pending = self._reload
        if pending is None or pending.worker.fd is None:
            return
        assert self._sel is not None
        self._sel.unregister(pending.worker.fd)
        if not pending.worker.readable():
            self._sel.register(pending.worker.fd, selectors.EVENT_READ, ("reload", None))
        elif pending.worker.pid is None:  # already reaped
            self._reload_finished()

    def _reload_finished(self) -> None:
        pending = self._reload
        assert pending is not None
        self._reload = None
        result = pending.worker.result
        if isinstance(result, LoadResult):
            self._apply_reload(result)
        else:
            reason = result.reason if isinstance(result, Failure) else "the configuration loader vanished"
            self._reject([reason])
        response = self._reload_response()
        for conn in pending.waiting:
            if conn in self._clients:
                self._clients[conn].deadline = time.monotonic() + CLIENT_IDLE
                self._answer(conn, response)
        if self._reload_again:
            self._reload_again = False
            self.reload()

    def _reject(self, errors: list[str]) -> None:
        self.reload_counts["rejected"] += 1
        self.last_reload = {"generation": self.generation, "ok": False, "time": time.time(), "errors": errors}
        first = errors[0].splitlines()[0] if errors and errors[0] else "rejected"
        self.record_event("parent", "reload", generation=self.generation, ok=False, errors=len(errors),
                          message=f"rejected: {first}")
        for line in errors:
            log.error("reload rejected: %s", line)
        log.error("reload rejected: the running configuration (generation %d) is kept", self.generation)
        self._sd("READY=1")
        self._sd(f"STATUS=reload rejected ({len(errors)} errors); {self.summary()}")

    def _apply_reload(self, result: LoadResult) -> None:
        """A sound configuration goes to the children, which apply the differences; one with new errors is
        rejected and the running one stays."""
        new = [d for d in result.diagnostics if d.severity in REJECTING
               and (d.severity, d.message) not in self._accepted_errors]
        errors = [d.format() for d in new]
        if result.config is not None:
            errors += self._unchangeable(result.config)
        if not result.runnable or result.config is None or errors:
            self._reject(errors or [d.format() for d in result.diagnostics])
            return
        self.generation += 1
        self.reload_counts["accepted"] += 1
        self.config = result.config
        self._serve_metrics()
        self._accepted_errors = _error_keys(result.diagnostics)
        self._hung = hung_timeouts(self.config)
        self._takeover = takeover_times(self.config)
        write_snapshot(self.runtime_dir, self.generation, self.config)
        self.last_reload = {"generation": self.generation, "ok": True, "time": time.time(), "errors": []}
        self.record_event("parent", "reload", generation=self.generation, ok=True, errors=0,
                          message=f"configuration generation {self.generation} accepted")
        wanted = self._wanted(self.config)
        now = time.monotonic()
        for kind, child in list(self.children.items()):
            child.hung = self._hung[kind]
            if kind not in wanted:
                log.info("the new configuration has no %s part: stopping the %s child", kind, kind)
                child.record.retired = True
                if child.proc is not None:
                    child.record.stop(now, self.child_wait_time)
                    _kill(child.proc.pid, signal.SIGTERM)
                else:
                    del self.children[kind]
            elif child.proc is not None:
                _kill(child.proc.pid, signal.SIGHUP)
        for kind in wanted:
            if kind not in self.children:
                self.children[kind] = Supervised(kind, self._argv[kind], ChildRecord(kind), self._hung[kind])
                self._spawn(self.children[kind], resume=())
        self._reloading = True
        log.info("configuration generation %d accepted; children are applying it", self.generation)

    def _unchangeable(self, config: Config) -> list[str]:
        """What a reload cannot change (keepalived refuses it too): the network namespace the daemon runs
        in (unless ``--namespace`` fixes it) and the instance name its runtime files are named after."""
        out = []
        if self.namespace_override is None and config.net_namespace != self.config.net_namespace:
            out.append(
                f"net_namespace cannot change at a reload ({self.config.net_namespace} -> "
                f"{config.net_namespace}); restart kpd"
            )
        if config.instance_name != self.config.instance_name:
            out.append(
                f"instance cannot change at a reload ({self.config.instance_name} -> "
                f"{config.instance_name}); restart kpd"
            )
        return out

    def _reload_done(self) -> bool:
        """Every running child reports the current generation."""
        return all(c.record.last_state.get("generation", 0) >= self.generation
                   for c in self.children.values() if c.proc is not None and not c.record.retired)

    # --- heartbeats ---------------------------------------------------------------------------------------

    def _read_beats(self, conn: socket.socket) -> None:
        peer = self._beat_peers.get(conn)
        for _ in range(64):
            data = self._recv(conn)
            if data is None:
                return
            try:
                msg = wire.decode(data)
            except wire.WireError as err:
                log.warning("dropped a bad heartbeat frame: %s", err)
                continue
            if not isinstance(msg, wire.Heartbeat | wire.Events):
                log.warning("dropped a %s on the heartbeat socket", type(msg).__name__)
                continue
            child = self.children.get(msg.child)
            # Only the child we started, on a connection the kernel says it opened, can vouch for itself.
            if child is None or child.pid is None or child.pid != peer or msg.pid != peer:
                log.warning("dropped a %s for %s from pid %s (claiming %d), not our child",
                            "heartbeat" if isinstance(msg, wire.Heartbeat) else "batch of events",
                            msg.child, peer, msg.pid)
                continue
            if isinstance(msg, wire.Events):
                self._child_events(child, msg)
            else:
                child.record.heartbeat(time.monotonic(), msg.state)

    # --- events -------------------------------------------------------------------------------------------

    def record_event(self, source: str, kind: str, **fields: Any) -> Event:
        """Number an event and keep it in the ring (the oldest goes when it is full). ``fields`` may hold the
        child's ``time``; ``seq`` and ``source`` are the parent's."""
        self._event_seq += 1
        event: Event = {"time": time.time(), **fields, "kind": kind, "seq": self._event_seq, "source": source}
        self.events.append(event)
        return event

    def _child_events(self, child: Supervised, msg: wire.Events) -> None:
        if msg.dropped:
            log.warning("the %s child lost %d events (its buffer was full)", child.kind, msg.dropped)
            self.record_event("parent", "events_lost", child=child.kind, count=msg.dropped)
        for event in msg.events:
            # the child's time stays; its kind is the event's; seq and source are only ever the parent's
            self.record_event(child.kind, event["kind"],
                              **{k: v for k, v in event.items() if k not in ("kind", "seq", "source")})
        self._feed_followers()

    def events_since(self, since: int | None = None, limit: int | None = None) -> list[Event]:
        """The events in the ring numbered after ``since`` (all without it), the last ``limit`` of them."""
        ring = self.events
        start = 0
        if since is not None and ring:
            start = max(0, since - ring[0]["seq"] + 1)
        if limit is not None:
            start = max(start, len(ring) - limit)
        return list(itertools.islice(ring, start, None))

    def _events_request(self, conn: socket.socket, args: dict[str, Any]) -> None:
        """``kpd events``: ``since`` (a seq), ``limit`` (a count), ``follow`` (then every new event)."""
        since, limit, follow = args.get("since"), args.get("limit"), args.get("follow", False)
        for name, value in (("since", since), ("limit", limit)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                self._answer(conn, wire.Response(False, {"error": f"'{name}' must be a whole number"}))
                return
        if not isinstance(follow, bool):
            self._answer(conn, wire.Response(False, {"error": "'follow' must be true or false"}))
            return
        body = {"events": self.events_since(since, limit), "last_seq": self._event_seq,
                "oldest_seq": self.events[0]["seq"] if self.events else None, "ring_size": EVENT_RING}
        client = self._clients[conn]
        if follow:
            client.follower = True
            client.cursor = self._event_seq
            client.deadline = float("inf")  # never idle; the last one a full house of clients evicts
            try:
                conn.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE, FOLLOW_SNDBUF)
            except OSError:
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, FOLLOW_SNDBUF)
        self._answer(conn, wire.Response(True, body))

    def _feed_followers(self) -> None:
        """Send each follower the events it has not had, as many as its socket takes now; one that falls
        more than :data:`FOLLOW_BACKLOG` behind (or behind the ring) is disconnected: it can resume with
        ``--since`` the last seq it got."""
        if not self.events:
            return
        last = self._event_seq
        oldest = self.events[0]["seq"]
        for conn, client in list(self._clients.items()):
            if not client.follower or client.cursor >= last:
                continue
            if client.cursor < oldest - 1:
                self._drop_follower(conn, client)
                continue
            pending = list(itertools.islice(self.events, client.cursor - oldest + 1, None))
            while pending:
                count, _size = take_batch(pending, FOLLOW_FRAME - FRAME_ENVELOPE)
                if count == 0:  # one event too large for a frame on its own: skipped
                    client.cursor = pending[0]["seq"]
                    pending = pending[1:]
                    continue
                try:
                    conn.send(wire.encode(wire.Response(True, {"events": pending[:count]})))
                except BlockingIOError:
                    break
                except OSError:
                    self._drop(conn)
                    break
                client.cursor = pending[count - 1]["seq"]
                pending = pending[count:]
            if conn in self._clients and last - client.cursor > FOLLOW_BACKLOG:
                self._drop_follower(conn, client)

    def _drop_follower(self, conn: socket.socket, client: Client) -> None:
        log.warning("disconnected an events follower %d events behind (it reads too slowly)",
                    self._event_seq - client.cursor)
        self._drop(conn)

    # --- children -----------------------------------------------------------------------------------------

    def _spawn(self, child: Supervised, resume: tuple[str, ...]) -> None:
        argv = list(child.argv)
        child.beat_interval = round(child.hung.seconds / 6, 4)
        argv += ["--heartbeat-interval", str(child.beat_interval)]
        for name in resume:
            argv += ["--resume-master", name]
        home = home_fd() if child.kind == "vrrp" else None
        if home is not None:
            # process events can only be had from the namespace kpd started in (keepalived opens its socket
            # there before it moves): the child gets a handle on it
            argv += ["--home-netns-fd", str(home)]
        # argv is the child's command line, ``python -m MODULE ARGS``: the fork runs MODULE with ARGS
        child.proc = fork_entry_point(argv[2], argv[3:], keep_fds=(home,) if home is not None else ())
        child.record.spawned(child.proc.pid, time.monotonic())
        pid_file = self.pid_files.get(child.kind)
        if pid_file is not None:
            try:
                write_file_atomic(pid_file, f"{child.proc.pid}\n".encode(), sync=False)
            except OSError as err:
                log.warning("cannot write %s child pid file %s: %s", child.kind, pid_file, err)
        log.info("started %s child, pid %d%s", child.kind, child.proc.pid,
                 f" (resuming MASTER: {', '.join(resume)})" if resume else "")
        self.record_event("parent", "child_started", child=child.kind, pid=child.proc.pid,
                          resumed_masters=len(resume))

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self._reload is not None and pid == self._reload.worker.pid:
                worker = self._reload.worker
                if worker.fd is not None and self._sel is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        self._sel.unregister(worker.fd)
                worker.exited(status)  # reads what is left of its answer
                self._reload_finished()
                continue
            child = next((c for c in self.children.values() if c.pid == pid), None)
            if child is None:
                continue  # an orphan re-parented to us (we are a subreaper)
            code = os.waitstatus_to_exitcode(status)
            if child.kind in self.pid_files:
                with contextlib.suppress(OSError):
                    os.unlink(self.pid_files[child.kind])
            assert child.proc is not None
            child.proc.returncode = code
            child.proc = None
            ran_for = time.monotonic() - child.record.started
            if not self._stopping:
                log.warning("%s child (pid %d) exited with %s after %.1f s", child.kind, pid,
                            f"code {code}" if code >= 0 else f"signal {-code}", ran_for)
            restarts = dict(child.record.restarts_by)
            verdict = child.record.exited(code, time.monotonic(), stopping=self._stopping)
            why = next((r for r, n in child.record.restarts_by.items() if n > restarts.get(r, 0)), None)
            if why is not None:  # counted as a restart: it died, or was killed as hung
                self.record_event("parent", "child_restart", child=child.kind, reason=why, pid=pid,
                                  exit_status=code if code >= 0 else None,
                                  signal=_signal_name(-code) if code < 0 else None,
                                  detail=child.kill_reason if why == "hung" else None)
            child.kill_reason = None
            if child.record.retired and child.record.phase is Phase.STOPPED:
                log.info("%s child stopped: its part of the configuration is gone", child.kind)
                del self.children[child.kind]
                continue
            self._act(child, verdict)

    def _act(self, child: Supervised, verdict: Verdict) -> None:
        if verdict.action is Action.KILL and child.proc is not None:
            if child.record.phase is Phase.HUNG:
                log.error("%s child (pid %d) %s: hung, restarting it (SIGKILL, its kernel state kept)",
                          child.kind, child.proc.pid, verdict.reason)
                child.kill_reason = verdict.reason
            else:
                log.error("%s child (pid %d) %s: SIGKILL", child.kind, child.proc.pid, verdict.reason)
            _kill(child.proc.pid, signal.SIGKILL)
        elif verdict.action is Action.SPAWN and child.proc is None and not self._stopping:
            resume = child.record.resumable(time.monotonic(),
                                            {n: d for n, (d, _a) in self._takeover.items()}) \
                if child.kind == "vrrp" else ()
            self._spawn(child, resume)
        elif verdict.action is Action.STOP_DAEMON:
            log.error("%s child %s: stopping", child.kind, verdict.reason)
            self.exit_code = ExitCode(verdict.exit_code)
            self._stopping = True

    def _watchdog(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            activity = Activity.UNKNOWN
            if child.record.silent_for(now) > child.judge_timeout() or (
                    child.record.phase is Phase.STARTING and child.record.silent_for(now) > STARTUP_SILENCE):
                activity = self._activity(child)
            else:
                child.cpu_seen = None
            self._act(child, child.record.watchdog(now, child.judge_timeout(), activity))

    @staticmethod
    def _activity(child: Supervised) -> Activity:
        """What a silent child is doing, from the kernel: stopped, using CPU, or waiting."""
        if child.pid is None:
            return Activity.UNKNOWN
        try:
            proc = psutil.Process(child.pid)
            with proc.oneshot():
                status = proc.status()
                times = proc.cpu_times()
        except psutil.Error:
            return Activity.UNKNOWN
        if status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP, psutil.STATUS_ZOMBIE,
                      psutil.STATUS_DEAD):
            return Activity.STOPPED
        cpu = times.user + times.system
        if child.cpu_seen is None:  # the first look in this silence: what it is doing right now
            child.cpu_seen = cpu
            return Activity.BUSY if status == psutil.STATUS_RUNNING else Activity.IDLE
        return Activity.BUSY if cpu > child.cpu_seen else Activity.IDLE

    def _housekeeping(self) -> None:
        now = time.monotonic()
        self._resume_listeners(now)
        if self._metrics is not None:
            self._metrics.expire()
        for conn, client in list(self._clients.items()):
            if now >= client.deadline and not client.follower:
                log.warning("disconnected an idle control client")
                self._drop(conn)
        if self._reload is not None and self._reload.worker.overdue(now):
            log.error("the configuration loader did not finish in time: killing it")
            self._reload.worker.kill()
        if now >= self._next_reply_sweep:
            self._next_reply_sweep = now + REPLY_MAX_AGE / 2
            remove_stale_replies(self.runtime_dir, REPLY_MAX_AGE)

    def _stop_children(self) -> None:
        now = time.monotonic()
        live = [c for c in self.children.values() if c.proc is not None]
        for child in live:
            assert child.proc is not None
            child.record.stop(now, self.child_wait_time)
            _kill(child.proc.pid, signal.SIGTERM)
            _kill(child.proc.pid, signal.SIGCONT)
        deadline = now + self.child_wait_time
        for child in live:
            assert child.proc is not None
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("%s child (pid %d) did not stop within child_wait_time: SIGKILL",
                          child.kind, child.proc.pid)
                _kill(child.proc.pid, signal.SIGKILL)
                child.proc.wait()

    # --- systemd ----------------------------------------------------------------------------------------

    def _sd(self, message: str) -> None:
        if self._systemd is not None:
            self._systemd.notify(message)

    def _child_healthy(self, c: Supervised, now: float) -> bool:
        return c.record.healthy(now, c.judge_timeout())

    def _healthy(self, now: float) -> bool:
        return all(self._child_healthy(c, now) for c in self.children.values())

    def summary(self) -> str:
        """One line for systemd's STATUS=: "VI_1 MASTER, VI_2 BACKUP; 5/6 real servers up"."""
        parts = []
        vrrp = self.children.get("vrrp")
        if vrrp is not None:
            for name, info in sorted(vrrp.record.last_state.get("instances", {}).items()):
                if isinstance(info, dict):
                    parts.append(f"{name} {info.get('state', '?')}")
        text = ", ".join(parts)
        checker = self.children.get("checker")
        if checker is not None and "real_servers" in checker.record.last_state:
            st = checker.record.last_state
            rs = f"{st.get('real_servers_up', '?')}/{st.get('real_servers', '?')} real servers up"
            text = f"{text}; {rs}" if text else rs
        down = [f"{c.kind} child restarting" for c in self.children.values() if c.proc is None]
        if self.last_reload is not None and not self.last_reload["ok"]:
            down.append("last reload rejected")
        if down:
            text = "; ".join([text, *down]) if text else "; ".join(down)
        return text or "starting"

    def _notify_systemd(self) -> None:
        if self._systemd is None:
            return
        now = time.monotonic()
        healthy = self._healthy(now)
        if healthy and not self._ready and self._children_ready():
            self._ready = True
            self._sd("READY=1")
        if self._reloading and self._reload_done():
            self._reloading = False
            log.info("configuration generation %d applied by every child", self.generation)
            self._sd("READY=1")
        status = self.summary()
        if status != self._last_status:
            self._last_status = status
            self._sd(f"STATUS={status}")
        every = self._watchdog_every
        if healthy and every is not None and now - self._watchdog_sent >= every:
            self._watchdog_sent = now
            self._sd("WATCHDOG=1")

    def _children_ready(self) -> bool:
        """Every child serves, and the Checkers child has programmed IPVS."""
        return all(c.record.phase is Phase.RUNNING and c.record.last_state.get("ready", True)
                   for c in self.children.values())

    # --- status -------------------------------------------------------------------------------------------

    def status(self, checker_doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole daemon: children (pid, phase, uptime, restarts, heartbeat age, watchdog, loop lag,
        resources) and instances. An instance whose child is not serving or has missed two heartbeats is
        reported UNKNOWN, never MASTER. ``checker_doc``: the Checkers child's status file, if already read."""
        now = time.monotonic()
        children: dict[str, Any] = {}
        instances: list[dict[str, Any]] = []
        virtual_servers: list[dict[str, Any]] = []
        for kind, c in self.children.items():
            rec = c.record
            healthy = self._child_healthy(c, now)
            children[kind] = {
                "pid": c.pid,
                "phase": rec.phase.value,
                "uptime": round(now - rec.started, 3) if c.proc is not None else None,
                "restarts": rec.restarts,
                "restarts_by_reason": dict(rec.restarts_by),
                "heartbeat_age": round(now - rec.last_beat, 3) if rec.last_beat is not None else None,
                "healthy": healthy,
                "hung_timeout": c.judge_timeout(),
                "hung_timeout_source": c.hung.source,
                "loop_lag": rec.last_state.get("loop_lag"),
                **_resources(c.pid),
            }
            if rec.phase is Phase.STARTING and rec.last_state.get("phase"):
                children[kind]["starting"] = rec.last_state["phase"]
            if kind == "vrrp":
                for inst in self._instance_status():
                    if not healthy:
                        inst["state"] = "UNKNOWN"
                        inst["note"] = "the VRRP child is not running or not heartbeating"
                    instances.append(inst)
            if kind == "checker":
                # checks run late when the engine cannot keep up (never failed for it: their timeouts
                # count the network's time); counted since the child started
                children[kind]["late_checks"] = rec.last_state.get("late_probes")
                children[kind]["max_check_lateness"] = rec.last_state.get("max_lateness")
                if checker_doc is None:
                    checker_doc = self._checker_status()
                virtual_servers = checker_doc.get("virtual_servers", [])
                for vs in virtual_servers:
                    if not healthy and isinstance(vs, dict):
                        vs["note"] = "the Checkers child is not running or not heartbeating: last known state"
        return {
            "pid": os.getpid(),
            # this node's name (keepalived's default: the host name)
            "router_id": self.config.global_defs.router_id or socket.gethostname(),
            "config_generation": self.generation,
            "reload": self.last_reload,
            "reload_in_progress": self._reload is not None,
            "children": children,
            "instances": instances,
            "virtual_servers": virtual_servers,
            "metrics": self._metrics_status(),
        }

    # --- metrics ------------------------------------------------------------------------------------------

    def _metrics_address(self) -> tuple[str, int] | None:
        return self.metrics_override or self.config.global_defs.kpd_metrics_listen

    def _serve_metrics(self) -> None:
        """Listen where the metrics should be served (at start, and after a reload that moves them). A
        listener that cannot be opened is logged and shown by ``kpd status``; kpd runs on without it."""
        want = self._metrics_address()
        if self._metrics is not None and self._metrics.address == want:
            return
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
            log.info("metrics endpoint closed")
        self._metrics_error = None
        if want is None or self._sel is None:
            return
        try:
            self._metrics = MetricsServer(want, self._render_metrics, self._sel)
        except OSError as err:
            self._metrics_error = f"cannot listen on {_hostport(want)}: {err.strerror or err}"
            log.error("metrics endpoint: %s", self._metrics_error)
            return
        # prometheus_client and pyroute2's IPVS definitions are imported now, off the loop (seconds on a slow
        # machine), rather than by the first scrape
        threading.Thread(target=import_in_thread, args=("keepalived_py.control.metrics",),
                         name="metrics-import", daemon=True).start()
        if "checker" in self.children:
            self._ipvs_counters().start()
        log.info("serving metrics at http://%s/metrics", _hostport(want))

    def _metrics_status(self) -> dict[str, Any] | None:
        want = self._metrics_address()
        if want is None:
            return None
        return {"listen": _hostport(want), "serving": self._metrics is not None, "error": self._metrics_error}

    def metrics_snapshot(self) -> Snapshot:
        """What a scrape reports: the status, the Checkers child's status file, the kernel's counters."""
        from keepalived_py.control.metrics import Snapshot

        checker = self._checker_status() if "checker" in self.children else {}
        status = self.status(checker)  # first: the heartbeat ages as of now
        ipvs = self._ipvs_counters().read() if "checker" in self.children else None
        return Snapshot(status=status, checker=checker, reloads=dict(self.reload_counts), ipvs_stats=ipvs)

    def _ipvs_counters(self) -> IpvsCounters:
        if self._ipvs is None:
            self._ipvs = IpvsCounters()
        return self._ipvs

    def _render_metrics(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        from keepalived_py.control.metrics import SnapshotCollector

        registry = CollectorRegistry(auto_describe=False)
        registry.register(SnapshotCollector(self.metrics_snapshot))
        return bytes(generate_latest(registry))

    def _read_status(self, name: str) -> Any:
        try:
            return read_runtime_json(self.runtime_dir / name, MAX_STATUS_BYTES)
        except (OSError, ValueError):
            return None

    def _checker_status(self) -> dict[str, Any]:
        doc = self._read_status(CHECK_STATUS)
        return doc if isinstance(doc, dict) else {}

    def _instance_status(self) -> list[dict[str, Any]]:
        doc = self._read_status(VRRP_STATUS)
        return [d for d in doc if isinstance(d, dict)] if isinstance(doc, list) else []

    def stats(self) -> dict[str, Any]:
        return {
            "instances": {
                i.get("name"): {"counters": i.get("counters", {}), "drops": i.get("drops", {})}
                for i in self._instance_status()
            },
            "children": {kind: {"restarts": c.record.restarts,
                                "restarts_by_reason": dict(c.record.restarts_by)}
                         for kind, c in self.children.items()},
            "checkers": self._checker_status().get("stats", {}),
        }


def _error_keys(diagnostics: Sequence[Diagnostic]) -> set[tuple[Severity, str]]:
    return {(d.severity, d.message) for d in diagnostics if d.severity in REJECTING}


def _listener_name(kind: str) -> str:
    return "control" if kind == "client" else "heartbeat"


def _resources(pid: int | None) -> dict[str, Any]:
    if pid is None:
        return {}
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            cpu = proc.cpu_times()
            return {
                "rss_bytes": proc.memory_info().rss,
                "cpu_seconds": round(cpu.user + cpu.system, 3),
                "open_fds": proc.num_fds(),
            }
    except psutil.Error:
        return {}


def _hostport(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except OSError as err:
        if err.errno != errno.ESRCH:
            raise


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
