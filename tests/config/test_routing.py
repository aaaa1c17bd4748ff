"""virtual_routes / virtual_rules lines read as keepalived reads them (vrrp_iproute.c, vrrp_iprule.c)."""

from __future__ import annotations

import struct
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroute2.netlink.rtnl import RTM_NEWROUTE
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from keepalived_py.config import Severity, load_config
from keepalived_py.vrrp.net.routes import route_message, rule_message


def decoded_route(body: bytes) -> rtmsg:
    """A packed route message read back by pyroute2's parser."""
    msg = rtmsg(struct.pack("=IHHII", 16 + len(body), RTM_NEWROUTE, 0, 0, 0) + body)
    msg.decode()
    return msg


def _load(tmp_path: Path, routes: str = "", rules: str = ""):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n"
        " virtual_ipaddress {\n  10.0.0.1/24\n }\n"
        f" virtual_routes {{\n{routes} }}\n virtual_rules {{\n{rules} }}\n}}\n"
    )
    result = load_config(conf, host_checks=False)
    inst = result.config.vrrp_instances[0]
    problems = [d for d in result.diagnostics if d.severity is not Severity.UNSUPPORTED]
    return inst.virtual_routes, inst.virtual_rules, problems


def test_route_options(tmp_path: Path) -> None:
    (r,), _, problems = _load(
        tmp_path, "  src 10.0.0.1 to 198.51.100.0/24 via 10.0.0.254 dev eth0 table 100 metric 5\n"
    )
    assert not problems
    assert (r.dst, r.src, r.via, r.dev, r.table, r.metric) == (
        ip_network("198.51.100.0/24"),
        ip_address("10.0.0.1"),
        ip_address("10.0.0.254"),
        "eth0",
        100,
        5,
    )
    assert r.protocol == 18 and r.track and r.scope is None and r.type == "unicast"


def test_route_types_default_and_ipv6(tmp_path: Path) -> None:
    routes, _, _ = _load(
        tmp_path, "  blackhole 203.0.113.0/24 no_track\n  default via 2001:db8::1 dev eth0\n"
    )
    assert routes[0].type == "blackhole" and not routes[0].track
    assert routes[1].family == 6 and routes[1].dst == ip_network("::/0")


def test_untrackable_route_is_reported_as_keepalived_does(tmp_path: Path) -> None:
    (r,), _, problems = _load(tmp_path, "  203.0.113.0/24 via 10.0.0.254\n")
    assert not r.track
    assert [p.message for p in problems] == [
        "cannot track route 203.0.113.0/24 with no interface specified, not tracking (add no_track)"
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("  198.18.0.0/15 via 10.0.0.254 vrf blue\n", "route option 'vrf' is not implemented by kpd"),
        ("  198.18.0.0/15 nexthop via 10.0.0.1 weight 0\n", "invalid weight 0"),
        ("  198.18.0.0/15 nexthop via 10.0.0.1 dev eth0 bogus\n", "trailing nonsense after nexthops"),
        ("  198.18.0.0/15 dev eth0 encap mpls 1048576\n", "mpls label 1048576 is out of range"),
        ("  198.18.0.0/15 dev eth0 encap mpls 1/2/3\n", "at most 2 labels"),
        ("  198.18.0.0/15 dev eth0 encap ip ttl 5\n", "address or id missing for ip encapsulation"),
        ("  198.18.0.0/15 dev eth0 encap ip dst 2001:db8::1\n", "not valid for ip encapsulation"),
        ("  198.18.0.0/15 dev eth0 encap ila 1:2:3\n", "invalid locator"),
        ("  198.18.0.0/15 dev eth0 encap gre dst 1.2.3.4\n", "unknown encap type - gre"),
        ("  198.18.0.0/15 dev eth0 rtt 1.5ms\n", "invalid rtt 1.5ms"),
        ("  198.18.0.0/15 dev eth0 rtt 1e3\n", "invalid rtt 1e3"),
        ("  10.1.0.0/16 from 10.2.0.0/16 dev eth0\n", "route from address only supported with IPv6"),
        ("  2001:db8::/32 dev eth0 realms 2\n", "realms are only valid for IPv4"),
        ("  10.1.0.0/16 dev eth0 expires 30\n", "expires is only valid for IPv6"),
        ("  via 10.0.0.254 dev eth0\n", "route must have a destination"),
        ("  10.1.0.0/16 via 2001:db8::1 dev eth0\n", "cannot mix IPv4 and IPv6"),
        ("  10.1.0.0/16 10.2.0.0/16 dev eth0\n", "trailing nonsense"),
    ],
)
def test_bad_or_unimplemented_routes_are_reported_and_not_installed(
    tmp_path: Path, line: str, message: str
) -> None:
    routes, _, problems = _load(tmp_path, line)
    assert routes == ()
    assert any(message in p.message for p in problems), [p.message for p in problems]


