"""``virtual_routes`` and ``virtual_rules`` lines, read as keepalived reads them (``vrrp_iproute.c``
``alloc_route()``, ``vrrp_iprule.c`` ``alloc_rule()``), into :class:`~keepalived_py.config.model.Route` and
:class:`~keepalived_py.config.model.Rule`.

Routes: ``[src ADDR] [to] [TYPE] PREFIX|default [via|gw ADDR] [dev|oif IF] [table T]
[metric|priority|preference N] [protocol P] [scope S] [onlink] [no_track]``, TYPE one of unicast, blackhole,
unreachable, prohibit, throw.
keepalived installs them with protocol ``keepalived`` (18) unless another is given, scope universe unless one
is given; a route is tracked (``no_track`` not given) only when it names its interface.

Rules: ``[from PREFIX] [to PREFIX] [not] [iif|dev IF] [oif IF] [fwmark N[/MASK]] [preference|priority|order N]
ACTION [no_track]``, ACTION one of ``table|lookup T``, ``goto N``, ``nop``, ``[type] blackhole|unreachable|
prohibit``. A rule without a preference gets keepalived's (16384, then one less each time) and a warning.

The options keepalived knows beyond these (nexthops, encap, metrics such as mtu, realms, tos, uidrange,
...) are reported as not implemented by kpd and the line is ignored: nothing is installed differently in
silence.
"""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path

from keepalived_py.config.lexer import Token
from keepalived_py.config.model import Route, Rule
from keepalived_py.config.values import Args, BadValue

RTPROT_KEEPALIVED = 18
RT_TABLE_MAIN = 254
#: keepalived's first automatic rule preference (``RULE_START_PRIORITY``), counting down
RULE_START_PRIORITY = 16384

_TABLES = {"default": 253, "main": 254, "local": 255}
_SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
_PROTOCOLS = {"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "keepalived": 18}
_ROUTE_TYPES = ("unicast", "blackhole", "unreachable", "prohibit", "throw")
_RULE_ACTIONS = ("blackhole", "unreachable", "prohibit")

#: options keepalived accepts that kpd does not implement (the line is then ignored, and it says so)
_ROUTE_UNSUPPORTED = frozenset(
    [
        "as",
        "from",
        "tos",
        "dsfield",
        "encap",
        "expires",
        "mtu",
        "hoplimit",
        "advmss",
        "rtt",
        "rttvar",
        "reordering",
        "window",
        "cwnd",
        "ssthresh",
        "realms",
        "rto_min",
        "initcwnd",
        "initrwnd",
        "features",
        "quickack",
        "congctl",
        "pref",
        "ttl-propagate",
        "fastopen_no_cookie",
        "nexthop",
        "or",
        "track_group",
        "vrf",
        "inet",
        "inet6",
        "lock",
    ]
)
_RULE_UNSUPPORTED = frozenset(
    [
        "tos",
        "dsfield",
        "realms",
        "suppress_prefixlength",
        "sup_pl",
        "suppress_ifgroup",
        "sup_group",
        "tunnel-id",
        "uidrange",
        "l3mdev",
        "ipproto",
        "sport",
        "dport",
        "track_group",
        "protocol",
        "inet",
        "inet6",
    ]
)

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
    dst = None
    route_type = "unicast"
    protocol: int | None = None
    track = True
    while w.i < len(toks):
        tok = toks[w.i]
        word = tok.text
        if word == "src":
            src = _address(w.next("an address"), "route src address")
            family = _family(family, src.version, tok, "route")
            opts["src"] = src
        elif word in ("via", "gw"):
            if word == "gw":
                args.error('"gw" for routes is deprecated. Please use "via"', tok)
            via = _address(w.next("an address"), "route via address")
            family = _family(family, via.version, tok, "route")
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
        elif word == "onlink":
            opts["onlink"] = True
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
    if protocol is not None and track and protocol != RTPROT_KEEPALIVED:
        raise BadValue(
            "route cannot be tracked if protocol is not keepalived (18): add no_track, or drop protocol",
            args.keyword,
        )
    if track and opts.get("dev") is None:
        track = False
        args.error(
            f"cannot track route {dst} with no interface specified, not tracking (add no_track)", args.keyword
        )
    return Route(
        family=family,
        dst=dst,
        type=route_type,
        protocol=protocol if protocol is not None else RTPROT_KEEPALIVED,
        track=track,
        location=args.keyword.loc,
        **opts,  # type: ignore[arg-type]
    )


def parse_rule(args: Args) -> Rule:
    w = _Words(args, "rule")
    toks = args.tokens
    family: int | None = None
    opts: dict[str, object] = {}
    action: str | None = None
    track = True
    while w.i < len(toks):
        tok = toks[w.i]
        word = tok.text
        if word in ("from", "to"):
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
        elif word == "not":
            opts["invert"] = True
        elif word in ("preference", "order", "priority"):
            opts["priority"] = _number(w.next("a number"), "rule preference", 0xFFFFFFFF)
        elif word == "fwmark":
            mark_tok = w.next("a mark")
            mark, _, mask = mark_tok.text.partition("/")
            opts["fwmark"] = _number(Token(mark, mark_tok.loc), "fwmark", 0xFFFFFFFF)
            if mask:
                opts["fwmask"] = _number(Token(mask, mark_tok.loc), "fwmark mask", 0xFFFFFFFF)
        elif word in ("dev", "iif"):
            opts["iif"] = w.next("an interface").text
        elif word == "oif":
            opts["oif"] = w.next("an interface").text
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
        protocol=RTPROT_KEEPALIVED if track else None,
        track=track,
        location=args.keyword.loc,
        **opts,  # type: ignore[arg-type]
    )


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
