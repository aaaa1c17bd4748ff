"""``virtual_routes`` and ``virtual_rules`` beside keepalived 2.2.7: the same configuration on one node, run
by kpd and by keepalived; on becoming MASTER the kernel holds the same routes and rules (``ip -j route``,
``ip -j rule``: destination, gateway, device, table, metric, protocol, scope, type, source; preference,
selectors, table), and after a stop none of them (kpd used to parse the blocks and install nothing).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, kill_vrrp_child, open_lab, wait_until

from lab import Lab, VipSampler

pytestmark = pytest.mark.netns

ROUTES = (
    "src 192.0.2.100 198.51.100.0/24 via 192.0.2.254 dev eth0",
    "blackhole 203.0.113.0/24 no_track",
    "198.18.0.0/16 via 192.0.2.254 dev eth0 table 100 metric 7 no_track",
    "192.0.2.128/25 dev eth0 scope link table 101",
)
RULES = (
    "from 192.0.2.100/32 table 100 priority 100",
    "fwmark 7/0xff table 101 preference 200 no_track",
    "to 198.51.100.0/24 lookup main priority 300",
)
OURS = {"198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/16", "192.0.2.128/25"}

EXPECTED_ROUTES = [
    {"dst": "192.0.2.128/25", "dev": "eth0", "table": "101", "protocol": "keepalived", "scope": "link"},
    {"dst": "198.18.0.0/16", "gateway": "192.0.2.254", "dev": "eth0", "table": "100", "metric": 7,
     "protocol": "keepalived"},
    {"dst": "198.51.100.0/24", "gateway": "192.0.2.254", "dev": "eth0", "prefsrc": "192.0.2.100",
     "protocol": "keepalived"},
    {"dst": "203.0.113.0/24", "type": "blackhole", "protocol": "keepalived"},
]
EXPECTED_RULES = [
    {"priority": 100, "src": "192.0.2.100", "table": "100", "protocol": "keepalived"},
    {"priority": 200, "fwmark": "0x7", "fwmask": "0xff", "table": "101"},
    {"priority": 300, "dst": "198.51.100.0", "dstlen": 24, "table": "main", "protocol": "keepalived"},
]
ROUTE_KEYS = ("dst", "type", "gateway", "dev", "table", "metric", "protocol", "scope", "prefsrc")
RULE_KEYS = ("priority", "src", "dst", "dstlen", "fwmark", "fwmask", "table", "protocol")


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        yield the_lab


def routes(lab: Lab) -> list[dict[str, Any]]:
    found = json.loads(lab.run("a", "ip", "-j", "route", "show", "table", "all").stdout)
    out = []
    for r in found:
        if r.get("dst") not in OURS:
            continue
        r.setdefault("table", "main")
        if r.get("scope") == "global":
            del r["scope"]
        if r.get("type") == "unicast":
            del r["type"]
        item = {k: r[k] for k in ROUTE_KEYS if k in r}
        if item.get("table") == "main":
            del item["table"]
        out.append(item)
    return sorted(out, key=lambda r: r["dst"])


def rules(lab: Lab) -> list[dict[str, Any]]:
    found = json.loads(lab.run("a", "ip", "-j", "rule", "show").stdout)
    out = []
    for r in found:
        if r.get("priority") not in (100, 200, 300):
            continue
        item = {k: r[k] for k in RULE_KEYS if k in r and r[k] != "all"}
        if item.get("protocol") in (None, "unspec"):
            item.pop("protocol", None)
        out.append(item)
    return sorted(out, key=lambda r: r["priority"])


def routed() -> Vrrp:
    """One instance with ROUTES and RULES."""
    routes = ("virtual_routes {", *(f"    {r}" for r in ROUTES), "}")
    rules = ("virtual_rules {", *(f"    {r}" for r in RULES), "}")
    lines = (*routes, *rules)
    return Vrrp(priority=100, advert_int=0.5, instance_extra=lines)




@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_routes_and_rules_follow_the_master_state(lab: Lab, kind: str) -> None:
    conf = routed()
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    wait_until(lambda: a.holds_vip(), 15, what="a becomes MASTER")
    wait_until(lambda: len(routes(lab)) == len(EXPECTED_ROUTES), 5, what=f"routes: {routes(lab)}")
    assert routes(lab) == EXPECTED_ROUTES
    wait_until(lambda: len(rules(lab)) == len(EXPECTED_RULES), 5, what=f"rules: {rules(lab)}")
    assert rules(lab) == EXPECTED_RULES
    assert a.stop() == 0
    assert routes(lab) == [] and rules(lab) == []


def test_a_killed_child_leaves_routes_and_rules_neither_duplicated_nor_lost(lab: Lab) -> None:
    """SIGKILL of the VRRP child while MASTER: the parent restarts it resuming MASTER; the kernel keeps
    exactly the routes and rules it had (none added twice, none lost)."""
    conf = routed()
    a = Daemon(lab, "a", conf, kind=KPD)
    a.start()
    wait_until(lambda: a.holds_vip() and len(rules(lab)) == len(EXPECTED_RULES), 15, what="MASTER, rules in")
    kill_vrrp_child(a)
    time.sleep(1.5)  # a few adverts later: whatever the successor re-asserted is in
    assert routes(lab) == EXPECTED_ROUTES
    assert rules(lab) == EXPECTED_RULES
    assert a.stop() == 0
    assert routes(lab) == [] and rules(lab) == []


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_a_tracked_route_deleted_behind_the_masters_back_bounces_it(lab: Lab, kind: str) -> None:
    """keepalived (set_vrrp_backup): the MASTER drops to BACKUP for a Skew_Time and, alone, comes back, adding
    the route again; deleting a no_track route changes nothing."""
    conf = Vrrp(
        priority=100,
        advert_int=0.5,
        instance_extra=(
            "virtual_routes {",
            "    198.51.100.0/24 via 192.0.2.254 dev eth0",
            "    198.18.0.0/16 via 192.0.2.254 dev eth0 no_track",
            "}",
        ),
    )
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()

    def present(dst: str) -> bool:
        return any(r["dst"] == dst for r in json.loads(lab.run("a", "ip", "-j", "route").stdout))

    wait_until(lambda: a.holds_vip() and present("198.51.100.0/24"), 15, what="MASTER with its routes")
    lab.run("a", "ip", "route", "del", "198.18.0.0/16")
    time.sleep(1.0)
    assert a.holds_vip() and not present("198.18.0.0/16")  # no_track: nothing happens
    with VipSampler(lab, ("a",), "192.0.2.100") as vip:
        lab.run("a", "ip", "route", "del", "198.51.100.0/24")
        wait_until(lambda: present("198.51.100.0/24") and a.holds_vip(), 10, what="MASTER again, route back")
        time.sleep(0.2)
    assert () in vip.holders_seen(), "the instance left MASTER (its address went) before coming back"
    assert present("198.18.0.0/16"), "becoming MASTER again adds every route, the untracked one too"
    assert a.stop() == 0


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_a_route_the_kernel_refuses_is_reported_and_the_instance_stays_master(lab: Lab, kind: str) -> None:
    """keepalived 2.2.7 logs a refused route and carries on (netlink_rtlist's result is not acted on): the
    instance stays MASTER with its other routes. kpd does the same and names the line."""
    conf = Vrrp(
        priority=100,
        advert_int=0.5,
        instance_extra=(
            "virtual_routes {",
            "    198.51.100.0/24 via 203.0.113.1 dev eth0",  # gateway not on any link: refused
            "    198.18.0.0/16 via 192.0.2.254 dev eth0",
            "}",
        ),
    )
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    installed = lambda: {r["dst"] for r in routes(lab)}  # noqa: E731
    wait_until(lambda: a.holds_vip() and "198.18.0.0/16" in installed(), 15, what="MASTER")
    time.sleep(1.0)
    assert a.holds_vip() and a.running
    assert "198.51.100.0/24" not in installed()
    if kind == KPD:
        assert "virtual_routes at" in a.log() and "cannot add it" in a.log()
    assert a.stop() == 0


#: a line for every route option keepalived 2.2 installs (encap mpls and ila need kernel modules this
#: kernel lacks: keepalived and kpd alike are refused; their encoding is unit-tested)
EVERY_ROUTE_OPTION = (
    "198.19.0.0/16 via 192.0.2.254 dev eth0 mtu lock 1400 advmss 1300 rtt 300ms rttvar 200ms reordering 5"
    " window 1000 cwnd lock 10 ssthresh 20 rto_min 300ms initcwnd 10 initrwnd 20 features ecn quickack 1"
    " congctl lock reno fastopen_no_cookie 1 hoplimit 9 realms 3/4",
    "198.20.0.0/16 via 192.0.2.254 dev eth0 tos 0x10 metric 5 add",
    "198.21.0.0/16 nexthop via 192.0.2.254 dev eth0 weight 2 nexthop via 192.0.2.253 dev eth0 weight 5",
    "198.22.0.0/16 via 192.0.2.254 or 192.0.2.253 no_track",
    "198.23.0.0/16 dev eth0 encap ip id 5 dst 198.51.100.9 src 198.51.100.8 tos 0x20 flags 1",
    "198.24.0.0/16 dev eth0 protocol static",
    "198.25.0.0/16 dev eth0 protocol static no_track append",
    "unreachable 198.26.0.0/16 no_track",
    "2001:db8:5::/64 dev eth0 pref high expires 300",
    "2001:db8:6::/64 from 2001:db8:7::/64 dev eth0 metric 7",
    "2001:db8:8::/64 dev eth0 encap ip6 id 7 dst 2001:db8::99 tc 8 hoplimit 9",
)
EVERY_RULE_OPTION = (
    "from 192.0.2.0/24 tos 0x10 realms 3/4 table 100 priority 150",
    "suppress_prefixlength 0 table 100 priority 151",
    "suppress_ifgroup 5 table 100 priority 152",
    "tunnel-id 77 table 100 priority 153",
    "uidrange 100-200 table 100 priority 154",
    "l3mdev priority 155",
    "ipproto tcp sport 1000-2000 dport 80-90 table 100 priority 156",
    "iif eth0 protocol 4 table 100 priority 157 no_track",
    "oif eth0 fwmark 3 not table 100 priority 158",
    "from 2001:db8:7::/64 table 100 priority 159",
    "to 2001:db8:9::/64 ipproto udp table 100 priority 160",
)
OPTION_DSTS = {line.removeprefix("unreachable ").split()[0] for line in EVERY_ROUTE_OPTION}


def every_option(lab: Lab) -> dict[str, list[Any]]:
    """The kernel's routes and rules from EVERY_ROUTE_OPTION and EVERY_RULE_OPTION as iproute2 shows them
    (``ip -d``): routes as text (one entry per route, its nexthop lines included; the JSON form loses the
    destination of an encapsulated route to the encapsulation's), without the seconds an IPv6 route has
    left; rules as JSON."""
    out: dict[str, list[Any]] = {}
    for family in ("-4", "-6"):
        shown = lab.run("a", "ip", family, "-d", "route", "show", "table", "all").stdout
        blocks: list[str] = []
        for line in shown.splitlines():
            if line.startswith(("\t", " ")) and blocks:
                blocks[-1] += "\n" + line.strip()
            else:
                blocks.append(line.strip())
        ours = [b for b in blocks if b.split()[1:2] and b.split()[1] in OPTION_DSTS]
        found = [re.sub(r" expires \S+", "", b) for b in ours]
        out[f"route {family}"] = sorted(found)
        rules = json.loads(lab.run("a", "ip", family, "-d", "-j", "rule", "show").stdout)
        out[f"rule {family}"] = sorted((r for r in rules if 150 <= r["priority"] < 200), key=json.dumps)
    return out


def test_every_route_and_rule_option_is_installed_as_keepalived_installs_it(lab: Lab) -> None:
    """The same configuration under keepalived, then under kpd: on becoming MASTER the kernel holds the same
    routes and rules, option for option (metrics and their locks, realms, tos, nexthops, encapsulations,
    IPv6 source routes and preferences; rule selectors), and after a stop none of them."""
    conf = Vrrp(
        priority=100,
        advert_int=0.5,
        instance_extra=(
            "virtual_routes {", *(f"    {r}" for r in EVERY_ROUTE_OPTION), "}",
            "virtual_rules {", *(f"    {r}" for r in EVERY_RULE_OPTION), "}",
        ),
    )
    wanted = len(EVERY_ROUTE_OPTION) + len(EVERY_RULE_OPTION)
    seen = {}

    def count() -> int:
        return sum(len(v) for v in every_option(lab).values())

    for kind in (KEEPALIVED, KPD):
        a = Daemon(lab, "a", conf, kind=kind)
        a.start()
        try:
            wait_until(lambda: a.holds_vip() and count() == wanted, 15,  # noqa: B023
                       what="MASTER with every route and rule")
        except AssertionError as err:
            found = every_option(lab)
            routes = {r.split()[1] for r in found["route -4"] + found["route -6"]}
            rules = {r["priority"] for r in found["rule -4"] + found["rule -6"]}
            raise AssertionError(f"{kind}: {err}: routes missing {sorted(OPTION_DSTS - routes)}, "
                                 f"rules found {sorted(rules)}") from None
        seen[kind] = every_option(lab)
        assert a.stop() == 0
        assert count() == 0, every_option(lab)
    assert seen[KPD] == seen[KEEPALIVED]
    # the options are in the kernel, not only equally absent
    routes = {r.split()[1]: r for r in seen[KPD]["route -4"] + seen[KPD]["route -6"]}
    assert "mtu lock 1400" in routes["198.19.0.0/16"] and "congctl lock reno" in routes["198.19.0.0/16"]
    assert routes["198.21.0.0/16"].count("nexthop via") == 2 and "weight 5" in routes["198.21.0.0/16"]
    assert "encap ip id 5" in routes["198.23.0.0/16"] and "proto keepalived" in routes["198.24.0.0/16"]
    assert "proto static" in routes["198.25.0.0/16"] and "from 2001:db8:7::/64" in routes["2001:db8:6::/64"]
    assert "encap ip6 id 7" in routes["2001:db8:8::/64"] and "pref high" in routes["2001:db8:5::/64"]
    rules = {r["priority"]: r for r in seen[KPD]["rule -4"] + seen[KPD]["rule -6"]}
    assert rules[156]["ipproto"] == "tcp" and rules[154]["uid_start"] == 100, rules