def test_rules(tmp_path: Path) -> None:
    _, rules, problems = _load(
        tmp_path,
        rules="  from 10.0.0.1/32 table 100 priority 100\n"
        "  fwmark 7/0xff not goto 300 preference 200 no_track\n"
        "  to 198.51.100.0/24 blackhole\n",
    )
    a, b, c = rules
    assert (a.src, a.action, a.table, a.priority, a.protocol) == (
        ip_network("10.0.0.1/32"),
        "table",
        100,
        100,
        18,
    )
    assert (b.fwmark, b.fwmask, b.invert, b.action, b.goto, b.protocol) == (7, 0xFF, True, "goto", 300, None)
    assert c.action == "blackhole" and c.priority == 16384  # keepalived's automatic preference ...
    assert [p.message for p in problems] == [  # ... with its warning
        "rule has no preference specified - setting to 16384. This is probably not what you want."
    ]


def test_messages_carry_what_keepalived_sends(tmp_path: Path) -> None:
    (r,), (rule,), _ = _load(
        tmp_path,
        "  src 10.0.0.1 198.51.100.0/24 via 10.0.0.254 dev eth0 table 1000\n",
        "  from 10.0.0.1 lookup 1000 priority 5\n",
    )
    msg = decoded_route(route_message(r, {"eth0": 7}.get))
    assert (msg["table"], msg["proto"], msg["scope"], msg["dst_len"]) == (0, 18, 0, 24)
    assert msg.get_attr("RTA_TABLE") == 1000 and msg.get_attr("RTA_OIF") == 7
    assert msg.get_attr("RTA_GATEWAY") == "10.0.0.254" and msg.get_attr("RTA_PREFSRC") == "10.0.0.1"
    deletion = decoded_route(route_message(r, {"eth0": 7}.get, delete=True))
    assert deletion["scope"] == 255  # deletion matches any scope, as keepalived's
    fib = rule_message(rule)
    assert (fib["table"], fib["action"], fib["src_len"]) == (0, 1, 32)
    assert fib.get_attr("FRA_TABLE") == 1000 and fib.get_attr("FRA_PRIORITY") == 5


def test_a_tracked_route_or_rule_naming_another_protocol_gets_keepalived_s_with_a_warning(
    tmp_path: Path,
) -> None:
    """keepalived 2.2 ("... cannot be tracked if protocol is not RTPROT_KEEPALIVED(18), resetting protocol")
    installs a tracked route or rule with protocol 18; with no_track the protocol given is kept."""
    routes, rules, problems = _load(
        tmp_path,
        "  198.18.0.0/15 via 10.0.0.254 dev eth0 protocol static\n"
        "  198.20.0.0/15 via 10.0.0.254 dev eth0 protocol static no_track\n",
        "  from 10.0.0.1 table 100 priority 5 protocol 4\n"
        "  from 10.0.0.2 table 100 priority 6 protocol 4 no_track\n",
    )
    assert [(r.protocol, r.track) for r in routes] == [(18, True), (4, False)]
    assert [(r.protocol, r.track) for r in rules] == [(18, True), (4, False)]
    assert [p.message for p in problems] == [
        "route cannot be tracked if protocol is not keepalived (18): protocol set to 18 (no_track keeps it)",
        "rule cannot be tracked if protocol is not keepalived (18): protocol set to 18 (no_track keeps it)",
    ]


