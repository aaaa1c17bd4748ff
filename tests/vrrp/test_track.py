"""Trackers: vrrp_script rise/fall, weights of scripts, interfaces and files, sync groups, and the shells.

The pure tests build configurations from the model dataclasses.  The shell tests run real scripts (small
shell scripts in ``tmp_path``) and watch real files; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from keepalived_py.config.model import (
    Config,
    GlobalDefs,
    ScriptUser,
    Tracked,
    TrackFile,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
)
from keepalived_py.vrrp.track import (
    FileWatcher,
    ScriptScheduler,
    ScriptState,
    ScriptTracker,
    Trackers,
    file_contribution,
    initialise_track_file,
    parse_track_file_value,
    read_track_file,
    unusable_scripts,
)
from lab import wait_for_async

T = TypeVar("T")

ROOT = GlobalDefs(script_user=ScriptUser("root"))


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def script(name: str, weight: int = 0, reverse: bool = False, **kw: Any) -> VrrpScript:
    return VrrpScript(name, kw.pop("argv", ("/bin/true",)), weight=weight, weight_reverse=reverse, **kw)


def inst(name: str = "VI", priority: int = 100, interface: str | None = "eth0", **kw: Any) -> VrrpInstance:
    return VrrpInstance(name, interface=interface, virtual_router_id=1, priority=priority, **kw)


def t(name: str, weight: int | None = None, reverse: bool = False) -> Tracked:
    return Tracked(name, weight, reverse)


def trackers(*instances: VrrpInstance, **kw: Any) -> Trackers:
    cfg = Config(
        global_defs=kw.pop("global_defs", ROOT),
        vrrp_scripts=tuple(kw.pop("scripts", ())),
        track_files=tuple(kw.pop("files", ())),
        vrrp_instances=instances,
        vrrp_sync_groups=tuple(kw.pop("groups", ())),
    )
    return Trackers(cfg, **kw)


# --- rise / fall --------------------------------------------------------------------------------------------


def feed(tracker: ScriptTracker, results: str) -> list[ScriptState]:
    """Apply results ('1' success, '0' failure); the state after each."""
    out = []
    for r in results:
        tracker.result(r == "1")
        out.append(tracker.state)
    return out


OK, KO, INIT = ScriptState.OK, ScriptState.KO, ScriptState.INIT


def test_the_first_result_decides_whatever_rise_and_fall() -> None:
    s = ScriptTracker("s", rise=3, fall=3)
    assert s.state is INIT
    assert s.result(True) is True
    assert s.state is OK
    s = ScriptTracker("s", rise=3, fall=3)
    assert s.result(False) is True
    assert s.state is KO


def test_fall_consecutive_failures_make_it_ko_and_rise_successes_ok() -> None:
    s = ScriptTracker("s", rise=3, fall=2)
    assert feed(s, "1") == [OK]
    assert feed(s, "0") == [OK]
    assert s.result(False) is True and s.state is KO  # the 2nd consecutive failure
    assert feed(s, "11") == [KO, KO]
    assert s.result(True) is True and s.state is OK  # the 3rd consecutive success


def test_an_interruption_restarts_the_count() -> None:
    s = ScriptTracker("s", rise=3, fall=3)
    feed(s, "1")
    # a success in between resets the failures: two, one success, two more is still OK
    assert feed(s, "00100") == [OK] * 5
    assert feed(s, "0") == [KO]
    # a failure in between resets the successes
    assert feed(s, "11011") == [KO] * 5
    assert feed(s, "1") == [OK]


def test_result_reports_only_state_changes() -> None:
    s = ScriptTracker("s", rise=2, fall=2)
    changes = []
    for r in "1100011":
        changes.append(s.result(r == "1"))
    assert changes == [True, False, False, True, False, False, True]


def test_init_fail_starts_ko_and_needs_rise_successes() -> None:
    s = ScriptTracker("s", rise=2, fall=2, init_fail=True)
    assert s.state is KO
    assert s.result(False) is False
    assert feed(s, "1") == [KO]
    assert s.result(True) is True and s.state is OK


def test_rise_and_fall_below_one_are_rejected() -> None:
    with pytest.raises(ValueError):
        ScriptTracker("s", rise=0)


def test_reload_carries_a_script_state_over_with_new_rise_fall() -> None:
    old = ScriptTracker("s", rise=2, fall=3)
    feed(old, "10")  # OK, one failure down from the top
    new = ScriptTracker("s", rise=4, fall=4)
    new.carry_over(old)
    assert new.state is OK
    assert feed(new, "00") == [OK, KO]  # one below the top already: 2 more failures (keepalived maps it so)
    waiting = ScriptTracker("s", rise=2, fall=2)
    new = ScriptTracker("s", rise=2, fall=2)
    new.carry_over(waiting)
    assert new.state is INIT


# --- weights ------------------------------------------------------------------------------------------------


def script_priority(weight: int, reverse: bool, results: str) -> tuple[int, bool]:
    tr = trackers(inst(track_script=(t("chk"),)), scripts=[script("chk", weight, reverse)])
    for r in results:
        tr.on_script_result("chk", r == "1")
    it = tr.instance("VI")
    return it.priority(), it.fault()


@pytest.mark.parametrize(
    ("weight", "reverse", "ok", "ko"),
    [
        (10, False, 110, 100),  # positive: added while OK
        (-10, False, 100, 90),  # negative: added (so subtracted) while KO
        (10, True, 90, 100),  # reverse negates the adjustment, still applied while OK
        (-10, True, 100, 110),  # reverse: negative weight adds while KO
    ],
)
def test_script_weight_sign_and_reverse(weight: int, reverse: bool, ok: int, ko: int) -> None:
    assert script_priority(weight, reverse, "1") == (ok, False)
    assert script_priority(weight, reverse, "0") == (ko, False)
    assert script_priority(weight, reverse, "10") == (ko, False)
    assert script_priority(weight, reverse, "01") == (ok, False)


def test_weighted_script_adjusts_nothing_before_its_first_result() -> None:
    assert script_priority(-10, False, "") == (100, False)
    assert script_priority(10, False, "") == (100, False)


def test_weight_zero_script_ko_means_fault_and_reverse_inverts() -> None:
    assert script_priority(0, False, "1") == (100, False)
    assert script_priority(0, False, "0") == (100, True)
    assert script_priority(0, True, "1") == (100, True)
    assert script_priority(0, True, "0") == (100, False)


def test_weight_zero_script_without_result_holds_the_instance_in_fault() -> None:
    tr = trackers(inst(track_script=(t("chk"),)), scripts=[script("chk")])
    it = tr.instance("VI")
    assert it.fault() and it.initialising()
    assert "script chk has no result yet" in it.reasons()[0]
    assert tr.on_script_result("chk", True) == {"VI"}
    assert not it.fault() and not it.initialising()


def test_init_fail_faults_at_once_and_applies_a_negative_weight() -> None:
    tr = trackers(
        inst("A", track_script=(t("c0"),)),
        inst("B", track_script=(t("cw"),)),
        scripts=[script("c0", init_fail=True), script("cw", -20, init_fail=True, rise=2)],
    )
    assert tr.instance("A").fault() and not tr.instance("A").initialising()
    assert tr.instance("B").priority() == 80
    assert tr.on_script_result("cw", True) == set()  # rise 2: not yet
    assert tr.on_script_result("cw", True) == {"B"}
    assert tr.instance("B").priority() == 100


def test_track_script_weight_overrides_the_scripts_and_inherits_reverse() -> None:
    tr = trackers(
        inst("A", track_script=(t("chk", 30),)),
        inst("B", track_script=(t("chk"),)),
        inst("C", track_script=(t("plain", -5, reverse=True),)),
        scripts=[script("chk", 10, reverse=True), script("plain", 7)],
    )
    tr.on_script_result("chk", True)
    tr.on_script_result("plain", False)
    assert tr.instance("A").priority() == 70  # weight 30, reverse kept from the script
    assert tr.instance("B").priority() == 90
    assert tr.instance("C").priority() == 105
    assert tr.instance("A").reasons() == ["script chk OK (weight 30 reverse: -30)"]
    assert tr.instance("C").reasons() == ["script plain KO (weight -5 reverse: +5)"]


def test_reasons_are_readable() -> None:
    tr = trackers(
        inst(track_script=(t("chk_http", -20),), track_interface=(t("eth1"),)),
        scripts=[script("chk_http")],
    )
    tr.on_script_result("chk_http", False)
    tr.set_link("eth1", False)
    assert tr.instance("VI").reasons() == ["interface eth1 down (fault)", "script chk_http KO (weight -20)"]


def test_states_give_each_tracked_objects_type_weight_up_and_contribution() -> None:
    tr = trackers(
        inst(track_script=(t("chk_http", -20), t("chk_new")), track_interface=(t("eth1", 10, True),)),
        scripts=[script("chk_http"), script("chk_new", weight=5)],
    )
    tr.on_script_result("chk_http", False)
    tr.set_link("eth1", True)
    states = {s["name"]: s for s in tr.instance("VI").states()}
    assert states["chk_http"] == {"type": "script", "name": "chk_http", "weight": -20, "reverse": False,
                                  "up": False, "contribution": -20, "fault": False}
    assert states["chk_new"]["up"] is None and states["chk_new"]["contribution"] == 0  # no result yet
    assert states["eth1"] == {"type": "interface", "name": "eth1", "weight": 10, "reverse": True, "up": True,
                              "contribution": -10, "fault": False}
    assert {s["type"] for s in states.values()} == {"script", "interface"}


def test_interfaces_weights_and_own_interface() -> None:
    tr = trackers(
        inst(
            "A",
            track_interface=(
                t("up_w", 10),
                t("down_w", -10),
                t("rev", 10, True),
                t("eth0", 50),
                t("z", 0, True),
            ),
        ),
        inst("B", interface="eth0", dont_track_primary=True),
    )
    a, b = tr.instance("A"), tr.instance("B")
    assert (a.priority(), a.fault()) == (100 + 10 - 10, True)  # all up: "z" weight 0 reverse faults when up
    tr.set_link("z", False)
    assert (a.priority(), a.fault()) == (100, False)  # track_interface eth0 (own) was ignored: no +50
    tr.set_link("down_w", False)
    tr.set_link("up_w", False)
    tr.set_link("rev", False)
    assert a.priority() == 100 - 10
    assert tr.set_link("eth0", False) == {"A"}  # own interface down: FAULT; B doesn't track it
    assert a.fault() and not b.fault()
    assert "eth0" in tr.tracked_interfaces()


def test_interface_without_interface_name_uses_default_interface() -> None:
    tr = trackers(inst(interface=None), global_defs=GlobalDefs(default_interface="eth9"))
    tr.set_link("eth9", False)
    assert tr.instance("VI").fault()


def test_priority_is_clamped_and_the_owner_never_moves() -> None:
    tr = trackers(
        inst("HI", priority=250, track_script=(t("up", 20),)),
        inst("LO", priority=5, track_script=(t("down", -50),)),
        inst("OWN", priority=255, track_script=(t("down", -50), t("zero")), track_interface=(t("x", -10),)),
        scripts=[script("up"), script("down"), script("zero")],
    )
    tr.on_script_result("up", True)
    tr.on_script_result("down", False)
    tr.set_link("x", False)
    assert tr.instance("HI").priority() == 254
    assert tr.instance("LO").priority() == 1
    own = tr.instance("OWN")
    assert own.priority() == 255 and own.reasons() == [own.reasons()[0]]  # only the weight-0 script
    tr.on_script_result("zero", False)
    assert own.priority() == 255 and own.fault()  # weight 0 still faults the owner


def test_owner_track_file_of_weight_one_becomes_weight_zero() -> None:
    tr = trackers(
        inst("OWN", priority=255, track_file=(t("f"), t("g", 5))),
        files=[TrackFile("f", "/x/f"), TrackFile("g", "/x/g")],
    )
    assert [(e.name, e.weight) for e in tr.instance("OWN").entries if e.kind.value == "file"] == [("f", 0)]
    assert tr.set_file_value("f", 2) == {"OWN"}
    assert tr.instance("OWN").fault()


def test_weight_zero_failure_of_any_kind_faults() -> None:
    tr = trackers(
        inst(track_script=(t("s"),), track_interface=(t("eth1"),), track_file=(t("f", 0),)),
        scripts=[script("s")],
        files=[TrackFile("f", "/nonexistent")],
    )
    assert tr.on_script_result("s", True) == {"VI"}
    assert not tr.instance("VI").fault()
    pairs: list[tuple[Callable[[], set[str]], Callable[[], set[str]]]] = [
        (lambda: tr.on_script_result("s", False), lambda: tr.on_script_result("s", True)),
        (lambda: tr.set_link("eth1", False), lambda: tr.set_link("eth1", True)),
        (lambda: tr.set_file_value("f", 3), lambda: tr.set_file_value("f", 0)),
    ]
    for event, undo in pairs:
        assert event() == {"VI"} and tr.instance("VI").fault()
        assert undo() == {"VI"} and not tr.instance("VI").fault()


# --- files --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "weight", "reverse", "expected"),
    [
        (0, 0, False, 0),
        (5, 0, False, None),
        (-1, 0, False, None),
        (0, 0, True, None),
        (5, 0, True, 0),
        (10, -2, False, -20),
        (10, -2, True, 20),
        (10, 1, False, 10),
        (300, 1, False, 253),  # capped
        (-253, 1, False, -253),
        (-254, 1, False, None),  # <= -254: FAULT
        (127, -2, False, None),
    ],
)
def test_file_contribution(value: int, weight: int, reverse: bool, expected: int | None) -> None:
    assert file_contribution(value, weight, reverse) == expected


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"10\n", 10),
        (b"  -7 trailing garbage", -7),
        (b"+3", 3),
        (b"\t\n 42", 42),
        (b"0x1f", 31),
        (b"-0X10", -16),
        (b"010", 8),  # strtol base 0: leading 0 is octal
        (b"08", 0),  # ... so 8 stops the conversion
        (b"0x", 0),
        (b"abc", 0),
        (b"", 0),
        (b"1e3", 1),
        (b"2147483648", 2**31),
        (b"-2147483648", -(2**31)),
        (b"2147483649", None),  # outside [-2^31, 2^31]: ignored
        (b"99999999999999999999999", None),  # overflows a long: ignored
        (b" " * 130 + b"5", 0),  # only the first 127 bytes are read
        (b"12\x0034", 12),
    ],
)
def test_parse_track_file_value_like_strtol(data: bytes, value: int | None) -> None:
    assert parse_track_file_value(data) == value


def test_read_track_file_missing_empty_and_directory(tmp_path: Path) -> None:
    assert read_track_file(str(tmp_path / "missing")) == 0
    (tmp_path / "empty").write_bytes(b"")
    assert read_track_file(str(tmp_path / "empty")) == 0
    assert read_track_file(str(tmp_path)) == 0
    (tmp_path / "v").write_text("-12\n")
    assert read_track_file(str(tmp_path / "v")) == -12


def test_file_weights_default_and_override() -> None:
    tr = trackers(
        inst("A", track_file=(t("f"),)),
        inst("B", track_file=(t("f", 3),)),
        inst("C", track_file=(t("g"),)),
        files=[TrackFile("f", "/x/f"), TrackFile("g", "/x/g", weight=-2, weight_reverse=True)],
    )
    assert tr.set_file_value("f", 10) == {"A", "B"}
    assert tr.instance("A").priority() == 110 and tr.instance("B").priority() == 130
    tr.set_file_value("g", 10)
    assert tr.instance("C").priority() == 120
    assert tr.set_file_value("f", 10) == set()  # no change


# --- sync groups --------------------------------------------------------------------------------------------


def test_sync_group_trackers_apply_to_every_member() -> None:
    group = VrrpSyncGroup(
        "G",
        group=("A", "B", "missing"),
        track_script=(t("s"),),
        track_interface=(t("eth5", -10),),
        track_file=(t("f", 2),),
    )
    tr = trackers(
        inst("A"), inst("B"), inst("C"), groups=[group], scripts=[script("s")], files=[TrackFile("f", "/x")]
    )
    assert tr.instance("A").fault() and tr.instance("B").fault()  # held until the first result
    assert tr.on_script_result("s", False) == set()  # ... which keeps them in FAULT: no change
    assert tr.on_script_result("s", True) == {"A", "B"}
    assert tr.on_script_result("s", False) == {"A", "B"}
    assert tr.instance("A").fault() and tr.instance("B").fault() and not tr.instance("C").fault()
    assert tr.set_link("eth5", False) == {"A", "B"}
    assert tr.set_file_value("f", 4) == {"A", "B"}
    assert tr.instance("A").priority() == 100 - 10 + 8
    assert tr.instance("A").sync_group == "G" and tr.instance("C").sync_group is None


def test_member_weights_dropped_without_sync_group_tracking_weight() -> None:
    member = inst(
        "A",
        track_script=(t("ws", 10), t("zs")),
        track_file=(t("f1"), t("f5", 5)),
        track_interface=(t("eth3", -10),),
    )
    scripts = [script("ws"), script("zs")]
    files = [TrackFile("f1", "/x/1"), TrackFile("f5", "/x/5")]
    tr = trackers(member, groups=[VrrpSyncGroup("G", group=("A",))], scripts=scripts, files=files)
    names = {(e.kind.value, e.name, e.weight) for e in tr.instance("A").entries}
    # weighted script dropped; file of weight 1 -> 0, weighted file dropped; interface keeps its weight
    assert names == {
        ("script", "zs", 0),
        ("file", "f1", 0),
        ("interface", "eth3", -10),
        ("interface", "eth0", 0),
    }
    assert [s.name for s in tr.tracked_scripts()] == ["zs"]
    assert [f.name for f in tr.tracked_files()] == ["f1"]
    for group in (
        VrrpSyncGroup("G", group=("A",), sync_group_tracking_weight=True),
        VrrpSyncGroup("G", group=("A",), global_tracking=True),
    ):
        tr = trackers(member, groups=[group], scripts=scripts, files=files)
        assert {e.name: e.weight for e in tr.instance("A").entries} == {
            "ws": 10,
            "zs": 0,
            "f1": 1,
            "f5": 5,
            "eth3": -10,
            "eth0": 0,
        }


def test_group_weights_cleared_when_a_member_is_the_owner() -> None:
    group = VrrpSyncGroup("G", group=("A", "B"), track_script=(t("s", -10),))
    tr = trackers(inst("A", priority=255), inst("B"), groups=[group], scripts=[script("s")])
    tr.on_script_result("s", False)
    assert tr.instance("B").fault() and tr.instance("B").priority() == 100


def test_object_tracked_by_instance_and_group_counts_once() -> None:
    group = VrrpSyncGroup(
        "G", group=("A", "B"), sync_group_tracking_weight=True, track_script=(t("s", -30), t("u", -30))
    )
    tr = trackers(
        inst("A", track_script=(t("s", -10), t("u", 0))),
        inst("B"),
        groups=[group],
        scripts=[script("s"), script("u")],
    )
    tr.on_script_result("s", False)
    assert tr.instance("A").priority() == 70  # the group's weight replaces the instance's, not added
    tr.on_script_result("u", False)
    assert tr.instance("A").fault()  # the instance's unweighted entry stays unweighted
    assert tr.instance("B").priority() == 40 and not tr.instance("B").fault()


def test_unknown_names_are_ignored() -> None:
    tr = trackers(
        inst(track_script=(t("nope"), t("s")), track_file=(t("nofile"),)),
        scripts=[script("s", -10)],
        files=[TrackFile("f", "/x")],
    )
    assert [e.name for e in tr.instance("VI").entries if e.kind.value != "interface"] == ["s"]
    assert tr.on_script_result("nope", False) == set()
    assert tr.set_file_value("f", 1) == set()  # defined but tracked by nobody
    assert tr.set_file_value("nofile", 1) == set()
    assert tr.set_link("wlan7", False) == set()
    assert tr.tracked_files() == []
    with pytest.raises(KeyError):
        tr.instance("nope")


def test_disabled_scripts_are_not_tracked() -> None:
    tr = trackers(inst(track_script=(t("s"),)), scripts=[script("s")], disabled_scripts=["s"])
    assert not tr.instance("VI").fault() and tr.tracked_scripts() == []


def test_unusable_scripts_finds_missing_programs(tmp_path: Path) -> None:
    cfg = Config(
        vrrp_scripts=(
            script("ok", argv=("/bin/true",)),
            script("bare", argv=("true",)),
            script("gone", argv=(str(tmp_path / "nope"),)),
            script("nobin", argv=("no-such-program-here",)),
        )
    )
    assert set(unusable_scripts(cfg)) == {"gone", "nobin"}


def test_events_report_only_instances_that_changed() -> None:
    tr = trackers(
        inst("A", track_script=(t("s", 10),)),
        inst("B", priority=250, track_script=(t("s", 10),)),
        inst("C", priority=254, track_script=(t("s", 10),)),
        scripts=[script("s")],
    )
    assert tr.on_script_result("s", True) == {"A", "B"}  # C is at 254 already
    assert tr.on_script_result("s", True) == set()


def test_reload_hands_states_over() -> None:
    cfg_scripts = [script("s", -10)]
    old = trackers(inst(track_script=(t("s"),)), scripts=cfg_scripts)
    old.on_script_result("s", False)
    old.set_link("eth0", False)
    new = trackers(inst(track_script=(t("s"), t("n"))), scripts=[*cfg_scripts, script("n")], previous=old)
    it = new.instance("VI")
    assert new.script_state("s") is KO and it.priority() == 90
    assert new.script_state("n") is INIT
    assert it.fault()  # eth0 is still down
    new.set_link("eth0", True)
    assert not it.fault()  # the new weight-0 script "n" does not hold the instance after a reload


# --- the script scheduler -----------------------------------------------------------------------------------


def write_script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


@pytest.mark.timeout(60)
def test_scheduler_rise_and_fall_with_a_real_script(tmp_path: Path) -> None:
    flag = tmp_path / "healthy"
    flag.touch()
    check = write_script(tmp_path / "check.sh", f"test -e {flag}")
    # timeout 5: the default (the 0.1 s interval) is less than a loaded machine may take to start the script
    tr = trackers(
        inst(track_script=(t("chk"),)),
        scripts=[script("chk", argv=(check,), interval=0.1, timeout=5, fall=3, rise=2)],
    )
    events: list[tuple[bool, int, int]] = []

    async def main() -> None:
        sched: ScriptScheduler

        def changed(names: set[str]) -> None:
            assert names == {"VI"}
            st = sched.stats["chk"]
            events.append((tr.instance("VI").fault(), st.successes, st.failures))

        sched = ScriptScheduler(tr, on_change=changed)
        sched.start()
        try:
            await wait_for_async(lambda: len(events) == 1, timeout=10)  # first success: out of the init fault
            assert events[0][0] is False
            base_failures = sched.stats["chk"].failures
            flag.unlink()
            await wait_for_async(lambda: len(events) == 2, timeout=10)
            fault, _, failures = events[1]
            assert fault and failures - base_failures == 3
            base_successes = sched.stats["chk"].successes
            flag.touch()
            await wait_for_async(lambda: len(events) == 3, timeout=10)
            fault, successes, _ = events[2]
            assert not fault and successes - base_successes == 2
        finally:
            await sched.stop()

    run(main())


@pytest.mark.timeout(30)
def test_a_hanging_script_fails_by_timeout_and_does_not_block_others(tmp_path: Path) -> None:
    hang = write_script(tmp_path / "hang.sh", "exec sleep 100")
    quick = write_script(tmp_path / "quick.sh", "exit 0")
    # A timeout ten times the quick script's interval: "quick" runs about ten times per hung run of "hang",
    # far from the once per run it would get if it were serialised behind it, even when starting a
    # script takes a loaded machine tens of milliseconds.
    hang_timeout = 1.0
    tr = trackers(
        inst("A", track_script=(t("hang"),)),
        inst("B", track_script=(t("quick"),)),
        scripts=[
            script("hang", -10, argv=(hang,), interval=0.1, timeout=hang_timeout),
            # timeout 5: the default, its 0.1 s interval, is less than a loaded machine may take to start it
            script("quick", argv=(quick,), interval=0.1, timeout=5),
        ],
    )

    quick_runs_when_hang_failed: list[int] = []

    async def main() -> None:
        sched: ScriptScheduler

        def changed(names: set[str]) -> None:
            if "A" in names:
                quick_runs_when_hang_failed.append(sched.stats["quick"].runs)

        sched = ScriptScheduler(tr, on_change=changed)
        started = time.monotonic()
        sched.start()
        try:
            await wait_for_async(lambda: tr.script_state("hang") is KO, timeout=10)
            assert tr.instance("A").priority() == 90 and not tr.instance("B").fault()
            await asyncio.sleep(2 * hang_timeout)  # "hang" runs (and hangs) twice more meanwhile
        finally:
            await sched.stop()
        elapsed = time.monotonic() - started
        hang_stats, quick_stats = sched.stats["hang"], sched.stats["quick"]
        assert hang_stats.timeouts == hang_stats.runs >= 1
        assert "timed out" in hang_stats.last_description
        # never two runs of one script at once: each run lasts at least its timeout
        assert hang_stats.runs <= elapsed / hang_timeout + 1
        assert hang_stats.skipped_ticks >= hang_stats.runs
        # the other script kept its 0.1 s cadence while the first run of "hang" hung ...
        assert quick_runs_when_hang_failed and quick_runs_when_hang_failed[0] >= 2
        # ... and all along: serialised behind "hang" it could not have run more than once per hang_timeout
        assert quick_stats.runs > elapsed / hang_timeout + 2
        assert quick_stats.failures == 0

    run(main())


@pytest.mark.timeout(30)
def test_stop_kills_a_running_script(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    hang = write_script(tmp_path / "hang.sh", f"echo $$ > {pidfile}; exec sleep 100")
    tr = trackers(inst(track_script=(t("hang"),)), scripts=[script("hang", argv=(hang,), interval=5)])

    def gone(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(") ", 1)[1].startswith("Z")
        except FileNotFoundError:
            return True

    async def main() -> int:
        sched = ScriptScheduler(tr)
        sched.start()
        await wait_for_async(lambda: pidfile.exists() and pidfile.read_text().strip() != "", timeout=10)
        began = time.monotonic()
        await sched.stop()
        assert time.monotonic() - began < 1.0
        return int(pidfile.read_text())

    pid = run(main())
    deadline = time.monotonic() + 2
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gone(pid)


# --- the file watcher ---------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_file_watcher_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "prio"
    tr = trackers(inst(track_file=(t("tf"),)), files=[TrackFile("tf", str(path), weight=-2)])
    seen: list[set[str]] = []

    async def main() -> None:
        watcher = FileWatcher(tr, on_change=seen.append)
        assert watcher.start() == set()  # missing file: 0
        it = tr.instance("VI")
        try:
            begin = time.monotonic()
            path.write_text("10\n")
            await wait_for_async(lambda: it.priority() == 80, timeout=5)
            assert time.monotonic() - begin < 1.0
            assert it.reasons() == ["file tf value 10 (weight -2: -20)"]
            path.write_text("garbage\n")  # no digits: 0
            await wait_for_async(lambda: it.priority() == 100, timeout=5)
            path.write_text("-0x4 trailing\n")
            await wait_for_async(lambda: it.priority() == 108, timeout=5)
            path.write_text("99999999999\n")  # out of range: ignored, the value stays
            await asyncio.sleep(0.6)
            assert it.priority() == 108
            path.write_text("200\n")  # -400 <= -254: FAULT
            await wait_for_async(it.fault, timeout=5)
            path.unlink()  # a missing file reads 0
            await wait_for_async(lambda: not it.fault() and it.priority() == 100, timeout=5)
        finally:
            await watcher.stop()
        assert all(s == {"VI"} for s in seen) and len(seen) == 5

    run(main())


def test_file_watcher_waits_for_contents_to_settle(tmp_path: Path) -> None:
    path = tmp_path / "v"
    path.write_text("5\n")
    tr = trackers(inst(track_file=(t("tf"),)), files=[TrackFile("tf", str(path))])
    watcher = FileWatcher(tr)
    assert watcher.start() == {"VI"}  # no running loop: read once, no polling task
    assert tr.instance("VI").priority() == 105
    path.write_text("")  # caught half-written
    assert watcher.poll() == set()
    path.write_text("7\n")
    assert watcher.poll() == set()
    assert watcher.poll() == {"VI"}
    assert tr.instance("VI").priority() == 107
    assert watcher.poll() == set()


def test_init_file_creates_or_overwrites(tmp_path: Path) -> None:
    new = TrackFile("a", str(tmp_path / "a"), init_file=(7, False))
    assert initialise_track_file(new)
    assert (tmp_path / "a").read_text() == "7\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o666 & ~umask
    (tmp_path / "a").write_text("3\n")
    assert not initialise_track_file(new)  # exists, no overwrite
    assert (tmp_path / "a").read_text() == "3\n"
    over = TrackFile("a", str(tmp_path / "a"), init_file=(-4, True))
    assert not initialise_track_file(over, reload=True)
    assert initialise_track_file(over)
    assert (tmp_path / "a").read_text() == "-4\n"
    assert not initialise_track_file(TrackFile("d", str(tmp_path), init_file=(1, True)))  # not a regular file
    assert not initialise_track_file(TrackFile("x", str(tmp_path / "no" / "dir"), init_file=(1, False)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no temporary files left behind


def test_file_watcher_applies_init_file_before_the_first_read(tmp_path: Path) -> None:
    path = tmp_path / "f"
    tr = trackers(
        inst(track_file=(t("tf"),)), files=[TrackFile("tf", str(path), weight=0, init_file=(1, False))]
    )
    FileWatcher(tr).start()
    assert path.read_text() == "1\n"
    assert tr.instance("VI").fault()
