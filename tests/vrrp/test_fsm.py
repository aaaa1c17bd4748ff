"""The VRRP state machine on a fake link with a fake clock: elections, timers, preemption, faults."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from fsm_harness import Link

from keepalived_py.vrrp.fsm import (
    AddAddresses,
    Announce,
    Params,
    Reason,
    RemoveAddresses,
    SendAdvert,
    State,
    Transition,
    Vrrp,
    clamp_priority,
    master_down_interval,
    skew_time,
)

CS = 0.01  # timers are checked to one centisecond


def test_skew_time_follows_rfc_formulas():
    assert skew_time(3, 100, 1.0) == pytest.approx(156 / 256)
    assert skew_time(3, 200, 0.1) == pytest.approx(56 * 0.1 / 256)
    # VRRPv2 (RFC 3768): the skew does not scale with the advert interval
    assert skew_time(2, 100, 3.0) == pytest.approx(156 / 256)
    assert master_down_interval(3, 100, 1.0) == pytest.approx(3 + 156 / 256)


def test_effective_priority_is_clamped_and_owner_never_moves():
    assert clamp_priority(100, 50) == 150
    assert clamp_priority(100, 200) == 254
    assert clamp_priority(100, -150) == 1
    assert clamp_priority(255, -50) == 255


def test_single_backup_becomes_master_after_master_down_interval():
    link = Link()
    a = link.add("a", 100, "10.0.0.1")
    link.start()
    assert a.state is State.BACKUP
    expected = master_down_interval(3, 100, 1.0)
    link.run_for(expected - CS)
    assert a.state is State.BACKUP
    link.run_for(2 * CS)
    assert a.state is State.MASTER
    t_master = next(t for t, old, new in a.transitions() if new is State.MASTER)
    assert t_master == pytest.approx(expected, abs=CS)


def test_becoming_master_sends_advert_then_adds_addresses_then_announces():
    link = Link()
    a = link.add("a", 100, "10.0.0.1")
    link.start()
    link.run_for(5)
    kinds = [type(act) for _, act in a.log if not isinstance(act, Transition)]
    first = kinds.index(SendAdvert)
    assert kinds[first : first + 3] == [SendAdvert, AddAddresses, Announce]


def test_higher_priority_wins_election_and_backup_never_holds_vip():
    link = Link()
    link.add("a", 150, "10.0.0.1")
    link.add("b", 100, "10.0.0.2")
    link.start()
    link.run_for(30)
    assert link.masters() == ["a"]
    assert link.vip_holders() == ["a"]
    assert link.violations == []


def test_equal_priority_is_broken_by_the_higher_primary_address():
    link = Link()
    link.add("a", 100, "10.0.0.1")
    link.add("b", 100, "10.0.0.2")
    link.start()
    link.run_for(30)
    assert link.masters() == ["b"]


def test_address_owner_becomes_master_at_once():
    link = Link()
    o = link.add("o", 255, "10.0.0.1")
    link.start()
    assert o.state is State.MASTER
    assert o.transitions()[0][0] == 0.0
    assert o.machine.last_reason is Reason.ADDRESS_OWNER


def test_state_master_below_255_waits_a_whole_master_down_interval():
    """keepalived (vrrp_init_state / try_up_instance): only the address owner starts MASTER; `state MASTER`
    below 255 starts BACKUP like any backup, so a live master's next advert is always heard first."""
    link = Link()
    a = link.add("a", 100, "10.0.0.1", start_as_master=True)
    link.start()
    assert a.state is State.BACKUP
    link.run_for(1.0 + skew_time(3, 255, 1.0) + CS)
    assert a.state is State.BACKUP
    link.run_for(master_down_interval(3, 100, 1.0) - (1.0 + skew_time(3, 255, 1.0)))
    assert a.state is State.MASTER
    assert a.transitions()[-1][0] == pytest.approx(master_down_interval(3, 100, 1.0), abs=CS)