def test_route_metrics_with_locks_and_time_units(tmp_path: Path) -> None:
    (r,), _, problems = _load(
        tmp_path,
        "  198.18.0.0/15 via 10.0.0.254 dev eth0 mtu lock 1400 advmss 1300 rtt 300ms rttvar 1.5s rto_min lock"
        " 250ms reordering 5 window 1000 cwnd lock 10 ssthresh 20 initcwnd 11 initrwnd 21 hoplimit 9"
        " features ecn quickack 1 congctl lock reno fastopen_no_cookie 1 tos 0x10 realms 3/4 append\n",
    )
    assert not problems
    assert dict(r.metrics) == {
        16: "reno",
        4: 300 * 8,
        5: 1500 * 4,
        13: 250,
        12: 1,
        2: 1400,
        3: 1000,
        6: 20,
        7: 10,
        8: 1300,
        9: 5,
        10: 9,
        11: 11,
        14: 21,
        15: 1,
        17: 1,
    }
    assert [rtax for rtax, _ in r.metrics] == [16, 4, 5, 13, 12, 2, 3, 6, 7, 8, 9, 10, 11, 14, 15, 17]
    assert r.lock == 1 << 2 | 1 << 13 | 1 << 7 | 1 << 16
    assert (r.tos, r.realms, r.mode) == (0x10, 3 << 16 | 4, "append")
    msg = decoded_route(route_message(r, {"eth0": 3}.get))
    assert msg["tos"] == 0x10 and msg.get_attr("RTA_FLOW") == 3 << 16 | 4
    metrics = msg.get_attr("RTA_METRICS")
    assert metrics.get_attr("RTAX_MTU") == 1400 and metrics.get_attr("RTAX_RTT") == 2400
    assert metrics.get_attr("RTAX_CC_ALGO") == "reno" and metrics.get_attr("RTAX_LOCK") == r.lock


def test_rtt_values_are_clamped_as_keepalived_does(tmp_path: Path) -> None:
    (r,), _, problems = _load(tmp_path, "  198.18.0.0/15 dev eth0 rtt 130s rttvar 900 rto_min 100ms\n")
    assert dict(r.metrics) == {4: 120000 * 8, 5: 900, 13: 200}  # a bare number: the kernel's units
    assert [(p.message, p.severity) for p in problems] == [
        ("rtt value 130s exceeds maximum 120s, resetting", Severity.NOTE),
        ("rto_min value 100ms below minimum 200ms, resetting", Severity.NOTE),
    ]
    routes, _, problems = _load(tmp_path, "  198.18.0.0/15 dev eth0 rto_min 200s\n")
    assert routes == () and "invalid rto_min 200s" in problems[0].message  # beyond what keepalived reads


def test_ipv6_route_options(tmp_path: Path) -> None:
    (r,), _, problems = _load(
        tmp_path,
        "  2001:db8:5::/64 from 2001:db8:7::/64 via inet6 2001:db8::2 dev eth0 pref high expires 300"
        " ttl-propagate disabled add\n",
    )
    assert not problems
    assert (r.family, r.from_prefix, r.pref, r.expires, r.ttl_propagate, r.mode) == (
        6,
        ip_network("2001:db8:7::/64"),
        1,
        300,
        0,
        "add",
    )
    msg = decoded_route(route_message(r, {"eth0": 3}.get))
    assert msg["src_len"] == 64 and msg.get_attr("RTA_SRC") == "2001:db8:7::"
    assert msg.get_attr("RTA_PREF") == 1


def test_nexthops_and_the_deprecated_or(tmp_path: Path) -> None:
    (r, old), _, problems = _load(
        tmp_path,
        "  198.18.0.0/15 nexthop via 10.0.0.2 dev eth0 weight 2"
        " nexthop via 10.0.0.3 dev eth1 onlink realms 5\n"
        "  198.20.0.0/15 via 10.0.0.2 or 10.0.0.3\n",
    )
    assert [(h.via, h.dev, h.weight, h.onlink, h.realms) for h in r.nexthops] == [
        (ip_address("10.0.0.2"), "eth0", 2, False, None),
        (ip_address("10.0.0.3"), "eth1", None, True, 5),
    ]
    assert [h.via for h in old.nexthops] == [
        ip_address("10.0.0.2"),
        ip_address("10.0.0.3"),
    ] and old.via is None
    assert '"or" for routes is deprecated. Please use "nexthop"' in [p.message for p in problems]
    msg = decoded_route(route_message(r, {"eth0": 3, "eth1": 4}.get))
    hops = msg.get_attr("RTA_MULTIPATH")
    assert [(h["oif"], h["hops"], h["flags"], h.get_attr("RTA_GATEWAY")) for h in hops] == [
        (3, 1, 0, "10.0.0.2"),
        (4, 0, 4, "10.0.0.3"),
    ]


