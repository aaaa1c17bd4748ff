"""Respawn backoff as keepalived's calc_restart_delay: at once after a long run, else 0, 1, 2, 4 ... 60 s."""

from __future__ import annotations

from keepalived_py.control.backoff import MAX_DELAY, Backoff


def test_crash_loop_restarts_at_once_then_backs_off_doubling_up_to_sixty_seconds():
    b = Backoff()
    assert [b.next_delay(0.5) for _ in range(9)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert b.upcoming == MAX_DELAY


def test_a_child_that_ran_over_a_minute_is_respawned_at_once_and_resets_the_backoff():
    b = Backoff()
    b.next_delay(1)
    b.next_delay(1)
    assert b.next_delay(61) == 0
    assert b.next_delay(1) == 0
    assert b.next_delay(1) == 1
