"""keepalived's max_auto_priority as kpd decides it: each time the process ran later than the minimum delay,
one realtime priority more (the lowest first), up to the maximum; never when 0; a refusal stops it."""

from __future__ import annotations

import pytest

from keepalived_py.process_priority import AutoPriority, Scheduling


class Recorder:
    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple[int, int | None]] = []
        self.refuse = refuse

    def __call__(self, priority: int, rlimit: int | None) -> None:
        self.calls.append((priority, rlimit))
        if self.refuse:
            raise PermissionError(1, "not allowed")


def test_each_delay_raises_one_realtime_priority_up_to_the_maximum():
    setter = Recorder()
    auto = AutoPriority(Scheduling(max_auto_priority=3, min_auto_priority_delay=0.5), setter)
    assert auto.late(0.2) is None  # not late enough
    assert [auto.late(0.6), auto.late(0.6), auto.late(0.6), auto.late(5.0)] == [1, 2, 3, None]
    assert setter.calls == [(1, None), (2, None), (3, None)]


def test_a_configured_realtime_priority_is_the_starting_point_and_the_rlimit_goes_along():
    setter = Recorder()
    auto = AutoPriority(Scheduling(rt_priority=10, rlimit_rttime=50000, max_auto_priority=99), setter)
    assert auto.late(2.0) == 11 and setter.calls == [(11, 50000)]


@pytest.mark.parametrize("maximum", [0, -1])
def test_zero_and_minus_one_never_raise(maximum):
    setter = Recorder()
    auto = AutoPriority(Scheduling(max_auto_priority=maximum), setter)
    assert not auto.enabled and auto.late(10.0) is None and setter.calls == []


def test_a_refusal_stops_further_attempts():
    setter = Recorder(refuse=True)
    auto = AutoPriority(Scheduling(max_auto_priority=5), setter)
    assert auto.late(2.0) is None and auto.late(2.0) is None
    assert setter.calls == [(1, None)]
