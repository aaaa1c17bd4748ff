"""``garp_group`` beside keepalived 2.2.7: the pause between gratuitous ARPs on one interface, or shared by a
group of interfaces (one switch's limit), as the frames on the wire show (kpd used to report the block as not
implemented and pace only by the global vrrp_garp_interval).

keepalived 2.2.7 sends only the first two frames of a spaced burst (with vrrp_garp_interval as with a
garp_group; seen here): kpd sends all of them, so the tests compare the spacing for both and count for kpd.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, open_lab, vip_present, wait_until

from lab import Lab

pytestmark = pytest.mark.netns

#: tcpdump's clock is the kernel's: spacing measured on it may come out a little short of the interval
SLACK = 0.03


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        yield the_lab


def garp_times(packets: list[Any]) -> list[float]:
    return sorted(p.time for p in packets if p.data[12:14].hex() == "0806")


def conf(vips: tuple[str, ...], *group: str) -> Vrrp:
    return Vrrp(priority=200, state="MASTER", advert_int=0.5, vips=vips,
                instance_extra=("garp_master_repeat 5", "garp_master_delay 0"),
                trailer=("garp_group {", *(f"    {line}" for line in group), "}"))


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_a_garp_group_spaces_the_gratuitous_arps_of_its_interface(lab: Lab, kind: str) -> None:
    a = Daemon(lab, "a", conf(("192.0.2.100/24",), "garp_interval 0.4", "interface eth0"), kind=kind)
    with lab.capture(filter="arp") as cap:
        a.start()
        wait_until(lambda: a.holds_vip(), 15, what="a MASTER")
        want = 5 if kind == KPD else 2
        wait_until(lambda: len(garp_times(cap.packets())) >= want, 5, what=f"{want} gratuitous ARPs")
    times = garp_times(cap.packets())
    assert all(b - a >= 0.4 - SLACK for a, b in itertools.pairwise(times)), times
    assert a.stop() == 0


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_the_interfaces_of_a_garp_group_share_one_pace(lab: Lab, kind: str) -> None:
    """eth0 and eth1 in one group: their gratuitous ARPs, together, are 0.4 s apart."""
    segment = lab.add_segment(["a"], ifname="eth1")
    group = ("garp_interval 0.4", "interfaces {", "    eth0", "    eth1", "}")
    a = Daemon(lab, "a", conf(("192.0.2.100/24", "198.51.100.100/24 dev eth1"), *group), kind=kind)
    with lab.capture(filter="arp") as one, lab.capture(filter="arp", segment=segment) as two:
        a.start()
        wait_until(lambda: vip_present(lab, "a", "198.51.100.100", "eth1"), 15, what="a MASTER")

        def both() -> list[float]:
            return garp_times(one.packets() + two.packets())

        want = 10 if kind == KPD else 2
        wait_until(lambda: len(both()) >= want, 8, what=f"{want} gratuitous ARPs over both interfaces")
    times = both()
    assert all(b - a >= 0.4 - SLACK for a, b in itertools.pairwise(times)), times
    assert a.stop() == 0
