"""The per-checker state machine: keepalived's retry semantics on a fake clock."""

from __future__ import annotations

import random

import pytest

from keepalived_py.check.checker import BOOTSTRAP_DELAY, Checker, Timing, UrlChecker

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


def test_at_start_the_first_failure_marks_the_checker_down_at_once():
    # keepalived presets retry_it to retry at start (check_data.c): "one failure is enough initially"
    c = Checker(T, 0.0)
    v = c.result(False, 1.0, reason="refused")
    assert v is not None and not v.up
    assert c.next_due == 1.0 + 6.0  # delay_loop


def test_a_checker_a_reload_adds_retries_before_its_first_down():
    c = Checker(T, 0.0, starting=False)
    assert c.result(False, 1.0) is None
    assert c.next_due == 1.0 + 1.5


def test_udp_ping_dns_checkers_do_not_retry_while_down():
    t = Timing(delay_loop=6.0, retry=2, delay_before_retry=1.5, warmup=0.0, timeout=3.0,
               retry_when_down=False)
    c = Checker(t, 0.0)
    assert c.result(False, 1.0) is not None  # down at once at start
    assert c.result(False, 7.0) is None
    assert c.next_due == 13.0  # delay_loop, no retry
    assert c.result(True, 13.0) is not None
    assert c.result(False, 19.0) is None and c.next_due == 20.5  # retried while up


def test_smtp_checker_needs_retry_plus_one_failures_even_at_start():
    t = Timing(delay_loop=6.0, retry=1, delay_before_retry=1.5, warmup=0.0, timeout=3.0, start_at_retry=False)
    c = Checker(t, 0.0)
    assert c.result(False, 1.0) is None and c.next_due == 2.5
    assert c.result(False, 2.5) is not None


# --- HTTP_GET / SSL_GET: one url per run (keepalived's check_http.c epilog) --------------------------------

U = Timing(delay_loop=5.0, retry=1, delay_before_retry=2.0, warmup=0.0, timeout=1.0)


def run(c: UrlChecker, outcomes: str) -> list[tuple[int, float, str]]:
    """Feed ``outcomes`` ("+" pass, "-" fail) at each checker's due time: (url fetched, delay to the next
    run, verdict "UP"/"DOWN"/"")."""
    out = []
    for o in outcomes:
        now, url = c.next_due, c.url_it
        v = c.result(o == "+", now, reason="HTTP status 500 not in 200-299")
        out.append((url, round(c.next_due - now, 3), "" if v is None else ("UP" if v.up else "DOWN")))
    return out


def test_an_up_checker_fetches_one_url_per_delay_loop_in_turn():
    c = UrlChecker(U, 0.0, urls=3)
    assert run(c, "++++++") == [(0, 5.0, ""), (1, 5.0, ""), (2, 5.0, "UP"), (0, 5.0, ""), (1, 5.0, ""),
                                (2, 5.0, "")]


def test_a_failed_url_is_retried_then_every_url_must_pass_again_before_up():
    c = UrlChecker(U, 0.0, urls=3)
    run(c, "+++")  # a complete round: UP, has run
    # url 0 passes; url 1 fails, is retried delay_before_retry later, fails again: DOWN; the failed url is
    # retried every max(delay_before_retry, delay_loop); once it passes, url 0, 1 and 2 again, then UP
    assert run(c, "+--" + "-+" + "+++") == [
        (0, 5.0, ""), (1, 2.0, ""), (1, 5.0, "DOWN"), (1, 5.0, ""), (1, 5.0, ""),
        (0, 5.0, ""), (1, 5.0, ""), (2, 5.0, "UP")]


def test_one_url_down_comes_back_one_delay_loop_after_it_passes_again():
    """keepalived: the failed url's first pass only restarts the round; the next pass completes it."""
    c = UrlChecker(U, 0.0, urls=1)
    run(c, "+")
    assert run(c, "--++") == [(0, 2.0, ""), (0, 5.0, "DOWN"), (0, 5.0, ""), (0, 5.0, "UP")]


def test_fast_recovery_fetches_the_urls_back_to_back_once_the_failed_one_passes():
    c = UrlChecker(U, 0.0, urls=3, fast_recovery=True)
    # never completed a round: back to back
    assert run(c, "+++") == [(0, 0.0, ""), (1, 0.0, ""), (2, 5.0, "UP")]
    # the failed url passes: the round restarts at the first url, the urls back to back, then UP
    assert run(c, "--++++") == [(0, 2.0, ""), (0, 5.0, "DOWN"), (0, 0.0, ""), (0, 0.0, ""), (1, 0.0, ""),
                                (2, 5.0, "UP")]


def test_one_failure_is_enough_until_a_round_has_completed():
    c = UrlChecker(U, 0.0, urls=2)
    assert run(c, "-") == [(0, 5.0, "DOWN")]
    assert run(c, "++") == [(0, 5.0, ""), (0, 5.0, "")]  # the failed url passes: the round restarts
    assert run(c, "+") == [(1, 5.0, "UP")]


def test_fast_recovery_never_fetches_a_failing_url_in_a_loop():
    """keepalived skips the delay after a failure too before the first complete round (a refusing server
    fetched as fast as it refuses); kpd keeps delay_before_retry and delay_loop there."""
    c = UrlChecker(U, 0.0, urls=2, fast_recovery=True)
    assert run(c, "--+") == [(0, 5.0, "DOWN"), (0, 5.0, ""), (0, 0.0, "")]
