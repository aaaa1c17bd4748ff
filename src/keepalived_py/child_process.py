"""The one runtime every child process (``kpd-vrrp``, ``kpd-checker``) runs on.

    python -m keepalived_py.<kind>.child --config FILE --runtime-dir DIR --heartbeat-socket PATH
        [--heartbeat-interval SECONDS] [--vars FILE] [--config-id ID] [--log-console] [--log-level LEVEL]
        [child options]

:func:`start_child` names the process (``/proc/PID/comm``), asks for SIGTERM when the parent dies, sets up
logging, starts heartbeating at once (start-up beats from a thread, so a slow start is not a hang) and reads
the configuration the parent validated (:func:`~keepalived_py.config.snapshot.load_for_child`); it returns
an exit code instead when the child must not run.

:class:`ChildRuntime` then serves an engine on an asyncio loop: SIGTERM/SIGINT stop it (the engine's
orderly shutdown), SIGHUP switches to the parent's new configuration snapshot (reloads queue, never
overlap), the status file is rewritten as the engine reports changes (coalesced), heartbeats go out from a
task on the same loop, so a wedged loop goes silent, and they carry the loop's lag
(:mod:`keepalived_py.loop_lag`); the engine's structured events (:attr:`EngineHooks.events`) follow each
beat. A hung child is SIGKILLed by the parent, so it never runs its shutdown path and what it programmed in
the kernel stays for its successor.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keepalived_py import script_runner
from keepalived_py.config.model import Config
from keepalived_py.config.snapshot import SnapshotError, load_for_child, read_snapshot
from keepalived_py.events import EventBuffer
from keepalived_py.exitcodes import ExitCode
from keepalived_py.heartbeat import HeartbeatSender, send_heartbeats
from keepalived_py.logs import LEVELS, setup_logging
from keepalived_py.loop_lag import LoopLagMonitor
from keepalived_py.process_priority import AutoPriority, Scheduling
from keepalived_py.process_priority import apply as apply_scheduling
from keepalived_py.procname import die_with_parent, set_name
from keepalived_py.runtime_files import write_json_atomic

log = logging.getLogger("kpd.child")

#: the engine's summary carried by the heartbeats is computed again at most this often (a beat goes out
#: several times a second; with a thousand instances the summary is a thousand entries), and at once after
#: the engine reports a change
SUMMARY_EVERY = 1.0


class Cached:
    """``compute()``'s value, computed again ``every`` seconds later or after :meth:`invalidate`."""

    def __init__(self, compute: Callable[[], Any], every: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._compute, self._every, self._clock = compute, every, clock
        self._value: Any = None
        self._at = 0.0
        self._valid = False

    def get(self) -> Any:
        now = self._clock()
        if not self._valid or now - self._at >= self._every:
            self._value, self._at, self._valid = self._compute(), now, True
        return self._value

    def invalidate(self) -> None:
        self._valid = False

#: heartbeat interval when the parent gives none (a child run by hand)
DEFAULT_HEARTBEAT_INTERVAL = 0.5


def child_parser(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=name)
    p.add_argument("--config", required=True)
    p.add_argument("--vars", action="append", default=[])
    p.add_argument("--config-id")
    p.add_argument("--runtime-dir", required=True)
    p.add_argument("--heartbeat-socket")
    p.add_argument("--heartbeat-interval", type=float, default=DEFAULT_HEARTBEAT_INTERVAL)
    p.add_argument("--log-console", action="store_true")
    p.add_argument("--log-level", choices=tuple(LEVELS), default="info")
    p.add_argument("--log-facility", type=int, choices=range(8))
    p.add_argument("--no-syslog", action="store_true")
    p.add_argument("--log-file")
    return p


@dataclass
class ChildStart:
    kind: str
    args: argparse.Namespace
    runtime_dir: Path
    config: Config
    generation: int
    heartbeat: HeartbeatSender | None


def start_child(kind: str, name: str, parser: argparse.ArgumentParser, argv: list[str] | None,
                sender: HeartbeatSender | None = None) -> ChildStart | int:
    """``sender``: start-up beats the entry point already started (before its imports)."""
    args = parser.parse_args(argv)
    set_name(name)
    die_with_parent()
    if os.getppid() == 1:  # the parent died before we asked to be told
        return int(ExitCode.FAILURE)
    if sender is None and args.heartbeat_socket:
        sender = HeartbeatSender(kind, args.heartbeat_socket)
        sender.start_up(args.heartbeat_interval)
    setup_logging(
        console=args.log_console,
        level=args.log_level,
        ident=name,
        facility=args.log_facility,
        syslog=not args.no_syslog,
        log_file=args.log_file,
    )
    runtime_dir = Path(args.runtime_dir)
    if sender is not None:
        sender.progress("reading the configuration")
    config, generation, errors = load_for_child(runtime_dir, args.config, vars_files=args.vars,
                                                config_id=args.config_id)
    if config is not None:
        gd = config.global_defs
        own = gd.vrrp_process_name if kind == "vrrp" else gd.checker_process_name
        default = ("keepalived_vrrp" if kind == "vrrp" else "keepalived_lvs") if gd.process_names else None
        if own or default:
            set_name(own or default or name)  # keepalived's process_names / *_process_name
        apply_scheduling(Scheduling.of(gd, kind))
    if config is None:
        print("\n".join(errors), file=sys.stderr)
        return int(ExitCode.CONFIG_FATAL)
    return ChildStart(kind, args, runtime_dir, config, generation, sender)


@dataclass
class EngineHooks:
    """What the runtime needs of an engine (the VRRP engine, the check engine)."""

    #: serve until ``stop``
    run: Callable[[], Awaitable[None]]
    stop: Callable[[], None]
    #: the orderly shutdown after ``run`` returns
    shutdown: Callable[[], Awaitable[None]]
    #: switch to a new configuration (sync or async)
    reload: Callable[[Config], Awaitable[Any] | Any]
    #: the status file's content
    status: Callable[[], Any]
    #: the heartbeat's state summary
    summary: Callable[[], dict[str, Any]]
    #: the engine's structured events (``kpd events``): sent to the parent after each heartbeat; also where
    #: the scripts the child runs report (:data:`keepalived_py.script_runner.default_events`)
    events: EventBuffer = field(default_factory=EventBuffer)


class ChildRuntime:
    def __init__(self, start: ChildStart, status_file: str, *, status_every: float = 0.0,
                 refresh_every: float | None = None):
        self.start = start
        self.status_path = start.runtime_dir / status_file
        #: a change is written at most this long after it happened (0: at the end of the loop turn)
        self.status_every = status_every
        #: the status file is also rewritten this often, for what changes without a state change (counters)
        self.refresh_every = refresh_every
        #: generation of the configuration in force, and why the last reload failed (None: it did not)
        self.reloads: dict[str, Any] = {"generation": start.generation, "reload_error": None}
        self._changed: asyncio.Event | None = None
        self._summary: Cached | None = None
        self._dump_pending = False
        self._hooks: EngineHooks | None = None
        self._reloading: asyncio.Task[None] | None = None

    def changed(self) -> None:
        """The engine's state changed: the parent hears of it at once, the status file soon."""
        if self._changed is None:
            return
        if self._summary is not None:
            self._summary.invalidate()
        self._changed.set()
        if not self._dump_pending:
            self._dump_pending = True
            loop = asyncio.get_running_loop()
            if self.status_every > 0:
                loop.call_later(self.status_every, self.dump)
            else:
                loop.call_soon(self.dump)

    def dump(self) -> None:
        self._dump_pending = False
        if self._hooks is None:
            return
        doc = self._hooks.status()
        if isinstance(doc, dict):
            doc = {**doc, **self.reloads}
        try:
            write_json_atomic(self.status_path, doc, sync=False)
        except OSError as err:
            log.warning("cannot write %s: %s", self.status_path, err)

    async def _reload(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await previous
        assert self._hooks is not None
        try:
            snap = read_snapshot(self.start.runtime_dir)
        except SnapshotError as err:
            self.reloads["reload_error"] = f"cannot read the new configuration: {err}"
            log.error("reload: %s; the running configuration is kept", self.reloads["reload_error"])
        else:
            result = self._hooks.reload(snap.config)
            if inspect.isawaitable(result):
                await result
            self.reloads.update(generation=snap.generation, reload_error=None)
        self.dump()
        self.changed()

    def _on_sighup(self) -> None:
        previous = self._reloading if self._reloading is not None and not self._reloading.done() else None
        if previous is not None:
            log.warning("SIGHUP while a reload runs: reloading again after it")
        self._reloading = asyncio.get_running_loop().create_task(self._reload(previous))

    async def _refresh(self) -> None:
        assert self.refresh_every
        while True:
            await asyncio.sleep(self.refresh_every)
            self.dump()

    async def serve(self, hooks: EngineHooks) -> None:
        self._hooks = hooks
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, hooks.stop)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        changed = self._changed
        hooks.events.on_emit = changed.set  # an event goes out with the next beat, at once
        script_runner.set_default_events(hooks.events.emit)
        self.dump()  # what cannot run here is in the status from the start
        auto = AutoPriority(Scheduling.of(self.start.config.global_defs, self.start.kind))
        lag = LoopLagMonitor.start(on_lag=auto.late if auto.enabled else None)
        refresh = loop.create_task(self._refresh()) if self.refresh_every else None
        beat = None
        sender = self.start.heartbeat
        if sender is not None:
            summary = self._summary = Cached(hooks.summary, SUMMARY_EVERY)
            beat = loop.create_task(send_heartbeats(
                sender, self.start.args.heartbeat_interval,
                lambda: {**summary.get(), **self.reloads, "loop_lag": lag.summary()}, self._changed,
                hooks.events))
        try:
            await hooks.run()
        finally:
            if beat is not None:
                beat.cancel()
            if lag.task is not None:
                lag.task.cancel()
            if refresh is not None:
                refresh.cancel()
            await hooks.shutdown()
            self.dump()
            if sender is not None:  # the shutdown's own events (transitions to STOP...), best effort
                sender.send_events(hooks.events)
            script_runner.set_default_events(None)


def run_child(start: ChildStart, runtime: ChildRuntime, hooks: Callable[[], EngineHooks]) -> int:
    """Build the engine (inside the loop) and serve it; the child's exit code."""

    async def main() -> None:
        await runtime.serve(hooks())

    asyncio.run(main())
    return int(ExitCode.OK)
