"""``virtual_routes`` and ``virtual_rules`` lines, read as keepalived 2.2 reads them (``vrrp_iproute.c``
``alloc_route()``, ``vrrp_iprule.c`` ``alloc_rule()``), into :class:`~keepalived_py.config.model.Route` and
:class:`~keepalived_py.config.model.Rule`.

Routes: ``[inet|inet6] [src ADDR] [from PREFIX] [to] [TYPE] PREFIX|default [via|gw [inet|inet6] ADDR]
[dev|oif IF] [table T] [metric|priority|preference N] [protocol P] [scope S] [tos|dsfield D] [onlink]
[realms [FROM/]TO] [expires S] [pref low|medium|high|N] [ttl-propagate enabled|disabled] [METRIC [lock] V
...] [encap ip|ip6|mpls|ila ...] [add|prepend|append] [as [to] ADDR] [or ADDR] [no_track]
[nexthop NEXTHOP ...]``, TYPE one of unicast, local, broadcast, multicast, blackhole, unreachable,
prohibit, throw, nat; METRIC one of mtu, advmss, rtt, rttvar, reordering, window, cwnd, ssthresh, rto_min,
initcwnd, initrwnd, hoplimit, features ecn, quickack, congctl, fastopen_no_cookie. keepalived installs
them with protocol ``keepalived`` (18) unless another is given (a tracked route always gets 18), scope
universe unless one is given; a route is tracked (``no_track`` not given) only when it names its
interface.

Rules: ``[inet|inet6] [from PREFIX] [to PREFIX] [not] [iif|dev IF] [oif IF] [fwmark N[/MASK]]
[preference|priority|order N] [tos|dsfield D] [realms [FROM/]TO] [suppress_prefixlength N]
[suppress_ifgroup G] [tunnel-id N] [uidrange A-B] [protocol N] [ipproto P] [sport A[-B]] [dport A[-B]]
ACTION [no_track]``, ACTION one of ``table|lookup T``, ``l3mdev``, ``goto N``, ``nop``, ``[type]
blackhole|unreachable|prohibit``. A rule without a preference gets keepalived's (16384, then one less
each time) and a warning; a tracked rule always gets protocol 18.

Only ``track_group`` (static routes and rules tracking a VRRP track group) and ``vrf`` stay not implemented
by kpd: a line using them is reported and ignored, nothing is installed differently in silence.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import socket
import string
from pathlib import Path

from keepalived_py.config.lexer import Token
from keepalived_py.config.model import Encap, Nexthop, Route, Rule
from keepalived_py.config.values import Args, BadValue

RTPROT_KEEPALIVED = 18
RT_TABLE_MAIN = 254
#: keepalived's first automatic rule preference (``RULE_START_PRIORITY``), counting down
RULE_START_PRIORITY = 16384

_TABLES = {"default": 253, "main": 254, "local": 255}
_SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
_PROTOCOLS = {"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "keepalived": 18}
#: iproute2's route types (rtnl_rtntype_a2n), the names keepalived takes before a destination
_ROUTE_TYPES = ("unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable",
                "prohibit", "throw", "nat")
_RULE_ACTIONS = ("blackhole", "unreachable", "prohibit")
#: ICMPV6_ROUTER_PREF_*
_PREFS = {"low": 3, "medium": 0, "high": 1}
#: RTAX_* metrics of a route
RTAX_MTU, RTAX_WINDOW, RTAX_RTT, RTAX_RTTVAR, RTAX_SSTHRESH, RTAX_CWND, RTAX_ADVMSS = 2, 3, 4, 5, 6, 7, 8
RTAX_REORDERING, RTAX_HOPLIMIT, RTAX_INITCWND, RTAX_FEATURES, RTAX_RTO_MIN = 9, 10, 11, 12, 13
RTAX_INITRWND, RTAX_QUICKACK, RTAX_CC_ALGO, RTAX_FASTOPEN_NO_COOKIE = 14, 15, 16, 17
RTAX_FEATURE_ECN = 1
#: the order in which keepalived puts the metrics in RTA_METRICS (netlink_route)
_METRIC_ORDER = (RTAX_CC_ALGO, RTAX_RTT, RTAX_RTTVAR, RTAX_RTO_MIN, RTAX_FEATURES, RTAX_MTU, RTAX_WINDOW,
                 RTAX_SSTHRESH, RTAX_CWND, RTAX_ADVMSS, RTAX_REORDERING, RTAX_HOPLIMIT, RTAX_INITCWND,
                 RTAX_INITRWND, RTAX_QUICKACK, RTAX_FASTOPEN_NO_COOKIE)
#: metrics taking a plain number: word -> (RTAX, maximum, may be locked)
_PLAIN_METRICS = {
    "mtu": (RTAX_MTU, 0xFFFFFFFF, True),
    "advmss": (RTAX_ADVMSS, 0xFFFFFFFF, True),
    "reordering": (RTAX_REORDERING, 0xFFFFFFFF, True),
    "window": (RTAX_WINDOW, 0xFFFFFFFF, False),
    "cwnd": (RTAX_CWND, 0xFFFFFFFF, True),
    "ssthresh": (RTAX_SSTHRESH, 0xFFFFFFFF, True),
    "initcwnd": (RTAX_INITCWND, 0xFFFFFFFF, False),
    "initrwnd": (RTAX_INITRWND, 0xFFFFFFFF, False),
    "hoplimit": (RTAX_HOPLIMIT, 255, False),
    "quickack": (RTAX_QUICKACK, 1, False),
    "fastopen_no_cookie": (RTAX_FASTOPEN_NO_COOKIE, 1, False),
}
#: metrics taking a time: word -> (RTAX, kernel units per millisecond)
_TIME_METRICS = {"rtt": (RTAX_RTT, 8), "rttvar": (RTAX_RTTVAR, 4), "rto_min": (RTAX_RTO_MIN, 1)}
#: the kernel's bounds of a TCP round-trip time (TCP_RTO_MIN, TCP_RTO_MAX), as keepalived clamps them
_RTT_MIN_MS, _RTT_MAX_MS = 200, 120000

#: options keepalived accepts that kpd does not implement (the line is then ignored, and it says so)
_ROUTE_UNSUPPORTED = frozenset(["track_group", "vrf"])
_RULE_UNSUPPORTED = frozenset(["track_group"])

_auto_priority: dict[int, itertools.count[int]] = {}


def reset_rule_priorities() -> None:
    """Start the automatic rule preferences again (one configuration read, as one keepalived parse)."""
    _auto_priority.clear()
    _auto_priority.update(
        {4: itertools.count(RULE_START_PRIORITY, -1), 6: itertools.count(RULE_START_PRIORITY, -1)}
    )


reset_rule_priorities()


def _names(path: str, builtin: dict[str, int]) -> dict[str, int]:
    """iproute2's names for numbers (``/etc/iproute2/rt_tables`` and the like), over ``builtin``."""
    names = dict(builtin)
    for file in (Path(path), *sorted(Path(path + ".d").glob("*.conf"))):
        try:
            text = file.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 2:
                try:
                    names[words[1]] = int(words[0], 0)
                except ValueError:
                    continue
    return names


