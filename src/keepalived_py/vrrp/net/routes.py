"""Virtual routes and rules over rtnetlink, as keepalived programs them (``netlink_route()`` in
``vrrp_iproute.c``, ``netlink_rule()`` in ``vrrp_iprule.c``).

* Routes: ``RTM_NEWROUTE`` with ``NLM_F_CREATE``, the table in ``rtm_table`` (``RTA_TABLE`` above 255), the
  protocol keepalived's own (18) unless the configuration names one, the scope universe unless it names one,
  ``RTA_DST``, ``RTA_PREFSRC`` (``src``), ``RTA_GATEWAY`` (``via``), ``RTA_OIF`` (``dev``), ``RTA_PRIORITY``
  (``metric``), ``RTNH_F_ONLINK`` (``onlink``). Deletion (``RTM_DELROUTE``) matches the same keys with scope
  nowhere, as keepalived's.
* Rules: ``RTM_NEWRULE`` with ``NLM_F_CREATE | NLM_F_EXCL``, the action, table (``FRA_TABLE`` above 255),
  ``FRA_SRC``/``FRA_DST`` with their lengths, ``FRA_PRIORITY``, ``FRA_FWMARK``/``FRA_FWMASK``,
  ``FRA_IIFNAME``/``FRA_OIFNAME``, ``FRA_GOTO``, ``FIB_RULE_INVERT`` (``not``), ``FRA_PROTOCOL`` for
  tracked rules.
* Adding what is there already and deleting what is not are not errors (both are idempotent).

Pure message building apart from the one socket, so a restarted child simply adds again what it needs.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_DELRULE, RTM_NEWROUTE, RTM_NEWRULE
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from keepalived_py.config.model import Route, Rule
from keepalived_py.vrrp.net.links import NetlinkClient, NetlinkError

__all__ = ["Deleted", "RouteManager", "RouteMonitor", "matches", "route_message", "rule_message"]

logger = logging.getLogger(__name__)
RTPROT_KEEPALIVED = 18

RT_SCOPE_UNIVERSE = 0
RT_SCOPE_NOWHERE = 255
RTNH_F_ONLINK = 4
FIB_RULE_INVERT = 2
_ROUTE_TYPES = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9}
_RULE_ACTIONS = {"table": 1, "goto": 2, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8}
_ABSENT = frozenset({errno.ESRCH, errno.ENOENT, errno.ENODEV, errno.EADDRNOTAVAIL})


def _family(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def route_message(route: Route, ifindex: int | None, *, delete: bool = False) -> rtmsg:
    msg = rtmsg()
    msg["family"] = _family(route.family)
    msg["dst_len"] = route.dst.prefixlen
    attrs: list[list[object]] = []
    if route.table < 256:
        msg["table"] = route.table
    else:
        msg["table"] = 0
        attrs.append(["RTA_TABLE", route.table])
    msg["proto"] = route.protocol
    msg["type"] = _ROUTE_TYPES[route.type]
    default_scope = RT_SCOPE_NOWHERE if delete else RT_SCOPE_UNIVERSE
    msg["scope"] = route.scope if route.scope is not None else default_scope
    msg["flags"] = RTNH_F_ONLINK if route.onlink else 0
    if route.dst.prefixlen:
        attrs.append(["RTA_DST", str(route.dst.network_address)])
    if route.src is not None:
        attrs.append(["RTA_PREFSRC", str(route.src)])
    if route.via is not None:
        attrs.append(["RTA_GATEWAY", str(route.via)])
    if ifindex is not None:
        attrs.append(["RTA_OIF", ifindex])
    if route.metric is not None:
        attrs.append(["RTA_PRIORITY", route.metric])
    msg["attrs"] = attrs
    return msg


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
    attrs: list[list[object]] = [["FRA_PRIORITY", rule.priority]]
    if rule.action == "table":
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
    if rule.iif is not None:
        attrs.append(["FRA_IIFNAME", rule.iif])
    if rule.oif is not None:
        attrs.append(["FRA_OIFNAME", rule.oif])
    if rule.goto is not None:
        attrs.append(["FRA_GOTO", rule.goto])
    if rule.protocol is not None:
        attrs.append(["FRA_PROTOCOL", rule.protocol])
    msg["attrs"] = attrs
    return msg


class RouteManager(NetlinkClient):
    """Adds and removes an instance's routes and rules. Every item is attempted; the failures come back as
    ``(item, error)`` pairs (the kernel refused them) for the caller to report and act on."""

    def add(self, routes: Iterable[Route], rules: Iterable[Rule]) -> list[tuple[Route | Rule, OSError]]:
        failures: list[tuple[Route | Rule, OSError]] = []
        for route in routes:
            ifindex = self._resolve(route.dev) if route.dev else None
            if route.dev and ifindex is None:
                failures.append((route, OSError(errno.ENODEV, f"no interface {route.dev}")))
                continue
            self._do(route, route_message(route, ifindex), RTM_NEWROUTE, NLM_F_CREATE, failures)
        for rule in rules:
            self._do(rule, rule_message(rule), RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, failures)
        return failures

    def remove(self, routes: Iterable[Route], rules: Iterable[Rule]) -> list[tuple[Route | Rule, OSError]]:
        failures: list[tuple[Route | Rule, OSError]] = []
        for rule in rules:
            self._do(rule, rule_message(rule), RTM_DELRULE, 0, failures, delete=True)
        for route in routes:
            ifindex = self._resolve(route.dev) if route.dev else None
            if route.dev and ifindex is None:
                continue  # the interface is gone, and its routes with it
            msg = route_message(route, ifindex, delete=True)
            self._do(route, msg, RTM_DELROUTE, 0, failures, delete=True)
        return failures

    def _do(
        self,
        item: Route | Rule,
        msg: object,
        kind: int,
        flags: int,
        failures: list[tuple[Route | Rule, OSError]],
        *,
        delete: bool = False,
    ) -> None:
        try:
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
