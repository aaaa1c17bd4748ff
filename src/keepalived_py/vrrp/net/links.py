"""Interfaces from rtnetlink: a small synchronous request client and a non-blocking link-state monitor.

keepalived behaviour mirrored (``keepalived_netlink.c``, ``vrrp_if.h``):

* An interface is up when both ``IFF_UP`` (administratively up) and ``IFF_RUNNING`` (operationally up:
  carrier present) are set -- keepalived's ``FLAGS_UP()``. A cable pull (carrier loss) is therefore a link
  down even though ``IFF_UP`` stays set.
* ``RTM_DELLINK`` is handled as flags 0, i.e. down.
* Only transitions matter: keepalived acts when ``FLAGS_UP`` of the new flags differs from the old ones,
  so :meth:`LinkMonitor.poll` reports changes of the up/down state, not every ``RTM_NEWLINK``.

Why not pyroute2's ``IPRoute`` directly: in pyroute2 0.9 the synchronous ``IPRoute`` drives a private
asyncio event loop with ``run_until_complete`` and raises ``RuntimeError: This event loop is already
running`` when used from inside a running asyncio loop (a daemon callback), and its socket is read by that
private loop's transport, so its ``fileno()`` cannot be handed to another loop. :class:`RtNetlink` and
:class:`LinkMonitor` therefore own plain ``AF_NETLINK`` sockets and use pyroute2 only for its message
classes (encoding) and ``MarshalRtnl`` (decoding). They work the same from an asyncio callback, a selectors
loop or a thread.

Namespaces: a netlink socket belongs to the network namespace of the thread that created it, so create
these objects inside the namespace they should manage (see ``tests/lab.py``'s ``Lab.enter``); after that
they keep working from anywhere.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import socket
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Self

from pyroute2.netlink import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
)
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

#: ``<linux/if.h>`` interface flags used here.
IFF_UP = 0x1
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
#: ``<linux/if_arp.h>``: Ethernet hardware type.
ARPHRD_ETHER = 1
#: rtnetlink multicast group of link changes (``RTMGRP_LINK``).
RTMGRP_LINK = 0x1

_RECV_SIZE = 1 << 18
_REQUEST_TIMEOUT = 5.0

NetlinkMessage = Any  # a pyroute2 nlmsg (untyped library)


def flags_up(flags: int) -> bool:
    """keepalived's ``FLAGS_UP``: administratively up *and* running (carrier present)."""
    return flags & (IFF_UP | IFF_RUNNING) == (IFF_UP | IFF_RUNNING)


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What the VRRP shell needs to know about one interface."""

    ifname: str
    ifindex: int
    flags: int
    #: Hardware (MAC) address; empty for interfaces without one (keepalived then sends no GARP/NA).
    mac: bytes
    #: ``ARPHRD_*`` hardware type (1 for Ethernet).
    hw_type: int
    #: Link-layer broadcast address (``ff:ff:ff:ff:ff:ff`` on Ethernet).
    broadcast: bytes
    #: ``net.ipv6.conf.<if>.forwarding``: keepalived sets the NA router flag from it.
    ipv6_forwarding: bool = False

    @property
    def up(self) -> bool:
        """Up as keepalived means it: ``IFF_UP`` and ``IFF_RUNNING``."""
        return flags_up(self.flags)


@dataclass(frozen=True, slots=True)
class AddressInfo:
    """One address from an ``RTM_GETADDR`` dump, in the kernel's order."""

    ifindex: int
    family: int
    address: str  # IFA_LOCAL (IFA_ADDRESS when there is no local attribute)
    prefixlen: int
    flags: int  # IFA_FLAGS (32-bit) or ifa_flags
    scope: int
    label: str | None
    peer: str | None  # IFA_ADDRESS when it differs from IFA_LOCAL (point-to-point peer)
    broadcast: str | None


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """An interface changed between up and down (keepalived's ``FLAGS_UP`` definition)."""

    ifname: str
    ifindex: int
    up: bool
    #: The interface was deleted (``RTM_DELLINK``); ``up`` is then False.
    deleted: bool = False


def _mac_bytes(text: str | None) -> bytes:
    if not text:
        return b""
    return bytes(int(part, 16) for part in text.split(":"))


