"""The supervised child's lifecycle: the parent's decisions as pure functions of state and time."""

from __future__ import annotations

import pytest

from keepalived_py.control.lifecycle import (
    BUSY_LIMIT_FACTOR,
    BUSY_LIMIT_MIN,
    DEFAULT_HUNG_TIMEOUT,
    MAX_QUICK_RESTARTS,
    MIN_HUNG_TIMEOUT,
    STARTUP_LIMIT,
    STARTUP_SILENCE,
    Action,
    Activity,
    ChildRecord,
    Phase,
    derive_hung_timeout,
)
from keepalived_py.exitcodes import ExitCode
from keepalived_py.vrrp.fsm import master_down_interval

HUNG = 0.6
MASTER = {"instances": {"VI_1": {"state": "MASTER"}, "VI_2": {"state": "BACKUP"}}}


def running(now: float = 0.0) -> ChildRecord:
    rec = ChildRecord("vrrp")
    rec.spawned(100, now)
    rec.heartbeat(now + 0.5, MASTER)
    return rec


def test_a_spawned_child_is_starting_until_its_loop_heartbeats():
    rec = ChildRecord("vrrp")
    rec.spawned(100, 0.0)
    assert rec.phase is Phase.STARTING
    rec.heartbeat(0.1, {"starting": True, "phase": "importing"})
    assert rec.phase is Phase.STARTING and rec.last_state["phase"] == "importing"
    rec.heartbeat(0.2, MASTER)
    assert rec.phase is Phase.RUNNING and rec.last_state == MASTER


def test_a_running_child_silent_past_the_hung_timeout_is_killed_at_once():
    rec = running()
    assert rec.watchdog(0.5 + HUNG - 0.01, HUNG).action is Action.NONE
    verdict = rec.watchdog(0.5 + HUNG + 0.01, HUNG)
    assert verdict.action is Action.KILL and rec.phase is Phase.HUNG


def test_a_silence_shorter_than_the_hung_timeout_changes_nothing():
    rec = running()
    for t in (0.6, 0.9, 1.05):
        assert rec.watchdog(t, HUNG).action is Action.NONE
    rec.heartbeat(1.05, MASTER)
    assert rec.watchdog(1.6, HUNG).action is Action.NONE and rec.phase is Phase.RUNNING


def test_a_starting_child_that_reports_progress_is_not_hung_however_slow():
    rec = ChildRecord("checker")
    rec.spawned(100, 0.0)
    t = 0.0
    while t < STARTUP_LIMIT - 10:
        t += 5.0
        rec.heartbeat(t, {"starting": True, "phase": "importing"})
        assert rec.watchdog(t + 1.0, HUNG).action is Action.NONE
    assert rec.phase is Phase.STARTING


def test_a_starting_child_that_falls_silent_is_hung():
    rec = ChildRecord("vrrp")
    rec.spawned(100, 0.0)
    rec.heartbeat(1.0, {"starting": True})
    assert rec.watchdog(1.0 + STARTUP_SILENCE, HUNG).action is Action.NONE
    assert rec.watchdog(1.1 + STARTUP_SILENCE, HUNG).action is Action.KILL


def test_a_child_starting_forever_is_hung_at_the_start_up_limit():
    rec = ChildRecord("vrrp")
    rec.spawned(100, 0.0)
    rec.heartbeat(STARTUP_LIMIT + 0.5, {"starting": True})
    assert rec.watchdog(STARTUP_LIMIT + 1.0, HUNG).action is Action.KILL


def test_the_parents_own_stall_is_forgiven():
    rec = running()
    rec.forgive(5.0)  # the parent did not look between 0.5 and 5.0
    assert rec.watchdog(5.0 + HUNG / 2, HUNG).action is Action.NONE


def test_a_hung_child_is_respawned_at_once_and_its_masters_resume():
    rec = running()
    rec.watchdog(2.0, HUNG)
    verdict = rec.exited(-9, 2.05, stopping=False)
    assert verdict.action is Action.SPAWN and rec.phase is Phase.BACKOFF and rec.respawn_at == 2.05
    assert rec.restarts_by == {"hung": 1}
    assert rec.resumable(2.06, {"VI_1": 3.0, "VI_2": 3.0}) == ("VI_1",)


def test_masters_are_not_resumed_once_a_backup_may_have_taken_over():
    rec = running()
    rec.exited(-9, 2.0, stopping=False)
    assert rec.resumable(0.5 + 3.0, {"VI_1": 3.0}) == ()


def test_a_child_that_exited_by_itself_released_its_addresses_and_resumes_nothing():
    rec = running()
    rec.exited(0, 2.0, stopping=False)
    assert rec.resumable(2.0, {"VI_1": 3.0}) == ()
    assert rec.restarts_by == {"died": 1}


