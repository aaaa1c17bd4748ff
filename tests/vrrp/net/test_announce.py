"""Gratuitous ARP and unsolicited NA: frame layout, what the wire and a neighbour's kernel make of them."""

from __future__ import annotations

import asyncio
import itertools
import select
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

import pytest

from keepalived_py.vrrp.net.announce import (
    ALL_NODES,
    ETH_P_ARP,
    ETH_P_IPV6,
    ND_NA_FLAG_OVERRIDE,
    ND_NA_FLAG_ROUTER,
    Announcer,
    Frame,
    garp_frame,
    icmpv6_checksum,
    unsolicited_na_frame,
)
from keepalived_py.vrrp.packet import checksum
from lab import Lab, wait_for

netns = pytest.mark.netns

MAC = bytes.fromhex("020000000001")
VIP4 = IPv4Address("192.0.2.100")
VIP6 = IPv6Address("2001:db8::100")


def parse_arp(frame: bytes) -> dict[str, object]:
    dst, src, ethertype = frame[:6], frame[6:12], struct.unpack_from("!H", frame, 12)[0]
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, 14)
    sha, spa, tha, tpa = frame[22:28], frame[28:32], frame[32:38], frame[38:42]
    return {
        "eth_dst": dst, "eth_src": src, "ethertype": ethertype, "htype": htype, "ptype": ptype, "hlen": hlen,
        "plen": plen, "op": op, "sha": sha, "spa": IPv4Address(spa), "tha": tha, "tpa": IPv4Address(tpa),
    }  # fmt: skip


def parse_na(frame: bytes) -> dict[str, object]:
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    first, payload_len, next_header, hop_limit = struct.unpack_from("!IHBB", frame, 14)
    src, dst = IPv6Address(frame[22:38]), IPv6Address(frame[38:54])
    icmp = frame[54 : 54 + payload_len]
    icmp_type, code, _, flags = struct.unpack_from("!BBHI", icmp)
    opt_type, opt_len = icmp[24], icmp[25]
    return {
        "eth_dst": frame[:6], "eth_src": frame[6:12], "ethertype": ethertype, "version": first >> 28,
        "next_header": next_header, "hop_limit": hop_limit, "src": src, "dst": dst, "type": icmp_type,
        "code": code, "flags": flags, "target": IPv6Address(icmp[8:24]), "opt": (opt_type, opt_len),
        "lladdr": icmp[26:32], "checksum_ok": checksum(_pseudo(src, dst, icmp) + icmp) == 0,
    }  # fmt: skip


def _pseudo(src: IPv6Address, dst: IPv6Address, icmp: bytes) -> bytes:
    return src.packed + dst.packed + struct.pack("!I3xB", len(icmp), 58)


def is_na_for(address: IPv6Address) -> Callable[[bytes], bool]:
    def match(frame: bytes) -> bool:
        return (
            len(frame) >= 78
            and frame[12:14] == b"\x86\xdd"
            and frame[20] == 58
            and frame[54] == 136
            and frame[62:78] == address.packed
        )

    return match


def is_arp_for(address: IPv4Address) -> Callable[[bytes], bool]:
    def match(frame: bytes) -> bool:
        return len(frame) >= 42 and frame[12:14] == b"\x08\x06" and frame[28:32] == address.packed

    return match


