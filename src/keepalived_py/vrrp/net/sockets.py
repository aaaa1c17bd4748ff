"""Raw IP protocol 112 sockets for VRRP adverts, multicast or unicast, IPv4 or IPv6, non-blocking.

keepalived's model (``vrrp.c``: ``open_vrrp_read_socket``, ``open_vrrp_send_socket``, ``vrrp_build_ip4``,
``vrrp_send_pkt``; ``vrrp_if.c``: ``if_setsockopt_*``; ``vrrp_scheduler.c``: ``vrrp_dispatcher_read``) is
one socket pair per (interface, family, unicast source or multicast group), shared by all the VRIDs on it
and demultiplexed by VRID. A :class:`VrrpSocket` is that pair: a receive socket (:meth:`VrrpSocket.fileno`)
and a send socket that never queues anything (a BPF program that drops every packet, ``SO_RCVBUF`` 0).

Receive socket:

* ``IP_MULTICAST_ALL`` / ``IPV6_MULTICAST_ALL`` off, so only groups this socket joined are delivered;
* multicast: joins the group on the interface index (``ip_mreqn`` / ``ipv6_mreq``) and binds to the group
  address, so unicast VRRP is not delivered to it; unicast: binds to the unicast source address (an address
  that is not configured fails with ``EADDRNOTAVAIL``: keepalived then puts the instance in FAULT);
* ``SO_BINDTODEVICE`` to the interface: only packets that arrived on it. For IPv6 this is what isolates
  interfaces: a raw IPv6 socket bound to the group address gets the group's packets without the kernel
  checking its memberships, so ``IPV6_MULTICAST_ALL`` only matters for unbound sockets (IPv4 checks the
  membership and ``IP_MULTICAST_ALL`` whatever the binding);
* IPv4 receives the IP header (parsed with :func:`~keepalived_py.vrrp.packet.parse_ipv4` for source,
  destination and TTL); IPv6 receives the payload only, the hop limit and destination come from
  ``IPV6_RECVHOPLIMIT`` / ``IPV6_RECVPKTINFO`` ancillary data; ``IPV6_CHECKSUM`` at offset 6 makes the
  kernel verify (and on send compute) the VRRPv3 checksum over the IPv6 pseudo-header, as keepalived does.

Send socket:

* IPv4 with ``IP_HDRINCL``: the IP header is built here as keepalived builds it: TOS 0xc0 (internetwork
  control), TTL 255 (multicast, and unicast unless ``unicast_ttl`` says otherwise), ID 0, no fragment bits,
  the source address given (the kernel fills in the ID and the header checksum);
* IPv6: hop limit 255 for multicast (``IPV6_MULTICAST_HOPS``), traffic class 0xc0; unicast uses the kernel
  default hop limit unless ``unicast_ttl`` is set (keepalived: "For IPv6 the default is to let the kernel
  set the default value"); the source address and interface go in ``IPV6_PKTINFO`` with every packet;
* multicast: ``IP(V6)_MULTICAST_IF`` to the interface and multicast loop off (we never hear ourselves).

Receive-side TTL rules (:func:`ttl_acceptable`): a multicast advert must arrive with TTL/hop limit 255; a
unicast one is not checked, except that with ``check_unicast_src`` the sender must be a configured peer and
its TTL within that peer's ``min_ttl``..``max_ttl`` (default 0..255). A multicast packet seen by a unicast
socket or a unicast packet seen by a multicast socket is discarded, as keepalived does for IPv6.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, NamedTuple

from keepalived_py.vrrp.net.addresses import primary_address
from keepalived_py.vrrp.packet import IPPROTO_VRRP, checksum, parse_ipv4

IPAddress = IPv4Address | IPv6Address

#: RFC 3768 / RFC 9568 multicast groups.
VRRP_GROUP_V4 = IPv4Address("224.0.0.18")
VRRP_GROUP_V6 = IPv6Address("ff02::12")
#: The TTL / hop limit VRRP requires on multicast adverts (and keepalived's IPv4 unicast default).
VRRP_TTL = 255
#: ``IPTOS_PREC_INTERNETCONTROL``: keepalived's IPv4 TOS and IPv6 traffic class.
VRRP_TOS = 0xC0

# Linux constants CPython does not export.
IP_PKTINFO = 8
SO_TIMESTAMPNS = 35  # SCM_TIMESTAMPNS has the same value
IP_MULTICAST_ALL = 49
IPV6_MULTICAST_ALL = 29
SO_ATTACH_FILTER = 26
#: Offset of the checksum in a VRRP message, for ``IPV6_CHECKSUM``.
VRRP_CHECKSUM_OFFSET = 6

_RECV_BUFSIZE = 65535
_ANC_BUFSIZE = 256
_BPF_RET_K = 0x06


@dataclass(frozen=True, slots=True)
class Received:
    """One received advert: the VRRP message and what the IP layer said about it."""

    payload: bytes  # the VRRP message (the IPv4 header already removed)
    src: IPAddress
    dst: IPAddress
    #: IPv4 TTL or IPv6 hop limit; None when the kernel did not say (keepalived's -1: not checked).
    ttl: int | None
    ifindex: int
    #: the kernel's receive time (CLOCK_REALTIME seconds), when it gave one
    timestamp: float | None = None

    @property
    def multicast(self) -> bool:
        """Whether it was sent to a multicast group."""
        return self.dst.is_multicast


def ttl_acceptable(ttl: int | None, *, unicast: bool, peer_range: tuple[int, int] | None = None) -> bool:
    """keepalived's receive-side TTL / hop-limit rule (``vrrp_check_packet``).

    Multicast: must be 255 (RFC 9568 section 7.1). Unicast: not checked, except with
    ``check_unicast_src``, where ``peer_range`` is the matched peer's ``(min_ttl, max_ttl)``. An unknown TTL
    (None) always passes, as keepalived skips the check when it has no value.
    """
    if ttl is None:
        return True
    if not unicast:
        return ttl == VRRP_TTL
    if peer_range is not None:
        low, high = peer_range
        return low <= ttl <= high
    return True


def ipv4_header(
    src: IPv4Address, dst: IPv4Address, payload_len: int, *, ttl: int = VRRP_TTL, tos: int = VRRP_TOS
) -> bytes:
    """The 20-byte IPv4 header keepalived's ``vrrp_build_ip4`` writes (ID 0, no fragmentation, protocol 112).

    The header checksum is filled in here too, although the kernel recomputes it for ``IP_HDRINCL``.
    """
    if not 0 <= ttl <= 255:
        raise ValueError(f"TTL {ttl} out of range 0..255")
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, tos, 20 + payload_len, 0, 0, ttl, IPPROTO_VRRP, 0, src.packed, dst.packed
    )
    return header[:10] + checksum(header).to_bytes(2, "big") + header[12:]


def _family(family: int) -> int:
    if family in (4, socket.AF_INET):
        return socket.AF_INET
    if family in (6, socket.AF_INET6):
        return socket.AF_INET6
    raise ValueError(f"address family {family}: 4, 6, AF_INET or AF_INET6")


def _version(family: int) -> int:
    return 4 if family == socket.AF_INET else 6


def _attach_drop_all(sock: socket.socket) -> None:
    """keepalived's ``if_setsockopt_no_receive``: a one-instruction BPF program returning 0 (drop)."""
    program = ctypes.create_string_buffer(struct.pack("HBBI", _BPF_RET_K, 0, 0, 0))
    fprog = struct.pack("HP", 1, ctypes.addressof(program))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _multicast_all_off(sock: socket.socket, family: int) -> None:
    try:
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
    except OSError as exc:  # IPV6_MULTICAST_ALL needs Linux 4.20; keepalived skips it when missing
        if family == socket.AF_INET or exc.errno != errno.ENOPROTOOPT:
            raise


