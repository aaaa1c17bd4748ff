"""Runs the VRRP engine as a process of its own: signals, state file, orderly shutdown.

SIGTERM and SIGINT stop it gracefully (priority 0 from every MASTER, addresses released unless
``release`` is False); the status of every instance is written to ``<runtime dir>/vrrp-status.json`` after
each transition.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
from pathlib import Path

from keepalived_py.config.model import Config
from keepalived_py.config.snapshot import read_snapshot
from keepalived_py.heartbeat import send_heartbeats
from keepalived_py.loop_lag import LoopLagMonitor
from keepalived_py.runtime_files import write_json_atomic
from keepalived_py.vrrp.engine import VrrpEngine
from keepalived_py.vrrp.fsm import State

log = logging.getLogger("kpd.vrrp")
STATUS_FILE = "vrrp-status.json"


async def serve(
    config: Config,
    runtime_dir: Path,
    *,
    release: bool = True,
    heartbeat_socket: str | None = None,
    resume_master: tuple[str, ...] = (),
    generation: int = 0,
) -> None:
    """Run the engine until SIGTERM/SIGINT; heartbeat to the parent's socket when one is given."""
    engine = VrrpEngine(config, release_on_stop=release)
    engine.open()
    loop = asyncio.get_running_loop()
    lag = LoopLagMonitor.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, engine.stop)
    status_path = runtime_dir / STATUS_FILE

    dump_pending = False

    def dump(_name: str = "", _state: State | None = None) -> None:
        nonlocal dump_pending
        dump_pending = False
        try:
            write_json_atomic(status_path, [s.to_json() for s in engine.status()])
        except OSError as err:
            log.warning("cannot write %s: %s", status_path, err)

    def dump_soon() -> None:
        """One status file write per loop turn, however many instances changed state in it."""
        nonlocal dump_pending
        if not dump_pending:
            dump_pending = True
            loop.call_soon(dump)

    beat = None
    changed = asyncio.Event()
    reloads: dict[str, object] = {"generation": generation, "reload_error": None}
    reloading: list[asyncio.Task[None]] = []

    async def reload() -> None:
        try:
            snap = read_snapshot(runtime_dir)
        except (OSError, ValueError, EOFError, pickle.UnpicklingError) as err:
            reloads["reload_error"] = f"cannot read the new configuration: {err}"
            log.error("reload: %s; the running configuration is kept", reloads["reload_error"])
        else:
            await engine.reload(snap.config)
            reloads.update(generation=snap.generation, reload_error=None)
        dump()
        changed.set()

    def on_sighup() -> None:
        if reloading and not reloading[-1].done():
            log.warning("SIGHUP while a reload runs: reloading again after it")
        previous = reloading[-1] if reloading else None

        async def queued() -> None:
            if previous is not None:
                await previous
            await reload()

        reloading.append(loop.create_task(queued()))
        del reloading[:-1]

    loop.add_signal_handler(signal.SIGHUP, on_sighup)

    def on_transition(name: str, state: State) -> None:
        dump_soon()
        changed.set()  # the parent hears of the new state at once, not at the next beat

    engine.on_transition = on_transition
    dump()  # instances that cannot run here are in the status from the start
    if heartbeat_socket is not None:
        interval = config.global_defs.kpd_child_hung_timeout / 6

        def state() -> dict[str, object]:
            return {"instances": {s.name: {"state": s.state, "priority": s.effective_priority}
                                  for s in engine.status()}, **reloads, "loop_lag": lag.summary()}

        beat = loop.create_task(send_heartbeats("vrrp", heartbeat_socket, interval, state, changed))
    try:
        await engine.run(resume_master=resume_master)
    finally:
        if beat is not None:
            beat.cancel()
        await engine.shutdown()
        dump()


def run(config: Config, runtime_dir: Path, *, release: bool = True) -> None:
    asyncio.run(serve(config, runtime_dir, release=release))