def test_backup_takes_over_after_master_down_interval_when_master_dies():
    link = Link()
    a = link.add("a", 150, "10.0.0.1")
    b = link.add("b", 100, "10.0.0.2")
    link.start()
    link.run_for(10)
    last_advert = max(t for t, p in a.sent)
    a.machine.state = State.STOP  # crash: silent, no priority 0
    a.machine._clear_timers()
    link.run_for(10)
    assert b.state is State.MASTER
    t_master = [t for t, old, new in b.transitions() if new is State.MASTER][-1]
    assert t_master - last_advert == pytest.approx(master_down_interval(3, 100, 1.0), abs=CS)


def test_backup_hearing_priority_zero_takes_over_after_skew_time():
    link = Link()
    link.add("a", 150, "10.0.0.1")
    b = link.add("b", 100, "10.0.0.2")
    link.start()
    link.run_for(10)
    t_stop = link.now
    link.call("a", "stop")
    link.run_for(5)
    assert b.state is State.MASTER
    t_master = [t for t, old, new in b.transitions() if new is State.MASTER][-1]
    assert t_master - t_stop == pytest.approx(skew_time(3, 100, 1.0), abs=CS)
    assert b.machine.last_reason is Reason.PRIORITY_ZERO


def test_higher_priority_backup_preempts_lower_master():
    link = Link()
    link.add("low", 100, "10.0.0.1")
    link.start("low")
    link.run_for(10)
    link.add("high", 200, "10.0.0.2")
    link.start("high")
    link.run_for(10)
    assert link.masters() == ["high"]
    assert link.violations == []


def test_nopreempt_backup_does_not_take_over_from_lower_master():
    link = Link()
    link.add("low", 100, "10.0.0.1")
    link.start("low")
    link.run_for(10)
    link.add("high", 200, "10.0.0.2", nopreempt=True)
    link.start("high")
    link.run_for(60)
    assert link.masters() == ["low"]


def test_preempt_delay_postpones_preemption():
    link = Link()
    link.add("low", 100, "10.0.0.1")
    link.start("low")
    link.run_for(10)
    high = link.add("high", 200, "10.0.0.2", preempt_delay=20.0)
    link.start("high")
    link.run_for(19)
    assert link.masters() == ["low"]
    link.run_for(10)
    assert link.masters() == ["high"]
    t_master = next(t for t, old, new in high.transitions() if new is State.MASTER)
    # preemption happens once the delay is over and one down interval passes without accepting an advert
    assert 10 + 20 <= t_master <= 10 + 20 + master_down_interval(3, 200, 1.0) + 1


def test_master_answers_lower_priority_advert_at_once():
    link = Link()
    a = link.add("a", 150, "10.0.0.1")
    link.start("a")
    link.run_for(10)
    sent_before = len(a.sent)
    link.call("a", "advert", IPv4Address("10.0.0.9"), 50, 1.0)
    assert len(a.sent) == sent_before + 1


def test_lower_prio_no_advert_suppresses_the_answer():
    link = Link()
    a = link.add("a", 150, "10.0.0.1", lower_prio_no_advert=True)
    link.start("a")
    link.run_for(10)
    sent_before = len(a.sent)
    link.call("a", "advert", IPv4Address("10.0.0.9"), 50, 1.0)
    assert len(a.sent) == sent_before


def test_v3_backup_adopts_master_interval_and_reverts_when_master():
    link = Link()
    fast = link.add("fast", 200, "10.0.0.1", advert_int=0.1)
    slow = link.add("slow", 100, "10.0.0.2", advert_int=1.0)
    link.start()
    link.run_for(5)
    assert slow.machine.master_adver_int == pytest.approx(0.1)
    fast.machine.state = State.STOP
    fast.machine._clear_timers()
    link.run_for(2)
    assert slow.state is State.MASTER
    assert slow.machine.master_adver_int == pytest.approx(1.0)


def test_tracker_weight_demotes_master_and_restores_it():
    link = Link()
    link.add("a", 150, "10.0.0.1")
    link.add("b", 120, "10.0.0.2")
    link.start()
    link.run_for(10)
    assert link.masters() == ["a"]
    link.call("a", "set_priority", clamp_priority(150, -50))
    link.run_for(10)
    assert link.masters() == ["b"]
    link.call("a", "set_priority", 150)
    link.run_for(10)
    assert link.masters() == ["a"]
    assert link.violations == []


