"""The kernel's IPVS counters of every virtual service, as the parent reads them for the metrics.

Read in the parent (never in the Checkers child, whose loop must not wait for it), at most once per
:data:`MIN_INTERVAL` seconds whatever the number of scrapes, through a netlink socket opened on first use.
A kernel without IPVS (or any netlink error) gives None, logged once, and is asked again next time.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("kpd.metrics")

MIN_INTERVAL = 1.0


def _open_driver() -> Any:
    from keepalived_py.ipvs.driver import IpvsDriver  # pyroute2: only when metrics are wanted

    return IpvsDriver()


class IpvsCounters:
    def __init__(self, clock: Any = time.monotonic, open_driver: Any = _open_driver) -> None:
        self._clock = clock
        self._open_driver = open_driver
        self._driver: Any = None
        self._read_at: float | None = None
        self._last: dict[str, dict[str, int]] | None = None
        self._warned = False

    def read(self) -> dict[str, dict[str, int]] | None:
        """str(ServiceKey) -> {"connections", "packets_in", "packets_out", "bytes_in", "bytes_out"}."""
        now = self._clock()
        if self._read_at is not None and 0 <= now - self._read_at < MIN_INTERVAL:
            return self._last
        self._read_at = now
        try:
            if self._driver is None:
                self._driver = self._open_driver()
            self._last = {str(key): stats for key, stats in self._driver.service_stats().items()}
            self._warned = False
        except Exception as err:  # no IPVS in this kernel, netlink trouble: no kernel counters this time
            if not self._warned:
                log.warning("metrics: cannot read the kernel's IPVS counters: %s", err)
                self._warned = True
            self.close()
            self._last = None
        return self._last

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None