def link_info(msg: NetlinkMessage) -> LinkInfo:
    """Build a :class:`LinkInfo` from a decoded ``ifinfmsg``."""
    mac = _mac_bytes(msg.get_attr("IFLA_ADDRESS"))
    if not any(mac):
        mac = b""  # keepalived treats an all-zero hardware address as none
    return LinkInfo(
        ifname=msg.get_attr("IFLA_IFNAME") or "",
        ifindex=int(msg["index"]),
        flags=int(msg["flags"]),
        mac=mac,
        hw_type=int(msg["ifi_type"]),
        broadcast=_mac_bytes(msg.get_attr("IFLA_BROADCAST")),
        ipv6_forwarding=_ipv6_forwarding(msg),
    )


def _ipv6_forwarding(msg: NetlinkMessage) -> bool:
    """``forwarding`` from the link's IPv6 devconf (``IFLA_AF_SPEC``/``AF_INET6``/``IFLA_INET6_CONF``)."""
    spec = msg.get_attr("IFLA_AF_SPEC")
    inet6 = spec.get_attr("AF_INET6") if spec is not None else None
    conf = inet6.get_attr("IFLA_INET6_CONF") if inet6 is not None else None
    return bool(conf.get("forwarding")) if isinstance(conf, dict) else False


def address_info(msg: NetlinkMessage) -> AddressInfo:
    """Build an :class:`AddressInfo` from a decoded ``ifaddrmsg``."""
    local = msg.get_attr("IFA_LOCAL")
    address = msg.get_attr("IFA_ADDRESS")
    flags = msg.get_attr("IFA_FLAGS")
    return AddressInfo(
        ifindex=int(msg["index"]),
        family=int(msg["family"]),
        address=local or address,
        prefixlen=int(msg["prefixlen"]),
        flags=int(flags if flags is not None else msg["flags"]),
        scope=int(msg["scope"]),
        label=msg.get_attr("IFA_LABEL"),
        peer=address if local and address and address != local else None,
        broadcast=msg.get_attr("IFA_BROADCAST"),
    )


class NetlinkError(OSError):
    """The kernel refused a request; ``errno`` is the positive error code."""


# Interface ioctls (struct ifreq: a 16-byte name, then a 16-byte union), answered in the namespace of the
# socket they are made on, like rtnetlink requests.
SIOCGIFFLAGS = 0x8913
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933
ARPHRD_ETHER = 1


def _ifreq(sock: socket.socket, request: int, ifname: str) -> bytes:
    try:
        name = ifname.encode()
    except UnicodeEncodeError:
        name = b""
    # a NUL would end the name early in the kernel and name another interface
    if not name or len(name) >= 16 or b"\0" in name:
        raise OSError(errno.EINVAL, f"interface name {ifname!r} does not fit an ifreq")
    return fcntl.ioctl(sock.fileno(), request, struct.pack("16s16x", name))


def ifreq_index(sock: socket.socket, ifname: str) -> int:
    """``SIOCGIFINDEX``: the interface index."""
    return int(struct.unpack_from("i", _ifreq(sock, SIOCGIFINDEX, ifname), 16)[0])


def ifreq_hwaddr(sock: socket.socket, ifname: str) -> tuple[int, bytes]:
    """``SIOCGIFHWADDR``: the ``ARPHRD_*`` type and the first six bytes of the hardware address."""
    answer = _ifreq(sock, SIOCGIFHWADDR, ifname)
    return int(struct.unpack_from("H", answer, 16)[0]), answer[18:24]


def ifreq_flags(sock: socket.socket, ifname: str) -> int:
    """``SIOCGIFFLAGS``: the interface flags (the low 16 bits: ``IFF_UP``, ``IFF_NOARP``, ...)."""
    return int(struct.unpack_from("H", _ifreq(sock, SIOCGIFFLAGS, ifname), 16)[0])


