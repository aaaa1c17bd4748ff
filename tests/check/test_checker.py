"""The per-checker state machine: keepalived's retry semantics on a fake clock."""

from __future__ import annotations

import random

import pytest

from keepalived_py.check.checker import BOOTSTRAP_DELAY, Checker, Timing

T = Timing(delay_loop=6.0, retry=2, delay_before_retry=1.5, warmup=0.0, timeout=3.0)


def test_first_probe_runs_after_bootstrap_delay_plus_random_warmup():
    c = Checker(T, 100.0)
    assert c.next_due == 100.0 + BOOTSTRAP_DELAY
    rng = random.Random(1)
    expect = 100.0 + BOOTSTRAP_DELAY + 10.0 * random.Random(1).random()
    w = Checker(Timing(6.0, 1, 1.0, 10.0, 3.0), 100.0, rng=rng)
    assert w.next_due == pytest.approx(expect)
    assert 101.0 <= w.next_due <= 111.0


def test_up_server_goes_down_after_retry_plus_one_consecutive_failures():
    c = Checker(T, 0.0)
    assert c.up
    assert c.result(True, 1.0) is not None  # first run reports its state
    assert c.result(False, 7.0, reason="refused") is None
    assert c.next_due == 7.0 + 1.5  # delay_before_retry
    assert c.result(False, 8.5, reason="refused") is None
    v = c.result(False, 10.0, reason="refused")
    assert v is not None and not v.up and v.reason == "refused"
    assert not c.up
    assert c.next_due == 16.0  # back to delay_loop


def test_a_success_between_failures_resets_the_retry_count():
    c = Checker(T, 0.0)
    c.result(True, 1.0)
    c.result(False, 7.0)
    c.result(False, 8.5)
    assert c.result(True, 10.0) is None  # still up: no verdict
    assert c.next_due == 16.0
    assert c.result(False, 16.0) is None and c.result(False, 17.5) is None
    assert c.result(False, 19.0) is not None


def test_down_server_is_up_again_after_one_success():
    c = Checker(Timing(1.0, 0, 1.0, 0.0, 1.0), 0.0)
    assert c.result(False, 1.0) is not None
    v = c.result(True, 2.0)
    assert v is not None and v.up and c.up


def test_alpha_starts_down_and_a_first_failure_is_not_news():
    c = Checker(Timing(1.0, 0, 1.0, 0.0, 1.0), 0.0, alpha=True)
    assert not c.up
    v = c.result(False, 1.0, reason="x")
    assert v is not None and not v.up  # the first run always states the result
    assert c.result(False, 2.0) is None


def test_misc_dynamic_weight_change_is_a_verdict_even_while_up():
    c = Checker(Timing(1.0, 0, 1.0, 0.0, 1.0), 0.0)
    assert c.result(True, 1.0, weight=5).weight == 5  # type: ignore[union-attr]
    assert c.result(True, 2.0, weight=5) is None
    v = c.result(True, 3.0, weight=9)
    assert v is not None and v.up and v.weight == 9