def test_fault_releases_master_with_priority_zero_and_recovers_to_backup():
    link = Link()
    a = link.add("a", 150, "10.0.0.1")
    b = link.add("b", 100, "10.0.0.2")
    link.start()
    link.run_for(10)
    t_fault = link.now
    link.call("a", "set_fault", True)
    assert a.state is State.FAULT
    assert a.sent[-1] == (t_fault, 0)
    assert not a.holds_vip
    link.run_for(5)
    assert b.state is State.MASTER
    link.call("a", "set_fault", False)
    assert a.state is State.BACKUP
    link.run_for(10)
    assert link.masters() == ["a"]


def test_partition_yields_two_masters_and_healing_returns_to_one():
    link = Link()
    link.add("a", 150, "10.0.0.1")
    link.add("b", 100, "10.0.0.2")
    link.start()
    link.run_for(10)
    link.routers["b"].partition = 1
    link.run_for(10)
    assert link.masters() == ["a", "b"]
    t_heal = link.now
    link.routers["b"].partition = 0
    link.run_for(1.0 + CS)
    assert link.masters() == ["a"]
    t_backup = [t for t, old, new in link.routers["b"].transitions() if new is State.BACKUP][-1]
    assert t_backup - t_heal <= 1.0 + CS


def test_three_routers_elect_the_highest_and_fail_over_in_order():
    link = Link()
    for name, prio, addr in (("a", 200, "10.0.0.1"), ("b", 150, "10.0.0.2"), ("c", 100, "10.0.0.3")):
        link.add(name, prio, addr)
    link.start()
    link.run_for(20)
    assert link.masters() == ["a"]
    link.call("a", "stop")
    link.run_for(10)
    assert link.masters() == ["b"]
    link.call("b", "stop")
    link.run_for(10)
    assert link.masters() == ["c"]
    assert link.violations == []


def test_stop_of_master_sends_priority_zero_and_removes_addresses():
    m = Vrrp(Params("x", 3, 1.0, 255, IPv4Address("10.0.0.1")))
    m.start(0.0)
    actions = m.stop(1.0)
    assert actions[0] == SendAdvert(0)
    assert any(isinstance(a, type(actions[1])) for a in actions)
    assert m.state is State.STOP


def test_resumed_master_keeps_addresses_and_sends_advert_at_once():
    m = Vrrp(Params("x", 3, 1.0, 100, IPv4Address("10.0.0.1")))
    actions = m.start(0.0, resume_master=True)
    assert actions[0] == SendAdvert(100)
    assert not any(isinstance(a, (RemoveAddresses, Announce)) for a in actions)
    assert m.state is State.MASTER


def test_gratuitous_arp_repeats_after_garp_master_delay_and_refresh():
    link = Link()
    a = link.add("a", 255, "10.0.0.1", garp_master_delay=5.0, garp_master_refresh=30.0)
    link.start()
    link.run_for(65)
    assert a.announced[:2] == [0.0, pytest.approx(5.0)]
    assert a.announced[2:] == [pytest.approx(30.0), pytest.approx(60.0)]


def test_two_owners_conflict_resolves_to_one_master():
    link = Link()
    link.add("a", 255, "10.0.0.1")
    link.add("b", 255, "10.0.0.2")
    link.start()
    link.run_for(10)
    assert link.masters() == ["b"]


def test_late_ticks_do_not_make_the_advert_schedule_drift():
    m = Vrrp(Params("x", 3, 0.1, 255, IPv4Address("10.0.0.1")))
    m.start(0.0)
    sent = []
    for _ in range(100):
        deadline = m.deadline
        assert deadline is not None
        late = deadline + 0.0008  # every wake-up 0.8 ms late
        if any(isinstance(a, SendAdvert) for a in m.tick(late)):
            sent.append(late)
    # 100 adverts at 0.1 s take 10 s, not 10 s plus 100 times the lateness
    assert sent[-1] - sent[0] == pytest.approx(0.1 * (len(sent) - 1), abs=0.002)