class RtNetlink:
    """A blocking rtnetlink request socket in the creating thread's network namespace.

    Requests are answered within microseconds, so blocking is harmless even on an event loop thread; a
    timeout guards against a kernel that never answers.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )
        self._sock.bind((0, 0))
        self._sock.settimeout(_REQUEST_TIMEOUT)
        self._marshal = MarshalRtnl()
        self._seq = itertools.count(1)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def __enter__(self) -> RtNetlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, msg: NetlinkMessage, msg_type: int, flags: int = 0) -> list[NetlinkMessage]:
        """Send ``msg`` as ``msg_type`` with ``NLM_F_REQUEST | NLM_F_ACK | flags``; return the replies.

        Raises :class:`NetlinkError` with the kernel's errno when the request fails.
        """
        seq = next(self._seq)
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        msg["header"]["sequence_number"] = seq
        msg.encode()
        return self._acknowledged(msg.data, seq, msg_type)

    def request_bytes(self, body: bytes, msg_type: int, flags: int = 0) -> list[NetlinkMessage]:
        """:meth:`request` of a message encoded already: ``body`` is what follows the netlink header."""
        seq = next(self._seq)
        header = struct.pack("=IHHII", 16 + len(body), msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0)
        return self._acknowledged(header + body, seq, msg_type)

    def _acknowledged(self, data: bytes, seq: int, msg_type: int) -> list[NetlinkMessage]:
        self._sock.send(data)
        replies: list[NetlinkMessage] = []
        for reply in self._replies(seq):
            if reply["header"]["type"] == NLMSG_ERROR:
                code = -int(reply["error"])
                if code:
                    raise NetlinkError(code, f"{errno.errorcode.get(code, code)}: {msg_type=} refused")
                return replies
            replies.append(reply)
        return replies  # pragma: no cover - _replies only ends with an error or done message

    def dump(self, msg: NetlinkMessage, msg_type: int) -> list[NetlinkMessage]:
        """Send ``msg`` as a ``NLM_F_DUMP`` request of ``msg_type``; return every reply message."""
        seq = next(self._seq)
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
        msg["header"]["sequence_number"] = seq
        msg.encode()
        self._sock.send(msg.data)
        replies: list[NetlinkMessage] = []
        for reply in self._replies(seq):
            kind = reply["header"]["type"]
            if kind == NLMSG_DONE:
                return replies
            if kind == NLMSG_ERROR:
                code = -int(reply["error"])
                raise NetlinkError(code, f"{errno.errorcode.get(code, code)}: dump {msg_type=} refused")
            replies.append(reply)
        return replies  # pragma: no cover

    def _replies(self, seq: int) -> Iterator[NetlinkMessage]:
        while True:
            data = self._sock.recv(_RECV_SIZE)
            for reply in self._marshal.parse(data):
                if reply["header"]["sequence_number"] != seq:
                    continue  # a late answer to an earlier, abandoned request
                yield reply
                if reply["header"]["type"] in (NLMSG_DONE, NLMSG_ERROR):
                    return

    # --- queries --------------------------------------------------------------------------------------------

    def links(self) -> list[LinkInfo]:
        """Every interface of the namespace."""
        return [
            link_info(m) for m in self.dump(ifinfmsg(), RTM_GETLINK) if m["header"]["type"] == RTM_NEWLINK
        ]

    def link(self, ifname: str) -> LinkInfo | None:
        """The interface called ``ifname``, or None when there is none."""
        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_IFNAME", ifname)]
        try:
            replies = self.request(msg, RTM_GETLINK)
        except NetlinkError as exc:
            if exc.errno in (errno.ENODEV, errno.EINVAL):
                return None
            raise
        links = [link_info(m) for m in replies if m["header"]["type"] == RTM_NEWLINK]
        return links[0] if links else None

    def ifindex(self, ifname: str) -> int | None:
        """The index of ``ifname`` in this socket's namespace, or None (an ioctl: microseconds)."""
        try:
            return ifreq_index(self._sock, ifname)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
        info = self.link(ifname)  # a name the ioctl cannot take: ask rtnetlink
        return info.ifindex if info else None

    def ethernet_link(self, ifname: str) -> LinkInfo | None:
        """``link(ifname)`` for an Ethernet interface by three ioctls (microseconds, where rtnetlink's answer
        takes a quarter of a millisecond to decode); None when it is not one (ask :meth:`link` then).
        ``ipv6_forwarding`` is not read (False). ``OSError(ENODEV)`` when there is no such interface."""
        try:
            index = ifreq_index(self._sock, ifname)
            hw_type, mac = ifreq_hwaddr(self._sock, ifname)
            flags = ifreq_flags(self._sock, ifname)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise
            return None
        if hw_type != ARPHRD_ETHER:
            return None
        return LinkInfo(ifname, index, flags, mac if any(mac) else b"", hw_type, b"\xff" * 6)

    def addresses(self, ifindex: int | None = None, family: int = socket.AF_UNSPEC) -> list[AddressInfo]:
        """The addresses of the namespace (of one interface when ``ifindex`` is given), in kernel order."""
        msg = ifaddrmsg()
        msg["family"] = family
        found = [address_info(m) for m in self.dump(msg, RTM_GETADDR) if m["header"]["type"] == RTM_NEWADDR]
        return [
            a for a in found if (ifindex is None or a.ifindex == ifindex) and a.family != socket.AF_UNSPEC
        ]


