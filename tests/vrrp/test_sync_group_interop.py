"""vrrp_sync_group beside keepalived 2.2.7: one configuration, node b run by kpd or by keepalived.

Node a (keepalived, priority 200, ``state MASTER``) masters a sync group G of VI_1 (VRID 51) and VI_2
(VRID 52); node b (priority 100) is the backup under test. Every instance and the group have notify_master /
notify_backup / notify_fault and ``notify`` scripts that record their arguments, so the test sees every
notification b runs. The expectations are keepalived's (the keepalived case shows they are), and kpd must
meet the same:

- adverts of VI_2 only are lost at b (its link drops VRID 52): keepalived's vrrp_sync_can_goto_master keeps
  the group in BACKUP because VI_1 still hears its master; nothing happens on b, not one notification, and b
  never holds either address (sampled every few milliseconds);
- the master dies: b's group takes both addresses within Master_Down_Interval (plus slack), and b runs the
  group's notifications *and* each member's own.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, open_lab, start_all, vip_present, wait_until

from lab import Lab, VipSampler

pytestmark = pytest.mark.netns

ADV = 0.5
VIP1, VIP2 = "192.0.2.100", "192.0.2.101"
#: iptables u32: the VRID (second byte of the VRRP header, after an IP header of IHL words) is 52
VRID_52 = "0>>22&0x3C@0>>16&0xFF=52"
#: Master_Down_Interval of b (priority 100) at ADV, VRRPv3
MDI = 3 * ADV + (256 - 100) * ADV / 256


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a", "b"), "keepalived") as the_lab:
        yield the_lab


def recorder(lab: Lab, node: str) -> tuple[Path, Path]:
    """A notify script for ``node`` that appends its arguments as one line to a log; (script, log)."""
    scripts = lab.workdir / "scripts"  # root-owned 0755 under a root-owned 0700 dir under sticky /tmp
    scripts.mkdir(mode=0o755, exist_ok=True)
    log = lab.workdir / f"notify-{node}.log"
    log.touch()
    script = scripts / f"record-{node}"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {log}\n")
    os.chmod(script, 0o755)
    return script, log


def notifies(script: Path, who: str) -> list[str]:
    return [
        f'notify_master "{script} {who}-master"',
        f'notify_backup "{script} {who}-backup"',
        f'notify_fault "{script} {who}-fault"',
        f'notify "{script}"',
    ]


def group_conf(priority: int, state: str, script: Path) -> Vrrp:
    vi2 = [
        "vrrp_instance VI_2 {",
        f"    state {state}",
        "    interface eth0",
        "    virtual_router_id 52",
        f"    priority {priority}",
        f"    advert_int {ADV:g}",
        *(f"    {line}" for line in notifies(script, "VI_2")),
        "    virtual_ipaddress {",
        f"        {VIP2}/24",
        "    }",
        "}",
    ]
    group = [
        "vrrp_sync_group G {",
        "    group {",
        "        VI_1",
        "        VI_2",
        "    }",
        *(f"    {line}" for line in notifies(script, "G")),
        "}",
    ]
    return Vrrp(
        priority=priority,
        state=state,
        advert_int=ADV,
        vips=(f"{VIP1}/24",),
        global_extra=("enable_script_security", "script_user root"),
        instance_extra=tuple(notifies(script, "VI_1")),
        trailer=(*vi2, *group),
    )


def lines(log: Path) -> Counter[str]:
    return Counter(log.read_text().splitlines())


def expected(state: str, priority: int) -> Counter[str]:
    low = state.lower()
    return Counter(
        [
            f"VI_1-{low}",
            f"INSTANCE VI_1 {state} {priority}",
            f"VI_2-{low}",
            f"INSTANCE VI_2 {state} {priority}",
            f"G-{low}",
            f"GROUP G {state} 0",
        ]
    )


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_adverts_lost_on_one_members_link_change_nothing_and_the_group_fails_over_whole(
    lab: Lab, kind: str
) -> None:
    script_a, _ = recorder(lab, "a")
    script_b, log_b = recorder(lab, "b")
    a = Daemon(lab, "a", group_conf(200, "MASTER", script_a), kind=KEEPALIVED)
    b = Daemon(lab, "b", group_conf(100, "BACKUP", script_b), kind=kind)
    start_all(a, b)
    wait_until(
        lambda: vip_present(lab, "a", VIP1) and vip_present(lab, "a", VIP2), 10 + 4 * MDI, what="a masters G"
    )
    at_start = expected("BACKUP", 100)
    wait_until(lambda: lines(log_b) == at_start, 10, what=f"b ran its BACKUP notifications: {lines(log_b)}")

    drop = ("INPUT", "-p", "112", "-m", "u32", "--u32", VRID_52, "-j", "DROP")
    lab.run("b", "iptables", "-w", "-I", *drop)
    try:
        with VipSampler(lab, ("a", "b"), VIP1) as vi1, VipSampler(lab, ("a", "b"), VIP2) as vi2:
            time.sleep(4 * MDI)  # VI_2's down timer expires at b four times over
    finally:
        lab.run("b", "iptables", "-w", "-D", *drop)
    assert vi1.holders_seen() == {("a",)} and vi2.holders_seen() == {("a",)}
    assert max(vi1.largest_gap(), vi2.largest_gap()) < 0.5, "the sampling really ran every few ms"
    assert lines(log_b) == at_start, "b ran notifications while its group stayed BACKUP"

    time.sleep(3 * ADV)  # b hears VI_2's master again
    a.kill()
    killed = time.monotonic()
    wait_until(
        lambda: vip_present(lab, "b", VIP1) and vip_present(lab, "b", VIP2),
        MDI + 3,
        what="b's group takes over from the dead master",
    )
    took = time.monotonic() - killed
    assert took > MDI - ADV - 0.05, f"b took over after {took:.2f} s, before its Master_Down_Interval"
    after = at_start + expected("MASTER", 100)
    wait_until(
        lambda: lines(log_b) == after, 10, what=f"b ran group and member notifications: {lines(log_b)}"
    )
    time.sleep(2 * ADV)
    assert lines(log_b) == after