def test_quick_deaths_back_off_as_keepalived_does_then_stop_the_daemon():
    rec = ChildRecord("vrrp")
    now = 0.0
    delays = []
    for i in range(MAX_QUICK_RESTARTS):
        rec.spawned(100 + i, now)
        verdict = rec.exited(-9, now + 0.1, stopping=False)
        if i < MAX_QUICK_RESTARTS - 1:
            assert rec.respawn_at is not None
            delays.append(rec.respawn_at - (now + 0.1))
            now = rec.respawn_at
    assert delays == pytest.approx([0.0, 1.0, 2.0, 4.0, 8.0])
    assert verdict.action is Action.STOP_DAEMON and verdict.exit_code == ExitCode.FAILURE
    assert rec.phase is Phase.FATAL


def test_a_respawn_is_due_only_at_its_time():
    rec = running()
    rec.exited(-9, 1.0, stopping=False)
    rec.spawned(101, 1.0)
    rec.exited(-9, 1.5, stopping=False)  # second quick death: 1 s back-off
    assert rec.watchdog(2.4, HUNG).action is Action.NONE
    assert rec.watchdog(2.5, HUNG).action is Action.SPAWN


@pytest.mark.parametrize("code", [ExitCode.CONFIG_FATAL, ExitCode.CHILD_FATAL])
def test_a_configuration_or_host_exit_code_stops_the_daemon(code):
    rec = running()
    verdict = rec.exited(int(code), 1.0, stopping=False)
    assert verdict.action is Action.STOP_DAEMON and verdict.exit_code == code and rec.phase is Phase.FATAL


def test_a_stopping_child_is_killed_once_after_the_grace_and_not_respawned():
    rec = running()
    rec.stop(1.0, grace=5.0)
    assert rec.watchdog(5.9, HUNG).action is Action.NONE  # silence while stopping is expected
    assert rec.watchdog(6.0, HUNG).action is Action.KILL
    assert rec.watchdog(7.0, HUNG).action is Action.NONE
    assert rec.exited(-9, 7.0, stopping=False).action is Action.NONE and rec.phase is Phase.STOPPED


def test_a_retired_child_is_not_respawned():
    rec = running()
    rec.retired = True
    assert rec.exited(0, 1.0, stopping=False).action is Action.NONE and rec.phase is Phase.STOPPED


def test_heartbeats_from_a_dying_child_change_nothing():
    rec = running()
    rec.watchdog(5.0, HUNG)
    rec.heartbeat(5.01, MASTER)
    assert rec.phase is Phase.HUNG


def test_healthy_means_running_with_no_two_beats_missed():
    rec = running()
    assert rec.healthy(0.5 + HUNG / 3, HUNG)
    assert not rec.healthy(0.5 + HUNG / 3 + 0.01, HUNG)


def test_the_derived_hung_timeout_leaves_room_for_the_kill_and_the_successor():
    down = master_down_interval(3, 254, 1.0)
    hung = derive_hung_timeout([("VI_1", down, 1.0), ("VI_2", master_down_interval(3, 254, 3.0), 3.0)], None)
    # the budget a hang right before an advert leaves: Master_Down_Interval less one advert interval
    assert hung.seconds <= 0.35 * (down - 1.0)
    assert hung.source == f"derived from VI_1's Master_Down_Interval ({down:.3f} s)"


def test_the_hung_timeout_override_wins_and_no_vrrp_means_the_default():
    assert derive_hung_timeout([("VI_1", 3.0, 1.0)], 1.5).seconds == 1.5
    assert derive_hung_timeout([("VI_1", 3.0, 1.0)], 1.5).source == "kpd_child_hung_timeout"
    assert derive_hung_timeout([], None).seconds == DEFAULT_HUNG_TIMEOUT


def test_the_derived_hung_timeout_has_a_floor_for_very_fast_adverts():
    assert derive_hung_timeout([("fast", 0.03, 0.01)], None).seconds == MIN_HUNG_TIMEOUT


def test_a_silent_child_that_keeps_using_cpu_is_slow_not_hung_up_to_the_busy_limit():
    rec = running()
    late = 0.5 + HUNG + 1.0
    assert rec.watchdog(late, HUNG, Activity.BUSY).action is Action.NONE
    limit = max(BUSY_LIMIT_FACTOR * HUNG, BUSY_LIMIT_MIN)
    assert rec.watchdog(0.5 + limit - 0.01, HUNG, Activity.BUSY).action is Action.NONE
    assert rec.watchdog(0.5 + limit + 0.01, HUNG, Activity.BUSY).action is Action.KILL


@pytest.mark.parametrize("activity", [Activity.STOPPED, Activity.IDLE, Activity.UNKNOWN])
def test_a_silent_child_that_is_stopped_or_waiting_is_hung_at_the_timeout(activity):
    rec = running()
    assert rec.watchdog(0.5 + HUNG + 0.01, HUNG, activity).action is Action.KILL


def test_a_starting_child_silent_but_using_cpu_is_slow_not_hung():
    rec = ChildRecord("vrrp")
    rec.spawned(100, 0.0)  # no beat yet: still importing on an emulated machine
    assert rec.watchdog(STARTUP_SILENCE + 5.0, HUNG, Activity.BUSY).action is Action.NONE
    assert rec.watchdog(STARTUP_SILENCE + 5.0, HUNG, Activity.IDLE).action is Action.KILL
