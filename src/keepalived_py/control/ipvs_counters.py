"""The kernel's IPVS counters of every virtual service, as the parent reads them for the metrics.

Read in the parent (never in the Checkers child, whose loop must not wait for it), and never on the
parent's loop either: a worker thread opens the netlink socket (importing pyroute2's IPVS definitions, which
takes seconds on a slow machine) and dumps the services' counters, at most once per :data:`MIN_INTERVAL`
seconds whatever the number of scrapes. :meth:`IpvsCounters.read` returns at once what the worker last
read (None before its first read) and asks it for a fresher reading when that one is older than the
interval: a scrape gets the counters as the previous scrape (or the previous second) found them. A kernel
without IPVS (or any netlink error) gives None, logged once, and is asked again next time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from keepalived_py.control.child_fork import import_in_thread, importing

log = logging.getLogger("kpd.metrics")

MIN_INTERVAL = 1.0

Counters = dict[str, dict[str, int]]


def _open_driver() -> Any:
    from keepalived_py.ipvs.driver import IpvsDriver  # pyroute2: only when metrics are wanted

    return IpvsDriver()


class IpvsCounters:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 open_driver: Callable[[], Any] = _open_driver, *, threaded: bool = True) -> None:
        self._clock = clock
        self._open_driver = open_driver
        self._threaded = threaded
        self._driver: Any = None
        #: when the last reading was asked for (None: never)
        self._asked_at: float | None = None
        self._last: Counters | None = None
        self._warned = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker now, importing what reading needs (before the first scrape asks)."""
        if self._threaded and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ipvs-counters", daemon=True)
            self._thread.start()

    def read(self) -> Counters | None:
        """str(ServiceKey) -> {"connections", "packets_in", "packets_out", "bytes_in", "bytes_out"}: the
        last reading, at once; a new one is asked for when the last was asked more than
        :data:`MIN_INTERVAL` ago."""
        now = self._clock()
        if self._asked_at is None or not 0 <= now - self._asked_at < MIN_INTERVAL:
            self._asked_at = now
            if not self._threaded:
                self._refresh()
            else:
                self.start()
                self._wake.set()
        with self._lock:
            return self._last

    def _run(self) -> None:
        if self._open_driver is _open_driver:
            import_in_thread("keepalived_py.ipvs.driver")
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            self._refresh()

    def _refresh(self) -> None:
        try:
            if self._driver is None:
                with importing():  # opening it may import the rest of the netlink layer
                    self._driver = self._open_driver()
            last: Counters | None = {str(key): stats for key, stats in self._driver.service_stats().items()}
            self._warned = False
        except Exception as err:  # no IPVS in this kernel, netlink trouble: no kernel counters this time
            if not self._warned:
                log.warning("metrics: cannot read the kernel's IPVS counters: %s", err)
                self._warned = True
            self._close_driver()
            last = None
        with self._lock:
            self._last = last

    def _close_driver(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_driver()
