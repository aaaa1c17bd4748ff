"""A VRRP child SIGKILLed while MASTER with everything keepalived can put in the kernel -- a VMAC with the
VIPs on it, virtual routes and rules, the vrrp_strict nftables filter and the VMAC's listener-report rules
-- is replaced by a successor that resumes MASTER and leaves the kernel exactly as it was: nothing
duplicated, nothing lost (``ip -j link/addr/route/rule``, ``nft list ruleset``), and the VIP, sampled every
few milliseconds, never leaves.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from nodes import KPD, Daemon, Vrrp, kill_vrrp_child, open_lab, vip_present, wait_until

from lab import Lab, VipSampler

pytestmark = pytest.mark.netns

VMAC = "vrrp.51"


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "nft") as the_lab:
        yield the_lab




def kernel(lab: Lab) -> dict[str, Any]:
    """What the node's kernel holds, without what changes by itself (counters, lifetimes, statistics)."""

    def run(*args: str) -> Any:
        return json.loads(lab.run("a", *args).stdout or "[]")

    links = sorted(
        (x["ifname"], x.get("address"), tuple(x.get("flags", ()))) for x in run("ip", "-j", "link")
    )
    addrs = sorted((x["ifname"], a["local"], a["prefixlen"]) for x in run("ip", "-j", "addr")
                   for a in x.get("addr_info", ()))
    routes = sorted(json.dumps(r, sort_keys=True) for r in run("ip", "-j", "route", "show", "table", "all"))
    rules = sorted(json.dumps(r, sort_keys=True) for r in run("ip", "-j", "rule"))
    return {"links": links, "addrs": addrs, "routes": routes, "rules": rules,
            "nft": lab.run("a", "nft", "list", "ruleset").stdout}


def test_a_killed_child_leaves_vmac_routes_rules_and_filters_as_they_were(lab: Lab) -> None:
    conf = Vrrp(
        priority=200,  # not the address owner: strict mode filters its VIPs
        advert_int=1,
        global_extra=("vrrp_strict",),
        instance_extra=(
            "use_vmac",
            "virtual_routes {",
            "    198.51.100.0/24 via 192.0.2.254 dev eth0",
            "    203.0.113.0/24 dev eth0 scope link table 101",
            "}",
            "virtual_rules {",
            "    from 192.0.2.100/32 table 101 priority 100",
            "}",
        ),
    )
    a = Daemon(lab, "a", conf, kind=KPD)
    a.start()
    wait_until(lambda: vip_present(lab, "a", conf.vip, VMAC), 15, what="MASTER on the VMAC")
    wait_until(lambda: "vmac_map" in kernel(lab)["nft"] and "198.51.100.0/24" in str(kernel(lab)["routes"]),
               10, what="filters and routes in")
    time.sleep(1)
    before = kernel(lab)
    assert "@vips drop" in before["nft"] and '"vrrp.51" : "eth0"' in before["nft"]
    with VipSampler(lab, ("a",), conf.vip, ifname=VMAC) as vips:
        kill_vrrp_child(a)
        time.sleep(2)  # a few adverts later: whatever the successor re-asserted is in
    assert vips.holders_seen() == {("a",)}
    assert kernel(lab) == before
    assert a.stop() == 0
    after = kernel(lab)
    assert VMAC not in str(after["links"]) and after["nft"] == ""
    assert "198.51.100.0/24" not in str(after["routes"]) and "203.0.113.0/24" not in str(after["routes"])
