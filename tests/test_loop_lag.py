"""Event-loop lag: the pure window statistics, and the monitor seeing a callback that blocks the loop."""

from __future__ import annotations

import asyncio
import math
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from keepalived_py import loop_lag
from keepalived_py.loop_lag import LagStats, LoopLagMonitor


def test_max_and_p99_cover_the_window_and_the_max_since_start_everything():
    s = LagStats(window=10.0)
    s.add(0.0, 0.5)  # a big one, soon out of the window
    for i in range(97):
        s.add(1.0 + i * 0.01, 0.001)
    s.add(3.5, 0.2)
    s.add(3.6, 0.03)
    s.add(3.7, 0.03)
    assert s.max(4.0) == 0.5
    assert s.max(10.5) == 0.2  # the 0.5 s sample (at 0.0) has left the window
    assert s.max_since_start == 0.5
    assert s.percentile(10.5, 0.99) == 0.03  # 100 samples in the window: the 99th is the 2nd largest
    assert s.percentile(10.5, 1.0) == 0.2
    summary = s.summary(10.5)
    # every sample since start, 0.5 s included, in buckets of upper bounds 1 ms, 2 ms, 5 ms, ... 5 s, +Inf
    assert summary.pop("histogram")["counts"] == [97, 0, 0, 0, 0, 2, 0, 1, 1, 0, 0, 0, 0]
    assert summary == {"max_ms": 200.0, "p99_ms": 30.0, "window_s": 10.0, "max_since_start_ms": 500.0}
    assert s.max(100.0) == 0.0 and s.percentile(100.0, 0.99) == 0.0  # an empty window
    assert s.summary(100.0)["max_since_start_ms"] == 500.0


def test_memory_is_bounded_and_negative_lags_count_as_zero():
    s = LagStats(window=1e9, max_samples=50)
    for i in range(10_000):
        s.add(float(i), -0.001 if i % 2 else 0.001)
    assert len(s._samples) == 50 and s.count == 10_000
    assert s.max(10_000.0) == 0.001 and min(lag for _, lag in s._samples) == 0.0


def test_the_monitor_sees_a_callback_that_blocks_the_loop():
    monitor = LoopLagMonitor(interval=0.01, window=60.0)

    async def main() -> dict:
        task = asyncio.create_task(monitor.run())
        while monitor.stats.count < 3:
            await asyncio.sleep(0.01)
        time.sleep(0.3)  # a callback that keeps the loop for 300 ms
        seen = monitor.stats.count
        while monitor.stats.count < seen + 2:
            await asyncio.sleep(0.01)
        task.cancel()
        return monitor.summary()

    summary = asyncio.run(main())
    # the monitor slept at most 10 ms of those 300 ms: it woke at least 290 ms late
    assert summary["max_ms"] >= 290.0 and summary["max_since_start_ms"] >= 290.0
    assert summary["window_s"] == 60.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3), st.floats(-0.01, 0.5)), max_size=80), st.integers(1, 30))
def test_max_and_percentiles_are_those_of_the_samples_kept(steps, max_samples):
    """The sorted copy kept beside the samples gives what sorting the window would."""
    stats = LagStats(window=5.0, max_samples=max_samples)
    now = 0.0
    for dt, lag in steps:
        now += dt
        stats.add(now, lag)
        kept = sorted(lag for _, lag in stats.samples())
        assert len(kept) <= max_samples
        assert all(t >= now - 5.0 for t, _ in stats.samples())
        assert stats.max(now) == (kept[-1] if kept else 0.0)
        for p in (0.5, 0.99):
            want = kept[min(len(kept) - 1, max(0, math.ceil(p * len(kept)) - 1))] if kept else 0.0
            assert stats.percentile(now, p) == want


def test_the_summary_is_recomputed_once_a_second_or_at_once_for_a_larger_lag(monkeypatch):
    """Every heartbeat asks for it: the same object until SUMMARY_EVERY passed (the heartbeat then does not
    send it again) unless a lag above its max came since (a stall is reported at once). Stalls of 0.4 s and
    1.5 s, so that a loaded machine's own lateness cannot pass for either."""
    monkeypatch.setattr(loop_lag, "SUMMARY_EVERY", 3.0)
    monitor = LoopLagMonitor(interval=0.01, window=60.0)

    async def samples(n: int) -> None:
        seen = monitor.stats.count
        while monitor.stats.count < seen + n:
            await asyncio.sleep(0.01)

    async def main() -> tuple[dict, dict, dict, dict]:
        task = asyncio.create_task(monitor.run())
        await samples(2)
        time.sleep(0.4)
        await samples(1)
        first = monitor.summary()
        await samples(3)
        again = monitor.summary()
        time.sleep(1.5)  # a stall larger than anything before
        await samples(1)
        stalled = monitor.summary()
        await asyncio.sleep(loop_lag.SUMMARY_EVERY + 0.05)
        later = monitor.summary()
        task.cancel()
        return first, again, stalled, later

    first, again, stalled, later = asyncio.run(main())
    assert first["max_ms"] >= 300.0
    assert again is first
    assert stalled is not first and stalled["max_ms"] >= 1400.0
    assert later is not stalled and later["histogram"] != stalled["histogram"]
