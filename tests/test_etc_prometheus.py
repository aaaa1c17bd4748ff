"""etc/prometheus/kpd.rules.yml: promtool accepts it, and each alert fires on bad series and only on them.

Every alert is unit tested with the real ``promtool test rules`` (tests/promtool.py) on series shaped
as Prometheus stores a scrape of two kpd directors in one job ``kpd``: the target label ``instance`` is
the director's address, kpd's own ``instance`` label (the VRRP instance) became ``exported_instance``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from metric_names import exposed_series_names, family_of, metric_names_in
from promtool import PROMTOOL_MISSING, alert_names, check_rules, load_rules, run_rule_test, values

RULES = Path(__file__).resolve().parents[1] / "etc" / "prometheus" / "kpd.rules.yml"
A, B = "127.0.0.1:9650", "127.0.0.2:9650"
STATES = ("INIT", "BACKUP", "MASTER", "FAULT", "STOP", "UNKNOWN")
ALERTS = {
    "KpdVrrpSplitBrain",
    "KpdVrrpNoMaster",
    "KpdQuorumLost",
    "KpdChildRestartingRepeatedly",
    "KpdReloadFailed",
    "KpdChecksLate",
}


def vrrp_states(director: str, vrid: int, timeline: list[tuple[str, int]], name: str = "VI_1") -> dict:
    """The six ``kpd_vrrp_instance_state`` series of one VRRP instance on one director, one sample a second:
    ``timeline`` is ``[(state, seconds), ...]``."""
    current = [state for state, seconds in timeline for _ in range(seconds)]
    return {
        f'kpd_vrrp_instance_state{{job="kpd",instance="{director}",exported_instance="{name}",'
        f'vrid="{vrid}",state="{state}"}}': values(1 if s == state else 0 for s in current)
        for state in STATES
    }


def assert_passes(result) -> None:
    assert result.returncode == 0, f"promtool test rules failed:\n{result.stdout}\n{result.stderr}"


def split_brain(vrid: int, masters: int) -> dict:
    return {
        "exp_labels": {"job": "kpd", "vrid": str(vrid), "severity": "critical"},
        "exp_annotations": {
            "summary": f"VRRP split brain: {masters} MASTERs for VRID {vrid} in job kpd",
            "description": (
                f"{masters} directors of job kpd are MASTER for VRID {vrid} at once, so each holds the "
                "virtual addresses. They do not receive each other's adverts: check the link between them, "
                "firewalls (IP protocol 112), authentication and unicast peer settings."
            ),
        },
    }


# --- the file as a whole ---------------------------------------------------------------------------------


def test_promtool_accepts_the_rules_file() -> None:
    result = check_rules(RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rejects_a_copy_of_the_rules_file_with_a_broken_expression(tmp_path: Path) -> None:
    text = RULES.read_text()
    broken_expr = tmp_path / "broken-expr.yml"
    broken_expr.write_text(text.replace("(kpd_checks_late_total[5m])", "(kpd_checks_late_total[5m]", 1))
    assert broken_expr.read_text() != text
    broken_yaml = tmp_path / "broken-yaml.yml"
    broken_yaml.write_text(text.replace("groups:", "groups: [", 1))
    for path in (broken_expr, broken_yaml):
        result = check_rules(path)
        assert result.returncode != 0, (path, result.stdout, result.stderr)


def test_the_rules_file_has_the_alerts_each_with_for_severity_and_annotations() -> None:
    assert alert_names(RULES) == ALERTS
    for rule in load_rules(RULES):
        if "alert" not in rule:
            continue
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert "{{ $labels." in rule["annotations"]["summary"], rule["alert"]


def test_the_rules_use_only_metrics_kpd_exposes() -> None:
    exposed = exposed_series_names()
    used = set()
    for rule in load_rules(RULES):
        names = metric_names_in(rule["expr"])
        assert names, rule  # every rule is about some kpd metric
        unknown = {n: family_of(n) for n in names - exposed}
        assert not unknown, f"{rule.get('alert') or rule.get('record')} uses unknown metrics {unknown}"
        used |= names
    assert "kpd_vrrp_instance_state" in used


# --- the harness -----------------------------------------------------------------------------------------


def test_a_missing_promtool_fails_the_test_with_a_hint_at_make_test(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("promtool") is None
    with pytest.raises(pytest.fail.Exception, match="`make test` installs it"):
        check_rules(RULES)
    with pytest.raises(pytest.fail.Exception, match="`make test` installs it"):
        run_rule_test(RULES, {}, "KpdQuorumLost", "1s", [], tmp_path)
    assert "make test" in PROMTOOL_MISSING


def test_the_rule_test_harness_reports_an_unmet_expectation(tmp_path: Path) -> None:
    healthy = vrrp_states(A, 51, [("MASTER", 60)]) | vrrp_states(B, 51, [("BACKUP", 60)])
    result = run_rule_test(RULES, healthy, "KpdVrrpSplitBrain", "30s", [split_brain(51, 2)], tmp_path)
    assert result.returncode != 0
    assert "KpdVrrpSplitBrain" in result.stdout + result.stderr


def test_the_rule_test_harness_refuses_an_alert_the_file_does_not_have(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="KpdNoSuchAlert"):
        run_rule_test(RULES, {}, "KpdNoSuchAlert", "1s", [], tmp_path)


def test_the_rule_test_harness_can_ignore_annotations(tmp_path: Path) -> None:
    both = vrrp_states(A, 51, [("MASTER", 60)]) | vrrp_states(B, 51, [("MASTER", 60)])
    labels_only = [{"exp_labels": split_brain(51, 2)["exp_labels"]}]
    assert_passes(run_rule_test(RULES, both, "KpdVrrpSplitBrain", "30s", labels_only, tmp_path,
                                ignore_annotations=True))
    assert run_rule_test(RULES, both, "KpdVrrpSplitBrain", "30s", labels_only, tmp_path).returncode != 0


# --- VRRP ------------------------------------------------------------------------------------------------


def test_neither_vrrp_alert_fires_with_one_master_and_one_backup(tmp_path: Path) -> None:
    healthy = vrrp_states(A, 51, [("MASTER", 120)]) | vrrp_states(B, 51, [("BACKUP", 120)])
    for alert in ("KpdVrrpSplitBrain", "KpdVrrpNoMaster"):
        assert_passes(run_rule_test(RULES, healthy, alert, "100s", [], tmp_path))


def test_split_brain_alert_fires_when_both_directors_are_master(tmp_path: Path) -> None:
    series = (
        vrrp_states(A, 51, [("MASTER", 120)])
        | vrrp_states(B, 51, [("BACKUP", 30), ("MASTER", 90)])
        # another VRID on the same pair, healthy: no alert for it
        | vrrp_states(A, 52, [("BACKUP", 120)], name="VI_2")
        | vrrp_states(B, 52, [("MASTER", 120)], name="VI_2")
    )
    assert_passes(run_rule_test(RULES, series, "KpdVrrpSplitBrain", "25s", [], tmp_path))
    # pending first: two MASTERs since 30 s, `for: 10s`
    assert_passes(run_rule_test(RULES, series, "KpdVrrpSplitBrain", "35s", [], tmp_path))
    assert_passes(run_rule_test(RULES, series, "KpdVrrpSplitBrain", "45s", [split_brain(51, 2)], tmp_path))
    assert_passes(run_rule_test(RULES, series, "KpdVrrpSplitBrain", "110s", [split_brain(51, 2)], tmp_path))


def test_split_brain_alert_ignores_a_master_overlap_of_a_few_seconds(tmp_path: Path) -> None:
    # B preempts A: both MASTER for 3 s until A receives B's advert and yields
    series = vrrp_states(A, 51, [("MASTER", 33), ("BACKUP", 87)]) | vrrp_states(
        B, 51, [("BACKUP", 30), ("MASTER", 90)]
    )
    for eval_time in ("32s", "40s", "60s"):
        assert_passes(run_rule_test(RULES, series, "KpdVrrpSplitBrain", eval_time, [], tmp_path))
    # and the NoMaster alert stays quiet through the failover too
    assert_passes(run_rule_test(RULES, series, "KpdVrrpNoMaster", "60s", [], tmp_path))


def test_split_brain_alert_ends_when_the_partition_heals(tmp_path: Path) -> None:
    series = vrrp_states(A, 51, [("MASTER", 120)]) | vrrp_states(B, 51, [("MASTER", 60), ("BACKUP", 60)])
    assert_passes(run_rule_test(RULES, series, "KpdVrrpSplitBrain", "50s", [split_brain(51, 2)], tmp_path))
    assert_passes(run_rule_test(RULES, series, "KpdVrrpSplitBrain", "70s", [], tmp_path))


def test_no_master_alert_fires_when_every_director_is_backup_or_fault(tmp_path: Path) -> None:
    series = (
        vrrp_states(A, 51, [("MASTER", 20), ("FAULT", 100)])
        | vrrp_states(B, 51, [("BACKUP", 120)])
        | vrrp_states(A, 52, [("MASTER", 120)], name="VI_2")
        | vrrp_states(B, 52, [("BACKUP", 120)], name="VI_2")
    )
    no_master_51 = {
        "exp_labels": {"job": "kpd", "vrid": "51", "severity": "critical"},
        "exp_annotations": {
            "summary": "VRRP: no MASTER for VRID 51 in job kpd",
            "description": (
                "No director of job kpd is MASTER for VRID 51, so nobody holds its virtual addresses. Look "
                "for instances in FAULT (tracked interfaces, scripts or files down) or stuck in INIT/BACKUP "
                "(kpd_vrrp_instance_state, kpd_vrrp_tracker_up)."
            ),
        },
    }
    assert_passes(run_rule_test(RULES, series, "KpdVrrpNoMaster", "40s", [], tmp_path))  # pending, for: 30s
    assert_passes(run_rule_test(RULES, series, "KpdVrrpNoMaster", "55s", [no_master_51], tmp_path))


def test_no_master_alert_ignores_an_election_after_startup(tmp_path: Path) -> None:
    series = vrrp_states(A, 51, [("INIT", 1), ("BACKUP", 4), ("MASTER", 115)]) | vrrp_states(
        B, 51, [("INIT", 2), ("BACKUP", 118)]
    )
    for eval_time in ("4s", "30s", "100s"):
        assert_passes(run_rule_test(RULES, series, "KpdVrrpNoMaster", eval_time, [], tmp_path))


# --- virtual servers -------------------------------------------------------------------------------------

QUORUM = 'kpd_virtual_server_quorum_up{{job="kpd",instance="{}",virtual_server="192.0.2.100:80/TCP"}}'


def test_quorum_lost_alert_fires_for_the_director_that_lost_it(tmp_path: Path) -> None:
    series = {QUORUM.format(A): "1x30 0x60", QUORUM.format(B): "1x90"}
    lost = {
        "exp_labels": {"job": "kpd", "instance": A, "virtual_server": "192.0.2.100:80/TCP",
                       "severity": "critical"},
        "exp_annotations": {
            "summary": f"Virtual server 192.0.2.100:80/TCP lost its quorum on {A}",
            "description": (
                f"The healthy real servers of virtual server 192.0.2.100:80/TCP on director {A} (job kpd) "
                "weigh less than its quorum: the quorum_down action ran and the service is degraded or "
                "down. See kpd_real_server_up and the checker logs."
            ),
        },
    }
    assert_passes(run_rule_test(RULES, series, "KpdQuorumLost", "25s", [], tmp_path))
    assert_passes(run_rule_test(RULES, series, "KpdQuorumLost", "36s", [], tmp_path))  # pending, for: 10s
    assert_passes(run_rule_test(RULES, series, "KpdQuorumLost", "60s", [lost], tmp_path))


# --- the kpd process -------------------------------------------------------------------------------------

RESTARTS = 'kpd_child_restarts_total{{job="kpd",instance="{}",child="checker",reason="{}"}}'


def restarted(child: str = "checker") -> dict:
    return {
        "exp_labels": {"job": "kpd", "instance": A, "child": child, "severity": "warning"},
        "exp_annotations": {
            "summary": f"kpd {child} child restarted 4 times in 15 min on {A}",
            "description": (
                f"The {child} child of kpd on {A} (job kpd) keeps dying or hanging and being restarted by "
                "the parent. Each restart interrupts VRRP adverts or health checks. See the journal of kpd "
                "on that host (reason label of kpd_child_restarts_total)."
            ),
        },
    }


def test_child_restart_alert_fires_after_four_restarts_within_15_minutes(tmp_path: Path) -> None:
    # one sample a minute: 2 deaths and 2 hangs of the checker, minutes 20 to 23
    series = {
        RESTARTS.format(A, "died"): "0x20 1 2 2 2 2x30",
        RESTARTS.format(A, "hung"): "0x20 0 0 1 2 2x30",
        RESTARTS.format(B, "died"): "0x54",
        RESTARTS.format(B, "hung"): "0x54",
    }
    run = lambda t, exp: run_rule_test(  # noqa: E731
        RULES, series, "KpdChildRestartingRepeatedly", t, exp, tmp_path, interval="1m"
    )
    assert_passes(run("22m", []))
    # the 4th restart is seen at minute 23, `for: 1m`; the value reads 4 as long as the window
    # covers every sample (from minute 23 to 35)
    assert_passes(run("25m", [restarted()]))
    assert_passes(run("35m", [restarted()]))
    assert_passes(run("40m", []))  # the restarts left the 15 minute window


def test_child_restart_alert_ignores_three_restarts_or_restarts_spread_out(tmp_path: Path) -> None:
    series = {
        # 3 restarts in a row, then one every 20 minutes
        RESTARTS.format(A, "died"): "0x10 1 2 3 3x19 4 4x19 5 5x19 6 6x10",
        RESTARTS.format(A, "hung"): "0x100",
    }
    for eval_time in ("15m", "30m", "50m", "70m", "90m"):
        assert_passes(run_rule_test(RULES, series, "KpdChildRestartingRepeatedly", eval_time, [], tmp_path,
                                    interval="1m"))


LAST_RELOAD = 'kpd_last_reload_successful{{job="kpd",instance="{}"}}'


def test_reload_failed_alert_fires_while_the_last_reload_was_rejected(tmp_path: Path) -> None:
    series = {LAST_RELOAD.format(A): "1x20 0x60 1x40", LAST_RELOAD.format(B): "1x120"}
    failed = {
        "exp_labels": {"job": "kpd", "instance": A, "severity": "warning"},
        "exp_annotations": {
            "summary": f"kpd on {A} rejected its last configuration reload",
            "description": (
                f"The last reload of kpd on {A} (job kpd) was rejected: kpd still runs the previous "
                "configuration (generation in kpd_config_generation). Run `kpd check-config` on that host to "
                "see why, fix the file, reload again."
            ),
        },
    }
    assert_passes(run_rule_test(RULES, series, "KpdReloadFailed", "15s", [], tmp_path))
    assert_passes(run_rule_test(RULES, series, "KpdReloadFailed", "45s", [], tmp_path))  # pending, for: 30s
    assert_passes(run_rule_test(RULES, series, "KpdReloadFailed", "70s", [failed], tmp_path))
    assert_passes(run_rule_test(RULES, series, "KpdReloadFailed", "100s", [], tmp_path))  # reloaded fine


LATE = 'kpd_checks_late_total{{job="kpd",instance="{}"}}'


def test_checks_late_alert_fires_when_checks_keep_running_late(tmp_path: Path) -> None:
    # one sample a minute: A's checks run late every minute from minute 10 on, B's never
    series = {LATE.format(A): "0x10 1+1x30", LATE.format(B): "0x40"}
    late = {
        "exp_labels": {"job": "kpd", "instance": A, "severity": "warning"},
        "exp_annotations": {
            "summary": f"kpd health checks run late on {A}",
            "description": (
                f"Health checks of kpd on {A} (job kpd) keep starting more than 0.1 s after they are due "
                "(5 in the last 5 minutes): the checker cannot keep up, so failures are detected late. Look "
                "at the checker's CPU (kpd_child_cpu_seconds_total), its loop lag, slow MISC_CHECK scripts, "
                "or too many checks with short delay_loop."
            ),
        },
    }
    run = lambda t, exp: run_rule_test(RULES, series, "KpdChecksLate", t, exp, tmp_path, interval="1m")  # noqa: E731
    assert_passes(run("15m", []))  # pending, for: 10m
    assert_passes(run("25m", [late]))


def test_checks_late_alert_ignores_a_single_late_check(tmp_path: Path) -> None:
    series = {LATE.format(A): "0x10 1x30"}
    for eval_time in ("12m", "16m", "21m", "30m"):
        assert_passes(run_rule_test(RULES, series, "KpdChecksLate", eval_time, [], tmp_path, interval="1m"))