def _number(tok: Token, what: str, limit: int, names: dict[str, int] | None = None) -> int:
    text = tok.text
    if names is not None and text in names:
        return names[text]
    try:
        value = int(text, 0)
    except ValueError:
        raise BadValue(f"invalid {what} '{text[:40]}'", tok) from None
    if not 0 <= value <= limit:
        raise BadValue(f"{what} {value} is out of range 0..{limit}", tok)
    return value


def _network(tok: Token, what: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if tok.text in ("default", "any", "all"):
        return ipaddress.IPv4Network("0.0.0.0/0")
    try:
        return ipaddress.ip_network(tok.text, strict=False)
    except ValueError:
        raise BadValue(f"invalid {what} '{tok.text[:40]}'", tok) from None


def _address(tok: Token, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(tok.text)
    except ValueError:
        raise BadValue(f"invalid {what} '{tok.text[:40]}'", tok) from None


class _Words:
    def __init__(self, args: Args, what: str) -> None:
        self.toks = args.tokens
        self.i = 0
        self.what = what

    def next(self, what: str) -> Token:
        self.i += 1
        if self.i >= len(self.toks):
            raise BadValue(f"'{self.toks[self.i - 1].text}' needs {what}", self.toks[self.i - 1])
        return self.toks[self.i]


def _family(current: int | None, value: int, tok: Token, what: str) -> int:
    if current is not None and current != value:
        raise BadValue(f"cannot mix IPv4 and IPv6 addresses in a {what}", tok)
    return value


def parse_route(args: Args) -> Route:
    w = _Words(args, "route")
    toks = args.tokens
    family: int | None = None
    opts: dict[str, object] = {}
    metrics: dict[int, int | str] = {}
    lock = 0
    nexthops: tuple[Nexthop, ...] = ()
    dst = None
    route_type = "unicast"
    protocol: int | None = None
    track = True
    while w.i < len(toks):
        tok = toks[w.i]
        word = tok.text
        if word in ("inet", "inet6"):
            family = _family(family, 6 if word == "inet6" else 4, tok, "route")
        elif word == "src":
            src = _address(w.next("an address"), "route src address")
            family = _family(family, src.version, tok, "route")
            opts["src"] = src
        elif word == "from":
            prefix = _network(w.next("a prefix"), "route from address")
            if prefix.version != 6:
                raise BadValue(f"route from address only supported with IPv6 ({toks[w.i].text})", toks[w.i])
            family = _family(family, 6, tok, "route")
            opts["from_prefix"] = prefix
        elif word in ("via", "gw"):
            if word == "gw":
                args.error('"gw" for routes is deprecated. Please use "via"', tok)
            via, family = _via(w, family)
            opts["via"] = via
        elif word in ("dev", "oif"):
            opts["dev"] = w.next("an interface").text
        elif word == "table":
            opts["table"] = _number(w.next("a table"), "routing table", 0xFFFFFFFF, table_names())
        elif word in ("metric", "priority", "preference"):
            opts["metric"] = _number(w.next("a number"), "metric", 0xFFFFFFFF)
        elif word == "protocol":
            protocol = _number(w.next("a protocol"), "route protocol", 255, protocol_names())
        elif word == "scope":
            opts["scope"] = _number(w.next("a scope"), "route scope", 255, _SCOPES)
        elif word in ("tos", "dsfield"):
            opts["tos"] = _number(w.next("a value"), "TOS value", 255, dsfield_names())
        elif word == "onlink":
            opts["onlink"] = True
        elif word == "realms":
            opts["realms"] = _realms(w.next("realms"))
            family = _family(family, 4, tok, "route (realms are only valid for IPv4)")
        elif word == "expires":
            opts["expires"] = _number(w.next("seconds"), "expires time", 0xFFFFFFFF)
            family = _family(family, 6, tok, "route (expires is only valid for IPv6)")
        elif word == "pref":
            value = w.next("a preference")
            opts["pref"] = _number(value, "pref value", 255, _PREFS)
            family = _family(family, 6, tok, "route (pref is only valid for IPv6)")
        elif word == "ttl-propagate":
            value = w.next("enabled or disabled")
            if value.text not in ("enabled", "disabled"):
                args.error(f"ttl-propagate value {value.text[:40]} not recognised", value)
            opts["ttl_propagate"] = 1 if value.text == "enabled" else 0
        elif word in _PLAIN_METRICS:
            rtax, limit, lockable = _PLAIN_METRICS[word]
            value = w.next("a value")
            if lockable and value.text == "lock":
                lock |= 1 << rtax
                value = w.next("a value")
            metrics[rtax] = _number(value, word, limit)
        elif word in _TIME_METRICS:
            rtax, per_ms = _TIME_METRICS[word]
            value = w.next("a time")
            if value.text == "lock":
                lock |= 1 << rtax
                value = w.next("a time")
            metrics[rtax] = _rtt(value, word, per_ms, args)
        elif word == "features":
            value = w.next("a feature")
            if value.text == "ecn":
                metrics[RTAX_FEATURES] = RTAX_FEATURE_ECN
            else:
                args.error(f"feature {value.text[:40]} not supported", value)
        elif word == "congctl":
            value = w.next("a congestion control algorithm")
            if value.text == "lock":
                lock |= 1 << RTAX_CC_ALGO
                value = w.next("a congestion control algorithm")
            metrics[RTAX_CC_ALGO] = value.text
        elif word in ("add", "prepend", "append"):
            opts["mode"] = word
        elif word == "encap":
            opts["encap"] = _encap(w)
        elif word == "as":
            if w.next("an address").text == "to":
                w.next("an address")
            args.error('"as to" for MPLS only - ignoring', tok)
        elif word == "or":
            args.error('"or" for routes is deprecated. Please use "nexthop"', tok)
            other = w.next("an address")
            if nexthops:
                args.error('"or" route already specified - ignoring subsequent', tok)
            else:
                first = opts.pop("via", None)
                assert first is None or isinstance(first, ipaddress.IPv4Address | ipaddress.IPv6Address)
                nexthops = (Nexthop(via=first), Nexthop(via=_address(other, '"or" address')))
        elif word == "nexthop":
            if nexthops:
                raise BadValue('cannot specify nexthops with "or" route', tok)
            nexthops, family = _nexthops(w, family)
            break
        elif word == "no_track":
            track = False
        elif word in _ROUTE_UNSUPPORTED:
            raise BadValue(
                f"route option '{word}' is not implemented by kpd: this route is not installed", tok
            )
        else:
            if word == "to":
                tok = w.next("a destination")
            if tok.text in _ROUTE_TYPES:
                route_type = tok.text
                tok = w.next("a destination")
            if dst is not None:
                raise BadValue(f"route has trailing nonsense - {tok.text[:40]}", tok)
            dst = _network(tok, "route destination")
            if tok.text not in ("default", "any", "all"):
                family = _family(family, dst.version, tok, "route")
        w.i += 1
    if dst is None:
        raise BadValue("route must have a destination", args.keyword)
    family = family or 4
    if dst.prefixlen == 0 and dst.version != family:
        dst = ipaddress.IPv6Network("::/0")
    if track:
        protocol = _tracked_protocol(protocol, "route", args)
        if opts.get("dev") is None:
            track = False
            args.error(
                f"cannot track route {dst} with no interface specified, not tracking (add no_track)",
                args.keyword,
            )
    return Route(
        family=family,
        dst=dst,
        type=route_type,
        protocol=protocol if protocol is not None else RTPROT_KEEPALIVED,
        metrics=tuple((rtax, metrics[rtax]) for rtax in _METRIC_ORDER if rtax in metrics),
        lock=lock,
        nexthops=nexthops,
        track=track,
        location=args.keyword.loc,
        **opts,  # type: ignore[arg-type]
    )


def _via(w: _Words, family: int | None) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``via [inet|inet6] ADDR``: the gateway, of the route's family."""
    tok = w.next("an address")
    if tok.text in ("inet", "inet6"):
        family = _family(family, 6 if tok.text == "inet6" else 4, tok, "route")
        tok = w.next("an address")
    via = _address(tok, "route via address")
    return via, _family(family, via.version, tok, "route")


def _nexthops(w: _Words, family: int | None) -> tuple[tuple[Nexthop, ...], int | None]:
    """``nexthop [via ADDR] [dev IF] [weight 1..256] [onlink] [realms R] [encap ...]``, repeated, to the end
    of the line (``w`` is at the first ``nexthop``)."""
    toks = w.toks
    out: list[Nexthop] = []
    while w.i < len(toks) and toks[w.i].text == "nexthop":
        w.i += 1
        hop: dict[str, object] = {}
        while w.i < len(toks):
            tok = toks[w.i]
            word = tok.text
            if word == "via":
                hop["via"], family = _via(w, family)
            elif word == "dev":
                hop["dev"] = w.next("an interface").text
            elif word == "weight":
                weight = _number(w.next("a weight"), "nexthop weight", 256)
                if weight == 0:
                    raise BadValue("invalid weight 0 specified for route", toks[w.i])
                hop["weight"] = weight
            elif word == "onlink":
                hop["onlink"] = True
            elif word == "realms":
                hop["realms"] = _realms(w.next("realms"))
                family = _family(family, 4, tok, "route (realms are only supported for IPv4)")
            elif word == "encap":
                hop["encap"] = _encap(w)
            elif word == "as":
                raise BadValue("'as [to]' (nat) not supported in a nexthop", tok)
            else:
                break
            w.i += 1
        out.append(Nexthop(**hop))  # type: ignore[arg-type]
    if w.i < len(toks):
        raise BadValue(f"route has trailing nonsense after nexthops - {toks[w.i].text[:40]}", toks[w.i])
    return tuple(out), family


#: ``encap ip|ip6`` options: name -> (model field, reader)
_ENCAP_IP_FIELDS = {"id": "id", "dst": "dst", "src": "src", "tos": "tos", "ttl": "ttl", "flags": "flags"}
_ENCAP_IP6_FIELDS = {"id": "id", "dst": "dst", "src": "src", "tc": "tos", "hoplimit": "ttl", "flags": "flags"}


def _encap(w: _Words) -> Encap:
    """``encap ip|ip6 [id N] [dst A] [src A] [tos|tc D] [ttl|hoplimit N] [flags N]``, ``encap mpls L[/L]``,
    ``encap ila LOCATOR``; ``w`` is left at the last word read."""
    kind = w.next("an encap type")
    toks = w.toks
    if kind.text == "mpls":
        return Encap("mpls", labels=_mpls_labels(w.next("an MPLS label stack")))
    if kind.text == "ila":
        return Encap("ila", locator=_locator(w.next("a locator")))
    if kind.text not in ("ip", "ip6"):
        raise BadValue(f"unknown encap type - {kind.text[:40]}", kind)
    version = 6 if kind.text == "ip6" else 4
    names = _ENCAP_IP6_FIELDS if version == 6 else _ENCAP_IP_FIELDS
    fields: dict[str, object] = {}
    while w.i + 2 < len(toks) and toks[w.i + 1].text in names:
        name, value = toks[w.i + 1].text, toks[w.i + 2]
        w.i += 2
        field = names[name]
        if field in ("dst", "src"):
            address = _address(value, f"encap {kind.text} {name}")
            if address.version != version:
                raise BadValue(f"address {value.text} not valid for {kind.text} encapsulation", value)
            fields[field] = address
        elif field == "id":
            fields["id"] = _number(value, "encap id", 0xFFFFFFFFFFFFFFFF)
        elif field == "tos":
            fields["tos"] = _number(value, f"{name} value", 255, dsfield_names())
        elif field == "ttl":
            fields["ttl"] = _number(value, name, 255)
        else:
            fields["flags"] = _number(value, "encap flags", 0xFFFF)
    if "dst" not in fields and "id" not in fields:
        raise BadValue(f"address or id missing for {kind.text} encapsulation", kind)
    return Encap(kind.text, **fields)  # type: ignore[arg-type]


#: keepalived's MAX_MPLS_LABELS
_MPLS_MAX_LABELS = 2


def _mpls_labels(tok: Token) -> tuple[int, ...]:
    labels = []
    for part in tok.text.split("/"):
        try:
            label = int(part, 0)
        except ValueError:
            raise BadValue(f"invalid mpls address {tok.text[:40]} for encapsulation", tok) from None
        if not 0 <= label < 1 << 20:
            raise BadValue(f"mpls label {label} is out of range 0..{(1 << 20) - 1}", tok)
        labels.append(label)
    if len(labels) > _MPLS_MAX_LABELS:
        raise BadValue(f"invalid mpls address {tok.text[:40]}: at most {_MPLS_MAX_LABELS} labels", tok)
    return tuple(labels)


def _locator(tok: Token) -> int:
    """An ILA locator: four groups of up to four hex digits, ``xxxx:xxxx:xxxx:xxxx``."""
    groups = tok.text.split(":")
    value = 0
    for group in groups:
        if len(groups) != 4 or not 1 <= len(group) <= 4 or any(c not in string.hexdigits for c in group):
            raise BadValue(f"invalid locator {tok.text[:40]} for ila encapsulation", tok)
        value = value << 16 | int(group, 16)
    return value


def _realms(tok: Token) -> int:
    """``[FROM/]TO`` realms (numbers or names of /etc/iproute2/rt_realms): FROM in the upper 16 bits."""
    names = realm_names()
    first, slash, second = tok.text.partition("/")
    value = _number(Token(first, tok.loc), "realm", 255, names)
    if slash:
        value = value << 16 | _number(Token(second, tok.loc), "realm", 255, names)
    return value


_RTT_UNITS = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]*)?)(?P<unit>m?s(?:ec|ecs)?)?", re.IGNORECASE)