def test_encapsulations(tmp_path: Path) -> None:
    routes, _, problems = _load(
        tmp_path,
        "  198.18.0.0/15 dev eth0 encap ip id 5 dst 1.2.3.4 src 1.2.3.5 tos 0x10 ttl 7 flags 1 metric 3\n"
        "  2001:db8:8::/64 dev eth0 encap ip6 id 7 dst 2001:db8::99 tc 8 hoplimit 9\n"
        "  198.20.0.0/15 dev eth0 encap mpls 100/200\n"
        "  2001:db8:9::/64 dev eth0 encap ila 1:2:3:ffff\n",
    )
    assert not problems
    ip, ip6, mpls, ila = (r.encap for r in routes)
    assert (ip.type, ip.id, ip.dst, ip.src, ip.tos, ip.ttl, ip.flags) == (
        "ip",
        5,
        ip_address("1.2.3.4"),
        ip_address("1.2.3.5"),
        0x10,
        7,
        1,
    )
    assert routes[0].metric == 3  # the encap's options end where the route's resume
    assert (ip6.type, ip6.id, ip6.tos, ip6.ttl) == ("ip6", 7, 8, 9)
    assert mpls.labels == (100, 200) and ila.locator == 0x0001_0002_0003_FFFF
    body = route_message(routes[2], {"eth0": 3}.get)
    # RTA_ENCAP (22) holding MPLS_IPTUNNEL_DST: label 100, then 200 with the bottom-of-stack bit
    assert struct.pack("=HH", 12, 1) + struct.pack(">II", 100 << 12, 200 << 12 | 1 << 8) in body
    assert decoded_route(body).get_attr("RTA_ENCAP_TYPE") == 1


def test_rule_options(tmp_path: Path) -> None:
    _, rules, problems = _load(
        tmp_path,
        rules="  from 192.0.2.0/24 tos 0x10 realms 3/4 suppress_prefixlength 0 suppress_ifgroup 5 table 100"
        " priority 100\n"
        "  tunnel-id 77 uidrange 100-200 ipproto tcp sport 1000-2000 dport 80-80 iif eth0 lookup 100"
        " priority 101 no_track\n"
        "  l3mdev priority 102\n"
        "  inet6 ipproto 17 table 100 priority 103 protocol 18\n",
    )
    assert not problems
    a, b, c, d = rules
    assert (a.tos, a.realms, a.suppress_prefixlength, a.suppress_ifgroup) == (0x10, 3 << 16 | 4, 0, 5)
    assert (b.tunnel_id, b.uidrange, b.ip_proto, b.sport, b.dport, b.protocol) == (
        77,
        (100, 200),
        6,
        (1000, 2000),
        (80, 80),
        None,
    )
    assert c.l3mdev and c.action == "table" and c.table is None
    assert d.family == 6 and d.ip_proto == 17 and d.protocol == 18
    fib = rule_message(a)
    assert (fib["tos"], fib.get_attr("FRA_FLOW"), fib.get_attr("FRA_SUPPRESS_PREFIXLEN")) == (
        0x10,
        3 << 16 | 4,
        0,
    )
    fib = rule_message(b)
    assert fib.get_attr("FRA_TUN_ID") == 77 and fib.get_attr("FRA_PROTOCOL") is None
    fib = rule_message(c)
    assert fib["table"] == 0 and fib.get_attr("FRA_L3MDEV") == 1 and fib.get_attr("FRA_TABLE") is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "  from 10.0.0.1 realms 2 goto 300 priority 200\n",
            "suppressor/realm specified for non table action",
        ),
        ("  l3mdev table 100 priority 5\n", "cannot specify more than one of table"),
        ("  inet6 realms 2 table 100 priority 5\n", "realms is only valid for IPv4"),
        ("  uidrange 5 table 100 priority 5\n", "invalid uidrange 5"),
    ],
)
def test_bad_rules_are_reported_and_not_installed(tmp_path: Path, line: str, message: str) -> None:
    _, rules, problems = _load(tmp_path, rules=line)
    assert rules == ()
    assert any(message in p.message for p in problems), [p.message for p in problems]


