"""Runs the VRRP engine as a process of its own: signals, state file, orderly shutdown.

SIGTERM and SIGINT stop it gracefully (priority 0 from every MASTER, addresses released unless
``release`` is False); the status of every instance is written to ``<runtime dir>/vrrp-status.json`` after
each transition.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from keepalived_py.config.model import Config
from keepalived_py.runtime_files import write_json_atomic
from keepalived_py.vrrp.engine import VrrpEngine
from keepalived_py.vrrp.fsm import State

log = logging.getLogger("kpd.vrrp")
STATUS_FILE = "vrrp-status.json"


async def serve(config: Config, runtime_dir: Path, *, release: bool = True) -> None:
    engine = VrrpEngine(config, release_on_stop=release)
    engine.open()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, engine.stop)
    status_path = runtime_dir / STATUS_FILE

    def dump(_name: str = "", _state: State | None = None) -> None:
        try:
            write_json_atomic(status_path, [s.to_json() for s in engine.status()])
        except OSError as err:
            log.warning("cannot write %s: %s", status_path, err)

    engine.on_transition = dump
    try:
        await engine.run()
    finally:
        await engine.shutdown()
        dump()


def run(config: Config, runtime_dir: Path, *, release: bool = True) -> None:
    asyncio.run(serve(config, runtime_dir, release=release))
