"""Start-up beside keepalived 2.2.7: the same configuration run alone on one node by kpd and by keepalived.

- ``state MASTER`` with priority below 255 starts BACKUP and takes over after a whole Master_Down_Interval
  (keepalived's vrrp_init_state; kpd used to take over after one advert interval, racing a live master);
- an instance (here in a sync group) tracking a weight-0 vrrp_script that has no result yet is held silently
  until the first result: no FAULT and no fault notification (kpd used to enter FAULT, run notify_fault and
  the group's ``GROUP G FAULT``, then BACKUP, within milliseconds of start).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Script, Vrrp, open_lab, vip_present, wait_until
from test_sync_group_interop import VIP1, VIP2, group_conf, lines, recorder

from lab import Lab

pytestmark = pytest.mark.netns


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        yield the_lab


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_state_master_below_255_takes_over_after_master_down_interval(lab: Lab, kind: str) -> None:
    conf = Vrrp(priority=100, state="MASTER", advert_int=1.0)
    a = Daemon(lab, "a", conf, kind=kind)
    started = time.monotonic()
    a.start()
    wait_until(lambda: vip_present(lab, "a", conf.vip), 15, interval=0.01, what="a becomes MASTER")
    took = time.monotonic() - started
    mdi = conf.master_down_interval()  # 3.61 s; one advert interval plus the minimal skew would be 1.004 s
    assert took >= mdi - 0.05, f"MASTER {took:.2f} s after start, before Master_Down_Interval {mdi:.2f} s"


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_pending_weight_0_script_holds_the_instance_without_fault(lab: Lab, kind: str) -> None:
    script, log = recorder(lab, "a")
    slow = lab.workdir / "scripts" / "slow-ok"
    slow.write_text("#!/bin/sh\nsleep 1.5\nexit 0\n")
    slow.chmod(0o755)
    conf = group_conf(100, "BACKUP", script)
    check = Script("chk_slow", str(slow), weight=0, interval=5)
    # render() adds enable_script_security and script_user root with the scripts
    a = Daemon(lab, "a", replace(conf, scripts=(check,), global_extra=()), kind=kind)
    a.start()
    backup = Counter(
        [
            "VI_1-backup",
            "INSTANCE VI_1 BACKUP 100",
            "VI_2-backup",
            "INSTANCE VI_2 BACKUP 100",
            "G-backup",
            "GROUP G BACKUP 0",
        ]
    )
    master = Counter(
        [
            "VI_1-master",
            "INSTANCE VI_1 MASTER 100",
            "VI_2-master",
            "INSTANCE VI_2 MASTER 100",
            "G-master",
            "GROUP G MASTER 0",
        ]
    )
    wait_until(
        lambda: vip_present(lab, "a", VIP1) and vip_present(lab, "a", VIP2), 20, what="a masters G alone"
    )
    wait_until(lambda: lines(log) == backup + master, 10, what=f"a's notifications: {lines(log)}")
    time.sleep(0.5)
    assert lines(log) == backup + master, "no FAULT, nothing twice"


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_notify_script_runs_as_the_user_and_group_named_after_it(lab: Lab, kind: str) -> None:
    """``notify_master "/path/script hello" nobody nogroup``: keepalived runs ``/path/script hello`` as
    nobody:nogroup (kpd used to run ``/path/script hello nobody nogroup`` as root)."""
    import shutil
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="kpd-notify-user-"))  # root-owned 0755, nobody can reach it
    try:
        where.chmod(0o755)
        log = where / "log"
        log.touch()
        shutil.chown(log, "nobody", "nogroup")
        script = where / "who"
        script.write_text(f'#!/bin/sh\nprintf "%s:%s %s\\n" "$(id -un)" "$(id -gn)" "$*" >> {log}\n')
        script.chmod(0o755)
        conf = Vrrp(
            priority=100,
            advert_int=0.5,
            global_extra=("enable_script_security",),
            instance_extra=(f'notify_master "{script} hello" nobody nogroup',),
        )
        a = Daemon(lab, "a", conf, kind=kind)
        a.start()
        wait_until(lambda: log.read_text(), 15, what="notify_master ran")
        time.sleep(0.3)
        assert log.read_text() == "nobody:nogroup hello\n"
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_vrrp_startup_delay_postpones_the_takeover(lab: Lab, kind: str) -> None:
    conf = Vrrp(priority=100, advert_int=0.5, global_extra=("vrrp_startup_delay 3",))
    a = Daemon(lab, "a", conf, kind=kind)
    started = time.monotonic()
    a.start()
    wait_until(lambda: vip_present(lab, "a", conf.vip), 20, interval=0.01, what="a becomes MASTER")
    took = time.monotonic() - started
    mdi = conf.master_down_interval()  # 1.8 s
    assert took >= 3 + mdi - 0.05, f"MASTER {took:.2f} s after start, before the delay plus {mdi:.2f} s"
