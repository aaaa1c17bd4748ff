"""LinkMonitor against the real kernel: admin down/up, carrier loss, deletion, inside an asyncio loop."""

from __future__ import annotations

import asyncio
import errno
import select
import time

import pytest

from keepalived_py.vrrp.net.links import (
    IFF_RUNNING,
    IFF_UP,
    LinkEvent,
    LinkMonitor,
    RtNetlink,
    flags_up,
    ifreq_index,
    link_state,
)
from lab import Lab

netns = pytest.mark.netns


def events_within(monitor: LinkMonitor, want: int = 1, timeout: float = 2.0) -> list[LinkEvent]:
    """Poll ``monitor`` as an event loop would until ``want`` events arrived."""
    events: list[LinkEvent] = []
    deadline = time.monotonic() + timeout
    while len(events) < want:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"only {events} within {timeout}s")
        readable, _, _ = select.select([monitor], [], [], remaining)
        if readable:
            events.extend(monitor.poll())
    return events


def test_up_means_up_and_running() -> None:
    assert flags_up(IFF_UP | IFF_RUNNING | 0x1000)
    assert not flags_up(IFF_UP)  # administratively up, no carrier
    assert not flags_up(IFF_RUNNING)


@netns
def test_link_down_and_up_are_reported_promptly(lab: Lab) -> None:
    with lab.enter("a"):
        monitor = LinkMonitor()
    with monitor:
        assert monitor.state("eth0") is True
        assert monitor.state("nosuch0") is None
        assert monitor.poll() == []  # non-blocking, nothing pending
        eth0 = lab.ifindex("a")
        started = time.monotonic()
        lab.link_down("a")
        assert events_within(monitor) == [LinkEvent("eth0", eth0, False)]
        assert time.monotonic() - started < 1.0
        assert monitor.state("eth0") is False
        lab.link_up("a")
        assert events_within(monitor) == [LinkEvent("eth0", eth0, True)]
        assert monitor.state("eth0") is True
        assert monitor.poll() == []  # one event per transition, not per RTM_NEWLINK


@netns
def test_carrier_loss_is_down_although_iff_up_stays(lab: Lab) -> None:
    """keepalived's FLAGS_UP wants IFF_RUNNING too: pulling the cable (peer down) is a link down."""
    with lab.enter("a"):
        monitor = LinkMonitor()
    with monitor:
        lab.carrier_down("a")
        [event] = events_within(monitor)
        assert (event.ifname, event.up) == ("eth0", False)
        info = monitor.link("eth0")
        assert info is not None and info.flags & IFF_UP and not info.up
        assert "NO-CARRIER" in lab.run("a", "ip", "link", "show", "eth0").stdout
        lab.carrier_up("a")
        [event] = events_within(monitor)
        assert (event.ifname, event.up) == ("eth0", True)


@netns
def test_deleted_interface_is_reported_down(lab: Lab) -> None:
    with lab.enter("a"):
        monitor = LinkMonitor()
    with monitor:
        lab.run("a", "ip", "link", "add", "x0", "type", "veth", "peer", "name", "x1")
        lab.run("a", "ip", "link", "set", "x0", "up")
        lab.run("a", "ip", "link", "set", "x1", "up")
        ups = events_within(monitor, want=2)
        assert {(e.ifname, e.up) for e in ups} == {("x0", True), ("x1", True)}
        lab.run("a", "ip", "link", "del", "x0")  # takes its peer x1 with it
        downs = events_within(monitor, want=2)
        assert {(e.ifname, e.up) for e in downs} == {("x0", False), ("x1", False)}
        assert monitor.state("x0") is None


@netns
def test_monitor_in_a_running_asyncio_loop(lab: Lab) -> None:
    """The monitor's descriptor is a plain netlink socket: loop.add_reader drives it."""
    with lab.enter("a"):
        monitor = LinkMonitor()

    async def main() -> list[LinkEvent]:
        loop = asyncio.get_running_loop()
        seen: asyncio.Queue[LinkEvent] = asyncio.Queue()

        def readable() -> None:
            for event in monitor.poll():
                seen.put_nowait(event)

        loop.add_reader(monitor.fileno(), readable)
        try:
            await loop.run_in_executor(None, lab.link_down, "a")
            first = await asyncio.wait_for(seen.get(), 2.0)
            await loop.run_in_executor(None, lab.link_up, "a")
            second = await asyncio.wait_for(seen.get(), 2.0)
        finally:
            loop.remove_reader(monitor.fileno())
        return [first, second]

    with monitor:
        events = asyncio.run(main())
    assert [(e.ifname, e.up) for e in events] == [("eth0", False), ("eth0", True)]


@netns
def test_one_shot_queries(lab: Lab) -> None:
    with lab.enter("a"):
        assert link_state("eth0") is True
        assert link_state("nosuch0") is None
        with RtNetlink() as rtnl:
            info = rtnl.link("eth0")
            assert info is not None and info.mac.hex(":") == lab.mac("a") and info.hw_type == 1
            assert {link.ifname for link in rtnl.links()} == {"lo", "eth0"}
    lab.link_down("a")
    with lab.enter("a"):
        assert link_state("eth0") is False


@netns
def test_ioctl_lookups_agree_with_rtnetlink_in_the_sockets_namespace(lab: Lab) -> None:
    with lab.enter("a"):
        rtnl = RtNetlink()
    with rtnl:  # used from this thread, outside the namespace: answers stay a's
        full = rtnl.link("eth0")
        fast = rtnl.ethernet_link("eth0")
        assert full is not None and fast is not None
        assert (fast.ifindex, fast.mac, fast.hw_type, fast.broadcast) == (
            full.ifindex, full.mac, full.hw_type, full.broadcast)
        assert fast.flags == full.flags & 0xFFFF and fast.ifindex == lab.ifindex("a")
        assert rtnl.ifindex("eth0") == full.ifindex
        assert rtnl.ifindex("nosuch0") is None
        with pytest.raises(OSError) as err:
            rtnl.ethernet_link("nosuch0")
        assert err.value.errno == errno.ENODEV
        assert rtnl.ethernet_link("lo") is None  # not Ethernet: the caller asks rtnetlink


def test_an_ifreq_never_takes_a_name_the_kernel_would_read_differently() -> None:
    with RtNetlink() as rtnl:
        for bad in ("lo\0x", "x" * 16, "", "eth\udcff"):
            with pytest.raises(OSError) as err:
                ifreq_index(rtnl._sock, bad)
            assert err.value.errno == errno.EINVAL, bad
        assert rtnl.ethernet_link("lo\0x") is None  # the caller asks rtnetlink, which takes the whole name
