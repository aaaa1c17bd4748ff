"""One checker's verdict over time, with keepalived's retry semantics (sans-I/O, injected clock).

A checker starts UP, or DOWN with ``alpha``; its first probe runs ``1 s + random(0, warmup)`` after start.
After each probe:

* success: the retry count resets; a DOWN (or never-run) checker becomes UP; next probe in ``delay_loop``;
* failure with retries left (``retry_it < retry``): the retry count grows; next probe in
  ``delay_before_retry``;
* failure with no retry left: the count resets; an UP (or never-run) checker becomes DOWN; next probe in
  ``delay_loop``.

At start (not for a checker a reload adds) the retry count begins at ``retry``, as keepalived presets
``retry_it`` ("one failure is enough initially", ``check_data.c``): the first probe's failure marks the
checker DOWN at once.

So an UP server is declared DOWN after ``retry + 1`` consecutive failed probes, and a DOWN one is UP again
after one success, as in keepalived's ``tcp_epilog``/``misc_check_child_thread``. UDP_CHECK, PING_CHECK and
DNS_CHECK retry only while UP (``udp_epilog``, ``icmp_epilog``, ``dns_final``): a DOWN one is probed every
delay_loop; SMTP_CHECK starts every round with a fresh retry count, at start too. MISC_CHECK with
``misc_dynamic`` reports the weight the script asked for with each success. HTTP_GET and SSL_GET fetch one
url per run and come back only after every url has passed again (:class:`UrlChecker`, keepalived's
``check_http.c`` epilog, with ``fast_recovery``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from keepalived_py.histogram import DURATION_BUCKETS, Histogram

#: keepalived's BOOTSTRAP_DELAY: the first probe never runs before this
BOOTSTRAP_DELAY = 1.0


@dataclass(frozen=True)
class Timing:
    delay_loop: float
    retry: int
    delay_before_retry: float
    warmup: float
    #: the probe's own time limit (connect_timeout, misc_timeout)
    timeout: float
    #: a DOWN checker's failures are retried too (TCP, HTTP, MISC, SMTP); else (UDP, PING, DNS) a DOWN
    #: checker is probed every delay_loop
    retry_when_down: bool = True
    #: at start the retry count begins at ``retry`` (every kind but SMTP, whose rounds reset it)
    start_at_retry: bool = True


@dataclass(frozen=True)
class Verdict:
    """A change of a checker's state: ``up`` (and, for misc_dynamic, the weight asked for)."""

    up: bool
    reason: str = ""
    weight: int | None = None
    #: FILE_CHECK: what the file adds to the real server's weight
    offset: int = 0


class Checker:
    """The state of one (deduplicated) probe: when it runs next, and whether it is up."""

    def __init__(
        self,
        timing: Timing,
        now: float,
        *,
        alpha: bool = False,
        starting: bool = True,
        rng: random.Random | None = None,
    ):
        self.timing = timing
        self.up = not alpha
        self.has_run = False
        self.retry_it = timing.retry if starting and timing.start_at_retry else 0
        self.weight: int | None = None
        self.last_reason = ""
        self.last_ok: bool | None = None
        self.probes = 0
        self.failures = 0
        #: how long each probe took (the engine observes it), for the metrics
        self.durations = Histogram(DURATION_BUCKETS)
        warmup = timing.warmup * (rng or random).random() if timing.warmup > 0 else 0.0
        self.next_due = now + BOOTSTRAP_DELAY + warmup

    def result(self, ok: bool, now: float, *, reason: str = "", weight: int | None = None) -> Verdict | None:
        """Record a probe's outcome at ``now``; the Verdict when the checker's state (or weight) changed."""
        t = self.timing
        self._record(ok, reason)
        verdict: Verdict | None = None
        if ok:
            self.retry_it = 0
            self.next_due = now + t.delay_loop
            if not self.up or not self.has_run or weight != self.weight:
                self.up = True
                self.weight = weight
                verdict = Verdict(True, "", weight)
        else:
            if self.retry_it < t.retry and (t.retry_when_down or self.up or not self.has_run):
                self.retry_it += 1
                self.next_due = now + t.delay_before_retry
            else:
                self.retry_it = 0
                self.next_due = now + t.delay_loop
                if self.up or not self.has_run:
                    self.up = False
                    self.weight = None
                    verdict = Verdict(False, reason)
        self.has_run = True
        return verdict

    def _record(self, ok: bool, reason: str) -> None:
        self.probes += 1
        self.last_ok = ok
        self.last_reason = reason
        if not ok:
            self.failures += 1

    def postpone(self, now: float) -> None:
        """A round skipped (ha_suspend): try again one delay_loop later."""
        self.next_due = now + self.timing.delay_loop