def test_rule_values_keepalived_reports_and_drops_leave_the_rule(tmp_path: Path) -> None:
    """keepalived 2.2 reports an invalid protocol, ipproto or port range and installs the rule without it."""
    _, (rule,), problems = _load(
        tmp_path, rules="  ipproto 200 sport x table 100 priority 5 no_track protocol boot\n"
    )
    assert (rule.ip_proto, rule.sport, rule.protocol) == (None, None, None)
    assert [p.message for p in problems] == [
        "invalid ipproto 200",
        "invalid sport range x",
        "invalid protocol boot",
    ]


def test_inet6_sets_the_family_and_the_next_word_is_read(tmp_path: Path) -> None:
    """A documented difference: keepalived 2.2 skips the word after inet/inet6 (and so refuses these)."""
    (route,), (rule,), problems = _load(
        tmp_path, "  inet6 default dev eth0\n", "  inet6 from 2001:db8::/64 table 100 priority 5\n"
    )
    assert not problems
    assert route.family == 6 and route.dst == ip_network("::/0")
    assert rule.family == 6 and rule.src == ip_network("2001:db8::/64")


#: every word a route or rule line knows, and values of every shape they take
_WORDS = sorted({
    "inet", "inet6", "src", "from", "to", "via", "gw", "dev", "oif", "iif", "table", "lookup", "metric",
    "protocol", "scope", "tos", "dsfield", "onlink", "realms", "expires", "pref", "ttl-propagate", "mtu",
    "advmss", "rtt", "rttvar", "rto_min", "reordering", "window", "cwnd", "ssthresh", "initcwnd",
    "initrwnd", "hoplimit", "quickack", "fastopen_no_cookie", "features", "congctl", "lock", "add",
    "prepend", "append", "encap", "ip", "ip6", "mpls", "ila", "id", "ttl", "tc", "flags", "as", "or",
    "nexthop", "weight", "no_track", "blackhole", "unreachable", "not", "priority", "preference",
    "fwmark", "suppress_prefixlength", "suppress_ifgroup", "tunnel-id", "uidrange", "l3mdev", "ipproto",
    "sport", "dport", "goto", "nop", "type", "vrf", "track_group", "default",
    "10.0.0.1", "10.0.0.0/8", "2001:db8::1", "2001:db8::/32", "eth0", "0", "1", "255", "256", "-1",
    "4294967296", "18446744073709551616", "0x10", "1/2", "3/4/5", "1:2:3:4", "1-2", "5-", "300ms",
    "1.5s", "1e3", "²", "١٢", "tcp", "bogus", "a\x01b",
})


@pytest.mark.parametrize(("routes", "rules"), [
    ("", "  ipproto ²\u2082 table 100 priority 5\n"),  # digits Python's isdigit takes and int() refuses
    ("", "  protocol ² table 100 priority 5 no_track\n"),
])
def test_non_ascii_digits_are_reported_never_a_crash(tmp_path: Path, routes: str, rules: str) -> None:
    _, _, problems = _load(tmp_path, routes, rules)
    assert problems and all(p.location is not None for p in problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=12), st.booleans())
def test_any_route_or_rule_line_is_read_or_reported_never_a_crash(tmp_path: Path, words, rule) -> None:
    line = "  " + " ".join(words) + "\n"
    routes, rules, problems = _load(tmp_path, *(("", line) if rule else (line, "")))
    read = rules if rule else routes
    assert read or any(p.location is not None and p.location.line for p in problems)
    for item in read:  # whatever was read can be packed for the kernel
        if rule:
            rule_message(item).encode()
        else:
            route_message(item, lambda name: 3)