def test_state_master_clears_nopreempt_and_preempt_delay_as_keepalived_does(tmp_path):
    from keepalived_py.config import load_config
    from keepalived_py.vrrp.engine import instance_params

    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n state MASTER\n interface eth0\n nopreempt\n preempt_delay 5\n"
        " virtual_router_id 51\n priority 100\n virtual_ipaddress {\n  10.0.0.1/24\n }\n}\n"
    )
    cfg = load_config(conf, host_checks=False).config
    params = instance_params(cfg.vrrp_instances[0], cfg.global_defs, IPv4Address("10.0.0.2"))
    assert params.start_as_master and not params.nopreempt and params.preempt_delay == 0


@pytest.mark.parametrize(
    ("lines", "accept"),
    [
        ("", True),  # keepalived's default: accept mode
        (" no_accept\n", False),
        (" strict_mode\n", False),  # strict mode refuses accept mode ...
        (" strict_mode\n accept\n", False),
        (" strict_mode\n priority 255\n", True),  # ... but the address owner always takes its traffic
    ],
)
def test_accept_mode_as_keepalived_resolves_it(tmp_path, lines, accept):
    from keepalived_py.config import load_config
    from keepalived_py.vrrp.engine import accept_mode

    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n"
        f"{lines} virtual_ipaddress {{\n  10.0.0.1/24\n }}\n}}\n"
    )
    cfg = load_config(conf, host_checks=False).config
    assert accept_mode(cfg.vrrp_instances[0], cfg.global_defs) is accept


def test_startup_delay_holds_every_down_timer_and_the_owner():
    """keepalived's vrrp_startup_delay: BACKUP down timers count from the end of the delay, the address
    owner takes over when it ends, adverts heard meanwhile push the timer from the delay's end too."""
    backup = Vrrp(Params("b", 3, 1.0, 100, IPv4Address("10.0.0.2")), hold_until=10.0)
    backup.start(0.0)
    assert backup.state is State.BACKUP and backup.deadline == 10.0 + master_down_interval(3, 100, 1.0)
    backup.advert(5.0, IPv4Address("10.0.0.9"), 200, 1.0)
    assert backup.deadline == 10.0 + master_down_interval(3, 100, 1.0)
    owner = Vrrp(Params("o", 3, 1.0, 255, IPv4Address("10.0.0.1")), hold_until=10.0)
    owner.start(0.0)
    assert owner.state is State.BACKUP and owner.deadline == 10.0
    owner.tick(10.0)
    assert owner.state is State.MASTER


def _owner_master(advert_int: float = 1.0, garp_master_delay: float = 5.0) -> Vrrp:
    m = Vrrp(Params("vi", 3, advert_int, 255, IPv4Address("10.0.0.1"), garp_master_delay=garp_master_delay))
    m.start(0.0)
    assert m.state is State.MASTER
    return m


def test_master_advert_may_go_a_tenth_of_the_interval_early_and_keeps_its_phase():
    m = _owner_master(advert_int=2.0, garp_master_delay=0.0)
    m.tick(0.0)  # the start's gratuitous ARP
    assert m.deadline == pytest.approx(2.0)
    assert m.deadline_early == pytest.approx(0.2)
    assert m.tick(1.7) == []                       # too early: nothing
    assert [type(a) for a in m.tick(1.85)] == [SendAdvert]
    assert m.deadline == pytest.approx(4.0)        # one interval after the deadline, not after 1.85
    assert [type(a) for a in m.tick(4.0)] == [SendAdvert]


def test_only_a_master_whose_next_deadline_is_its_advert_may_be_early():
    m = _owner_master(garp_master_delay=0.5)       # the delayed gratuitous ARP comes first
    assert m.deadline == pytest.approx(0.5) and m.deadline_early == 0.0
    backup = Vrrp(Params("vb", 3, 1.0, 100, IPv4Address("10.0.0.2")))
    backup.start(0.0)
    assert backup.state is State.BACKUP and backup.deadline_early == 0.0
