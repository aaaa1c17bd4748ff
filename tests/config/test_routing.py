"""virtual_routes / virtual_rules lines read as keepalived reads them (vrrp_iproute.c, vrrp_iprule.c)."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from keepalived_py.config import Severity, load_config
from keepalived_py.vrrp.net.routes import route_message, rule_message


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
        ("  198.18.0.0/15 via 10.0.0.254 mtu 1400\n", "route option 'mtu' is not implemented by kpd"),
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
    msg = route_message(r, 7)
    assert (msg["table"], msg["proto"], msg["scope"], msg["dst_len"]) == (0, 18, 0, 24)
    assert msg.get_attr("RTA_TABLE") == 1000 and msg.get_attr("RTA_OIF") == 7
    assert msg.get_attr("RTA_GATEWAY") == "10.0.0.254" and msg.get_attr("RTA_PREFSRC") == "10.0.0.1"
    assert route_message(r, 7, delete=True)["scope"] == 255  # deletion matches any scope, as keepalived's
    fib = rule_message(rule)
    assert (fib["table"], fib["action"], fib["src_len"]) == (0, 1, 32)
    assert fib.get_attr("FRA_TABLE") == 1000 and fib.get_attr("FRA_PRIORITY") == 5