def _rtt(tok: Token, what: str, per_ms: int, args: Args) -> int:
    """A TCP time metric in the kernel's units (``per_ms`` per millisecond): a bare number is taken as
    those units, ``Nms`` / ``Ns`` (or sec, secs) as a time; clamped to 200 ms..120 s as keepalived does."""
    found = _RTT_UNITS.fullmatch(tok.text)
    unit = (found["unit"] or "").lower() if found else ""
    number = found["number"] if found else ""
    seconds = bool(unit) and not unit.startswith("m")
    if not found or ("." in number and not seconds) or len(number.partition(".")[2]) > 3:
        raise BadValue(f"invalid {what} {tok.text[:40]} for route", tok)
    whole, _, fraction = number.partition(".")
    value = int(whole) * 1000 + int(fraction.ljust(3, "0")) if seconds else int(whole)
    if value > _RTT_MAX_MS * per_ms:
        raise BadValue(f"invalid {what} {tok.text[:40]} for route", tok)
    if unit:
        value *= per_ms
    if value > _RTT_MAX_MS * per_ms:
        args.note(f"{what} value {tok.text} exceeds maximum {_RTT_MAX_MS // 1000}s, resetting", tok)
        value = _RTT_MAX_MS * per_ms
    elif value < _RTT_MIN_MS * per_ms:
        args.note(f"{what} value {tok.text} below minimum {_RTT_MIN_MS}ms, resetting", tok)
        value = _RTT_MIN_MS * per_ms
    return value


