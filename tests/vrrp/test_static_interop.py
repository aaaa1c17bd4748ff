"""``static_ipaddress``, ``static_routes`` and ``static_rules`` beside keepalived 2.2.7: installed at start
whatever the VRRP state and removed at stop; a static route deleted behind the daemon's back stays deleted
(keepalived watches static routes only with a track_group). kpd used to report the blocks as not implemented
and install nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, open_lab, wait_until

from lab import Lab

pytestmark = pytest.mark.netns

STATIC = (
    "static_ipaddress {",
    "    192.0.2.200/24 dev eth0",
    "}",
    "static_routes {",
    "    198.51.100.0/24 via 192.0.2.254 dev eth0",
    "    198.18.0.0/16 via 192.0.2.254 dev eth0 no_track",
    "}",
    "static_rules {",
    "    from 192.0.2.200 table 100 priority 100",
    "}",
)


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        yield the_lab


def state(lab: Lab) -> tuple[bool, set[str], set[int]]:
    addrs = {a["local"] for a in lab.addresses("a", "eth0") if "local" in a}
    routes = {r["dst"] for r in json.loads(lab.run("a", "ip", "-j", "route").stdout)}
    rules = {r["priority"] for r in json.loads(lab.run("a", "ip", "-j", "rule").stdout)}
    return "192.0.2.200" in addrs, routes & {"198.51.100.0/24", "198.18.0.0/16"}, rules & {100}


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_static_entries_live_with_the_daemon(lab: Lab, kind: str) -> None:
    # a higher-priority peer that never exists is not needed: the entries do not depend on the state
    conf = Vrrp(priority=100, advert_int=0.5, trailer=STATIC)
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    full = (True, {"198.51.100.0/24", "198.18.0.0/16"}, {100})
    wait_until(lambda: state(lab) == full, 10, what=f"static entries installed: {state(lab)}")
    lab.run("a", "ip", "route", "del", "198.51.100.0/24")
    time.sleep(1.5)
    assert state(lab) == (True, {"198.18.0.0/16"}, {100})
    assert a.stop() == 0
    assert state(lab) == (False, set(), set())


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_a_deleted_static_route_comes_back_while_virtual_routes_are_watched(lab: Lab, kind: str) -> None:
    """With a tracked virtual route keepalived watches route deletions, and then adds a deleted tracked
    static route again (reinstate_static_route); a no_track one stays deleted."""
    conf = Vrrp(
        priority=100,
        advert_int=0.5,
        instance_extra=("virtual_routes {", "    203.0.113.0/24 via 192.0.2.254 dev eth0", "}"),
        trailer=STATIC,
    )
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    full = (True, {"198.51.100.0/24", "198.18.0.0/16"}, {100})
    wait_until(lambda: state(lab) == full, 10, what=f"static entries installed: {state(lab)}")
    lab.run("a", "ip", "route", "del", "198.18.0.0/16")  # no_track
    lab.run("a", "ip", "route", "del", "198.51.100.0/24")
    wait_until(
        lambda: state(lab) == (True, {"198.51.100.0/24"}, {100}), 10, what=f"tracked route back: {state(lab)}"
    )
    assert a.stop() == 0
    assert state(lab) == (False, set(), set())
