"""AddressManager and primary_address against a real kernel, plus the pure parts of AddressSpec."""

from __future__ import annotations

import asyncio
import errno
import socket
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

import pytest

from keepalived_py.vrrp.net.addresses import (
    FOREVER,
    AddressError,
    AddressManager,
    AddressSpec,
    broadcast_for,
    newaddr_message,
    primary_address,
)
from lab import Lab

netns = pytest.mark.netns


def ip_addr_lines(lab: Lab, node: str, family: int, dev: str = "eth0") -> list[str]:
    """``ip -o -<family> addr show dev <dev>``, one line per address."""
    out = lab.run(node, "ip", "-o", f"-{family}", "addr", "show", "dev", dev).stdout
    return [line.replace("\\", " ") for line in out.splitlines() if line.strip()]


def line_for(lines: list[str], address: str) -> str | None:
    """The line showing ``address`` (``a.b.c.d/len`` or ``a.b.c.d peer ...``), if any."""
    for line in lines:
        words = line.split()
        if address in words or any(w.startswith(address + "/") for w in words):
            return line
    return None


# --- pure ---------------------------------------------------------------------------------------------------


def test_spec_defaults_follow_keepalived() -> None:
    v6_host = AddressSpec(IPv6Interface("2001:db8::100/128"), "eth0")
    v6_net = AddressSpec(IPv6Interface("2001:db8::100/64"), "eth0")
    assert v6_host.nodad and v6_host.effective_preferred_lft == 0  # deprecated: never a source address
    assert v6_net.effective_preferred_lft == FOREVER
    forever = AddressSpec(IPv6Interface("2001:db8::1/128"), "eth0", preferred_lft=FOREVER)
    assert forever.effective_preferred_lft == FOREVER
    assert v6_net.ifa_flags == 0x02  # IFA_F_NODAD
    with_dad = AddressSpec(IPv6Interface("2001:db8::1/64"), "eth0", nodad=False, noprefixroute=True)
    assert with_dad.ifa_flags == 0x200  # IFA_F_NOPREFIXROUTE only
    assert AddressSpec(IPv4Interface("192.0.2.5/24"), "eth0").ifa_flags == 0  # nodad is IPv6 only


def test_spec_rejects_what_keepalived_rejects() -> None:
    with pytest.raises(ValueError):
        AddressSpec(IPv6Interface("2001:db8::1/64"), "eth0", label="eth0:x")
    with pytest.raises(ValueError):
        AddressSpec(IPv6Interface("2001:db8::1/64"), "eth0", brd="+")
    with pytest.raises(ValueError):
        AddressSpec(IPv4Interface("192.0.2.1/24"), "eth0", label="a-label-of-16chr")
    with pytest.raises(ValueError):
        AddressSpec(IPv4Interface("192.0.2.1/24"), "eth0", scope="galaxy")


def test_broadcast_and_peer_rules() -> None:
    assert broadcast_for(IPv4Interface("192.0.2.77/24"), "+") == IPv4Address("192.0.2.255")
    assert broadcast_for(IPv4Interface("192.0.2.77/24"), "-") == IPv4Address("192.0.2.0")
    with pytest.raises(ValueError):
        broadcast_for(IPv4Interface("192.0.2.77/31"), "+")
    spec = AddressSpec(IPv4Interface("192.0.2.50/32"), "eth0", peer=IPv4Interface("192.0.2.60/30"), brd="+")
    assert spec.prefixlen == 30 and spec.peer_ip == IPv4Address("192.0.2.60")
    assert spec.broadcast is None  # keepalived: broadcast and peer are exclusive
    scoped = AddressSpec(IPv4Interface("192.0.2.9/24"), "eth0", brd="+", scope="link", label="l")
    msg = newaddr_message(scoped, 2)
    assert msg["prefixlen"] == 24 and msg["scope"] == 253 and msg["index"] == 2
    assert dict(msg["attrs"]) == {
        "IFA_LOCAL": "192.0.2.9",
        "IFA_ADDRESS": "192.0.2.9",
        "IFA_BROADCAST": "192.0.2.255",
        "IFA_LABEL": "l",
    }


# --- against the kernel -------------------------------------------------------------------------------------


@netns
def test_add_remove_ipv4_vip_with_label_and_prefix(lab: Lab) -> None:
    vip = AddressSpec(IPv4Interface("192.0.2.100/24"), "eth0", label="eth0:vip")
    with lab.enter("a"):
        manager = AddressManager()
    with manager:
        assert manager.add([vip]) == [vip]
        line = line_for(ip_addr_lines(lab, "a", 4), "192.0.2.100")
        assert line is not None
        assert "192.0.2.100/24" in line.split() and "eth0:vip" in line.split() and "secondary" in line.split()
        assert manager.add([vip]) == []  # idempotent: EEXIST is not an error
        assert manager.present([vip]) == [vip]
        assert manager.remove([vip]) == [vip]
        assert line_for(ip_addr_lines(lab, "a", 4), "192.0.2.100") is None
        assert manager.remove([vip]) == []  # idempotent: EADDRNOTAVAIL is not an error
        assert manager.present([vip]) == []
        # The static address is untouched throughout.
        assert line_for(ip_addr_lines(lab, "a", 4), "192.0.2.1") is not None


@netns
def test_ipv4_scope_broadcast_and_peer(lab: Lab) -> None:
    scoped = AddressSpec(IPv4Interface("198.51.100.7/24"), "eth0", brd="+", scope="link")
    p2p = AddressSpec(IPv4Interface("203.0.113.50/32"), "eth0", peer=IPv4Interface("203.0.113.60/32"))
    with lab.enter("a"), AddressManager() as manager:
        assert manager.add([scoped, p2p]) == [scoped, p2p]
        lines = ip_addr_lines(lab, "a", 4)
        scoped_line = line_for(lines, "198.51.100.7")
        assert scoped_line is not None and "brd 198.51.100.255 scope link" in scoped_line
        p2p_line = line_for(lines, "203.0.113.50")
        assert p2p_line is not None and "peer 203.0.113.60/32" in p2p_line
        assert manager.present([scoped, p2p]) == [scoped, p2p]
        assert manager.remove([scoped, p2p]) == [scoped, p2p]
        assert manager.present([scoped, p2p]) == []


