"""vrrp_sync_group: members move together; MASTER only when every member wants it (keepalived's
vrrp_sync_can_goto_master); any member in FAULT faults the group."""

from __future__ import annotations

from ipaddress import IPv4Address

from keepalived_py.vrrp.fsm import Params, Reason, State, Transition, Vrrp, master_down_interval, skew_time
from keepalived_py.vrrp.sync import SyncGroup

MASTER_PEER = IPv4Address("10.0.0.9")


def _member(name: str, prio: int = 100, *, start_as_master: bool = False) -> Vrrp:
    return Vrrp(Params(name, 3, 1.0, prio, IPv4Address("10.0.0.1"), start_as_master=start_as_master))


def _expire(group: SyncGroup, m: Vrrp) -> float:
    """Run ``m``'s next timer; the time it ran at."""
    t = m.deadline
    assert t is not None
    group.run(m, t, lambda: m.tick(t))
    return t


def _transitions(out: dict[str, list]) -> dict[str, list[State]]:
    return {name: [a.new for a in acts if isinstance(a, Transition)] for name, acts in out.items()}


def _started_group() -> tuple[SyncGroup, Vrrp, Vrrp]:
    a, b = _member("a"), _member("b")
    group = SyncGroup("G", [a, b])
    for m in (a, b):
        group.run(m, 0.0, lambda m=m: m.start(0.0))
    return group, a, b


def _master(group: SyncGroup, a: Vrrp, b: Vrrp) -> float:
    """No master anywhere: both down timers expire and the group goes MASTER; the time it did."""
    _expire(group, a)
    return _expire(group, b)


def test_group_goes_master_when_the_last_members_timer_expires():
    group, a, b = _started_group()
    t = _expire(group, a)
    # a wants MASTER, but b still hears (or waits for) its master: the group prefers BACKUP
    assert a.state is State.BACKUP and b.state is State.BACKUP
    assert a.wants_master and not b.wants_master
    assert a.deadline == t + master_down_interval(3, 100, 1.0)  # re-armed, still waiting
    out = group.run(b, b.deadline or 0.0, lambda: b.tick(b.deadline or 0.0))
    assert a.state is State.MASTER and b.state is State.MASTER
    assert group.state is State.MASTER
    assert _transitions(out) == {"b": [State.MASTER], "a": [State.MASTER]}
    assert a.last_reason is Reason.SYNC_GROUP


def test_adverts_lost_on_one_members_link_only_change_nothing():
    """keepalived's vrrp_sync_can_goto_master: a member that stops hearing its master while the other still
    hears it stays BACKUP (no flapping, no notifications, no addresses), however long it lasts."""
    group, a, b = _started_group()
    t = 0.0
    outs = []
    while t < 60.0:
        t += 1.0
        # b hears the master every second; a hears nothing (its link drops the adverts)
        outs.append(group.run(b, t, lambda t=t: b.advert(t, MASTER_PEER, 200, 1.0)))
        while a.deadline is not None and a.deadline <= t:
            d = a.deadline
            outs.append(group.run(a, d, lambda d=d: a.tick(d)))
    assert a.state is State.BACKUP and b.state is State.BACKUP
    assert a.wants_master and not b.wants_master
    assert all(not acts for out in outs for acts in out.values())  # not one action: no advert, no transition
    # the master dies: b's timer expires, and the group takes over at once (a wanted it all along)
    d = b.deadline or 0.0
    assert d == t + master_down_interval(3, 100, 1.0)
    _expire(group, b)
    assert a.state is State.MASTER and b.state is State.MASTER


def test_a_member_that_hears_its_master_again_stops_wanting_master():
    group, a, b = _started_group()
    _expire(group, a)
    assert a.wants_master
    group.run(a, 4.0, lambda: a.advert(4.0, MASTER_PEER, 200, 1.0))
    assert not a.wants_master
    _expire(group, b)  # b's timer alone cannot take the group to MASTER now
    assert a.state is State.BACKUP and b.state is State.BACKUP


def test_state_master_members_wait_one_interval_then_go_together():
    """keepalived vrrp_init_state: a sync group that is not MASTER starts a `state MASTER` member with a down
    timer of one advert interval plus the minimal skew; all members wanting MASTER, the group goes."""
    a, b = _member("a", 200, start_as_master=True), _member("b", 200, start_as_master=True)
    group = SyncGroup("G", [a, b])
    for m in (a, b):
        group.run(m, 0.0, lambda m=m: m.start(0.0))
    assert a.deadline == 1.0 + skew_time(3, 255, 1.0)
    _expire(group, a)
    assert a.state is State.MASTER and b.state is State.MASTER


def test_one_state_master_member_alone_cannot_take_the_group():
    a, b = _member("a", 200, start_as_master=True), _member("b", 200)
    group = SyncGroup("G", [a, b])
    for m in (a, b):
        group.run(m, 0.0, lambda m=m: m.start(0.0))
    _expire(group, a)
    assert a.state is State.BACKUP and b.state is State.BACKUP
    _expire(group, b)
    assert a.state is State.MASTER and b.state is State.MASTER


def test_one_member_hearing_a_higher_master_takes_the_group_to_backup():
    group, a, b = _started_group()
    t = _master(group, a, b)
    group.run(b, t + 0.5, lambda: b.advert(t + 0.5, IPv4Address("10.0.0.9"), 200, 1.0))
    assert a.state is State.BACKUP and b.state is State.BACKUP


def test_a_member_in_fault_faults_the_group_and_blocks_master():
    group, a, b = _started_group()
    t = _master(group, a, b)
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


def test_a_member_resumed_as_master_after_a_child_restart_wants_master():
    """A restarted child resumes its MASTERs (no flap); they want MASTER as any MASTER does, so the group's
    gate sees them as keepalived's wantstate would."""
    a, b = _member("a"), _member("b")
    group = SyncGroup("G", [a, b])
    group.run(a, 0.0, lambda: a.start(0.0, resume_master=True))
    assert a.state is State.MASTER and a.wants_master
