"""Runs the VRRP engine as a process of its own: signals, state file, orderly shutdown.

SIGTERM and SIGINT stop it gracefully (priority 0 from every MASTER, addresses released unless
``release`` is False); the status of every instance is written to ``<runtime dir>/vrrp-status.json`` after
each transition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from pathlib import Path

from keepalived_py import wire
from keepalived_py.config.model import Config
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
) -> None:
    """Run the engine until SIGTERM/SIGINT; heartbeat to the parent's socket when one is given."""
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

    beat = None
    changed = asyncio.Event()

    def on_transition(name: str, state: State) -> None:
        dump(name, state)
        changed.set()  # the parent hears of the new state at once, not at the next beat

    engine.on_transition = on_transition
    dump()  # instances that cannot run here are in the status from the start
    if heartbeat_socket is not None:
        interval = config.global_defs.kpd_child_hung_timeout / 6
        beat = loop.create_task(_heartbeat(engine, heartbeat_socket, interval, changed))
    try:
        await engine.run(resume_master=resume_master)
    finally:
        if beat is not None:
            beat.cancel()
        await engine.shutdown()
        dump()


async def _heartbeat(engine: VrrpEngine, path: str, interval: float, changed: asyncio.Event) -> None:
    """Tell the parent, from inside the event loop, that the loop turns; with each instance's state."""
    sock: socket.socket | None = None
    seq = 0
    pid = os.getpid()
    while True:
        state = {s.name: {"state": s.state, "priority": s.effective_priority} for s in engine.status()}
        try:
            if sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK)
                sock.connect(path)
            sock.send(wire.encode(wire.Heartbeat("vrrp", pid, seq, {"instances": state})))
            seq += 1
        except OSError as err:
            log.debug("heartbeat to %s failed: %s", path, err)
            if sock is not None:
                sock.close()
            sock = None
        changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), interval)


def run(config: Config, runtime_dir: Path, *, release: bool = True) -> None:
    asyncio.run(serve(config, runtime_dir, release=release))
