"""``lvs_sync_daemon``: the kernel's IPVS connection-synchronisation daemon follows one VRRP instance.

As keepalived's VRRP process drives it (``vrrp_scheduler.c``, ``vrrp.c``, ``vrrp_daemon.c``): the BACKUP
daemon runs while the instance starts up or is BACKUP (or FAULT), the MASTER daemon while it is MASTER
(the other one stopped first), and the running one is stopped when the VRRP child stops. So the new
master of a director pair has the connections its peer synchronised, and they survive the failover.

A daemon already running in the wanted state (a restarted VRRP child adopting the kernel's) is left
alone; the kernel has no IPVS: an error logged, VRRP carries on.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import Any

from keepalived_py.config.model import LvsSyncDaemon

log = logging.getLogger(__name__)

MASTER, BACKUP = 1, 2  # IP_VS_STATE_MASTER, IP_VS_STATE_BACKUP


def _driver() -> Any:
    from keepalived_py.ipvs.driver import IpvsDriver

    return IpvsDriver()


class LvsSync:
    def __init__(self, config: LvsSyncDaemon, driver_factory: Callable[[], Any] = _driver) -> None:
        self.config = config
        self._factory = driver_factory
        self._driver: Any = None
        #: the daemon kpd runs now: MASTER, BACKUP or None
        self.running: int | None = None

    def follow(self, master: bool) -> None:
        """The instance is (now) MASTER, or not: run the daemon of that state, stopping the other."""
        want = MASTER if master else BACKUP
        if self.running == want:
            return
        other = BACKUP if want == MASTER else MASTER
        if self._call("stop", other) and self._call("start", want):
            self.running = want
            log.info("IPVS sync daemon: %s on %s, syncid %s", "MASTER" if master else "BACKUP",
                     self.config.interface, self.config.syncid)

    def stop(self) -> None:
        """The VRRP child stops: stop the daemon it runs."""
        if self.running is not None:
            self._call("stop", self.running)
            self.running = None
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    def _call(self, what: str, state: int) -> bool:
        c = self.config
        try:
            if self._driver is None:
                self._driver = self._factory()
            if what == "start":
                self._driver.start_daemon(state, c.interface, c.syncid or 0, maxlen=c.maxlen, port=c.port,
                                          ttl=c.ttl, group=str(c.group) if c.group is not None else None)
            else:
                self._driver.stop_daemon(state)
        except OSError as err:
            if (what, err.errno) in (("start", errno.EEXIST), ("stop", errno.ESRCH)):
                return True  # already so (a restarted child adopting the kernel's daemon)
            log.error("IPVS sync daemon: cannot %s the %s daemon: %s", what,
                      "MASTER" if state == MASTER else "BACKUP", err)
            return what == "stop"
        return True
