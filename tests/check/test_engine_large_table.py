"""A large IPVS table (thousands of operations) through the check engine, on a fake IPVS table.

Issue 9: every operation used to copy the engine's whole mirror of the kernel table (11,000 operations for
1,000 services x 10 real servers took 10 s), and the initial programming ran in one go without letting the
event loop turn (so the heartbeat task could not run). These tests count loop turns, not seconds; the
pytest timeout only stops a quadratic engine from running for minutes.
"""

from __future__ import annotations

import asyncio

import pytest
from fake_ipvs import FakeIpvs

from keepalived_py.check import engine as engine_mod
from keepalived_py.check.engine import CheckEngine
from keepalived_py.config import load_config
from keepalived_py.ipvs.reconcile import copy_table

SERVICES = 3000
REAL_SERVERS = 10


def large_config(write_conf):
    out = []
    for v in range(SERVICES):
        out.append(f"virtual_server 172.16.{v // 250}.{v % 250 + 1} 80 {{\n  lb_algo rr\n  protocol TCP\n")
        out += [f"  real_server 192.168.{v % 250}.{r + 1} 8080 {{\n  }}\n" for r in range(REAL_SERVERS)]
        out.append("}\n")
    result = load_config(write_conf("".join(out)), host_checks=False)
    assert result.config is not None
    return result.config


class TurnCounting(FakeIpvs):
    """Records on which turn of the event loop each operation was applied."""

    def __init__(self, turns: list[int]) -> None:
        super().__init__()
        self._turns = turns
        self.applied_on: list[int] = []

    def apply(self, op) -> None:
        super().apply(op)
        self.applied_on.append(self._turns[0])


@pytest.mark.timeout(60)
def test_programming_a_large_table_lets_the_loop_turn_between_slices(write_conf):
    conf = large_config(write_conf)
    turns = [0]
    ipvs = TurnCounting(turns)

    async def ticker() -> None:
        while True:
            turns[0] += 1
            await asyncio.sleep(0)

    async def main() -> CheckEngine:
        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        engine = CheckEngine(conf, ipvs, probe=None)  # type: ignore[arg-type]  # no checkers here
        engine.open()
        await engine.settled()
        tick.cancel()
        return engine

    engine = asyncio.run(main())
    assert len(ipvs.ops) == SERVICES * (1 + REAL_SERVERS)
    assert ipvs.table == copy_table(engine.pool.desired())
    assert engine.kernel == ipvs.table and engine.ready
    assert engine.stats["ipvs_ops"] == len(ipvs.ops) and engine.stats["ipvs_errors"] == 0
    per_turn: dict[int, int] = {}
    for turn in ipvs.applied_on:
        per_turn[turn] = per_turn.get(turn, 0) + 1
    assert max(per_turn.values()) <= engine_mod.APPLY_BATCH
    assert len(per_turn) >= len(ipvs.ops) / engine_mod.APPLY_BATCH


@pytest.mark.timeout(60)
def test_a_full_resync_of_a_large_table_reads_it_in_slices(write_conf):
    conf = large_config(write_conf)
    ipvs = FakeIpvs()
    turns = [0]

    async def ticker() -> None:
        while True:
            turns[0] += 1
            await asyncio.sleep(0)

    async def main() -> tuple[int, int]:
        engine = CheckEngine(conf, ipvs, probe=None)  # type: ignore[arg-type]
        engine.open()
        await engine.settled()
        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = turns[0]
        engine.resync()
        await engine.settled()
        tick.cancel()
        return turns[0] - before, engine.stats["repairs"]

    turned, repairs = asyncio.run(main())
    assert repairs == 0  # nothing changed behind kpd's back
    assert turned >= SERVICES / engine_mod.APPLY_BATCH
