"""Runs the check engine as a process of its own: IPVS driver, signals, status file, reload, orderly stop.

SIGTERM/SIGINT stop it (IPVS rules released per ``lvs_flush_on_stop`` unless ``release`` is False); SIGHUP
switches to the configuration snapshot the parent wrote (:mod:`keepalived_py.config.snapshot`), applying only
the differences. Every virtual server's state is written to ``<runtime dir>/check-status.json``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from keepalived_py.check.engine import CheckEngine, Driver
from keepalived_py.config.model import Config
from keepalived_py.config.snapshot import read_snapshot
from keepalived_py.heartbeat import send_heartbeats
from keepalived_py.loop_lag import LoopLagMonitor
from keepalived_py.runtime_files import write_json_atomic

log = logging.getLogger("kpd.check")
STATUS_FILE = "check-status.json"
#: the parent's restart mark for this child (control.arbiter.RESTART_MARK)
RESTART_MARK = "checker.restart"
#: status file writes are coalesced to at most one per this many seconds
STATUS_EVERY = 0.5


async def serve(
    config: Config,
    runtime_dir: Path,
    *,
    driver: Driver | None = None,
    release: bool = True,
    heartbeat_socket: str | None = None,
    generation: int = 0,
) -> None:
    if driver is None:
        from keepalived_py.ipvs.driver import IpvsDriver

        driver = IpvsDriver()
    engine = CheckEngine(config, driver, release_on_stop=release)
    loop = asyncio.get_running_loop()
    lag = LoopLagMonitor.start()
    restart_mark = runtime_dir / RESTART_MARK
    restart_mark.unlink(missing_ok=True)

    def stop() -> None:
        if restart_mark.exists():  # the parent restarts us (we were hung): the successor adopts the table
            restart_mark.unlink(missing_ok=True)
            log.warning("restarted by the parent: leaving the IPVS table to the next Checkers child")
            engine.release_on_stop = False
        engine.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    status_path = runtime_dir / STATUS_FILE
    changed = asyncio.Event()
    state: dict[str, Any] = {"generation": generation, "reload_error": None}
    dump_pending = False

    def dump() -> None:
        nonlocal dump_pending
        dump_pending = False
        doc = {"virtual_servers": engine.status(), "stats": engine.stats, **state}
        try:
            write_json_atomic(status_path, doc)
        except OSError as err:
            log.warning("cannot write %s: %s", status_path, err)

    def on_change() -> None:
        nonlocal dump_pending
        changed.set()
        if not dump_pending:
            dump_pending = True
            loop.call_later(STATUS_EVERY, dump)

    def reload() -> None:
        try:
            snap = read_snapshot(runtime_dir)
        except (OSError, ValueError, EOFError, ImportError, AttributeError) as err:
            state["reload_error"] = f"cannot read the new configuration: {err}"
            log.error("reload: %s", state["reload_error"])
        else:
            engine.reload(snap.config)
            state["generation"] = snap.generation
            state["reload_error"] = None
        on_change()

    engine.on_change = on_change
    loop.add_signal_handler(signal.SIGHUP, reload)
    engine.open()
    dump()
    beat = None
    if heartbeat_socket is not None:
        interval = config.global_defs.kpd_child_hung_timeout / 6
        beat = loop.create_task(send_heartbeats(
            "checker", heartbeat_socket, interval,
            lambda: {**engine.summary(), **state, "loop_lag": lag.summary()}, changed))
    try:
        await engine.run()
    finally:
        if beat is not None:
            beat.cancel()
        await engine.shutdown()
        dump()