class NetlinkClient:
    """An rtnetlink user: its socket (its own, closed with it, or one lent by the caller) and ``resolve``,
    interface name to index (None when absent; by default asked of rtnetlink in the socket's namespace, the
    namespace of the thread that created it)."""

    def __init__(
        self, resolve: Callable[[str], int | None] | None = None, *, netlink: RtNetlink | None = None
    ) -> None:
        self._own_netlink = netlink is None
        self._rtnl = netlink if netlink is not None else RtNetlink()
        self._resolve = resolve if resolve is not None else self._rtnl.ifindex

    def close(self) -> None:
        """Close the netlink socket (if this client created it)."""
        if self._own_netlink:
            self._rtnl.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LinkMonitor:
    """Up/down changes of interfaces, from rtnetlink's ``RTMGRP_LINK`` group, for an event loop.

    Register :meth:`fileno` for reading (``loop.add_reader`` or a selector) and call :meth:`poll` when it
    is readable; :meth:`poll` never blocks. The monitor keeps the last known state of every interface:
    ``state(ifname)`` is answered from it (seeded by a dump when the monitor is created, after subscribing,
    so no change is lost in between). When the kernel reports that events were dropped (``ENOBUFS`` on a
    socket overrun) the monitor re-dumps and reports the differences.
    """

    def __init__(self, *, rcvbuf: int = 1 << 20) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            socket.NETLINK_ROUTE,
        )
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._sock.bind((0, RTMGRP_LINK))
        self._marshal = MarshalRtnl()
        self._rtnl = RtNetlink()
        self._links: dict[int, LinkInfo] = {}
        self._resync(report=False)

    def fileno(self) -> int:
        """The descriptor to watch for readability."""
        return self._sock.fileno()

    def close(self) -> None:
        """Close both netlink sockets."""
        self._sock.close()
        self._rtnl.close()

    def __enter__(self) -> LinkMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def state(self, ifname: str) -> bool | None:
        """Whether ``ifname`` is up (``IFF_UP`` and ``IFF_RUNNING``); None when no such interface exists."""
        for info in self._links.values():
            if info.ifname == ifname:
                return info.up
        return None

    def link(self, ifname: str) -> LinkInfo | None:
        """The last known :class:`LinkInfo` of ``ifname``."""
        return next((i for i in self._links.values() if i.ifname == ifname), None)

    def poll(self) -> list[LinkEvent]:
        """Read every pending notification; return the up/down transitions, oldest first."""
        events: list[LinkEvent] = []
        while True:
            try:
                data = self._sock.recv(_RECV_SIZE)
            except BlockingIOError:
                return events
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # the kernel dropped notifications: start again from a dump
                    events.extend(self._resync(report=True))
                    continue
                raise
            for msg in self._marshal.parse(data):
                events.extend(self._apply(msg))

    def _apply(self, msg: NetlinkMessage) -> Iterable[LinkEvent]:
        kind = msg["header"]["type"]
        if kind not in (RTM_NEWLINK, RTM_DELLINK):
            return ()
        info = link_info(msg)
        old = self._links.get(info.ifindex)
        if kind == RTM_DELLINK:
            self._links.pop(info.ifindex, None)
            if old is not None and old.up:
                return (LinkEvent(info.ifname or old.ifname, info.ifindex, False, deleted=True),)
            return ()
        self._links[info.ifindex] = info
        was_up = old.up if old is not None else False
        if info.up != was_up:
            return (LinkEvent(info.ifname, info.ifindex, info.up),)
        return ()

    def _resync(self, *, report: bool) -> list[LinkEvent]:
        fresh = {info.ifindex: info for info in self._rtnl.links()}
        events: list[LinkEvent] = []
        if report:
            for ifindex, old in self._links.items():
                if ifindex not in fresh and old.up:
                    events.append(LinkEvent(old.ifname, ifindex, False, deleted=True))
            for ifindex, new in fresh.items():
                previous = self._links.get(ifindex)
                if new.up != (previous.up if previous else False):
                    events.append(LinkEvent(new.ifname, ifindex, new.up))
        self._links = fresh
        return events


def link_state(ifname: str) -> bool | None:
    """One-shot query: whether ``ifname`` (in the calling thread's namespace) is up; None if absent."""
    with RtNetlink() as rtnl:
        info = rtnl.link(ifname)
    return info.up if info else None
