"""Gratuitous ARP and unsolicited neighbour advertisements for virtual addresses, over ``AF_PACKET``.

keepalived behaviour mirrored (``vrrp_arp.c``, ``vrrp_ndisc.c``, ``vrrp.c``'s ``vrrp_send_link_update``):

* Gratuitous ARP: an ARP *request* (opcode 1) in a broadcast Ethernet frame; Ethernet source and ARP sender
  hardware address are the interface's MAC (keepalived uses the address's interface MAC, which is only a
  VMAC with ``use_vmac``); sender and target protocol address are both the VIP; the target hardware address
  is the link broadcast address ``ff:ff:ff:ff:ff:ff`` (not zero).
* Unsolicited NA: Ethernet ``33:33:00:00:00:01`` from the interface MAC; IPv6 from the VIP itself to
  ``ff02::1`` with hop limit 255; ICMPv6 type 136 code 0 with the Override flag, the Router flag when IPv6
  forwarding is enabled on the interface, Solicited clear; target = the VIP; one Target Link-Layer Address
  option (type 2, length 1) carrying the interface MAC.
* Nothing is sent on an interface with ``IFF_NOARP`` or without a hardware address.
* A burst of ``repeat`` rounds, each round one packet per address in order. With ``vrrp_garp_interval`` /
  ``vrrp_gna_interval`` (global or per interface) consecutive ARPs (resp. NAs) on one interface are spaced
  by that interval, across bursts and instances: the first goes at once, later ones are queued.

Sending never blocks: the packet socket is non-blocking and the spacing is the caller's to schedule.
:meth:`Announcer.plan` returns when each frame is due, :meth:`Announcer.announce` sends what is due now and
returns the rest for a timer (``loop.call_at`` and :meth:`Announcer.send_due`), and
:meth:`Announcer.announce_async` does the waiting in asyncio.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from keepalived_py.vrrp.net.links import ARPHRD_ETHER, IFF_NOARP, LinkInfo, RtNetlink
from keepalived_py.vrrp.packet import checksum

log = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ARPOP_REQUEST = 1
ETHER_BROADCAST = b"\xff" * 6
IPPROTO_ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136
ND_NA_FLAG_ROUTER = 0x80000000
ND_NA_FLAG_SOLICITED = 0x40000000
ND_NA_FLAG_OVERRIDE = 0x20000000
ND_OPT_TARGET_LINKADDR = 2
NDISC_HOPLIMIT = 255
ALL_NODES = IPv6Address("ff02::1")
#: RFC 2464 section 7: 33:33 followed by the low 32 bits of the group.
ALL_NODES_MAC = b"\x33\x33" + ALL_NODES.packed[-4:]


def garp_frame(
    mac: bytes, address: IPv4Address, *, hw_type: int = ARPHRD_ETHER, broadcast: bytes = ETHER_BROADCAST
) -> bytes:
    """The Ethernet frame of keepalived's gratuitous ARP for ``address`` from an interface with ``mac``."""
    if len(mac) != 6 or len(broadcast) != 6:
        raise ValueError("only 6-byte (Ethernet) hardware addresses are supported")
    ethernet = broadcast + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", hw_type, ETH_P_IP, 6, 4, ARPOP_REQUEST)
    return ethernet + arp + mac + address.packed + broadcast + address.packed


def icmpv6_checksum(src: IPv6Address, dst: IPv6Address, message: bytes) -> int:
    """RFC 4443 / RFC 8200 checksum of an ICMPv6 ``message`` (its checksum field zero)."""
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(message), IPPROTO_ICMPV6)
    return checksum(pseudo + message)


def unsolicited_na_frame(mac: bytes, address: IPv6Address, *, router: bool = False) -> bytes:
    """The Ethernet frame of keepalived's unsolicited neighbour advertisement for ``address``."""
    if len(mac) != 6:
        raise ValueError("only 6-byte (Ethernet) hardware addresses are supported")
    flags = ND_NA_FLAG_OVERRIDE | (ND_NA_FLAG_ROUTER if router else 0)
    option = struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1) + mac
    body = struct.pack("!BBHI", ND_NEIGHBOR_ADVERT, 0, 0, flags) + address.packed + option
    icmp = body[:2] + icmpv6_checksum(address, ALL_NODES, body).to_bytes(2, "big") + body[4:]
    ipv6 = (
        struct.pack("!IHBB", 6 << 28, len(icmp), IPPROTO_ICMPV6, NDISC_HOPLIMIT)
        + address.packed
        + ALL_NODES.packed
    )
    return ALL_NODES_MAC + mac + struct.pack("!H", ETH_P_IPV6) + ipv6 + icmp