def _port_range(tok: Token, what: str, args: Args) -> tuple[int, int] | None:
    """``A-B`` or ``A`` (A-A); keepalived 2.2 reports a single port as invalid and drops the option."""
    low, dash, high = tok.text.partition("-")
    try:
        first, last = int(low), int(high if dash else low)
    except ValueError:
        first = last = -1
    if not (0 <= first <= 0xFFFF and 0 <= last <= 0xFFFF):
        args.error(f"invalid {what} range {tok.text[:40]}", tok)
        return None
    return first, last


def parse_rule(args: Args) -> Rule:
    w = _Words(args, "rule")
    toks = args.tokens
    family: int | None = None
    opts: dict[str, object] = {}
    action: str | None = None
    protocol: int | None = None
    table_option = False
    track = True
    while w.i < len(toks):
        tok = toks[w.i]
        word = tok.text
        if word in ("inet", "inet6"):
            family = _family(family, 6 if word == "inet6" else 4, tok, "rule")
        elif word in ("from", "to"):
            net = _network(w.next("an address"), f"rule {word} address")
            if toks[w.i].text not in ("default", "any", "all"):
                family = _family(family, net.version, tok, "rule")
            opts["src" if word == "from" else "dst"] = net
        elif word in ("table", "lookup"):
            table = _number(w.next("a table"), "routing table", 0xFFFFFFFF, table_names())
            if table == 0:
                raise BadValue("table 0 is not valid", w.toks[w.i])
            action = _one_action(action, "table", tok)
            opts["table"] = table
        elif word == "l3mdev":
            action = _one_action(action, "table", tok)
            opts["l3mdev"] = True
        elif word == "not":
            opts["invert"] = True
        elif word in ("preference", "order", "priority"):
            opts["priority"] = _number(w.next("a number"), "rule preference", 0xFFFFFFFF)
        elif word in ("tos", "dsfield"):
            opts["tos"] = _number(w.next("a value"), "TOS value", 255, dsfield_names())
        elif word == "fwmark":
            mark_tok = w.next("a mark")
            mark, _, mask = mark_tok.text.partition("/")
            opts["fwmark"] = _number(Token(mark, mark_tok.loc), "fwmark", 0xFFFFFFFF)
            if mask:
                opts["fwmask"] = _number(Token(mask, mark_tok.loc), "fwmark mask", 0xFFFFFFFF)
        elif word == "realms":
            opts["realms"] = _realms(w.next("realms"))
            table_option = True
            family = _family(family, 4, tok, "rule (realms is only valid for IPv4)")
        elif word in ("suppress_prefixlength", "sup_pl"):
            opts["suppress_prefixlength"] = _number(w.next("a length"), word, 0x7FFFFFFF)
            table_option = True
        elif word in ("suppress_ifgroup", "sup_group"):
            opts["suppress_ifgroup"] = _number(w.next("a group"), word, 0x7FFFFFFF, group_names())
            table_option = True
        elif word in ("dev", "iif"):
            opts["iif"] = w.next("an interface").text
        elif word == "oif":
            opts["oif"] = w.next("an interface").text
        elif word == "tunnel-id":
            opts["tunnel_id"] = _number(w.next("an id"), "tunnel-id", 0xFFFFFFFFFFFFFFFF)
        elif word == "uidrange":
            value = w.next("a range")
            found = re.match(r"([0-9]+)-([0-9]+)", value.text)
            if found is None or max(int(found[1]), int(found[2])) > 0xFFFFFFFF:
                raise BadValue(f"invalid uidrange {value.text[:40]} specified", value)
            opts["uidrange"] = (int(found[1]), int(found[2]))
        elif word == "protocol":
            value = w.next("a protocol")
            if value.text.isascii() and value.text.isdigit() and int(value.text) <= 255:
                protocol = int(value.text)
            else:
                args.error(f"invalid protocol {value.text[:40]}", value)
        elif word == "ipproto":
            value = w.next("a protocol")
            number = _ip_proto(value.text)
            if number is None:
                args.error(f"invalid ipproto {value.text[:40]}", value)
            else:
                opts["ip_proto"] = number
        elif word in ("sport", "dport"):
            value = w.next("a port range")
            ports = _port_range(value, word, args)
            if ports is not None:
                opts[word] = ports
        elif word == "no_track":
            track = False
        elif word in _RULE_UNSUPPORTED:
            raise BadValue(f"rule option '{word}' is not implemented by kpd: this rule is not installed", tok)
        else:
            if word == "type":
                tok = w.next("a rule type")
            if tok.text == "goto":
                action = _one_action(action, "goto", tok)
                opts["goto"] = _number(w.next("a target"), "goto target", 0xFFFFFFFF)
            elif tok.text == "nop" or tok.text in _RULE_ACTIONS:
                action = _one_action(action, tok.text, tok)
            else:
                raise BadValue(f"unknown rule option {tok.text[:40]}", tok)
        w.i += 1
    if action is None:
        raise BadValue(
            "no action specified for rule (table, goto, nop, blackhole, unreachable, prohibit)", args.keyword
        )
    family = family or 4
    if action == "goto":
        if "priority" not in opts:
            raise BadValue("a goto rule needs a preference", args.keyword)
        if opts["priority"] >= opts["goto"]:  # type: ignore[operator]
            raise BadValue(f"preference {opts['priority']} >= goto target {opts['goto']}", args.keyword)
    if table_option and action != "table":
        raise BadValue("suppressor/realm specified for non table action - skipping", args.keyword)
    if opts.get("l3mdev") and "table" in opts:
        raise BadValue("table cannot be specified for l3mdev rules", args.keyword)
    if track:
        protocol = _tracked_protocol(protocol, "rule", args)
    if "priority" not in opts:
        opts["priority"] = next(_auto_priority[family])
        args.error(
            f"rule has no preference specified - setting to {opts['priority']}. "
            "This is probably not what you want.",
            args.keyword,
        )
    return Rule(
        family=family,
        action=action,
        protocol=protocol,
        track=track,
        location=args.keyword.loc,
        **opts,  # type: ignore[arg-type]
    )