@netns
def test_ipv6_flags_and_lifetimes(lab: Lab) -> None:
    net = AddressSpec(IPv6Interface("2001:db8::100/64"), "eth0", noprefixroute=True)
    host = AddressSpec(IPv6Interface("2001:db8::101/128"), "eth0")
    dad = AddressSpec(IPv6Interface("2001:db8::102/64"), "eth0", nodad=False, preferred_lft=300)
    with lab.enter("a"), AddressManager() as manager:
        assert manager.add([net, host, dad]) == [net, host, dad]
        lines = ip_addr_lines(lab, "a", 6)
        net_line, host_line, dad_line = (line_for(lines, str(s.ip)) for s in (net, host, dad))
        assert net_line and host_line and dad_line
        assert "nodad" in net_line and "noprefixroute" in net_line and "preferred_lft forever" in net_line
        assert "nodad" in host_line and "deprecated" in host_line  # /128: preferred_lft 0 by default
        assert "nodad" not in dad_line and "preferred_lft 300sec" in dad_line
        assert manager.add([net, host, dad]) == []
        assert manager.remove([net, host, dad]) == [net, host, dad]
        assert manager.present([net, host, dad]) == []


@netns
def test_missing_interface_is_reported_after_the_others(lab: Lab) -> None:
    good = AddressSpec(IPv4Interface("192.0.2.100/32"), "eth0")
    bad = AddressSpec(IPv4Interface("192.0.2.101/32"), "nosuch0")
    with lab.enter("a"), AddressManager() as manager:
        with pytest.raises(AddressError) as caught:
            manager.add([bad, good])
        assert caught.value.changed == [good] and caught.value.failures[0][0] == bad
        assert caught.value.errno == errno.ENODEV
        assert manager.present([good, bad]) == [good]
        assert manager.remove([bad, good]) == [good]  # a vanished interface has no address to remove


@netns
def test_remove_residual_removes_only_leftover_vips(lab: Lab) -> None:
    """A crashed run left VIPs behind: remove_residual deletes configured VIPs found (address + prefix)."""
    lab.run("a", "ip", "addr", "add", "192.0.2.100/24", "dev", "eth0", "label", "eth0:vip")
    lab.run("a", "ip", "addr", "add", "2001:db8::100/64", "dev", "eth0", "nodad")
    lab.run("a", "ip", "addr", "add", "192.0.2.103/24", "dev", "eth0")  # same address, other prefix
    leftovers = [
        AddressSpec(IPv4Interface("192.0.2.100/24"), "eth0", label="eth0:vip"),
        AddressSpec(IPv6Interface("2001:db8::100/64"), "eth0"),
    ]
    absent = AddressSpec(IPv4Interface("192.0.2.101/24"), "eth0")
    other_prefix = AddressSpec(IPv4Interface("192.0.2.103/32"), "eth0")
    with lab.enter("a"), AddressManager() as manager:
        assert manager.remove_residual([*leftovers, absent, other_prefix]) == leftovers
        assert manager.present(leftovers) == []
    v4 = ip_addr_lines(lab, "a", 4)
    assert line_for(v4, "192.0.2.1") is not None  # the host's own address stays
    assert line_for(v4, "192.0.2.103") is not None  # RTM_DELADDR matches the prefix length, as for keepalived
    assert line_for(ip_addr_lines(lab, "a", 6), "2001:db8::1") is not None


@netns
def test_primary_address(lab: Lab) -> None:
    with lab.enter("a"):
        assert primary_address("eth0", socket.AF_INET) == lab.addr("a")
        assert primary_address("eth0", socket.AF_INET6) == lab.link_local("a")  # not the global 2001:db8::1
        assert primary_address("nosuch0", socket.AF_INET) is None
        assert primary_address("lo", socket.AF_INET6) is None  # ::1 is not link-local
    # A VIP left as the primary address (the host's own re-added after it) is skipped when excluded.
    vip = AddressSpec(IPv4Interface("192.0.2.100/24"), "eth0")
    lab.run("a", "ip", "addr", "del", "192.0.2.1/24", "dev", "eth0")
    lab.run("a", "ip", "addr", "add", "192.0.2.100/24", "dev", "eth0")
    lab.run("a", "ip", "addr", "add", "192.0.2.1/24", "dev", "eth0")
    with lab.enter("a"):
        assert primary_address("eth0", socket.AF_INET) == IPv4Address("192.0.2.100")
        assert primary_address("eth0", socket.AF_INET, exclude=[vip]) == IPv4Address("192.0.2.1")
        ll = lab.link_local("a")
        assert primary_address("eth0", socket.AF_INET6, exclude=[ll]) is None


@netns
def test_usable_from_a_running_asyncio_loop(lab: Lab) -> None:
    """Unlike pyroute2 0.9's synchronous IPRoute, the manager works inside a running event loop."""
    vip = AddressSpec(IPv6Interface("2001:db8::100/64"), "eth0")
    with lab.enter("a"):
        manager = AddressManager()

    async def main() -> list[AddressSpec]:
        manager.add([vip])
        return manager.present([vip])

    with manager:
        assert asyncio.run(main()) == [vip]
        assert manager.remove([vip]) == [vip]
    assert IPv6Address("2001:db8::100") != lab.addr("a", 6)