@dataclass(frozen=True, slots=True)
class Frame:
    """One link-layer frame to send on an interface."""

    ifname: str
    ifindex: int
    ethertype: int
    data: bytes
    #: The virtual address it announces (for logs).
    address: IPAddress

    @property
    def is_arp(self) -> bool:
        """ARP (as opposed to an IPv6 neighbour advertisement)."""
        return self.ethertype == ETH_P_ARP


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A frame and the clock time (of the announcer's clock) it is due."""

    at: float
    frame: Frame


def _plain(address: IPAddress | IPv4Interface | IPv6Interface) -> IPAddress:
    return address.ip if isinstance(address, IPv4Interface | IPv6Interface) else address


class Announcer:
    """Sends gratuitous ARPs and unsolicited NAs from one network namespace.

    The packet socket and the netlink socket belong to the namespace of the thread that creates the
    announcer. ``garp_interval`` / ``gna_interval`` are the global ``vrrp_garp_interval`` /
    ``vrrp_gna_interval``; :meth:`set_intervals` overrides them per interface (``garp_group``).
    """

    def __init__(
        self,
        *,
        garp_interval: float = 0.0,
        gna_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        netlink: RtNetlink | None = None,
    ) -> None:
        self._clock = clock
        self._default = (garp_interval, gna_interval)
        self._intervals: dict[str, tuple[float, float]] = {}
        #: interface -> the spacing it shares with others (garp_group interfaces); default its own
        self._shared: dict[str, str] = {}
        #: (ifname, is_arp) -> earliest time the next frame of that kind may go out on that interface.
        self._next: dict[tuple[str, bool], float] = {}
        #: (ifname, is_arp) -> the last frame's real send time plus the interval (spacing never shrinks).
        self._after: dict[tuple[str, bool], float] = {}
        self._own_netlink = netlink is None
        self._rtnl = netlink if netlink is not None else RtNetlink()
        # Protocol 0: a packet socket that receives nothing (keepalived filters its receive side instead).
        self._sock = socket.socket(
            socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, 0
        )
        self.sent = 0
        self.errors = 0

    def close(self) -> None:
        """Close the sockets."""
        self._sock.close()
        if self._own_netlink:
            self._rtnl.close()

    def __enter__(self) -> Announcer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_intervals(self, ifname: str, *, garp: float | None = None, gna: float | None = None) -> None:
        """Per-interface ``vrrp_garp_interval`` / ``vrrp_gna_interval`` (seconds; 0: no spacing)."""
        old = self._intervals.get(ifname, self._default)
        self._intervals[ifname] = (old[0] if garp is None else garp, old[1] if gna is None else gna)

    def clear_groups(self) -> None:
        """Forget every per-interface spacing (before a reload's garp_groups are set again)."""
        self._intervals.clear()
        self._shared.clear()

    def share_spacing(self, ifnames: Iterable[str]) -> None:
        """Pace the announcements of ``ifnames`` as one interface (a ``garp_group``'s ``interfaces``: one
        switch's limit): a frame on any of them waits for the previous one on all of them."""
        names = list(ifnames)
        key = "\0".join(names)  # never an interface name
        for name in names:
            self._shared[name] = key

    def _key(self, ifname: str, is_arp: bool) -> tuple[str, bool]:
        return (self._shared.get(ifname, ifname), is_arp)

    def intervals(self, ifname: str) -> tuple[float, float]:
        """The (ARP, NA) spacing in force on ``ifname``."""
        return self._intervals.get(ifname, self._default)

    def link(self, ifname: str) -> LinkInfo:
        """The interface as the frames need it; ``OSError(ENODEV)`` when it does not exist."""
        info = self._rtnl.link(ifname)
        if info is None:
            raise OSError(errno.ENODEV, f"no interface {ifname}")
        return info

    def frames_for(
        self, ifname: str, addresses: Iterable[IPAddress | IPv4Interface | IPv6Interface]
    ) -> list[Frame]:
        """One frame per address (ARP for IPv4, NA for IPv6), in order; none on a NOARP or MAC-less link."""
        addresses = [_plain(item) for item in addresses]
        info = None
        if all(isinstance(address, IPv4Address) for address in addresses):
            info = self._rtnl.ethernet_link(ifname)  # no NA router flag needed: the fast lookup will do
        if info is None:
            info = self.link(ifname)
        if info.flags & IFF_NOARP or not info.mac:
            return []
        frames: list[Frame] = []
        for address in addresses:
            if isinstance(address, IPv4Address):
                data = garp_frame(
                    info.mac, address, hw_type=info.hw_type, broadcast=info.broadcast or ETHER_BROADCAST
                )
                frames.append(Frame(ifname, info.ifindex, ETH_P_ARP, data, address))
            else:
                data = unsolicited_na_frame(info.mac, address, router=info.ipv6_forwarding)
                frames.append(Frame(ifname, info.ifindex, ETH_P_IPV6, data, address))
        return frames

    def plan(
        self,
        ifname: str,
        addresses: Sequence[IPAddress | IPv4Interface | IPv6Interface],
        repeat: int = 1,
        *,
        now: float | None = None,
    ) -> list[Scheduled]:
        """Schedule ``repeat`` rounds of announcements; reserve their slots in the interface's spacing.

        Returns the frames sorted by due time (ties in keepalived's order: round by round, address by
        address). Frames due at or before ``now`` should be sent at once.
        """
        now = self._clock() if now is None else now
        frames = self.frames_for(ifname, addresses)
        arp_gap, na_gap = self.intervals(ifname)
        plan: list[Scheduled] = []
        for _ in range(max(0, repeat)):
            for frame in frames:
                key = self._key(ifname, frame.is_arp)
                gap = arp_gap if frame.is_arp else na_gap
                at = max(now, self._next.get(key, now))
                if gap > 0:
                    self._next[key] = at + gap
                plan.append(Scheduled(at, frame))
        plan.sort(key=lambda s: s.at)  # stable
        return plan

    def send_frame(self, frame: Frame) -> bool:
        """Send one frame without blocking; False (and counted in :attr:`errors`) if the kernel refused.

        The interface's spacing counts from when a frame really went out: a frame sent late pushes the
        next one of its kind on that interface back (see :meth:`due`)."""
        try:
            self._sock.sendto(frame.data, (frame.ifname, frame.ethertype))
        except OSError as exc:
            self.errors += 1
            kind = "gratuitous ARP" if frame.is_arp else "unsolicited NA"
            log.info("error %s sending %s on %s for %s", exc.errno, kind, frame.ifname, frame.address)
            return False
        self.sent += 1
        key = self._key(frame.ifname, frame.is_arp)
        gap = self._gap(frame)
        if gap > 0:
            earliest = self._clock() + gap
            self._after[key] = earliest
            self._next[key] = max(self._next.get(key, earliest), earliest)
        return True

    def _gap(self, frame: Frame) -> float:
        arp_gap, na_gap = self.intervals(frame.ifname)
        return arp_gap if frame.is_arp else na_gap

    def due(self, item: Scheduled) -> float:
        """When ``item`` may go out: its planned time, or later when the previous frame of its kind on its
        interface went out late."""
        return max(item.at, self._after.get(self._key(item.frame.ifname, item.frame.is_arp), item.at))

    def send_due(self, pending: Iterable[Scheduled], *, now: float | None = None) -> list[Scheduled]:
        """Send the frames of ``pending`` that are due; return the others, still sorted."""
        now = self._clock() if now is None else now
        later: list[Scheduled] = []
        for item in pending:
            if self.due(item) <= now:
                self.send_frame(item.frame)
            else:
                later.append(item)
        return later

    def announce(
        self, ifname: str, addresses: Sequence[IPAddress | IPv4Interface | IPv6Interface], repeat: int = 1
    ) -> list[Scheduled]:
        """Send what may go out now of ``repeat`` rounds; return the rest, for the caller to schedule.

        With no interval configured everything is sent at once and the result is empty. Otherwise call
        :meth:`send_due` at ``result[0].at`` (e.g. ``loop.call_at``) until nothing remains.
        """
        return self.send_due(self.plan(ifname, addresses, repeat))

    async def announce_async(
        self, ifname: str, addresses: Sequence[IPAddress | IPv4Interface | IPv6Interface], repeat: int = 1
    ) -> int:
        """send every round, sleeping (never blocking) between spaced frames; return the count."""
        return await self.send_scheduled(self.plan(ifname, addresses, repeat))

    async def send_scheduled(
        self, pending: Iterable[Scheduled], *, proceed: Callable[[], bool] | None = None
    ) -> int:
        """Send each frame of ``pending`` (sorted by due time) when it is due, sleeping in between; stop
        early when ``proceed()`` turns false before a frame is sent. Return how many were sent."""
        sent = 0
        for item in pending:
            delay = self.due(item) - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if proceed is not None and not proceed():
                break
            sent += self.send_frame(item.frame)
        return sent
