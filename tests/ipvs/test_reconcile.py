"""The pure IPVS reconciler: minimal plans, idempotence, what it leaves alone."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from keepalived_py.ipvs.reconcile import OpKind, apply_to, plan
from keepalived_py.ipvs.state import Dest, Entry, Forward, Service, ServiceKey

A = ServiceKey.for_address("TCP", ip_address("192.0.2.1"), 80)
B = ServiceKey.for_address("UDP", ip_address("192.0.2.1"), 53)
F = ServiceKey.for_fwmark(3)


def dest(last: int, weight: int = 1, forward: Forward = Forward.MASQ) -> Dest:
    return Dest(ip_address(f"10.0.0.{last}"), 80, forward, weight)


DESIRED = {
    A: Entry.of(Service(A, "rr"), [dest(1), dest(2, 3)]),
    B: Entry.of(Service(B, "wrr", persistence_timeout=60), [dest(3)]),
    F: Entry.of(Service(F, "wlc"), [dest(4, forward=Forward.DROUTE)]),
}


def test_from_an_empty_kernel_every_service_then_its_real_servers_are_added():
    ops = plan(DESIRED, {})
    assert [o.kind for o in ops].count(OpKind.ADD_SERVICE) == 3
    assert [o.kind for o in ops].count(OpKind.ADD_DEST) == 4
    for i, op in enumerate(ops):
        if op.kind is OpKind.ADD_DEST:
            assert any(p.kind is OpKind.ADD_SERVICE and p.service == op.service for p in ops[:i])
    assert apply_to({}, ops) == DESIRED


def test_a_plan_is_empty_once_applied():
    assert plan(DESIRED, apply_to({}, plan(DESIRED, {}))) == []


def test_one_weight_change_is_exactly_one_set_dest():
    changed = dict(DESIRED)
    changed[A] = Entry.of(Service(A, "rr"), [dest(1), dest(2, 7)])
    ops = plan(changed, DESIRED)
    assert [(o.kind, o.item) for o in ops] == [(OpKind.SET_DEST, dest(2, 7))]


def test_a_forwarding_method_change_is_a_set_dest():
    changed = dict(DESIRED)
    changed[F] = Entry.of(Service(F, "wlc"), [dest(4, forward=Forward.TUNNEL)])
    assert [o.kind for o in plan(changed, DESIRED)] == [OpKind.SET_DEST]


def test_a_scheduler_or_persistence_change_is_a_set_service():
    changed = dict(DESIRED)
    changed[B] = Entry.of(Service(B, "rr", persistence_timeout=60), [dest(3)])
    assert [o.kind for o in plan(changed, DESIRED)] == [OpKind.SET_SERVICE]
    changed[B] = Entry.of(Service(B, "wrr", persistence_timeout=600), [dest(3)])
    assert [o.kind for o in plan(changed, DESIRED)] == [OpKind.SET_SERVICE]


def test_removed_real_servers_are_deleted_before_new_ones_are_added():
    changed = dict(DESIRED)
    changed[A] = Entry.of(Service(A, "rr"), [dest(1), dest(9)])
    assert [o.kind for o in plan(changed, DESIRED)] == [OpKind.DEL_DEST, OpKind.ADD_DEST]


def test_services_kpd_does_not_manage_are_left_alone():
    foreign = ServiceKey.for_address("TCP", ip_address("198.51.100.7"), 25)
    kernel = {**DESIRED, foreign: Entry.of(Service(foreign, "rr"), [dest(8)])}
    assert plan(DESIRED, kernel) == []


def test_a_service_kpd_managed_and_no_longer_wants_is_deleted():
    smaller = {k: v for k, v in DESIRED.items() if k != B}
    ops = plan(smaller, DESIRED, managed=set(DESIRED))
    assert [(o.kind, o.service) for o in ops] == [(OpKind.DEL_SERVICE, B)]


def test_lvs_flush_deletes_every_unwanted_service():
    foreign = ServiceKey.for_address("TCP", ip_address("198.51.100.7"), 25)
    kernel = {**DESIRED, foreign: Entry.of(Service(foreign, "rr"))}
    assert [o.service for o in plan(DESIRED, kernel, flush_unmanaged=True)] == [foreign]


def test_applying_an_impossible_operation_to_a_fake_table_fails_like_the_kernel():
    with pytest.raises(FileExistsError):
        apply_to(DESIRED, plan(DESIRED, {})[:1])


def test_apply_in_place_changes_only_the_table_it_is_given_and_nothing_when_it_fails():
    from keepalived_py.ipvs.reconcile import Op, apply_in_place, copy_table

    mine = copy_table(DESIRED)
    apply_in_place(mine, Op(OpKind.SET_DEST, A, dest(1, 7)))
    apply_in_place(mine, Op(OpKind.DEL_DEST, B, dest(3).key))
    assert mine[A].dests[dest(1).key].weight == 7 and mine[B].dests == {}
    assert DESIRED[A].dests[dest(1).key].weight == 1 and dest(3).key in DESIRED[B].dests
    before = copy_table(mine)
    with pytest.raises(FileExistsError):
        apply_in_place(mine, Op(OpKind.ADD_DEST, A, dest(2)))
    with pytest.raises(FileNotFoundError):
        apply_in_place(mine, Op(OpKind.DEL_DEST, B, dest(3).key))
    assert mine == before
