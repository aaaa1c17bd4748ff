"""Virtual routes and rules over rtnetlink, as keepalived programs them (``netlink_route()`` in
``vrrp_iproute.c``, ``netlink_rule()`` in ``vrrp_iprule.c``).

* Routes: ``RTM_NEWROUTE`` with ``NLM_F_CREATE`` (``add``: also ``NLM_F_EXCL``; ``append``:
  ``NLM_F_APPEND``), the table in ``rtm_table`` (``RTA_TABLE`` above 255), the protocol keepalived's own (18)
  unless the configuration names one, the scope universe unless it names one, tos, ``RTA_DST``, ``RTA_SRC``
  (``from``), ``RTA_PREFSRC`` (``src``), ``RTA_GATEWAY`` (``via``), ``RTA_ENCAP``/``RTA_ENCAP_TYPE``,
  ``RTA_OIF`` (``dev``), ``RTA_PRIORITY`` (``metric``), ``RTA_FLOW`` (realms), ``RTA_EXPIRES``, ``RTA_PREF``,
  ``RTA_TTL_PROPAGATE``, ``RTA_METRICS`` (mtu, rtt, congctl, ... with their ``RTAX_LOCK``), ``RTA_MULTIPATH``
  (nexthops), ``RTNH_F_ONLINK`` (``onlink``). The message is packed here (pyroute2's classes lack several of
  these). Deletion (``RTM_DELROUTE``) matches the same keys with scope nowhere, as keepalived's.
* Rules: ``RTM_NEWRULE`` with ``NLM_F_CREATE | NLM_F_EXCL``, the action, table (``FRA_TABLE`` above 255),
  tos, ``FRA_SRC``/``FRA_DST`` with their lengths, ``FRA_PRIORITY``, ``FRA_FWMARK``/``FRA_FWMASK``,
  ``FRA_FLOW`` (realms), ``FRA_SUPPRESS_PREFIXLEN``/``FRA_SUPPRESS_IFGROUP``,
  ``FRA_IIFNAME``/``FRA_OIFNAME``, ``FRA_TUN_ID``, ``FRA_UID_RANGE``, ``FRA_L3MDEV``, ``FRA_PROTOCOL`` (18
  for tracked rules), ``FRA_IP_PROTO``, ``FRA_SPORT_RANGE``/``FRA_DPORT_RANGE``, ``FRA_GOTO``,
  ``FIB_RULE_INVERT`` (``not``).
* Adding what is there already and deleting what is not are not errors (both are idempotent).

Pure message building apart from the one socket, so a restarted child simply adds again what it needs.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_DELRULE, RTM_NEWROUTE, RTM_NEWRULE
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from keepalived_py.config.model import Encap, Route, Rule
from keepalived_py.vrrp.net.links import NetlinkClient, NetlinkError

__all__ = [
    "Deleted", "RouteManager", "RouteMonitor", "matches", "route_flags", "route_message", "rule_message",
]

logger = logging.getLogger(__name__)
RTPROT_KEEPALIVED = 18

RT_SCOPE_UNIVERSE = 0
RTA_DST, RTA_SRC, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_METRICS = 1, 2, 4, 5, 6, 7, 8
RTA_MULTIPATH, RTA_FLOW, RTA_TABLE, RTA_PREF, RTA_ENCAP_TYPE, RTA_ENCAP = 9, 11, 15, 20, 21, 22
RTA_EXPIRES, RTA_TTL_PROPAGATE = 23, 26
RTAX_LOCK = 1
NLM_F_APPEND = 0x800
#: lightweight tunnels: LWTUNNEL_ENCAP_*, and the attributes inside RTA_ENCAP
_ENCAP_TYPES = {"mpls": 1, "ip": 2, "ila": 3, "ip6": 4}
LWTUNNEL_IP_ID, LWTUNNEL_IP_DST, LWTUNNEL_IP_SRC, LWTUNNEL_IP_TTL, LWTUNNEL_IP_TOS = 1, 2, 3, 4, 5
LWTUNNEL_IP_FLAGS = 6
MPLS_IPTUNNEL_DST = 1
MPLS_LS_LABEL_SHIFT, MPLS_LS_S_SHIFT = 12, 8
ILA_ATTR_LOCATOR = 1
RT_SCOPE_NOWHERE = 255
RTNH_F_ONLINK = 4
FIB_RULE_INVERT = 2
_ROUTE_TYPES = {"unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5, "blackhole": 6,
                "unreachable": 7, "prohibit": 8, "throw": 9, "nat": 10}
_RULE_ACTIONS = {"table": 1, "goto": 2, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8}
_ABSENT = frozenset({errno.ESRCH, errno.ENOENT, errno.ENODEV, errno.EADDRNOTAVAIL})


def _family(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def _attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _u8(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=B", value))


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _encap(encap: Encap) -> bytes:
    """RTA_ENCAP (nested, as keepalived's ``add_encap``) and RTA_ENCAP_TYPE."""
    nested = b""
    if encap.type == "mpls":
        stack = [label << MPLS_LS_LABEL_SHIFT for label in encap.labels]
        stack[-1] |= 1 << MPLS_LS_S_SHIFT  # bottom of the stack
        nested = _attr(MPLS_IPTUNNEL_DST, b"".join(struct.pack(">I", entry) for entry in stack))
    elif encap.type == "ila":
        nested = _attr(ILA_ATTR_LOCATOR, struct.pack(">Q", encap.locator or 0))
    else:  # ip, ip6: the same attribute numbers (LWTUNNEL_IP_* / LWTUNNEL_IP6_*)
        if encap.id is not None:
            nested += _attr(LWTUNNEL_IP_ID, struct.pack(">Q", encap.id))
        if encap.dst is not None:
            nested += _attr(LWTUNNEL_IP_DST, encap.dst.packed)
        if encap.src is not None:
            nested += _attr(LWTUNNEL_IP_SRC, encap.src.packed)
        if encap.ttl is not None:
            nested += _u8(LWTUNNEL_IP_TTL, encap.ttl)
        if encap.tos is not None:
            nested += _u8(LWTUNNEL_IP_TOS, encap.tos)
        if encap.flags is not None:
            nested += _attr(LWTUNNEL_IP_FLAGS, struct.pack("=H", encap.flags))
    return _attr(RTA_ENCAP, nested) + _attr(RTA_ENCAP_TYPE, struct.pack("=H", _ENCAP_TYPES[encap.type]))


def _multipath(route: Route, resolve: Callable[[str], int | None]) -> bytes:
    """RTA_MULTIPATH: one ``rtnexthop`` per nexthop, each followed by its attributes."""
    out = b""
    for hop in route.nexthops:
        attrs = b""
        if hop.via is not None:
            attrs += _attr(RTA_GATEWAY, hop.via.packed)
        if hop.realms:
            attrs += _u32(RTA_FLOW, hop.realms)
        if hop.encap is not None:
            attrs += _encap(hop.encap)
        ifindex = (resolve(hop.dev) or 0) if hop.dev else 0
        hops = hop.weight - 1 if hop.weight is not None else 0
        flags = RTNH_F_ONLINK if hop.onlink else 0
        out += struct.pack("=HBBi", 8 + len(attrs), flags, hops, ifindex) + attrs
    return _attr(RTA_MULTIPATH, out)


def route_message(route: Route, resolve: Callable[[str], int | None], *, delete: bool = False) -> bytes:
    """The ``rtmsg`` and attributes of ``route`` (what follows the netlink header), as keepalived's
    ``netlink_route`` puts them; ``resolve`` gives an interface's index."""
    table = route.table if route.table < 256 else 0
    default_scope = RT_SCOPE_NOWHERE if delete else RT_SCOPE_UNIVERSE
    scope = route.scope if route.scope is not None else default_scope
    src_len = route.from_prefix.prefixlen if route.from_prefix is not None else 0
    header = struct.pack(
        "=BBBBBBBBI", _family(route.family), route.dst.prefixlen, src_len, route.tos or 0, table,
        route.protocol, scope, _ROUTE_TYPES[route.type], RTNH_F_ONLINK if route.onlink else 0,
    )
    attrs = b""
    if route.table >= 256:
        attrs += _u32(RTA_TABLE, route.table)
    if route.dst.prefixlen:
        attrs += _attr(RTA_DST, route.dst.network_address.packed)
    if route.from_prefix is not None:
        attrs += _attr(RTA_SRC, route.from_prefix.network_address.packed)
    if route.src is not None:
        attrs += _attr(RTA_PREFSRC, route.src.packed)
    if route.via is not None:
        attrs += _attr(RTA_GATEWAY, route.via.packed)
    if route.encap is not None:
        attrs += _encap(route.encap)
    if route.dev is not None:
        attrs += _u32(RTA_OIF, resolve(route.dev) or 0)
    if route.metric is not None:
        attrs += _u32(RTA_PRIORITY, route.metric)
    if route.realms:
        attrs += _u32(RTA_FLOW, route.realms)
    if route.expires is not None:
        attrs += _u32(RTA_EXPIRES, route.expires)
    if route.pref is not None:
        attrs += _u8(RTA_PREF, route.pref)
    if route.ttl_propagate is not None:
        attrs += _u8(RTA_TTL_PROPAGATE, route.ttl_propagate)
    if route.metrics:
        metrics = b"".join(
            _attr(rtax, value.encode()) if isinstance(value, str) else _u32(rtax, value)
            for rtax, value in route.metrics
        )
        if route.lock:
            metrics += _u32(RTAX_LOCK, route.lock)
        attrs += _attr(RTA_METRICS, metrics)
    if route.nexthops:
        attrs += _multipath(route, resolve)
    return header + attrs


def route_flags(route: Route) -> int:
    """The netlink flags adding ``route`` takes: ``prepend`` (keepalived's default) creates, ``add`` also
    refuses an existing route, ``append`` adds another route of the same destination after it."""
    return int(NLM_F_CREATE) | {"prepend": 0, "add": int(NLM_F_EXCL), "append": NLM_F_APPEND}[route.mode]


def _prefix(net: IPv4Network | IPv6Network | None) -> tuple[int, str | None]:
    if net is None or net.prefixlen == 0:
        return 0, None
    return net.prefixlen, str(net.network_address)


def rule_message(rule: Rule) -> fibmsg:
    msg = fibmsg()
    msg["family"] = _family(rule.family)
    src_len, src = _prefix(rule.src)
    dst_len, dst = _prefix(rule.dst)
    msg["src_len"], msg["dst_len"] = src_len, dst_len
    msg["action"] = _RULE_ACTIONS[rule.action]
    msg["flags"] = FIB_RULE_INVERT if rule.invert else 0
    msg["tos"] = rule.tos
    attrs: list[list[object]] = [["FRA_PRIORITY", rule.priority]]
    if rule.action == "table" and not rule.l3mdev:
        table = rule.table or 254
        if table < 256:
            msg["table"] = table
        else:
            msg["table"] = 0
            attrs.append(["FRA_TABLE", table])
    if src is not None:
        attrs.append(["FRA_SRC", src])
    if dst is not None:
        attrs.append(["FRA_DST", dst])
    if rule.fwmark is not None:
        attrs.append(["FRA_FWMARK", rule.fwmark])
    if rule.fwmask is not None:
        attrs.append(["FRA_FWMASK", rule.fwmask])
    if rule.realms:
        attrs.append(["FRA_FLOW", rule.realms])
    if rule.suppress_prefixlength is not None:
        attrs.append(["FRA_SUPPRESS_PREFIXLEN", rule.suppress_prefixlength])
    if rule.suppress_ifgroup is not None:
        attrs.append(["FRA_SUPPRESS_IFGROUP", rule.suppress_ifgroup])
    if rule.iif is not None:
        attrs.append(["FRA_IIFNAME", rule.iif])
    if rule.oif is not None:
        attrs.append(["FRA_OIFNAME", rule.oif])
    if rule.tunnel_id:
        attrs.append(["FRA_TUN_ID", rule.tunnel_id])
    if rule.uidrange is not None:
        attrs.append(["FRA_UID_RANGE", f"{rule.uidrange[0]}:{rule.uidrange[1]}"])
    if rule.l3mdev:
        attrs.append(["FRA_L3MDEV", 1])
    if rule.protocol is not None:
        attrs.append(["FRA_PROTOCOL", rule.protocol])
    if rule.ip_proto is not None:
        attrs.append(["FRA_IP_PROTO", rule.ip_proto])
    if rule.sport is not None:
        attrs.append(["FRA_SPORT_RANGE", f"{rule.sport[0]}:{rule.sport[1]}"])
    if rule.dport is not None:
        attrs.append(["FRA_DPORT_RANGE", f"{rule.dport[0]}:{rule.dport[1]}"])
    if rule.goto is not None:
        attrs.append(["FRA_GOTO", rule.goto])
    msg["attrs"] = attrs
    return msg


class RouteManager(NetlinkClient):
    """Adds and removes an instance's routes and rules. Every item is attempted; the failures come back as
    ``(item, error)`` pairs (the kernel refused them) for the caller to report and act on."""

    def add(self, routes: Iterable[Route], rules: Iterable[Rule]) -> list[tuple[Route | Rule, OSError]]:
        failures: list[tuple[Route | Rule, OSError]] = []
        for route in routes:
            missing = self._missing_interface(route)
            if missing is not None:
                failures.append((route, OSError(errno.ENODEV, f"no interface {missing}")))
                continue
            self._do(route, route_message(route, self._resolve), RTM_NEWROUTE, route_flags(route), failures)
        for rule in rules:
            self._do(rule, rule_message(rule), RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, failures)
        return failures

    def remove(self, routes: Iterable[Route], rules: Iterable[Rule]) -> list[tuple[Route | Rule, OSError]]:
        failures: list[tuple[Route | Rule, OSError]] = []
        for rule in rules:
            self._do(rule, rule_message(rule), RTM_DELRULE, 0, failures, delete=True)
        for route in routes:
            if self._missing_interface(route) is not None:
                continue  # the interface is gone, and its routes with it
            msg = route_message(route, self._resolve, delete=True)
            self._do(route, msg, RTM_DELROUTE, 0, failures, delete=True)
        return failures

    def _missing_interface(self, route: Route) -> str | None:
        """The first interface ``route`` names (as its dev or a nexthop's) that does not exist."""
        for dev in (route.dev, *(hop.dev for hop in route.nexthops)):
            if dev is not None and self._resolve(dev) is None:
                return dev
        return None

    def _do(
        self,
        item: Route | Rule,
        msg: bytes | fibmsg,
        kind: int,
        flags: int,
        failures: list[tuple[Route | Rule, OSError]],
        *,
        delete: bool = False,
    ) -> None:
        try:
            if isinstance(msg, bytes):
                self._rtnl.request_bytes(msg, kind, flags)
            else:
                self._rtnl.request(msg, kind, flags)
        except NetlinkError as exc:
            if (exc.errno in _ABSENT) if delete else (exc.errno == errno.EEXIST):
                return
            failures.append((item, exc))


# --- watching for deletions -------------------------------------------------------------------------------

#: rtnetlink multicast groups: IPv4/IPv6 routes and rules
_GROUPS = 0x40 | 0x400 | 0x80 | (1 << 18)


@dataclass(frozen=True)
class Deleted:
    """A route or rule of protocol keepalived (18) was deleted: the keys keepalived matches it on."""

    kind: str  # "route" or "rule"
    family: int
    dst: IPv4Network | IPv6Network | None
    table: int
    priority: int | None = None  # rules


class RouteMonitor:
    """Deletions of keepalived-protocol routes and rules (``RTM_DELROUTE``/``RTM_DELRULE``), for an event
    loop: register :meth:`fileno`, call :meth:`poll` when readable (it never blocks). A socket overrun
    (``ENOBUFS``) loses events, as keepalived's would; it is logged."""

    def __init__(self, *, rcvbuf: int = 1 << 20) -> None:
        kind = socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        self._sock = socket.socket(socket.AF_NETLINK, kind, socket.NETLINK_ROUTE)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._sock.bind((0, _GROUPS))
        self._marshal = MarshalRtnl()

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def poll(self) -> list[Deleted]:
        out: list[Deleted] = []
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    logger.warning("route and rule notifications were lost (socket overrun)")
                    continue
                raise
            for msg in self._marshal.parse(data):
                found = _deleted(msg)
                if found is not None:
                    out.append(found)


def _deleted(msg: Any) -> Deleted | None:
    kind = msg["header"]["type"]
    family = 6 if msg["family"] == socket.AF_INET6 else 4 if msg["family"] == socket.AF_INET else 0
    if not family:
        return None
    if kind == RTM_DELROUTE:
        if msg["proto"] != RTPROT_KEEPALIVED:
            return None
        table = msg.get_attr("RTA_TABLE") or msg["table"]
        dst = msg.get_attr("RTA_DST")
        net = ip_network(f"{dst or ('::' if family == 6 else '0.0.0.0')}/{msg['dst_len']}", strict=False)
        return Deleted("route", family, net, table)
    if kind == RTM_DELRULE:
        protocol = msg.get_attr("FRA_PROTOCOL")
        if protocol is not None and protocol != RTPROT_KEEPALIVED:
            return None
        dst = msg.get_attr("FRA_DST")
        rule_dst = ip_network(f"{dst}/{msg['dst_len']}", strict=False) if dst else None
        table = msg.get_attr("FRA_TABLE") or msg["table"]
        return Deleted("rule", family, rule_dst, table, msg.get_attr("FRA_PRIORITY"))
    return None


def matches(deleted: Deleted, item: Route | Rule) -> bool:
    """Whether ``deleted`` is ``item`` (keepalived's ``route_is_ours`` / ``rule_is_ours`` keys)."""
    if isinstance(item, Route):
        return deleted.kind == "route" and (deleted.family, deleted.dst, deleted.table) == (
            item.family,
            item.dst,
            item.table,
        )
    return (
        deleted.kind == "rule"
        and (deleted.family, deleted.priority) == (item.family, item.priority)
        and deleted.dst == (item.dst if item.dst is not None and item.dst.prefixlen else None)
    )