def _bind_to_device(sock: socket.socket, ifname: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode() + b"\0")


def _raw_socket(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, IPPROTO_VRRP)
    # The kernel's arrival time of each packet: protocol timers start when the advert arrived, not when
    # the event loop got round to it.
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def _sockaddr(address: IPAddress, ifindex: int) -> tuple[str, int] | tuple[str, int, int, int]:
    if address.version == 4:
        return (str(address), 0)
    scope = ifindex if (address.is_link_local or _link_scope_multicast(address)) else 0
    return (str(address), 0, 0, scope)


def _link_scope_multicast(address: IPAddress) -> bool:
    return address.version == 6 and address.is_multicast and address.packed[1] & 0x0F == 2


def _strip_scope(text: str) -> str:
    return text.split("%", 1)[0]


class Prepared(NamedTuple):
    """A datagram ready to send: an IPv4 datagram with its header, or an IPv6 payload with its ancillary
    data (the source address), and the socket address to send it to."""

    data: bytes
    ancillary: list[tuple[int, int, bytes]] | None
    address: tuple[Any, ...]


class VrrpSocket:
    """The receive/send socket pair for VRRP on one interface, family and mode (multicast or unicast).

    Create it with :meth:`multicast` or :meth:`unicast` in the network namespace it should work in (the
    sockets stay there). Both sockets are non-blocking: register :meth:`fileno` with the event loop and
    call :meth:`recv` until it returns None.
    """

    def __init__(
        self,
        *,
        family: int,
        ifname: str | None,
        ifindex: int,
        group: IPAddress | None,
        src: IPAddress,
        ttl: int | None,
        recv_sock: socket.socket,
        send_sock: socket.socket,
    ) -> None:
        self.family = family
        self.ifname = ifname
        self.ifindex = ifindex
        #: The multicast group (None for a unicast socket).
        self.group = group
        #: The default source address of sent adverts.
        self.src = src
        #: TTL / hop limit put on sent adverts; None means the kernel default (IPv6 unicast).
        self.ttl = ttl
        self.recv_socket = recv_sock
        self.send_socket = send_sock
        #: Packets dropped by :meth:`recv` for arriving in the wrong mode (multicast vs unicast) or truncated.
        self.discarded = 0

    # --- construction ---------------------------------------------------------------------------------------

    @classmethod
    def multicast(
        cls, ifname: str, family: int, group: IPAddress | None = None, *, src: IPAddress | None = None
    ) -> VrrpSocket:
        """Sockets for multicast adverts on ``ifname``: joined to ``group`` (224.0.0.18 / ff02::12).

        ``src`` is the default source address of sent adverts; by default the interface's primary IPv4
        address or first IPv6 link-local address (as keepalived), and ``EADDRNOTAVAIL`` when it has none.
        """
        fam = _family(family)
        group = group if group is not None else (VRRP_GROUP_V4 if fam == socket.AF_INET else VRRP_GROUP_V6)
        if group.version != _version(fam) or not group.is_multicast:
            raise ValueError(f"{group} is not an IPv{_version(fam)} multicast group")
        ifindex = socket.if_nametoindex(ifname)
        if src is None:
            src = primary_address(ifname, fam)
            if src is None:
                raise OSError(errno.EADDRNOTAVAIL, f"{ifname} has no IPv{_version(fam)} address to send from")
        recv_sock = _raw_socket(fam)
        try:
            _multicast_all_off(recv_sock, fam)
            if fam == socket.AF_INET:
                mreqn = group.packed + bytes(4) + struct.pack("@i", ifindex)
                recv_sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
                recv_sock.bind((str(group), 0))
                recv_sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            else:
                mreq = group.packed + struct.pack("@I", ifindex)
                recv_sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
                recv_sock.bind(_sockaddr(group, ifindex))
                _ipv6_receive_options(recv_sock)
            _bind_to_device(recv_sock, ifname)
            send_sock = _send_socket(fam, ifname, ifindex, multicast=True, ttl=VRRP_TTL)
        except BaseException:
            recv_sock.close()
            raise
        return cls(
            family=fam,
            ifname=ifname,
            ifindex=ifindex,
            group=group,
            src=src,
            ttl=VRRP_TTL,
            recv_sock=recv_sock,
            send_sock=send_sock,
        )

    @classmethod
    def unicast(
        cls, ifname: str | None, family: int, src: IPAddress, *, ttl: int | None = None
    ) -> VrrpSocket:
        """Sockets for unicast adverts from ``src`` (keepalived's ``unicast_src_ip``) on ``ifname``.

        The receive socket is bound to ``src``, which must be configured (``EADDRNOTAVAIL`` otherwise).
        ``ttl`` is keepalived's ``unicast_ttl``: the default is 255 for IPv4 and the kernel's default hop
        limit for IPv6.
        """
        fam = _family(family)
        if src.version != _version(fam):
            raise ValueError(f"source {src} is not an IPv{_version(fam)} address")
        if ttl is not None and not 0 <= ttl <= 255:
            raise ValueError(f"TTL {ttl} out of range 0..255")
        if ttl is None and fam == socket.AF_INET:
            ttl = VRRP_TTL
        ifindex = socket.if_nametoindex(ifname) if ifname else 0
        recv_sock = _raw_socket(fam)
        try:
            _multicast_all_off(recv_sock, fam)
            if fam == socket.AF_INET:
                recv_sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            else:
                _ipv6_receive_options(recv_sock)
            recv_sock.bind(_sockaddr(src, ifindex))
            if ifname:
                _bind_to_device(recv_sock, ifname)
            send_sock = _send_socket(fam, ifname, ifindex, multicast=False, ttl=ttl)
        except BaseException:
            recv_sock.close()
            raise
        return cls(
            family=fam,
            ifname=ifname,
            ifindex=ifindex,
            group=None,
            src=src,
            ttl=ttl,
            recv_sock=recv_sock,
            send_sock=send_sock,
        )

    # --- I/O ------------------------------------------------------------------------------------------------

    @property
    def is_unicast(self) -> bool:
        """Whether this is a unicast (``unicast_peer``) socket pair."""
        return self.group is None

    def fileno(self) -> int:
        """The receive socket's descriptor, for the event loop."""
        return self.recv_socket.fileno()

    def send(self, payload: bytes, dst: IPAddress | None = None, *, src: IPAddress | None = None) -> None:
        """Send the VRRP message ``payload`` to ``dst`` (default: the group) from ``src`` (or :attr:`src`).

        Non-blocking: raises :class:`BlockingIOError` when the send buffer is full (the advert is then
        lost, as keepalived's would be) and :class:`OSError` for other errors (``ENETUNREACH``, ``ENETDOWN``
        while the link is down).
        """
        self.send_prepared(self.prepare(payload, dst, src=src))

    def prepare(
        self, payload: bytes, dst: IPAddress | None = None, *, src: IPAddress | None = None
    ) -> Prepared:
        """What :meth:`send` sends, built once: :meth:`send_prepared` sends it again and again (a master's
        adverts do not change between priority or address changes)."""
        if dst is None:
            if self.group is None:
                raise ValueError("a unicast socket needs a destination (a unicast peer)")
            dst = self.group
        source = src if src is not None else self.src
        if source.version != dst.version or dst.version != _version(self.family):
            raise ValueError(f"cannot send from {source} to {dst} on an IPv{_version(self.family)} socket")
        if self.family == socket.AF_INET:
            assert isinstance(source, IPv4Address) and isinstance(dst, IPv4Address)
            header = ipv4_header(
                source, dst, len(payload), ttl=self.ttl if self.ttl is not None else VRRP_TTL
            )
            return Prepared(header + payload, None, (str(dst), 0))
        pktinfo = source.packed + struct.pack("@I", self.ifindex)
        ancillary = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)]
        return Prepared(payload, ancillary, _sockaddr(dst, self.ifindex))

    def send_prepared(self, prepared: Prepared) -> None:
        """Send what :meth:`prepare` built (same errors as :meth:`send`)."""
        if prepared.ancillary is None:
            self.send_socket.sendto(prepared.data, prepared.address)
        else:
            self.send_socket.sendmsg([prepared.data], prepared.ancillary, 0, prepared.address)

    def recv(self) -> Received | None:
        """The next advert, or None when nothing is pending.

        Raises :class:`~keepalived_py.vrrp.packet.PacketError` (reason ``IP_HEADER``) for an IPv4 datagram
        whose header is malformed; the datagram is consumed, so calling again continues with the next one.
        """
        while True:
            try:
                data, ancdata, flags, address = self.recv_socket.recvmsg(_RECV_BUFSIZE, _ANC_BUFSIZE)
            except (BlockingIOError, InterruptedError):
                return None
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                self.discarded += 1
                continue
            received = self._received(data, ancdata, address)
            if received.multicast == self.is_unicast:
                self.discarded += 1  # unicast on a multicast socket or the reverse: keepalived drops it
                continue
            return received

    def _received(
        self, data: bytes, ancdata: list[tuple[int, int, bytes]], address: tuple[Any, ...]
    ) -> Received:
        ifindex = self.ifindex
        stamp = None
        for level, kind, value in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack_from("@qq", value)
                stamp = sec + nsec / 1e9
        if self.family == socket.AF_INET:
            datagram = parse_ipv4(data)
            for level, kind, value in ancdata:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
                    ifindex = struct.unpack_from("@i", value)[0]
            return Received(datagram.payload, datagram.src, datagram.dst, datagram.ttl, ifindex, stamp)
        ttl: int | None = None
        dst: IPAddress | None = None
        for level, kind, value in ancdata:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                ttl = struct.unpack_from("@i", value)[0]
            elif kind == socket.IPV6_PKTINFO and len(value) >= 20:
                dst = IPv6Address(value[:16])
                ifindex = struct.unpack_from("@I", value, 16)[0]
        if dst is None:  # no pktinfo (cannot happen with IPV6_RECVPKTINFO set): assume the bound address
            dst = self.group if self.group is not None else self.src
        return Received(bytes(data), ip_address(_strip_scope(address[0])), dst, ttl, ifindex, stamp)

    def close(self) -> None:
        """Close both sockets."""
        self.recv_socket.close()
        self.send_socket.close()

    def __enter__(self) -> VrrpSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "unicast" if self.is_unicast else f"multicast {self.group}"
        family = _version(self.family)
        return f"<VrrpSocket IPv{family} {mode} dev {self.ifname} src {self.src} fd {self.fileno()}>"


def _ipv6_receive_options(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, VRRP_CHECKSUM_OFFSET)


def _send_socket(
    family: int, ifname: str | None, ifindex: int, *, multicast: bool, ttl: int | None
) -> socket.socket:
    """keepalived's ``open_vrrp_send_socket``."""
    sock = _raw_socket(family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)
        _multicast_all_off(sock, family)
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, VRRP_CHECKSUM_OFFSET)
            if multicast:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            elif ttl is not None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        if ifname:
            _bind_to_device(sock, ifname)
            if multicast:
                if family == socket.AF_INET:
                    mreqn = bytes(8) + struct.pack("@i", ifindex)
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
                else:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, VRRP_TOS)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, VRRP_TOS)
        _attach_drop_all(sock)
    except BaseException:
        sock.close()
        raise
    return sock
