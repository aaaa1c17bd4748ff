"""VrrpSocket against the real kernel: adverts between namespaces, multicast and unicast, IPv4 and IPv6."""

from __future__ import annotations

import errno
import select
import socket
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest

from keepalived_py.vrrp.net.sockets import (
    IP_MULTICAST_ALL,
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    Received,
    VrrpSocket,
    ipv4_header,
    ttl_acceptable,
)
from keepalived_py.vrrp.packet import AUTH_SIMPLE, VrrpPacket, checksum, decode, encode, parse_ipv4
from lab import Lab

netns = pytest.mark.netns

IPAddress = IPv4Address | IPv6Address


def advert(version: int, family: int, vrid: int = 51) -> VrrpPacket:
    """A typical advert: VRRPv2 with a password, or VRRPv3 with one virtual address."""
    vip: IPAddress = IPv4Address("192.0.2.100") if family == 4 else IPv6Address("2001:db8::100")
    if version == 2:
        return VrrpPacket(2, 1, vrid, 100, 100, (vip,), AUTH_SIMPLE, b"secret")
    return VrrpPacket(3, 1, vrid, 100, 100, (vip,))


def recv_within(sock: VrrpSocket, timeout: float = 2.0) -> Received:
    """The next advert on ``sock``, waiting with select() like an event loop would."""
    readable, _, _ = select.select([sock], [], [], timeout)
    while readable:
        got = sock.recv()
        if got is not None:
            return got
        readable, _, _ = select.select([sock], [], [], timeout)
    raise AssertionError(f"nothing received on {sock!r} within {timeout}s")


def nothing_within(sock: VrrpSocket, timeout: float = 0.3) -> None:
    """Assert that no advert arrives on ``sock`` for ``timeout`` seconds."""
    readable, _, _ = select.select([sock], [], [], timeout)
    got = sock.recv() if readable else None
    assert got is None, f"unexpected {got} on {sock!r}"


def own_address(lab: Lab, node: str, family: int, ifname: str = "eth0", segment: int = 0) -> IPAddress:
    """The source keepalived would pick: primary IPv4 or IPv6 link-local."""
    return lab.addr(node, 4, segment) if family == 4 else lab.link_local(node, ifname)


# --- pure helpers -------------------------------------------------------------------------------------------


def test_ttl_rules_mirror_keepalived() -> None:
    assert ttl_acceptable(255, unicast=False)
    assert not ttl_acceptable(254, unicast=False)
    assert ttl_acceptable(None, unicast=False)  # unknown hop limit: keepalived does not check
    assert ttl_acceptable(1, unicast=True)  # unicast: no check without check_unicast_src
    assert ttl_acceptable(64, unicast=True, peer_range=(0, 255))
    assert not ttl_acceptable(63, unicast=True, peer_range=(64, 255))


def test_ipv4_header_is_keepalived_s() -> None:
    header = ipv4_header(IPv4Address("192.0.2.1"), VRRP_GROUP_V4, 20)
    version_ihl, tos, total, ident, frag, ttl, proto = struct.unpack_from("!BBHHHBB", header)
    assert (version_ihl, tos, total, ident, frag, ttl, proto) == (0x45, 0xC0, 40, 0, 0, 255, 112)
    assert checksum(header) == 0
    assert parse_ipv4(header + bytes(20)).dst == VRRP_GROUP_V4


# --- multicast ----------------------------------------------------------------------------------------------


@netns
@pytest.mark.parametrize(("version", "family"), [(2, 4), (3, 4), (3, 6)])
def test_multicast_advert_reaches_the_other_namespace(lab: Lab, version: int, family: int) -> None:
    with lab.enter("a"):
        tx = VrrpSocket.multicast("eth0", family)
    with lab.enter("b"):
        rx = VrrpSocket.multicast("eth0", family)
    group = VRRP_GROUP_V4 if family == 4 else VRRP_GROUP_V6
    assert tx.src == own_address(lab, "a", family)  # primary IPv4 / link-local IPv6, as keepalived
    assert tx.send_socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) <= 4608  # send side queues nothing
    packet = advert(version, family)
    with tx, rx, lab.capture(filter="ip proto 112 or ip6 proto 112") as cap:
        tx.send(encode(packet, src=tx.src, dst=group))
        got = recv_within(rx)
        frame = cap.wait_for(lambda f: True)[0]
        nothing_within(tx, 0.1)  # multicast loop is off: the sender does not hear itself
    assert (got.src, got.dst, got.ttl) == (tx.src, group, 255)
    assert got.ifindex == lab.ifindex("b")
    assert decode(got.payload, src=got.src, dst=got.dst).packet == packet
    # On the wire: group MAC, TOS / traffic class 0xc0, TTL / hop limit 255.
    if family == 4:
        assert frame[:6] == bytes.fromhex("01005e000012")
        ip = parse_ipv4(frame[14:])
        assert (ip.tos, ip.ttl, ip.src, ip.dst) == (0xC0, 255, tx.src, group)
    else:
        assert frame[:6] == bytes.fromhex("333300000012")
        first_word, _, next_header, hop_limit = struct.unpack_from("!IHBB", frame, 14)
        assert ((first_word >> 20) & 0xFF, next_header, hop_limit) == (0xC0, 112, 255)
        assert IPv6Address(frame[22:38]) == tx.src