class UrlChecker(Checker):
    """HTTP_GET / SSL_GET as keepalived's ``http_connect_thread`` and ``epilog`` run them: one url per run.

    * A run fetches the current url. Success moves to the next url, ``delay_loop`` later; when the last has
      passed and none failed, the checker is UP (a DOWN one comes back here) and starts again at the first.
    * Failure retries the same url ``delay_before_retry`` later; past ``retry`` the checker is DOWN and that
      url is the *failed url*, retried every ``max(delay_before_retry, delay_loop)``. When it passes, the
      round starts again at the first url, and the checker is UP only once every url has passed again.
    * ``fast_recovery``: while the checker has never completed a round, or is DOWN with no failed url (it
      is going through the urls after the failed one passed), the url after one that passed is fetched at
      once. (keepalived also skips the delay after a failure before the first complete round, which
      fetches a refusing server's url in a tight loop; kpd waits delay_before_retry there.)

    So with one url a DOWN checker is UP one ``delay_loop`` after its url first passes again (at once with
    fast_recovery), and with N urls an UP checker fetches each url once every N x ``delay_loop``.
    """

    def __init__(self, timing: Timing, now: float, *, urls: int, fast_recovery: bool = False,
                 alpha: bool = False, starting: bool = True, rng: random.Random | None = None):
        super().__init__(timing, now, alpha=alpha, starting=starting, rng=rng)
        self.urls = urls
        self.fast_recovery = fast_recovery
        #: the url the next run fetches, and the one that failed past its retries (None: none)
        self.url_it = 0
        self.failed_url: int | None = None
        #: a verdict has been given (keepalived's has_run waits for a whole round; a DOWN is told once)
        self.judged = False

    def result(self, ok: bool, now: float, *, reason: str = "", weight: int | None = None) -> Verdict | None:
        t = self.timing
        self._record(ok, reason)
        verdict: Verdict | None = None
        if ok:
            self.url_it += 1
            self.retry_it = 0
            if self.url_it >= self.urls and self.failed_url is None:
                if not self.up or not self.has_run:
                    self.up = True
                    verdict = Verdict(True, "")
                    self.has_run = True
                self.url_it = 0
            elif self.failed_url is not None:  # the failed url passes: every url again, from the first
                self.failed_url = None
                self.url_it = 0
            delay = t.delay_loop
            if not self.has_run:
                self.retry_it = t.retry  # one failure is enough until a round has completed
        else:
            self.retry_it += 1
            if self.retry_it > t.retry:
                if self.up or not self.judged:
                    self.up = False
                    verdict = Verdict(False, reason)
                self.failed_url = self.url_it
            delay = (max(t.delay_before_retry, t.delay_loop) if self.failed_url is not None
                     else t.delay_before_retry)
        if self.fast_recovery and ok and (not self.has_run or (not self.up and self.failed_url is None)):
            delay = 0.0  # keepalived does it after a failure too: a refused url would be fetched in a loop
        self.next_due = now + delay
        self.judged = self.judged or verdict is not None
        return verdict