class Sniffer:
    """An AF_PACKET socket on one interface of a namespace (frames come with the time they were read)."""

    def __init__(self, lab: Lab, node: str, ethertype: int, ifname: str = "eth0") -> None:
        with lab.enter(node):
            self.sock = socket.socket(
                socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.htons(ethertype)
            )
            self.sock.bind((ifname, ethertype))

    def frames(
        self, match: Callable[[bytes], bool], count: int, timeout: float = 3.0
    ) -> list[tuple[float, bytes]]:
        got: list[tuple[float, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{len(got)} of {count} frames seen")
            readable, _, _ = select.select([self.sock], [], [], remaining)
            if readable:
                frame = self.sock.recv(4096)
                if match(frame):
                    got.append((time.monotonic(), frame))
        return got

    def close(self) -> None:
        self.sock.close()


def neighbour_mac(lab: Lab, node: str, address: IPv4Address | IPv6Address) -> str | None:
    out = lab.run(node, "ip", "neigh", "show", str(address), "dev", "eth0").stdout.split()
    return out[out.index("lladdr") + 1] if "lladdr" in out else None


# --- pure ---------------------------------------------------------------------------------------------------


def test_garp_frame_is_keepalived_s() -> None:
    fields = parse_arp(garp_frame(MAC, VIP4))
    assert fields == {
        "eth_dst": b"\xff" * 6, "eth_src": MAC, "ethertype": ETH_P_ARP, "htype": 1, "ptype": 0x0800,
        "hlen": 6, "plen": 4, "op": 1, "sha": MAC, "spa": VIP4, "tha": b"\xff" * 6, "tpa": VIP4,
    }  # fmt: skip


def test_unsolicited_na_frame_is_keepalived_s() -> None:
    fields = parse_na(unsolicited_na_frame(MAC, VIP6))
    assert fields["eth_dst"] == bytes.fromhex("333300000001") and fields["eth_src"] == MAC
    assert (fields["ethertype"], fields["version"], fields["next_header"], fields["hop_limit"]) == (
        ETH_P_IPV6, 6, 58, 255,
    )  # fmt: skip
    assert (fields["src"], fields["dst"], fields["target"]) == (VIP6, ALL_NODES, VIP6)
    assert (fields["type"], fields["code"], fields["flags"]) == (136, 0, ND_NA_FLAG_OVERRIDE)
    assert (fields["opt"], fields["lladdr"], fields["checksum_ok"]) == ((2, 1), MAC, True)
    router = parse_na(unsolicited_na_frame(MAC, VIP6, router=True))
    assert router["flags"] == ND_NA_FLAG_OVERRIDE | ND_NA_FLAG_ROUTER and router["checksum_ok"]
    assert icmpv6_checksum(VIP6, ALL_NODES, b"\x88\x00\x00\x00") != 0


# --- against the kernel -------------------------------------------------------------------------------------


@netns
def test_gratuitous_arp_on_the_wire_and_in_the_neighbour_cache(lab: Lab) -> None:
    a_mac = bytes.fromhex(lab.mac("a").replace(":", ""))
    # b has a stale entry for the VIP pointing elsewhere: the GARP must move it to a's MAC.
    lab.run(
        "b", "ip", "neigh", "replace", str(VIP4), "lladdr", "02:00:00:00:99:99", "dev", "eth0", "nud", "stale"
    )
    sniffer = Sniffer(lab, "b", ETH_P_ARP)
    with lab.enter("a"):
        announcer = Announcer()
    with announcer, lab.capture(filter="arp") as cap:
        assert announcer.announce("eth0", [VIP4], repeat=2) == []  # no interval: everything sent at once
        seen = sniffer.frames(is_arp_for(VIP4), 2)
        captured = cap.wait_for(is_arp_for(VIP4), count=2)
    sniffer.close()
    assert announcer.sent == 2 and announcer.errors == 0
    for frame in [f for _, f in seen] + captured:
        fields = parse_arp(frame)
        assert (fields["eth_dst"], fields["eth_src"], fields["op"]) == (b"\xff" * 6, a_mac, 1)
        assert (fields["sha"], fields["spa"], fields["tha"], fields["tpa"]) == (
            a_mac,
            VIP4,
            b"\xff" * 6,
            VIP4,
        )
    assert wait_for(lambda: neighbour_mac(lab, "b", VIP4) == lab.mac("a"))


@netns
def test_unsolicited_na_on_the_wire_and_in_the_neighbour_cache(lab: Lab) -> None:
    a_mac = bytes.fromhex(lab.mac("a").replace(":", ""))
    lab.run(
        "b", "ip", "neigh", "replace", str(VIP6), "lladdr", "02:00:00:00:99:99", "dev", "eth0", "nud", "stale"
    )
    sniffer = Sniffer(lab, "b", ETH_P_IPV6)
    with lab.enter("a"):
        announcer = Announcer()
    with announcer, lab.capture(filter="icmp6") as cap:
        announcer.announce("eth0", [VIP6])
        [(_, frame)] = sniffer.frames(is_na_for(VIP6), 1)
        cap.wait_for(is_na_for(VIP6))
    sniffer.close()
    fields = parse_na(frame)
    assert (fields["eth_dst"], fields["eth_src"], fields["src"], fields["dst"]) == (
        bytes.fromhex("333300000001"), a_mac, VIP6, ALL_NODES,
    )  # fmt: skip
    assert (fields["hop_limit"], fields["flags"], fields["target"], fields["lladdr"]) == (
        255, ND_NA_FLAG_OVERRIDE, VIP6, a_mac,
    )  # fmt: skip
    assert fields["checksum_ok"]
    # tcpdump's own decoder agrees (and checks the ICMPv6 checksum with -vv).
    text = subprocess.run(
        ["tcpdump", "-r", str(cap.path), "-n", "-vv"], capture_output=True, text=True
    ).stdout
    assert f"neighbor advertisement, length 32, tgt is {VIP6}, Flags [override]" in text
    assert "bad" not in text
    assert f"destination link-address option (2), length 8 (1): {lab.mac('a')}" in text
    assert wait_for(lambda: neighbour_mac(lab, "b", VIP6) == lab.mac("a"))


@netns
def test_router_flag_follows_ipv6_forwarding(lab: Lab) -> None:
    lab.run("a", "sysctl", "-q", "-w", "net.ipv6.conf.eth0.forwarding=1")
    sniffer = Sniffer(lab, "b", ETH_P_IPV6)
    with lab.enter("a"), Announcer() as announcer:
        announcer.announce("eth0", [VIP6])
    [(_, frame)] = sniffer.frames(is_na_for(VIP6), 1)
    sniffer.close()
    assert parse_na(frame)["flags"] == ND_NA_FLAG_OVERRIDE | ND_NA_FLAG_ROUTER


@netns
def test_nothing_is_sent_on_a_noarp_interface(lab: Lab) -> None:
    lab.run("a", "ip", "link", "set", "eth0", "arp", "off")
    with lab.enter("a"), Announcer() as announcer:
        assert announcer.frames_for("eth0", [VIP4, VIP6]) == []
        assert announcer.announce("eth0", [VIP4, VIP6], repeat=3) == []
        assert announcer.sent == 0
        with pytest.raises(OSError):
            announcer.frames_for("nosuch0", [VIP4])


@netns
def test_spacing_is_planned_not_slept(lab: Lab) -> None:
    """vrrp_garp_interval / vrrp_gna_interval: per interface and kind, first frame at once, across bursts."""
    now = [100.0]
    with lab.enter("a"), Announcer(garp_interval=0.5, clock=lambda: now[0]) as announcer:
        announcer.set_intervals("eth0", gna=0.25)
        plan = announcer.plan("eth0", [VIP4, VIP6], repeat=2)
        assert [(s.at, s.frame.address) for s in plan] == [
            (100.0, VIP4),
            (100.0, VIP6),
            (100.25, VIP6),
            (100.5, VIP4),
        ]
        # A second burst (another instance on the same interface) queues behind the first.
        assert [s.at for s in announcer.plan("eth0", [VIP4], repeat=1)] == [101.0]
        # announce() sends what is due and hands back the rest without waiting.
        now[0] = 200.0
        started = time.monotonic()
        pending = announcer.announce("eth0", [VIP4], repeat=3)
        assert time.monotonic() - started < 0.1
        assert [s.at for s in pending] == [200.5, 201.0] and announcer.sent == 1
        now[0] = 200.5
        pending = announcer.send_due(pending)
        assert [s.at for s in pending] == [201.0] and announcer.sent == 2
        # A frame sent late pushes the next of its kind back: the interval counts from the real send.
        now[0] = 201.3
        assert announcer.send_due(pending) == [] and announcer.sent == 3
        (late,) = announcer.plan("eth0", [VIP4], repeat=1)
        assert late.at == pytest.approx(201.8)
        now[0] = 201.79
        assert announcer.send_due([late]) == [late] and announcer.sent == 3


@netns
def test_announce_async_spaces_frames_without_blocking(lab: Lab) -> None:
    sniffer = Sniffer(lab, "b", ETH_P_IPV6)
    with lab.enter("a"):
        announcer = Announcer(gna_interval=0.1)
    send_times: list[float] = []
    send_frame = announcer.send_frame

    def timed_send(frame: Frame) -> bool:
        send_times.append(time.monotonic())
        return send_frame(frame)

    announcer.send_frame = timed_send  # type: ignore[method-assign]

    async def main() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        sent = await announcer.announce_async("eth0", [VIP6], repeat=3)
        task.cancel()
        return sent, ticks

    with announcer:
        sent, ticks = asyncio.run(main())
    assert len(sniffer.frames(is_na_for(VIP6), 3)) == 3
    sniffer.close()
    assert sent == 3
    assert ticks >= 10  # the loop kept running during the 0.2 s of spacing
    gaps = [b - a for a, b in itertools.pairwise(send_times)]
    assert all(gap >= 0.08 for gap in gaps), gaps
