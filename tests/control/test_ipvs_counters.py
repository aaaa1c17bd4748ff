"""The parent's reading of the kernel's IPVS counters: at most once a second, whatever the scrapes, never on
the caller's thread, and a kernel without IPVS costs a warning, not the scrape."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from keepalived_py.control.ipvs_counters import MIN_INTERVAL, IpvsCounters


class Driver:
    def __init__(self, fail: bool = False) -> None:
        self.reads = 0
        self.fail = fail
        self.closed = False

    def service_stats(self) -> dict[str, dict[str, int]]:
        self.reads += 1
        if self.fail:
            raise OSError(2, "No such file or directory (IPVS family)")
        return {"TCP 10.0.0.1:80": {"connections": self.reads}}

    def close(self) -> None:
        self.closed = True


def test_the_kernel_is_read_at_most_once_per_interval() -> None:
    now = [100.0]
    driver = Driver()
    counters = IpvsCounters(clock=lambda: now[0], open_driver=lambda: driver, threaded=False)
    for _ in range(5):
        assert counters.read() == {"TCP 10.0.0.1:80": {"connections": 1}}
        now[0] += MIN_INTERVAL / 10
    assert driver.reads == 1
    now[0] += MIN_INTERVAL
    assert counters.read() == {"TCP 10.0.0.1:80": {"connections": 2}}


def test_no_ipvs_gives_none_with_one_warning_and_is_asked_again_later(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    opened: list[Driver] = []

    def open_driver() -> Driver:
        opened.append(Driver(fail=len(opened) < 2))
        return opened[-1]

    counters = IpvsCounters(clock=lambda: now[0], open_driver=open_driver, threaded=False)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert counters.read() is None
            now[0] += MIN_INTERVAL
    warning = ("metrics: cannot read the kernel's IPVS counters: "
               "[Errno 2] No such file or directory (IPVS family)")
    assert [r.getMessage() for r in caplog.records].count(warning) == 1
    assert opened[0].closed and opened[1].closed
    assert counters.read() == {"TCP 10.0.0.1:80": {"connections": 1}}


def test_a_slow_kernel_read_never_holds_the_caller() -> None:
    """The first reading (opening the socket imports pyroute2: seconds on a slow machine) is the worker
    thread's: the scrape gets what there is at once, the counters from the next one on."""
    release = threading.Event()
    driver = Driver()

    def open_driver() -> Driver:
        release.wait(10)
        return driver

    counters = IpvsCounters(open_driver=open_driver)
    try:
        began = time.monotonic()
        assert counters.read() is None
        assert time.monotonic() - began < 0.5
        release.set()
        deadline = time.monotonic() + 10
        while counters.read() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert counters.read() == {"TCP 10.0.0.1:80": {"connections": 1}}
    finally:
        counters.close()
    assert driver.closed
