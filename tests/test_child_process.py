"""The one child runtime: reloads from the parent's snapshot, status file, heartbeats, stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from keepalived_py.child_process import ChildRuntime, ChildStart, EngineHooks, child_parser
from keepalived_py.config.load import load_config
from keepalived_py.config.snapshot import SNAPSHOT_FILE, SnapshotError, read_snapshot, write_snapshot

CONF = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n"
CONF += " virtual_ipaddress {\n 192.0.2.1\n }\n}\n"


class FakeEngine:
    def __init__(self) -> None:
        self.stopped = asyncio.Event()
        self.reloaded: list[Any] = []
        self.shut_down = False

    def hooks(self) -> EngineHooks:
        async def shutdown() -> None:
            self.shut_down = True

        async def reload(config: Any) -> None:
            self.reloaded.append(config)

        return EngineHooks(run=self.stopped.wait, stop=self.stopped.set, shutdown=shutdown, reload=reload,
                           status=lambda: {"reloads": len(self.reloaded)}, summary=lambda: {"n": 1})


def _start(tmp_path: Path) -> ChildStart:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    config = load_config(str(conf), host_checks=False).config
    assert config is not None
    args = child_parser("test").parse_args(["--config", str(conf), "--runtime-dir", str(tmp_path)])
    return ChildStart("vrrp", args, tmp_path, config, 0, None)


@pytest.mark.parametrize("garbage", [b"", b"not a pickle", b"\x80\x05garbage", b"\x80\x04\x95\x05"])
def test_every_bad_snapshot_is_one_error_type(tmp_path, garbage):
    path = tmp_path / SNAPSHOT_FILE
    path.write_bytes(garbage)
    path.chmod(0o600)
    with pytest.raises(SnapshotError):
        read_snapshot(tmp_path)


def test_a_fifo_planted_as_the_snapshot_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / SNAPSHOT_FILE, 0o600)
    with pytest.raises(SnapshotError, match="not a regular file"):
        read_snapshot(tmp_path)


def test_a_reload_with_a_corrupt_snapshot_keeps_the_engine_running_and_says_why(tmp_path):
    start = _start(tmp_path)
    runtime = ChildRuntime(start, "status.json")
    engine = FakeEngine()

    async def main() -> None:
        task = asyncio.create_task(runtime.serve(engine.hooks()))
        await asyncio.sleep(0)
        (tmp_path / SNAPSHOT_FILE).write_bytes(b"\x80\x05garbage")
        (tmp_path / SNAPSHOT_FILE).chmod(0o600)
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if runtime.reloads["reload_error"]:
                break
        assert not task.done()
        write_snapshot(tmp_path, 7, start.config)
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if runtime.reloads["generation"] == 7:
                break
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 10)

    asyncio.run(main())
    assert runtime.reloads == {"generation": 7, "reload_error": None}
    assert len(engine.reloaded) == 1 and engine.shut_down
    doc = json.loads((tmp_path / "status.json").read_text())
    assert doc["generation"] == 7 and doc["reloads"] == 1
    assert (tmp_path / "status.json").stat().st_mode & 0o777 == 0o600


def test_the_status_file_is_refreshed_for_what_changes_without_a_transition(tmp_path):
    start = _start(tmp_path)
    runtime = ChildRuntime(start, "status.json", refresh_every=0.05)
    engine = FakeEngine()
    counter = {"adverts": 0}
    hooks = engine.hooks()
    hooks.status = lambda: dict(counter)

    async def main() -> int:
        task = asyncio.create_task(runtime.serve(hooks))
        await asyncio.sleep(0)
        counter["adverts"] = 41
        for _ in range(500):
            await asyncio.sleep(0.01)
            seen = json.loads((tmp_path / "status.json").read_text())["adverts"]
            if seen == 41:
                break
        engine.stopped.set()
        await asyncio.wait_for(task, 10)
        return int(seen)

    assert asyncio.run(main()) == 41


def test_the_engines_events_and_its_scripts_runs_reach_the_parent_after_a_heartbeat(tmp_path):
    import socket

    from keepalived_py import script_runner, wire
    from keepalived_py.events import EventBuffer
    from keepalived_py.heartbeat import HeartbeatSender

    path = str(tmp_path / "hb.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)
    start = _start(tmp_path)
    start.args.heartbeat_interval = 30.0  # only an event (or a change) makes a beat go out early
    start.heartbeat = HeartbeatSender("vrrp", path)
    runtime = ChildRuntime(start, "status.json")
    engine = FakeEngine()
    hooks = engine.hooks()
    hooks.events = EventBuffer()

    async def main() -> list[dict[str, Any]]:
        task = asyncio.create_task(runtime.serve(hooks))
        loop = asyncio.get_running_loop()
        conn, _ = await loop.run_in_executor(None, listener.accept)
        conn.settimeout(20)
        hooks.events.emit("vrrp_transition", instance="VI_1", to="MASTER")
        await script_runner.run_script(["true"], timeout=5, purpose="notify")  # no sink named: the engine's
        got: list[dict[str, Any]] = []
        while len(got) < 2:
            msg = wire.decode(await loop.run_in_executor(None, conn.recv, wire.MAX_FRAME + 1))
            if isinstance(msg, wire.Events):
                got += msg.events
        engine.stopped.set()
        await asyncio.wait_for(task, 10)
        conn.close()
        return got

    transition, script = asyncio.run(main())
    assert transition["kind"] == "vrrp_transition" and transition["to"] == "MASTER"
    assert script["kind"] == "script_run" and script["purpose"] == "notify" and script["exit_status"] == 0
    assert script_runner.default_events is None  # the runtime's sink goes with it
    listener.close()


def test_cached_value_is_computed_again_after_its_period_or_an_invalidation():
    from keepalived_py.child_process import Cached

    now = [0.0]
    calls = []
    cached = Cached(lambda: calls.append(now[0]) or len(calls), 1.0, clock=lambda: now[0])
    assert cached.get() == 1 and cached.get() == 1
    now[0] = 0.9
    assert cached.get() == 1
    now[0] = 1.0
    assert cached.get() == 2
    cached.invalidate()
    assert cached.get() == 3 and calls == [0.0, 1.0, 1.0]