def _ip_proto(text: str) -> int | None:
    """An IP protocol by number (0..127, as keepalived takes it) or by name (/etc/protocols)."""
    if text.isascii() and text.isdigit():
        return int(text) if int(text) <= 127 else None
    try:
        return socket.getprotobyname(text)
    except (OSError, ValueError):  # unknown, or not a name at all (a NUL, a digit Python reads as one)
        return None


def _tracked_protocol(protocol: int | None, what: str, args: Args) -> int:
    """A tracked route or rule has keepalived's protocol (18): another one given is reported and replaced."""
    if protocol is not None and protocol != RTPROT_KEEPALIVED:
        args.error(
            f"{what} cannot be tracked if protocol is not keepalived ({RTPROT_KEEPALIVED}): protocol set to "
            f"{RTPROT_KEEPALIVED} (no_track keeps it)",
            args.keyword,
        )
    return RTPROT_KEEPALIVED


def _one_action(current: str | None, new: str, tok: Token) -> str:
    if current is not None:
        raise BadValue(
            "cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable for a rule", tok
        )
    return new


def table_names() -> dict[str, int]:
    """Routing table names (read when needed: the host may define more)."""
    return _names("/etc/iproute2/rt_tables", _TABLES)


def protocol_names() -> dict[str, int]:
    return _names("/etc/iproute2/rt_protos", _PROTOCOLS)


def dsfield_names() -> dict[str, int]:
    return _names("/etc/iproute2/rt_dsfield", {})


def realm_names() -> dict[str, int]:
    return _names("/etc/iproute2/rt_realms", {})


def group_names() -> dict[str, int]:
    return _names("/etc/iproute2/group", {})
