"""keepalived's text dumps beside keepalived 2.2.7: SIGUSR2 writes the statistics file in keepalived's layout,
line for line (the counts aside), and SIGUSR1 the data file with keepalived's sections and the same
``Name = value`` lines for each instance. kpd used to write only its JSON dumps. keepalived 2.2.7 always
writes /tmp/keepalived.{data,stats} (state_dump_file / stats_dump_file came in 2.3.3): kpd is pointed into
the lab directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, open_lab, wait_until

from lab import Lab

pytestmark = pytest.mark.netns

STATS_LAYOUT = """\
VRRP Instance: VI_#
  Advertisements:
    Received: #
    Sent: #
  Became master: #
  Released master: #
  Packet Errors:
    Length: #
    TTL: #
    Invalid Type: #
    Advertisement Interval: #
    Address List: #
  Authentication Errors:
    Invalid Type: #
    Type Mismatch: #
    Failure: #
  Priority Zero:
    Received: #
    Sent: #
"""
DATA_LINES = (
    "------< Global definitions >------",
    " Router ID = {kind}-a",
    " VRRP IPv4 mcast group = 224.0.0.18",
    " VRRP default protocol version = 3",
    "------< VRRP Topology >------",
    " VRRP Instance = VI_1",
    "   VRRP Version = 3",
    "   State = MASTER",
    "   Interface = eth0",
    "   Multicast address 224.0.0.18",
    "   Virtual Router ID = 51",
    "   Priority = 100",
    "   Effective priority = 100",
    "   Advert interval = 500 milli-sec",
    "   Preempt = enabled",
    "   Virtual IP (2):",
    "     192.0.2.100/24 dev eth0 scope global set",
    "     192.0.2.101/24 dev eth0 scope global set",
)


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        yield the_lab


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_the_text_dumps_have_keepalived_layout(lab: Lab, kind: str) -> None:
    if kind == KPD:
        data, stats = lab.workdir / "keepalived.data", lab.workdir / "keepalived.stats"
        extra: tuple[str, ...] = (f"state_dump_file {data}", f"stats_dump_file {stats}")
    else:
        data, stats = Path("/tmp/keepalived.data"), Path("/tmp/keepalived.stats")
        extra = ()
    for path in (data, stats):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    conf = Vrrp(priority=100, advert_int=0.5, vips=("192.0.2.100/24", "192.0.2.101/24"), global_extra=extra)
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    try:
        wait_until(lambda: a.holds_vip(), 15, what="a MASTER")
        time.sleep(1)
        assert a.proc is not None
        os.kill(a.proc.pid, signal.SIGUSR2)
        os.kill(a.proc.pid, signal.SIGUSR1)
        wait_until(lambda: stats.exists() and data.exists(), 10, what="both dumps written")
        time.sleep(0.5)  # keepalived writes in place: let it finish
        assert re.sub(r"\d+", "#", stats.read_text()) == STATS_LAYOUT
        sent = re.search(r"Advertisements:\n    Received: \d+\n    Sent: (\d+)", stats.read_text())
        assert sent is not None and int(sent.group(1)) >= 1  # kpd: as of the child's last status write
        assert re.search(r"Became master: 1$", stats.read_text(), re.M)
        lines = data.read_text().splitlines()
        missing = [line for line in DATA_LINES if line.format(kind=kind) not in lines]
        assert not missing, data.read_text()
    finally:
        assert a.stop() == 0
        if kind == KEEPALIVED:
            for path in (data, stats):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
