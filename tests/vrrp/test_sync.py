"""vrrp_sync_group: members move together; any member in FAULT faults the group."""

from __future__ import annotations

from ipaddress import IPv4Address

from keepalived_py.vrrp.fsm import Params, State, Vrrp
from keepalived_py.vrrp.sync import SyncGroup


def _member(name: str, prio: int = 100) -> Vrrp:
    return Vrrp(Params(name, 3, 1.0, prio, IPv4Address("10.0.0.1")))


def _started_group() -> tuple[SyncGroup, Vrrp, Vrrp]:
    a, b = _member("a"), _member("b")
    group = SyncGroup("G", [a, b])
    for m in (a, b):
        group.run(m, 0.0, lambda m=m: m.start(0.0))
    return group, a, b


def test_one_member_becoming_master_takes_the_group_to_master():
    group, a, b = _started_group()
    # a's down timer expires first
    group.run(a, a.deadline or 0.0, lambda: a.tick(a.deadline or 0.0))
    assert a.state is State.MASTER and b.state is State.MASTER
    assert group.state is State.MASTER


def test_one_member_hearing_a_higher_master_takes_the_group_to_backup():
    group, a, b = _started_group()
    t = a.deadline or 0.0
    group.run(a, t, lambda: a.tick(t))
    group.run(b, t + 0.5, lambda: b.advert(t + 0.5, IPv4Address("10.0.0.9"), 200, 1.0))
    assert a.state is State.BACKUP and b.state is State.BACKUP


def test_a_member_in_fault_faults_the_group_and_blocks_master():
    group, a, b = _started_group()
    t = a.deadline or 0.0
    group.run(a, t, lambda: a.tick(t))
    out = group.run(b, t + 1, lambda: b.set_fault(t + 1, True))
    assert b.state is State.FAULT and a.state is State.FAULT
    assert group.state is State.FAULT
    assert any(getattr(x, "priority", None) == 0 for x in out["a"])  # the master released with priority 0
    # a's timers cannot take it to MASTER while b is faulted
    for _ in range(5):
        if a.deadline is not None:
            d = a.deadline
            group.run(a, d, lambda d=d: a.tick(d))
    assert a.state is State.FAULT
    group.run(b, t + 20, lambda: b.set_fault(t + 20, False))
    assert a.state is State.BACKUP and b.state is State.BACKUP