@netns
@pytest.mark.parametrize("family", [4, 6])
def test_socket_bound_to_eth0_ignores_another_interface(lab3: Lab, family: int) -> None:
    """b is on segment 0 (eth0, with a) and segment 1 (eth1, with c): each socket hears its own link."""
    with lab3.enter("b"):
        rx0 = VrrpSocket.multicast("eth0", family)
        rx1 = VrrpSocket.multicast("eth1", family)
    with lab3.enter("a"):
        from_a = VrrpSocket.multicast("eth0", family)
    with lab3.enter("c"):
        from_c = VrrpSocket.multicast("eth1", family)
    with rx0, rx1, from_a, from_c:
        group = from_c.group
        assert group is not None
        from_c.send(encode(advert(3, family, vrid=7), src=from_c.src, dst=group))
        got = recv_within(rx1)
        assert (got.src, got.ifindex) == (from_c.src, lab3.ifindex("b", "eth1"))
        nothing_within(rx0)
        from_a.send(encode(advert(3, family, vrid=8), src=from_a.src, dst=group))
        got = recv_within(rx0)
        assert (got.src, got.ifindex) == (from_a.src, lab3.ifindex("b", "eth0"))
        nothing_within(rx1)


@netns
def test_ip_multicast_all_is_off(lab3: Lab) -> None:
    """With the device binding undone, only IP_MULTICAST_ALL=0 keeps eth1's group traffic from eth0's socket.

    rx1 has joined 224.0.0.18 on eth1, so the kernel accepts the group there; a socket that joined only on
    eth0 must still not get it. The control re-enables IP_MULTICAST_ALL and sees the packet arrive.
    """
    with lab3.enter("b"):
        rx0 = VrrpSocket.multicast("eth0", 4)
        rx1 = VrrpSocket.multicast("eth1", 4)
    with lab3.enter("c"):
        tx = VrrpSocket.multicast("eth1", 4)
    with rx0, rx1, tx:
        assert rx0.recv_socket.getsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL) == 0
        rx0.recv_socket.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"")
        tx.send(encode(advert(3, 4), src=tx.src, dst=VRRP_GROUP_V4))
        recv_within(rx1)
        nothing_within(rx0)
        rx0.recv_socket.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 1)  # the control
        tx.send(encode(advert(3, 4), src=tx.src, dst=VRRP_GROUP_V4))
        recv_within(rx1)
        assert recv_within(rx0).ifindex == lab3.ifindex("b", "eth1")


@netns
@pytest.mark.parametrize("family", [4, 6])
def test_cut_drops_vrrp_and_heal_restores_it(lab: Lab, family: int) -> None:
    with lab.enter("a"):
        tx = VrrpSocket.multicast("eth0", family)
    with lab.enter("b"):
        rx = VrrpSocket.multicast("eth0", family)
    with tx, rx:
        payload = encode(advert(3, family), src=tx.src, dst=tx.group)  # type: ignore[arg-type]
        lab.cut("b")
        tx.send(payload)
        nothing_within(rx)
        lab.heal("b")
        tx.send(payload)
        assert recv_within(rx).src == tx.src


# --- unicast ------------------------------------------------------------------------------------------------


@netns
@pytest.mark.parametrize(
    ("family", "link_local", "ttl", "expected_ttl"),
    [
        (4, False, None, 255),  # keepalived's IPv4 default
        (4, False, 9, 9),  # unicast_ttl
        (6, False, None, 64),  # IPv6: the kernel's default hop limit
        (6, False, 255, 255),
        (6, True, None, 64),  # link-local unicast_src_ip / unicast_peer
    ],
)
def test_unicast_advert(lab: Lab, family: int, link_local: bool, ttl: int | None, expected_ttl: int) -> None:
    if link_local:
        a_src: IPAddress = lab.link_local("a")
        b_src: IPAddress = lab.link_local("b")
    else:
        a_src, b_src = lab.addr("a", family), lab.addr("b", family)
    with lab.enter("a"):
        tx = VrrpSocket.unicast("eth0", family, a_src, ttl=ttl)
    with lab.enter("b"):
        rx = VrrpSocket.unicast("eth0", family, b_src)
        multicast_rx = VrrpSocket.multicast("eth0", family)
    packet = advert(3, family)
    with tx, rx, multicast_rx:
        tx.send(encode(packet, src=a_src, dst=b_src), b_src)
        got = recv_within(rx)
        nothing_within(multicast_rx, 0.1)  # a unicast advert is not for the multicast socket
    assert (got.src, got.dst, got.ttl, got.ifindex) == (a_src, b_src, expected_ttl, lab.ifindex("b"))
    assert not got.multicast
    assert decode(got.payload, src=got.src, dst=got.dst).packet == packet
    assert ttl_acceptable(got.ttl, unicast=True)


@netns
@pytest.mark.parametrize("family", [4, 6])
def test_unicast_socket_does_not_take_multicast(lab: Lab, family: int) -> None:
    with lab.enter("a"):
        tx = VrrpSocket.multicast("eth0", family)
    with lab.enter("b"):
        unicast_rx = VrrpSocket.unicast("eth0", family, lab.addr("b", family))
        multicast_rx = VrrpSocket.multicast("eth0", family)
    with tx, unicast_rx, multicast_rx:
        tx.send(encode(advert(3, family), src=tx.src, dst=tx.group))  # type: ignore[arg-type]
        assert recv_within(multicast_rx).multicast
        nothing_within(unicast_rx)


@netns
def test_unicast_source_must_be_configured(lab: Lab) -> None:
    """keepalived's read socket binds to unicast_src_ip; an address not on the host fails (FAULT there)."""
    with lab.enter("a"), pytest.raises(OSError) as caught:
        VrrpSocket.unicast("eth0", 4, IPv4Address("192.0.2.99"))
    assert caught.value.errno == errno.EADDRNOTAVAIL


@netns
def test_unicast_socket_needs_a_destination(lab: Lab) -> None:
    with lab.enter("a"), VrrpSocket.unicast("eth0", 4, lab.addr("a")) as tx, pytest.raises(ValueError):
        tx.send(b"\x31\x01\x64\x01\x00\x64\x00\x00")
