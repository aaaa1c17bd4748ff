"""Notifications keepalived 2.2.7 sends that kpd used to send differently or not at all, beside keepalived:

- an instance removed by a reload notifies FAULT (keepalived's default, "the old way"), or DELETED with its
  ``notify_deleted`` script when that is set (kpd used to notify STOP);
- ``vrrp_notify_priority_changes``: a change of the effective priority writes ``MASTER_PRIORITY`` /
  ``BACKUP_PRIORITY`` lines to the notify FIFO (kpd did not know the keyword).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import replace

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, open_lab, vip_present, wait_until
from test_sync_group_interop import recorder

from lab import Lab

pytestmark = pytest.mark.netns


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        yield the_lab


def instance(name: str, vrid: int, vip: str, script: object, *extra: str) -> list[str]:
    return [
        f"vrrp_instance {name} {{",
        "    state BACKUP",
        "    interface eth0",
        f"    virtual_router_id {vrid}",
        "    priority 100",
        "    advert_int 0.5",
        f'    notify "{script}"',
        *(f"    {x}" for x in extra),
        "    virtual_ipaddress {",
        f"        {vip}/24",
        "    }",
        "}",
    ]


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_removed_instances_notify_fault_or_deleted_and_priority_changes_reach_the_fifo(
    lab: Lab, kind: str
) -> None:
    script, log = recorder(lab, "a")
    fifo = lab.workdir / "vrrp.fifo"
    fifo_log = lab.workdir / "fifo.log"
    fifo_log.touch()
    reader = lab.workdir / "scripts" / "fifo-reader"
    reader.write_text(f'#!/bin/sh\nfor last; do :; done\nexec cat "$last" >> {fifo_log}\n')
    os.chmod(reader, 0o755)
    level = lab.workdir / "level"
    level.write_text("0\n")
    common = dict(
        priority=100,
        advert_int=0.5,
        vips=("192.0.2.100/24",),
        global_extra=(
            "enable_script_security",
            "script_user root",
            f"vrrp_notify_fifo {fifo}",
            f'vrrp_notify_fifo_script "{reader}"',
            "vrrp_notify_priority_changes",
        ),
    )
    track = ["track_file level {", f"    file {level}", "    weight 10", "}"]
    vi3 = instance("VI_3", 53, "192.0.2.102", script, "track_file {", "    level", "}")
    first = Vrrp(
        **common,  # type: ignore[arg-type]
        instance_extra=(f'notify "{script}"',),
        trailer=(
            *instance("VI_2", 52, "192.0.2.101", script, f'notify_deleted "{script} deleted-VI_2"'),
            *track,  # before the instance tracking it (keepalived resolves names in reading order)
            *vi3,
        ),
    )
    a = Daemon(lab, "a", first, kind=kind)
    a.start()
    wait_until(
        lambda: all(vip_present(lab, "a", v) for v in ("192.0.2.100", "192.0.2.101", "192.0.2.102")),
        15,
        what="a masters VI_1, VI_2 and VI_3",
    )
    wait_until(lambda: 'INSTANCE "VI_1" MASTER 100' in fifo_log.read_text(), 5, what="FIFO lines read")

    level.write_text("2\n")  # VI_3: 100 + 2 * 10
    wait_until(
        lambda: 'INSTANCE "VI_3" MASTER_PRIORITY 120' in fifo_log.read_text(),
        10,
        what=f"the priority change in the FIFO: {fifo_log.read_text()}",
    )

    # reload: VI_2 removed, VI_1 another virtual router (VRID 54: removed and created), VI_3 kept as it is
    second = replace(first, vrid=54, vips=("192.0.2.103/24",), trailer=(*track, *vi3))
    a.conf = second
    a.write_config()
    assert a.proc is not None
    os.kill(a.proc.pid, signal.SIGHUP)
    wait_until(
        lambda: not vip_present(lab, "a", "192.0.2.100") and not vip_present(lab, "a", "192.0.2.101"),
        15,
        what="the removed instances release their addresses",
    )
    expected = {"INSTANCE VI_1 FAULT 100", "INSTANCE VI_2 DELETED 100", "deleted-VI_2"}
    wait_until(lambda: expected <= set(log.read_text().splitlines()), 10, what=f"notifies: {log.read_text()}")
    text = log.read_text().splitlines()
    assert not [x for x in text if "STOP" in x], text
    assert vip_present(lab, "a", "192.0.2.102")  # VI_3 untouched
    assert "INSTANCE VI_3 FAULT" not in text
    assert 'INSTANCE "VI_2" DELETED 100' in fifo_log.read_text()
