"""``use_vmac`` beside keepalived 2.2.7: the same configuration run by kpd and by keepalived on two nodes
leaves the same kernel state -- a private macvlan ``vrrp.51`` with the virtual router MAC on both nodes, up,
no EUI-64 address, the VIPs on the MASTER's one, keepalived's sysctls (IPv4) or the base's link-local
address (IPv6), its nftables rules sending listener reports out of the base interface -- and the same wire:
adverts and gratuitous ARPs / NAs from the virtual MAC (from the base interface's MAC with
``vmac_xmit_base``). At stop the VMAC and its rules go. kpd used to ignore use_vmac (reported as not
implemented) and run the instance on the base interface.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from nodes import (
    KEEPALIVED,
    KPD,
    VRRP_FILTER,
    Daemon,
    Vrrp,
    kill_vrrp_child,
    open_lab,
    vip_present,
    wait_until,
)

from lab import Lab, VipSampler

pytestmark = pytest.mark.netns

VMAC = "vrrp.51"
MAC = {4: "00:00:5e:00:01:33", 6: "00:00:5e:00:02:33"}
ETHERTYPE = {4: "0800", 6: "86dd"}
#: keepalived's rule sending a VMAC's listener reports out of its base interface
DUP = 'meta oifkind "macvlan" dup to {ip} daddr device oif map @vmac_map drop'
SYSCTLS = ("arp_ignore", "arp_filter", "accept_local", "rp_filter", "promote_secondaries")


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a", "b"), "keepalived", "nft") as the_lab:
        yield the_lab


def vmac_conf(priority: int, family: int, *extra: str, state: str = "BACKUP") -> Vrrp:
    extra = ("use_vmac", *extra)
    return Vrrp(priority=priority, state=state, family=family, advert_int=0.5, instance_extra=extra)


def holds(lab: Lab, node: str, conf: Vrrp) -> bool:
    return vip_present(lab, node, conf.vip, VMAC)


def link(lab: Lab, node: str) -> dict[str, Any] | None:
    """What matters of the VMAC: kind, mode, MAC, base, flags, IPv6 address generation."""
    found = json.loads(lab.run(node, "ip", "-j", "-d", "link").stdout)
    for info in found:
        if info["ifname"] == VMAC:
            linkinfo = info.get("linkinfo", {})
            return {
                "kind": linkinfo.get("info_kind"),
                "mode": linkinfo.get("info_data", {}).get("mode"),
                "mac": info.get("address"),
                "link": info.get("link"),
                "up": "UP" in info.get("flags", []),
                "addrgenmode": info.get("inet6_addr_gen_mode"),
            }
    return None


def addresses(lab: Lab, node: str) -> list[tuple[str, int, bool]]:
    """(address, prefix, deprecated) on the VMAC."""
    found = json.loads(lab.run(node, "ip", "-j", "addr", "show", "dev", VMAC).stdout or "[]")
    infos = found[0].get("addr_info", []) if found else []
    return sorted((a["local"], a["prefixlen"], a.get("preferred_life_time") == 0) for a in infos)


def sysctls(lab: Lab, node: str, ifname: str) -> dict[str, str]:
    out = lab.run(node, "sh", "-c", f"cd /proc/sys/net/ipv4/conf/{ifname} && grep . {' '.join(SYSCTLS)}")
    return dict(line.split(":", 1) for line in out.stdout.split())


def ruleset(lab: Lab, node: str) -> str:
    return lab.run(node, "nft", "list", "ruleset").stdout


def senders(packets: list[Any], family: int) -> set[str]:
    """Source MACs of the VRRP-related frames of ``family`` on the bridge."""
    types = {ETHERTYPE[family]} | ({"0806"} if family == 4 else set())
    return {p.data[6:12].hex(":") for p in packets if p.data[12:14].hex() in types}


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_the_vmac_pair_leaves_keepalived_kernel_state_and_wire(lab: Lab, kind: str, family: int) -> None:
    master_conf = vmac_conf(200, family, state="MASTER")
    backup_conf = vmac_conf(100, family)
    before = sysctls(lab, "a", "eth0")
    a = Daemon(lab, "a", master_conf, kind=kind)
    b = Daemon(lab, "b", backup_conf, kind=kind)
    with lab.capture(filter=VRRP_FILTER) as cap:
        a.start()
        wait_until(lambda: holds(lab, "a", master_conf), 15, what="a MASTER on its VMAC")
        b.start()
        wait_until(lambda: link(lab, "b") is not None, 10, what="b's VMAC")
        time.sleep(1.5)  # b settles as BACKUP, a few adverts
        packets = cap.packets()
    for node in ("a", "b"):
        assert link(lab, node) == {
            "kind": "macvlan", "mode": "private", "mac": MAC[family], "link": "eth0", "up": True,
            "addrgenmode": "none",
        }
    assert holds(lab, "a", master_conf) and not holds(lab, "b", backup_conf)
    assert not vip_present(lab, "a", master_conf.vip, "eth0")
    own_ll = {4: [], 6: [(str(lab.link_local("a")), 64, True)]}[family]
    vip = (master_conf.vip, 24 if family == 4 else 64, False)
    assert addresses(lab, "a") == sorted([vip, *own_ll])
    if family == 4:
        assert sysctls(lab, "a", VMAC) == {
            "arp_ignore": "1", "arp_filter": "0", "accept_local": "1", "rp_filter": "0",
            "promote_secondaries": "1",
        }
        assert sysctls(lab, "a", "eth0") == {**before, "arp_ignore": "1", "arp_filter": "1"}
        expected_rules = [f'ip protocol igmp {DUP.format(ip="ip")}']
    else:
        expected_rules = [
            f'icmpv6 type mld2-listener-report {DUP.format(ip="ip6")}',
            'icmpv6 type nd-router-solicit meta oifkind "macvlan" oif @vmac_set drop',
        ]
    rules = ruleset(lab, "a")
    assert f'elements = {{ "{VMAC}" : "eth0" }}' in rules
    assert all(rule in rules for rule in expected_rules), rules
    assert senders(packets, family) == {MAC[family]}  # adverts and announcements: the virtual MAC only
    assert b.stop() == 0 and a.stop() == 0
    assert link(lab, "a") is None and link(lab, "b") is None
    assert "vmac_map" not in ruleset(lab, "a")
    if kind == KPD:
        # keepalived's man page: restored at stop (2.2.7 leaves arp_ignore/arp_filter set on the base)
        assert sysctls(lab, "a", "eth0") == before


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_vmac_xmit_base_sends_adverts_from_the_base_interface(lab: Lab, kind: str) -> None:
    conf = vmac_conf(200, 4, "vmac_xmit_base", state="MASTER")
    a = Daemon(lab, "a", conf, kind=kind)
    with lab.capture(filter="ip proto 112") as cap:
        a.start()
        wait_until(lambda: holds(lab, "a", conf), 15, what="a MASTER on its VMAC")
        time.sleep(1.2)
        packets = cap.packets()
    assert senders(packets, 4) == {lab.mac("a")}
    assert a.stop() == 0 and link(lab, "a") is None


@pytest.mark.parametrize("master_kind", [KPD, KEEPALIVED])
def test_kpd_and_keepalived_fail_over_on_their_vmacs(lab: Lab, master_kind: str) -> None:
    """Each VMAC receives the other node's adverts (same source MAC as its own); the backup takes over
    when the master stops, and hands back when it returns (preemption)."""
    backup_kind = KEEPALIVED if master_kind == KPD else KPD
    master_conf = vmac_conf(200, 4)
    backup_conf = vmac_conf(100, 4)
    a = Daemon(lab, "a", master_conf, kind=master_kind)
    b = Daemon(lab, "b", backup_conf, kind=backup_kind)
    a.start()
    wait_until(lambda: holds(lab, "a", master_conf), 15, what="a MASTER")
    b.start()
    time.sleep(2.5)  # b hears a through its VMAC: it stays BACKUP
    assert not holds(lab, "b", backup_conf)
    assert a.stop() == 0
    wait_until(lambda: holds(lab, "b", backup_conf), 5, what="b takes over")
    a.start()
    wait_until(lambda: holds(lab, "a", master_conf), 10, what="a preempts")
    wait_until(lambda: not holds(lab, "b", backup_conf), 5, what="b yields")




def test_a_killed_child_adopts_its_vmac_and_the_vip_never_leaves(lab: Lab) -> None:
    """SIGKILL of the VRRP child while MASTER on a VMAC: the successor adopts the interface (no second
    vrrp1.51) and resumes MASTER; the VIP, sampled every few milliseconds, never leaves it."""
    conf = vmac_conf(200, 4, state="MASTER")
    a = Daemon(lab, "a", conf, kind=KPD)
    a.start()
    wait_until(lambda: holds(lab, "a", conf), 15, what="a MASTER on its VMAC")
    index = json.loads(lab.run("a", "ip", "-j", "link", "show", VMAC).stdout)[0]["ifindex"]
    with VipSampler(lab, ("a",), conf.vip, ifname=VMAC) as vips:
        kill_vrrp_child(a)
        time.sleep(1.0)
    assert vips.holders_seen() == {("a",)}
    names = [x["ifname"] for x in json.loads(lab.run("a", "ip", "-j", "link").stdout)]
    assert sorted(names) == ["eth0", "lo", VMAC]
    assert json.loads(lab.run("a", "ip", "-j", "link", "show", VMAC).stdout)[0]["ifindex"] == index
    assert ruleset(lab, "a").count('"vrrp.51" : "eth0"') == 1
    assert a.stop() == 0 and link(lab, "a") is None


def arps_from(packets: list[Any], mac: str, after: float) -> list[float]:
    """When ARP frames from ``mac`` went by, from ``after`` on."""
    return [p.time for p in packets if p.data[12:14].hex() == "0806" and p.data[6:12].hex(":") == mac
            and p.time >= after]


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_garp_extra_if_refreshes_the_vips_interfaces_the_adverts_do_not(lab: Lab, kind: str) -> None:
    """With vmac_xmit_base the VMAC's MAC is never a source of adverts, nor is eth1's: 'garp_extra_if all 1'
    keeps both in the switches with a gratuitous ARP a second while MASTER (keepalived does it only when a
    VIP is on another interface than the instance's VMAC, as here)."""
    segment = lab.add_segment(["a"], ifname="eth1")
    extra = ("vmac_xmit_base", "garp_extra_if all 1", "garp_master_delay 0", "garp_master_repeat 1")
    conf = Vrrp(priority=200, state="MASTER", advert_int=0.5,
                vips=("192.0.2.100/24", "198.51.100.100/24 dev eth1"), instance_extra=("use_vmac", *extra))
    a = Daemon(lab, "a", conf, kind=kind)
    with lab.capture(filter="arp", segment=segment) as other, lab.capture(filter="arp") as own:
        a.start()
        wait_until(lambda: holds(lab, "a", conf), 15, what="a MASTER on its VMAC")
        became = time.time()
        time.sleep(4.6)
        on_other, on_own = other.packets(), own.packets()
    vmac_refreshes = arps_from(on_own, MAC[4], became + 0.5)
    for refreshes in (vmac_refreshes, arps_from(on_other, lab.mac("a", "eth1"), became + 0.5)):
        assert 3 <= len(refreshes) <= 5, refreshes  # one a second after the first burst
    assert a.stop() == 0


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_garp_extra_if_does_nothing_when_every_vip_is_on_the_instances_vmac(lab: Lab, kind: str) -> None:
    """keepalived 2.2.7 turns garp_extra_if off when no VIP is on another interface than the instance's
    VMAC, even with vmac_xmit_base; kpd does the same."""
    extra = ("vmac_xmit_base", "garp_extra_if all 1", "garp_master_delay 0", "garp_master_repeat 1")
    conf = vmac_conf(200, 4, *extra, state="MASTER")
    a = Daemon(lab, "a", conf, kind=kind)
    with lab.capture(filter="arp") as cap:
        a.start()
        wait_until(lambda: holds(lab, "a", conf), 15, what="a MASTER on its VMAC")
        became = time.time()
        time.sleep(2.6)
        packets = cap.packets()
    assert arps_from(packets, MAC[4], became + 0.5) == []
    assert a.stop() == 0


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_garp_extra_if_all_refreshes_the_other_interfaces_of_the_vips(lab: Lab, kind: str) -> None:
    """'all': the VIPs' other interfaces too (here eth1, not a VMAC); the instance's own is left to the
    adverts."""
    segment = lab.add_segment(["a"], ifname="eth1")
    conf = Vrrp(priority=200, state="MASTER", advert_int=0.5,
                vips=("192.0.2.100/24", "198.51.100.100/24 dev eth1"),
                instance_extra=("garp_extra_if all 1", "garp_master_delay 0", "garp_master_repeat 1"))
    a = Daemon(lab, "a", conf, kind=kind)
    with lab.capture(filter="arp", segment=segment) as other, lab.capture(filter="arp") as own:
        a.start()
        wait_until(lambda: vip_present(lab, "a", "198.51.100.100", "eth1"), 15, what="a MASTER")
        became = time.time()
        time.sleep(4.6)
        on_other, on_own = other.packets(), own.packets()
    refreshes = arps_from(on_other, lab.mac("a", "eth1"), became + 0.5)
    assert 3 <= len(refreshes) <= 5, refreshes
    assert arps_from(on_own, lab.mac("a"), became + 0.5) == []
    assert a.stop() == 0


@pytest.mark.parametrize("how", ["use_vmac_addr", "use_vmac on the line"])
@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_a_vip_on_another_interface_gets_a_vmac_of_its_own(lab: Lab, kind: str, how: str) -> None:
    """keepalived's address VMACs: the VIP on eth1 goes on a VMAC of eth1 (vrrp.51, the VRID's MAC), the
    instance's own VIP stays on eth0 (it has no use_vmac); both go at stop."""
    lab.add_segment(["a"], ifname="eth1")
    line = "198.51.100.100/24 dev eth1" + (" use_vmac" if how != "use_vmac_addr" else "")
    extra = ("use_vmac_addr",) if how == "use_vmac_addr" else ()
    conf = Vrrp(priority=200, state="MASTER", advert_int=0.5, vips=("192.0.2.100/24", line),
                instance_extra=extra)
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    wait_until(lambda: vip_present(lab, "a", "198.51.100.100", VMAC), 15, what="the VIP on eth1's VMAC")
    assert a.holds_vip()  # on eth0
    found = link(lab, "a")
    assert found is not None and {k: found[k] for k in ("kind", "mode", "mac", "link", "up")} == {
        "kind": "macvlan", "mode": "private", "mac": MAC[4], "link": "eth1", "up": True,
    }
    assert a.stop() == 0 and link(lab, "a") is None


def test_a_reload_that_restarts_a_vmac_instance_leaves_it_on_its_vmac(lab: Lab) -> None:
    """vmac_xmit_base makes it another virtual router: the instance restarts; its old VMAC is deleted before
    the new one is made (the same name), so the new one stays, with the VIP on it once MASTER again."""
    import os
    import signal
    from dataclasses import replace

    conf = vmac_conf(200, 4, state="MASTER")
    a = Daemon(lab, "a", conf, kind=KPD)
    a.start()
    wait_until(lambda: holds(lab, "a", conf), 15, what="a MASTER on its VMAC")
    a.conf = replace(conf, instance_extra=(*conf.instance_extra, "vmac_xmit_base"))
    a.write_config()
    assert a.proc is not None
    os.kill(a.proc.pid, signal.SIGHUP)
    wait_until(lambda: "reload: restarted" in a.log(current=True), 15, what="the instance restarted")
    wait_until(lambda: holds(lab, "a", conf), 15, what="MASTER again on its VMAC")
    time.sleep(1)
    assert link(lab, "a") is not None and holds(lab, "a", conf)
    assert a.stop() == 0 and link(lab, "a") is None
