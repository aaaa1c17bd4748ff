"""The control-plane parent (``kpd``): starts the children, watches their heartbeats, restarts them.

Like gunicorn's arbiter: signal handlers only enqueue the signal (and wake the loop through a pipe); one
loop dispatches signals, reads heartbeats, reaps children with ``waitpid(-1, WNOHANG)`` and runs the
watchdog. A child silent for ``kpd_child_hung_timeout`` is hung: SIGTERM, then SIGKILL after
``kpd_child_kill_grace``, then a respawn. Respawns back off as keepalived's do; a child exiting with a
configuration code stops the daemon instead of looping, and so do :data:`MAX_QUICK_RESTARTS` quick deaths
in a row. A respawned VRRP child resumes as MASTER the instances its predecessor reported MASTER,
when it is back within their Master_Down_Interval, so nothing flaps.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import sdnotify

from keepalived_py import wire
from keepalived_py.config.diagnostics import Diagnostic, Severity
from keepalived_py.config.load import load_config
from keepalived_py.config.model import Config
from keepalived_py.config.snapshot import SNAPSHOT_FILE, write_snapshot
from keepalived_py.control.backoff import STABLE_AFTER, Backoff
from keepalived_py.exitcodes import ExitCode
from keepalived_py.procname import become_subreaper, set_name
from keepalived_py.runtime_files import write_file_atomic, write_json_atomic
from keepalived_py.vrrp.fsm import master_down_interval

log = logging.getLogger("kpd.control")

HANDLED_SIGNALS = (
    signal.SIGCHLD,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
HEARTBEAT_SOCKET = "heartbeat.sock"
CONTROL_SOCKET = "control.sock"
STATE_DUMP = "kpd-state.json"
#: answers larger than REPLY_INLINE_MAX bytes are written here and the reply names the file
CONTROL_REPLY = "control-reply.json"
REPLY_INLINE_MAX = 64 * 1024
STATS_DUMP = "kpd-stats.json"
PID_FILE = "kpd.pid"
#: written before a hung child's SIGTERM: "you are being restarted, keep your kernel state"
RESTART_MARK = "{kind}.restart"
#: A child's first heartbeat may take this long (imports, reading the kernel's state on a slow machine)
STARTUP_GRACE = 30.0
#: Quick deaths in a row (each within a minute of its start) after which the daemon gives up.
MAX_QUICK_RESTARTS = 6
#: Exit codes of a child that mean "do not respawn me": the configuration cannot run.
NO_RESPAWN = {int(ExitCode.CONFIG_FATAL), int(ExitCode.CHILD_FATAL)}
_SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)
#: diagnostics that make a reload keep the running configuration
REJECTING = {Severity.FATAL, Severity.ERROR, Severity.SECURITY}


@dataclass
class Child:
    kind: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    last_beat: float | None = None
    last_beat_wall: float | None = None
    last_state: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    quick_deaths: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    respawn_at: float | None = None
    #: the last death was by a signal (its addresses are still in place)
    abnormal: bool = False
    #: a reload dropped this child's part of the configuration: it is not respawned
    retired: bool = False
    term_sent: float | None = None
    died: float | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


class PidFileError(RuntimeError):
    pass


def claim_pid_file(runtime_dir: Path) -> Path:
    """Write our pid without following symlinks; refuse if a live kpd already holds the runtime dir."""
    path = runtime_dir / PID_FILE
    if path.is_symlink():
        raise PidFileError(f"{path} is a symlink; refusing to use it")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        pass
    else:
        with os.fdopen(fd) as f:
            text = f.read(32).strip()
        if text.isdigit() and _is_kpd(int(text)):
            raise PidFileError(f"kpd is already running with pid {text} (runtime dir {runtime_dir})")
        log.info("removing stale pid file %s (pid %s is not running kpd)", path, text or "?")
    write_file_atomic(path, f"{os.getpid()}\n".encode())
    return path


def _is_kpd(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return comm.startswith("kpd")


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
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.vars_files = list(vars_files or ())
        self.config_id = config_id
        #: the configuration generation the children should run (0 at start, +1 per accepted reload)
        self.generation = 0
        #: the last reload: {"generation", "ok", "time", "errors"}; None before the first
        self.last_reload: dict[str, Any] | None = None
        self._reloading = False
        #: the errors the running configuration was accepted with (a reload may not add new ones)
        self._accepted_errors = _error_keys(diagnostics)
        self.runtime_dir = runtime_dir
        self.children: dict[str, Child] = {}
        self._signals: deque[int] = deque()
        self._stopping = False
        self.exit_code = ExitCode.OK
        common = ["--config", config_path, "--runtime-dir", str(runtime_dir)]
        for v in vars_files or ():
            common += ["--vars", v]
        if config_id:
            common += ["--config-id", config_id]
        common += ["--log-level", log_level] + (["--log-console"] if log_console else [])
        self._heartbeat_path = str(runtime_dir / HEARTBEAT_SOCKET)
        self._control_path = str(runtime_dir / CONTROL_SOCKET)
        common += ["--heartbeat-socket", self._heartbeat_path]
        vrrp_argv = [sys.executable, "-m", "keepalived_py.vrrp.child", *common]
        if not release_vrrp:
            vrrp_argv.append("--dont-release-vrrp")
        checker_argv = [sys.executable, "-m", "keepalived_py.check.child", *common]
        if not release_ipvs:
            checker_argv.append("--dont-release-ipvs")
        #: each child's command line, started when its part of the configuration is present
        self._argv = {"vrrp": vrrp_argv, "checker": checker_argv}
        for kind in self._wanted(config):
            self.children[kind] = Child(kind, self._argv[kind])
        gd = config.global_defs
        self.hung_timeout = gd.kpd_child_hung_timeout
        self.kill_grace = gd.kpd_child_kill_grace
        self.child_wait_time = gd.child_wait_time
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

    # --- set-up -------------------------------------------------------------------------------------------

    @staticmethod
    def _wanted(config: Config) -> list[str]:
        """The children a configuration needs, as keepalived starts them: VRRP and/or Checkers."""
        return [kind for kind, present in (("vrrp", config.has_vrrp), ("checker", config.has_checkers))
                if present]

    def _listen(self, path: str) -> socket.socket:
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
        sock.listen(16)
        return sock

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signals.append(signum)  # only enqueue: the loop dispatches

    def run(self) -> int:
        set_name("kpd")
        become_subreaper()
        listener = self._listen(self._heartbeat_path)
        control = self._listen(self._control_path)
        sel = selectors.DefaultSelector()
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
        for sig in (
            signal.SIGCHLD,
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGUSR1,
            signal.SIGUSR2,
        ):
            signal.signal(sig, self._on_signal)
        sel.register(listener, selectors.EVENT_READ, "listen")
        sel.register(control, selectors.EVENT_READ, "control")
        sel.register(rfd, selectors.EVENT_READ, "wakeup")
        write_snapshot(self.runtime_dir, self.generation, self.config)
        for child in self.children.values():
            self._spawn(child, resume=())
        try:
            while True:
                for key, _ in sel.select(timeout=min(0.1, self.hung_timeout / 6)):
                    if key.data == "listen":
                        self._accept(listener, sel, "conn")
                    elif key.data == "control":
                        self._accept(control, sel, "client")
                    elif key.data == "client":
                        self._serve_client(key.fileobj, sel)  # type: ignore[arg-type]
                    elif key.data == "wakeup":
                        _drain(rfd)
                    else:
                        self._read_frames(key.fileobj, sel)  # type: ignore[arg-type]
                while self._signals:
                    self._dispatch(self._signals.popleft())
                self._reap()
                if self._stopping:
                    break
                self._watchdog()
                self._respawn_due()
                self._notify_systemd()
        finally:
            self._sd("STOPPING=1")
            self._stop_children()
            sel.close()
            listener.close()
            control.close()
            with contextlib.suppress(OSError):
                os.unlink(self._control_path)
            for fd in (rfd, wfd):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(self._heartbeat_path)
            with contextlib.suppress(OSError):
                os.unlink(self.runtime_dir / SNAPSHOT_FILE)
        return int(self.exit_code)

    # --- signals ------------------------------------------------------------------------------------------

    def _dispatch(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            log.info("received %s: stopping", signal.Signals(signum).name)
            self._stopping = True
        elif signum == signal.SIGHUP:
            log.info("received SIGHUP: reloading")
            self.reload()
        elif signum in (signal.SIGUSR1, signal.SIGUSR2):
            name, doc = (
                (STATE_DUMP, self.status()) if signum == signal.SIGUSR1 else (STATS_DUMP, self.stats())
            )
            try:
                write_json_atomic(self.runtime_dir / name, doc)
                log.info("wrote %s", self.runtime_dir / name)
            except OSError as err:
                log.error("cannot write %s: %s", self.runtime_dir / name, err)
        # SIGCHLD: the loop reaps after every dispatch

    # --- heartbeats ---------------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket, sel: selectors.BaseSelector, kind: str) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                return
            pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, _SO_PEERCRED, 12))
            if uid not in (0, os.geteuid()):
                log.warning("refused a %s connection from uid %d (pid %d)", listener_name(kind), uid, pid)
                conn.close()
                continue
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ, kind)

    def _serve_client(self, conn: socket.socket, sel: selectors.BaseSelector) -> None:
        """One request per datagram on the control socket; a bad frame gets an error answer."""
        data = _recv_frame(conn, sel)
        if data is None:
            return
        try:
            msg = wire.decode(data)
            if not isinstance(msg, wire.Request):
                raise wire.WireError(wire.WireReason.TYPE, "the control socket takes requests")
            response = self._handle(msg)
        except wire.WireError as err:
            log.warning("bad control request: %s", err)
            response = wire.Response(False, {"error": str(err)})
        try:
            data = wire.encode(response)
            if len(data) > REPLY_INLINE_MAX:
                raise ValueError("large")
        except ValueError:
            # A large answer (status of thousands of instances) goes through a root-only file.
            path = self.runtime_dir / CONTROL_REPLY
            try:
                write_json_atomic(path, response.body)
                data = wire.encode(wire.Response(response.ok, {"reply_file": str(path)}))
            except OSError as err:
                log.warning("cannot write %s: %s", path, err)
                data = wire.encode(wire.Response(False, {"error": f"answer too large, and {err}"}))
        try:
            conn.send(data)
        except OSError as err:
            log.warning("cannot answer a control request: %s", err)

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
        if req.cmd == "reload":
            outcome = self.reload()
            if outcome["ok"]:
                return wire.Response(True, {"message": f"configuration generation {outcome['generation']} "
                                                       "accepted; the children are applying it"})
            return wire.Response(False, {
                "error": "the new configuration was rejected; the running one is kept",
                "diagnostics": outcome["errors"]})
        return wire.Response(False, {"error": f"unknown command {req.cmd!r}"})

    # --- reload -------------------------------------------------------------------------------------------

    def reload(self) -> dict[str, Any]:
        """Validate the configuration again; if it is sound, hand it to the children, which apply the
        differences. A configuration with errors is rejected and the running one stays."""
        self._sd("RELOADING=1")
        result = load_config(self.config_path, vars_files=self.vars_files, config_id=self.config_id)
        new = [d for d in result.diagnostics if d.severity in REJECTING
               and (d.severity, d.message) not in self._accepted_errors]
        errors = [d.format() for d in new]
        if not result.runnable or result.config is None or errors:
            self.last_reload = {"generation": self.generation, "ok": False, "time": time.time(),
                                "errors": errors or [d.format() for d in result.diagnostics]}
            for line in self.last_reload["errors"]:
                log.error("reload rejected: %s", line)
            log.error("reload rejected: the running configuration (generation %d) is kept", self.generation)
            self._sd("READY=1")
            self._sd(f"STATUS=reload rejected ({len(self.last_reload['errors'])} errors); {self.summary()}")
            return self.last_reload
        self.generation += 1
        self.config = result.config
        self._accepted_errors = _error_keys(result.diagnostics)
        write_snapshot(self.runtime_dir, self.generation, self.config)
        self.last_reload = {"generation": self.generation, "ok": True, "time": time.time(), "errors": []}
        wanted = self._wanted(self.config)
        for kind, child in list(self.children.items()):
            if kind not in wanted:
                log.info("the new configuration has no %s part: stopping the %s child", kind, kind)
                child.retired = True
                if child.proc is not None:
                    _kill(child.proc.pid, signal.SIGTERM)
                else:
                    del self.children[kind]
            elif child.proc is not None:
                _kill(child.proc.pid, signal.SIGHUP)
        for kind in wanted:
            if kind not in self.children:
                self.children[kind] = Child(kind, self._argv[kind])
                self._spawn(self.children[kind], resume=())
        self._reloading = True
        log.info("configuration generation %d accepted; children are applying it", self.generation)
        return self.last_reload

    def _reload_done(self) -> bool:
        """Every running child reports the current generation."""
        return all(c.last_state.get("generation", 0) >= self.generation
                   for c in self.children.values() if c.proc is not None and not c.retired)

    def _read_frames(self, conn: socket.socket, sel: selectors.BaseSelector) -> None:
        for _ in range(64):
            data = _recv_frame(conn, sel)
            if data is None:
                return
            try:
                msg = wire.decode(data)
            except wire.WireError as err:
                log.warning("dropped a bad heartbeat frame: %s", err)
                continue
            if isinstance(msg, wire.Heartbeat):
                child = self.children.get(msg.child)
                if child is not None and child.pid == msg.pid:
                    child.last_beat = time.monotonic()
                    child.last_beat_wall = time.time()
                    child.last_state = msg.state

    # --- children -----------------------------------------------------------------------------------------

    def _spawn(self, child: Child, resume: tuple[str, ...]) -> None:
        argv = list(child.argv)
        for name in resume:
            argv += ["--resume-master", name]
        child.proc = subprocess.Popen(argv, close_fds=True)
        child.started = time.monotonic()
        child.last_beat = None
        child.term_sent = None
        child.respawn_at = None
        log.info(
            "started %s child, pid %d%s",
            child.kind,
            child.proc.pid,
            f" (resuming MASTER: {', '.join(resume)})" if resume else "",
        )

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = next((c for c in self.children.values() if c.pid == pid), None)
            if child is None:
                continue  # an orphan re-parented to us (we are a subreaper)
            code = os.waitstatus_to_exitcode(status)
            assert child.proc is not None
            child.proc.returncode = code
            child.proc = None
            now = time.monotonic()
            child.died = now
            if self._stopping:
                continue
            if child.retired:
                log.info("%s child (pid %d) stopped: its part of the configuration is gone", child.kind, pid)
                del self.children[child.kind]
                continue
            ran_for = now - child.started
            log.warning(
                "%s child (pid %d) exited with %s after %.1f s",
                child.kind,
                pid,
                f"code {code}" if code >= 0 else f"signal {-code}",
                ran_for,
            )
            if code in NO_RESPAWN:
                log.error("%s child cannot run %s: stopping", child.kind,
                          "the configuration" if code == ExitCode.CONFIG_FATAL else "on this host")
                self.exit_code = ExitCode(code)
                self._stopping = True
                continue
            child.quick_deaths = child.quick_deaths + 1 if ran_for <= STABLE_AFTER else 0
            if child.quick_deaths >= MAX_QUICK_RESTARTS:
                log.error(
                    "%s child died %d times in a row within a minute of starting: stopping",
                    child.kind,
                    child.quick_deaths,
                )
                self.exit_code = ExitCode.FAILURE
                self._stopping = True
                continue
            delay = child.backoff.next_delay(ran_for)
            child.respawn_at = now + delay
            # A child that stopped gracefully released its addresses: the next one starts afresh.
            child.abnormal = code < 0
            child.restarts += 1

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.proc is None and child.respawn_at is not None and now >= child.respawn_at \
                    and not child.retired:
                self._spawn(child, self._resumable(child, now))

    def _resumable(self, child: Child, now: float) -> tuple[str, ...]:
        """The instances the dead child reported MASTER, if their backups cannot have taken over yet."""
        if child.kind != "vrrp" or child.last_beat is None or not child.abnormal:
            return ()
        silent_for = now - child.last_beat
        out = []
        for name, info in child.last_state.get("instances", {}).items():
            if not isinstance(info, dict) or info.get("state") != "MASTER":
                continue
            try:
                inst = self.config.instance(name)
            except KeyError:
                continue
            version = inst.version or self.config.global_defs.vrrp_version
            # the quickest possible backup (priority 254) takes over after this long
            down = master_down_interval(version, 254, inst.advert_int)
            if silent_for < down:
                out.append(name)
        return tuple(out)

    def _watchdog(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.proc is None:
                continue
            if child.term_sent is not None:
                if now - child.term_sent >= self.kill_grace:
                    log.error("%s child (pid %d) did not stop: SIGKILL", child.kind, child.proc.pid)
                    _kill(child.proc.pid, signal.SIGKILL)
                    child.term_sent = now + 3600  # do not repeat; the reaper takes it from here
                continue
            since = child.last_beat if child.last_beat is not None else child.started
            first = child.last_beat is None
            grace = max(self.hung_timeout, STARTUP_GRACE) if first else self.hung_timeout
            if now - since > grace:
                log.error(
                    "%s child (pid %d) sent no heartbeat for %.1f s: hung, restarting it",
                    child.kind,
                    child.proc.pid,
                    now - since,
                )
                # A restart, not a stop: what the child programmed (IPVS rules) stays for its successor.
                with contextlib.suppress(OSError):
                    write_file_atomic(self.runtime_dir / RESTART_MARK.format(kind=child.kind), b"")
                _kill(child.proc.pid, signal.SIGTERM)
                _kill(child.proc.pid, signal.SIGCONT)  # a stopped child must run to act on SIGTERM
                child.term_sent = now

    def _stop_children(self) -> None:
        live = [c for c in self.children.values() if c.proc is not None]
        for child in live:
            assert child.proc is not None
            _kill(child.proc.pid, signal.SIGTERM)
            _kill(child.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + self.child_wait_time
        for child in live:
            assert child.proc is not None
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error(
                    "%s child (pid %d) did not stop within child_wait_time: SIGKILL",
                    child.kind,
                    child.proc.pid,
                )
                _kill(child.proc.pid, signal.SIGKILL)
                child.proc.wait()

    # --- systemd ----------------------------------------------------------------------------------------

    def _sd(self, message: str) -> None:
        if self._systemd is not None:
            self._systemd.notify(message)

    def _child_healthy(self, c: Child, now: float) -> bool:
        """The child runs and has not missed two heartbeats (children beat every hung timeout / 6)."""
        return c.proc is not None and c.last_beat is not None and now - c.last_beat <= self.hung_timeout / 3

    def _healthy(self, now: float) -> bool:
        return all(self._child_healthy(c, now) for c in self.children.values())

    def summary(self) -> str:
        """One line for systemd's STATUS=: "VI_1 MASTER, VI_2 BACKUP; 5/6 real servers up"."""
        parts = []
        vrrp = self.children.get("vrrp")
        if vrrp is not None:
            for name, info in sorted(vrrp.last_state.get("instances", {}).items()):
                if isinstance(info, dict):
                    parts.append(f"{name} {info.get('state', '?')}")
        text = ", ".join(parts)
        checker = self.children.get("checker")
        if checker is not None and "real_servers" in checker.last_state:
            st = checker.last_state
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
        """Every child has heartbeated, and the Checkers child has programmed IPVS."""
        return all(c.last_beat is not None and c.last_state.get("ready", True)
                   for c in self.children.values())

    def status(self) -> dict[str, Any]:
        """The whole daemon: children (pid, uptime, restarts, heartbeat age, resources) and instances.

        An instance whose child is dead or has missed two heartbeats is reported UNKNOWN, never MASTER.
        """
        now = time.monotonic()
        children: dict[str, Any] = {}
        instances: list[dict[str, Any]] = []
        virtual_servers: list[dict[str, Any]] = []
        for kind, c in self.children.items():
            healthy = self._child_healthy(c, now)
            children[kind] = {
                "pid": c.pid,
                "uptime": round(now - c.started, 3) if c.proc is not None else None,
                "restarts": c.restarts,
                "heartbeat_age": round(now - c.last_beat, 3) if c.last_beat is not None else None,
                "healthy": healthy,
                **_resources(c.pid),
            }
            if kind == "vrrp":
                for inst in self._instance_status():
                    if not healthy:
                        inst["state"] = "UNKNOWN"
                        inst["note"] = "the VRRP child is not running or not heartbeating"
                    instances.append(inst)
            if kind == "checker":
                virtual_servers = self._checker_status().get("virtual_servers", [])
                for vs in virtual_servers:
                    if not healthy:
                        vs["note"] = "the Checkers child is not running or not heartbeating: last known state"
        return {
            "pid": os.getpid(),
            "config_generation": self.generation,
            "reload": self.last_reload,
            "children": children,
            "instances": instances,
            "virtual_servers": virtual_servers,
        }

    def _checker_status(self) -> dict[str, Any]:
        try:
            doc = json.loads((self.runtime_dir / "check-status.json").read_text())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def _instance_status(self) -> list[dict[str, Any]]:
        try:
            doc = json.loads((self.runtime_dir / "vrrp-status.json").read_text())
        except (OSError, ValueError):
            return []
        return [d for d in doc if isinstance(d, dict)] if isinstance(doc, list) else []

    def stats(self) -> dict[str, Any]:
        return {
            "instances": {
                i.get("name"): {"counters": i.get("counters", {}), "drops": i.get("drops", {})}
                for i in self._instance_status()
            },
            "children": {kind: {"restarts": c.restarts} for kind, c in self.children.items()},
            "checkers": self._checker_status().get("stats", {}),
        }


def _error_keys(diagnostics: Sequence[Diagnostic]) -> set[tuple[Severity, str]]:
    return {(d.severity, d.message) for d in diagnostics if d.severity in REJECTING}


def _recv_frame(conn: socket.socket, sel: selectors.BaseSelector) -> bytes | None:
    """The next frame on a connection; None when there is none yet, or when the peer went (then closed)."""
    try:
        data = conn.recv(wire.MAX_FRAME + 1)
    except BlockingIOError:
        return None
    except OSError:
        data = b""
    if not data:
        sel.unregister(conn)
        conn.close()
        return None
    return data


def listener_name(kind: str) -> str:
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
