"""Issue 9: the check engine never does much work in one turn of its event loop, whatever the size of the
configuration (the heartbeat task runs on the same loop; the parent kills a child silent for 3 s).

Thousands of checkers due at the same instant, thousands of probe results arriving together, a start or a
resync of thousands of virtual servers: each is spread over many loop turns, at most a fixed amount of work
per turn. These tests count loop turns and the work done on each; they never look at a clock.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from fake_ipvs import FakeIpvs

from keepalived_py.check import engine as engine_mod
from keepalived_py.check.engine import CheckEngine
from keepalived_py.check.probe import ProbeResult
from keepalived_py.config import load_config
from lab import wait_for_async

SERVERS = 2000


def many_checkers(write_conf, *, servers: int = SERVERS, warmup: str = "warmup 0.000001",
                  delay_loop: float = 0.2, per_vs: int = 10):
    out = []
    for v in range((servers + per_vs - 1) // per_vs):
        out.append(f"virtual_server 172.16.{v // 250}.{v % 250 + 1} 80 {{\n"
                   f"  lb_algo rr\n  protocol TCP\n  delay_loop {delay_loop}\n")
        for r in range(min(per_vs, servers - v * per_vs)):
            i = v * per_vs + r
            out.append(f"  real_server 10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1} 8080 {{\n"
                       f"    TCP_CHECK {{\n      connect_timeout 1\n      retry 0\n"
                       f"      {warmup}\n    }}\n  }}\n")
        out.append("}\n")
    result = load_config(write_conf("".join(out)), host_checks=False)
    assert result.config is not None
    return result.config


class Turns:
    """Counts the turns of the running loop (a task that yields on every turn)."""

    def __init__(self) -> None:
        self.n = 0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            self.n += 1
            await asyncio.sleep(0)


def per_turn(turns: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for t in turns:
        out[t] = out.get(t, 0) + 1
    return out


@pytest.mark.timeout(120)
def test_checkers_due_together_are_launched_a_batch_per_loop_turn(write_conf):
    conf = many_checkers(write_conf)  # warmup 1 µs: every first probe is due in the same instant
    turns = Turns()
    started_on: list[int] = []

    async def probe(spec) -> ProbeResult:
        started_on.append(turns.n)
        return ProbeResult.up()

    async def main() -> None:
        turns.start()
        engine = CheckEngine(conf, FakeIpvs(), probe=probe)
        engine.open()
        task = asyncio.create_task(engine.run())
        await wait_for_async(lambda: len(started_on) >= SERVERS, timeout=60)
        engine.stop()
        await task

    asyncio.run(main())
    counts = per_turn(started_on[:SERVERS])
    assert max(counts.values()) <= engine_mod.TURN_BATCH
    assert len(counts) >= SERVERS / engine_mod.TURN_BATCH


@pytest.mark.timeout(120)
def test_results_arriving_together_are_applied_a_batch_per_loop_turn(write_conf):
    conf = many_checkers(write_conf)
    turns = Turns()
    release = asyncio.Event
    verdicts_on: list[int] = []
    state: dict[str, object] = {}

    async def probe(spec) -> ProbeResult:
        gate = state["gate"]
        assert isinstance(gate, asyncio.Event)
        state["waiting"] = int(state.get("waiting", 0)) + 1  # type: ignore[call-overload]
        await gate.wait()  # every probe completes on the same loop turn
        return ProbeResult.down("refused")

    async def main() -> None:
        turns.start()
        state["gate"] = release()
        engine = CheckEngine(conf, FakeIpvs(), probe=probe)
        original = engine.pool.verdict_changes

        def verdict(key, v):  # type: ignore[no-untyped-def]
            verdicts_on.append(turns.n)
            return original(key, v)

        engine.pool.verdict_changes = verdict  # type: ignore[method-assign]
        engine.open()
        task = asyncio.create_task(engine.run())
        await wait_for_async(lambda: state.get("waiting", 0) == SERVERS, timeout=60)
        state["gate"].set()  # type: ignore[attr-defined]
        await wait_for_async(lambda: len(verdicts_on) >= SERVERS, timeout=60)
        engine.stop()
        await task

    asyncio.run(main())
    counts = per_turn(verdicts_on)
    assert max(counts.values()) <= engine_mod.TURN_BATCH
    assert len(counts) >= SERVERS / engine_mod.TURN_BATCH


@pytest.mark.timeout(120)
def test_open_creates_the_checkers_a_batch_per_loop_turn(write_conf):
    conf = many_checkers(write_conf, servers=5000)
    turns = Turns()
    created_on: list[int] = []

    async def main() -> CheckEngine:
        turns.start()
        await asyncio.sleep(0)
        engine = CheckEngine(conf, FakeIpvs(), probe=lambda spec: asyncio.sleep(3600))
        original = engine_mod.Checker

        def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
            created_on.append(turns.n)
            return original(*args, **kwargs)

        engine_mod.Checker = counting  # type: ignore[misc]
        try:
            engine.open()
            await wait_for_async(lambda: len(engine.checkers) == 5000, timeout=60)
        finally:
            engine_mod.Checker = original  # type: ignore[misc]
        return engine

    asyncio.run(main())
    counts = per_turn(created_on)
    assert len(created_on) == 5000
    assert max(counts.values()) <= engine_mod.BUILD_BATCH


@pytest.mark.timeout(120)
def test_resync_computes_the_desired_table_in_slices(write_conf):
    conf = many_checkers(write_conf, servers=3000, per_vs=1)  # 3,000 virtual servers
    turns = Turns()
    computed_on: list[int] = []

    async def main() -> None:
        turns.start()
        await asyncio.sleep(0)
        engine = CheckEngine(conf, FakeIpvs(), probe=lambda spec: asyncio.sleep(3600))
        original = engine.pool.entries

        def entries(vs):  # type: ignore[no-untyped-def]
            computed_on.append(turns.n)
            return original(vs)

        engine.pool.entries = entries  # type: ignore[method-assign]
        engine.open()
        await engine.settled()

    asyncio.run(main())
    counts = per_turn(computed_on)
    assert len(computed_on) >= 3000
    assert max(counts.values()) <= engine_mod.APPLY_BATCH


def test_first_probes_spread_over_warmup_from_when_each_checker_is_created(write_conf):
    """keepalived runs a checker's first probe 1 s + random(0, warmup) after start (warmup defaults to the
    delay_loop); the engine does the same, the random draw from an injectable generator."""
    conf = many_checkers(write_conf, servers=1000, warmup="", delay_loop=6)

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        engine = CheckEngine(conf, FakeIpvs(), probe=lambda spec: asyncio.sleep(3600), rng=random.Random(7))
        t0 = loop.time()
        engine.open()
        await wait_for_async(lambda: len(engine.checkers) == 1000)
        offsets = sorted(c.next_due - t0 for c in engine.checkers.values())
        return offsets

    offsets = asyncio.run(main())
    assert offsets[0] >= 1.0
    # spread over the whole 6 s window: no tenth of a second holds more than a few percent of them
    buckets = per_turn([int((o - 1.0) * 10) for o in offsets])
    assert max(buckets) >= 55 and max(buckets.values()) <= 50


@pytest.mark.timeout(60)
def test_reload_during_a_probe_does_not_run_the_same_checker_twice_at_once(write_conf):
    conf = many_checkers(write_conf, servers=4)
    running: dict[str, int] = {}
    overlaps: list[str] = []
    state = {"reloaded": 0}

    async def probe(spec) -> ProbeResult:
        running[spec.host] = running.get(spec.host, 0) + 1
        if running[spec.host] > 1:
            overlaps.append(spec.host)
        await asyncio.sleep(0.05)
        running[spec.host] -= 1
        return ProbeResult.up()

    async def main() -> None:
        engine = CheckEngine(conf, FakeIpvs(), probe=probe)
        engine.open()
        task = asyncio.create_task(engine.run())
        await wait_for_async(lambda: sum(running.values()) == 4)  # every probe in flight
        await engine.reload(many_checkers(write_conf, servers=4))
        state["reloaded"] = engine.stats["probes"]
        await wait_for_async(lambda: engine.stats["probes"] >= state["reloaded"] + 12)
        engine.stop()
        await task

    asyncio.run(main())
    assert overlaps == []


@pytest.mark.timeout(60)
def test_a_verdict_arriving_during_a_resync_is_not_counted_as_a_repair(write_conf):
    conf = many_checkers(write_conf, servers=600, per_vs=1)  # 600 virtual servers: a resync spans turns

    async def main() -> CheckEngine:
        engine = CheckEngine(conf, FakeIpvs(), probe=lambda spec: asyncio.sleep(3600))
        engine.open()
        await engine.settled()
        await wait_for_async(lambda: len(engine.checkers) == 600)
        engine.resync()  # its first slice reads part of the table; the rest over the next turns
        key = next(iter(engine.checkers))
        c = engine.checkers[key]
        engine._running.add(key)
        engine._apply(key, c, ProbeResult.down("refused"), 0.0)  # a verdict while the resync runs
        await engine.settled()
        return engine

    engine = asyncio.run(main())
    assert engine.stats["verdicts"] == 1
    assert engine.stats["repairs"] == 0


@pytest.mark.timeout(120)
def test_the_loop_keeps_turning_while_a_reload_builds_the_new_pool(write_conf):
    conf = many_checkers(write_conf, servers=20)
    bigger = many_checkers(write_conf, servers=SERVERS)
    turns: list[int] = []

    async def main() -> None:
        engine = CheckEngine(conf, FakeIpvs(), probe=lambda spec: asyncio.sleep(3600))
        engine.open()
        task = asyncio.create_task(engine.run())
        await engine.settled()
        counter = Turns()
        counter.start()
        before = counter.n
        await engine.reload(bigger)
        turns.append(counter.n - before)
        engine.stop()
        await task

    asyncio.run(main())
    assert turns[0] > 10, "the loop stood still while the reload built the new pool"


@pytest.mark.timeout(120)
def test_checks_spread_over_their_delay_loop_share_a_wake_up_per_slot(write_conf):
    """300 checkers whose first runs are spread over one second (warmup 1): the engine wakes once per
    CHECK_SLOT at most, launching what is due in it, not once per check."""
    conf = many_checkers(write_conf, servers=300, warmup="warmup 1", delay_loop=1.0)
    probes = []

    async def probe(spec) -> ProbeResult:
        probes.append(spec.host)
        return ProbeResult.up()

    async def main() -> int:
        engine = CheckEngine(conf, FakeIpvs(), probe=probe)
        wakes = []
        original = engine._on_wake

        def on_wake() -> None:
            wakes.append(1)
            original()

        engine._on_wake = on_wake  # type: ignore[method-assign]
        engine.open()
        task = asyncio.create_task(engine.run())
        await wait_for_async(lambda: len(probes) >= 900, timeout=60)
        engine.stop()
        await task
        return len(wakes)

    wakes = asyncio.run(main())
    assert wakes <= len(probes) / 4, (wakes, len(probes))
