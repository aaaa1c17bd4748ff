"""The VRRP deadline timer: fires each key at (never before) its deadline; superseded deadlines never fire."""

from __future__ import annotations

import asyncio

import pytest

from keepalived_py.vrrp.timer import EARLY_PER_WAKE, PRECISE_EARLY, DeadlineTimer


def _run(schedule, *, wait: float = 0.2) -> list[tuple[str, float, float]]:
    """Arm the timer as ``schedule(timer, now)`` says; return (key, deadline, fired at) for each firing."""

    async def main() -> list[tuple[str, float, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float, float]] = []
        deadlines: dict[str, float] = {}

        def fire(key):
            fired.append((key, deadlines[key], loop.time()))

        timer = DeadlineTimer(loop, fire)
        schedule(timer, loop.time(), deadlines)
        await asyncio.sleep(wait)
        timer.close()
        return fired

    return asyncio.run(main())


def test_deadlines_fire_in_order_and_never_early():
    def schedule(timer, now, deadlines):
        for key, delay in (("b", 0.03), ("a", 0.01), ("c", 0.05)):
            deadlines[key] = now + delay
            timer.set(key, now + delay)

    fired = _run(schedule)
    assert [k for k, _, _ in fired] == ["a", "b", "c"]
    assert all(at >= deadline for _, deadline, at in fired)


def test_precise_deadlines_wake_the_loop_early_and_fire_at_the_deadline():
    """The kernel timer is armed PRECISE_EARLY before a precise deadline, and the key fires at (never
    before) it; how close to it on an idle machine is a benchmark's (bench_vrrp.py takeover overhead)."""
    armed: list[float | None] = []

    def schedule(timer, now, deadlines):
        for i in range(20):
            key = f"k{i}"
            deadlines[key] = now + 0.005 * (i + 1)
            timer.set(key, deadlines[key], precise=True)
            armed.append(timer._armed)

    fired = _run(schedule)
    lateness = sorted(at - deadline for _, deadline, at in fired)
    assert len(fired) == 20 and lateness[0] >= 0
    first = fired[0][1]
    assert armed[0] == pytest.approx(first - PRECISE_EARLY, abs=1e-9)


def test_moved_and_disarmed_deadlines_do_not_fire():
    def schedule(timer, now, deadlines):
        deadlines["moved"] = now + 0.08
        timer.set("moved", now + 0.01)
        timer.set("moved", now + 0.08)  # reset, as a backup hearing an advert resets its down timer
        deadlines["gone"] = now + 0.02
        timer.set("gone", now + 0.02, precise=True)
        timer.set("gone", None)

    fired = _run(schedule)
    assert [(k, round(at - d, 2) >= 0) for k, d, at in fired] == [("moved", True)]


def test_a_deadline_moved_later_fires_at_its_new_time_without_rearming_the_kernel_timer():
    """A BACKUP's every advert moves its Master_Down deadline later: the kernel timer stays armed for the
    earlier time (no system call per advert), wakes once with nothing due and is armed again."""
    armed: list[float | None] = []

    def schedule(timer, now, deadlines):
        deadlines["down"] = now + 0.12
        for step in (0.03, 0.06, 0.09, 0.12):
            timer.set("down", now + step)
            armed.append(timer._armed)

    fired = _run(schedule)
    assert len(set(armed)) == 1  # armed once, for the first deadline
    assert [k for k, _, _ in fired] == ["down"] and fired[0][2] >= fired[0][1]


def test_the_same_deadline_set_twice_fires_once_and_the_other_keys_still_fire():
    """An event that leaves an instance's deadline as it was sets it again: that must not queue a second
    firing (which raised KeyError in the callback and lost the other keys due in the same wake-up)."""
    def schedule(timer, now, deadlines):
        deadlines["a"] = deadlines["b"] = now + 0.02
        timer.set("a", now + 0.02)
        timer.set("a", now + 0.02)
        timer.set("b", now + 0.02)

    fired = _run(schedule)
    assert sorted(k for k, _, _ in fired) == ["a", "b"]


def _wake_now(arm) -> list[str]:
    """Arm the timer as ``arm(timer, now)`` says, run one wake-up at once; the keys it fired."""

    async def main() -> list[str]:
        fired: list[str] = []
        timer = DeadlineTimer(asyncio.get_running_loop(), fired.append)
        arm(timer, asyncio.get_running_loop().time())
        timer._on_ready()   # the wake-up, now (the gaps below are seconds: no timing involved)
        timer.close()
        return fired

    return asyncio.run(main())


def test_early_keys_join_another_keys_wake_up():
    def arm(timer, now):
        timer.set("due", now - 0.001)
        timer.set("joins", now + 2, early=5)
        timer.set("too-far", now + 9, early=5)
        timer.set("not-early", now + 1)
        timer.set("precise", now + 1, precise=True)

    assert sorted(_wake_now(arm)) == ["due", "joins"]


def test_an_early_key_never_fires_before_its_deadline_alone():
    def arm(timer, now):
        timer.set("joins", now + 2, early=5)

    assert _wake_now(arm) == []
    fired = _run(lambda timer, now, deadlines: (deadlines.update(k=now + 0.05),
                                                timer.set("k", now + 0.05, early=0.04)))
    assert [k for k, _, _ in fired] == ["k"] and fired[0][2] >= fired[0][1]


def test_an_early_key_set_again_as_precise_or_without_early_loses_its_tolerance():
    def arm(timer, now):
        timer.set("due", now - 0.001)
        timer.set("b", now + 2, early=5)
        timer.set("b", now + 2, precise=True)
        timer.set("c", now + 2, early=5)
        timer.set("c", now + 2)

    assert _wake_now(arm) == ["due"]


def test_at_most_early_per_wake_keys_join_one_wake_up():
    def arm(timer, now):
        timer.set("due", now - 0.001)
        for i in range(EARLY_PER_WAKE + 10):
            timer.set(f"k{i}", now + 1 + i * 0.001, early=5)

    fired = _wake_now(arm)
    assert fired[0] == "due" and fired[1:] == [f"k{i}" for i in range(EARLY_PER_WAKE)]
