"""vrrp_track_process's pure logic: which processes match (keepalived's check_params) and when their count is
a quorum, with fork and terminate delays on an injected clock; and the tracking it feeds."""

from __future__ import annotations

import pytest

from keepalived_py.config.model import Config, Tracked, TrackProcess, VrrpInstance
from keepalived_py.vrrp.track import Trackers
from keepalived_py.vrrp.track_process import ProcessQuorum, matches


def tp(**kw) -> TrackProcess:
    return TrackProcess(name="TP", **{"process": "haproxy", **kw})


def full(params: tuple[str, ...], match: str) -> TrackProcess:
    """``process /s PARAMS`` with ``param_match MATCH`` (full command)."""
    return tp(process="/s", params=params, param_match=match, full_command=True)


@pytest.mark.parametrize(
    ("config", "comm", "argv", "expected"),
    [
        (tp(), "haproxy", ["/usr/sbin/haproxy", "-f", "x"], True),
        (tp(), "haproxy2", None, False),
        (tp(), "hap", None, False),  # exact, not a pattern (pgrep "^haproxy$")
        (tp(), None, None, False),  # a zombie
        (tp(process="/usr/sbin/haproxy", full_command=True), "haproxy", ["/usr/sbin/haproxy", "-f"], True),
        (tp(process="/usr/sbin/haproxy", full_command=True), "haproxy", ["haproxy"], False),
        # parameters: exact by default
        (full(("-f", "x"), "exact"), "", ["/s", "-f", "x"], True),
        (full(("-f", "x"), "exact"), "", ["/s", "-f"], False),
        (full(("-f",), "exact"), "", ["/s", "-f", "x"], False),
        # param_match alone: no parameters at all
        (full((), "exact"), "", ["/s"], True),
        (full((), "exact"), "", ["/s", "-d"], False),
        # partial: the first ones match, more may follow
        (full(("-f",), "partial"), "", ["/s", "-f", "x"], True),
        (full(("-f",), "partial"), "", ["/s", "-g", "x"], False),
        # initial: and the last configured one may be the start of the process's
        (full(("-f", "/etc/ha"), "initial"), "",
         ["/s", "-f", "/etc/haproxy.cfg"], True),
        (full(("-f", "/etc/ha"), "initial"), "",
         ["/s", "-f", "/etc/x"], False),
        (full(("-f", "/etc/ha"), "initial"), "", ["/s", "-f"], False),
    ],
)
def test_matching_is_keepalived_check_params(config, comm, argv, expected):
    assert matches(config, comm, argv) is expected


def test_the_quorum_changes_only_when_the_count_crosses_a_bound():
    q = ProcessQuorum(tp(quorum=2, quorum_max=3))
    assert q.reset({1}) is False and not q.up
    assert q.add(2, 0.0, forked=False) is True and q.up
    assert q.add(3, 0.0, forked=False) is False and q.up
    assert q.add(4, 0.0, forked=False) is True and not q.up  # above quorum_max
    assert q.remove(4, 0.0, exited=True) is True and q.up
    assert q.remove(3, 0.0, exited=True) is False
    assert q.remove(2, 0.0, exited=True) is True and not q.up
    assert q.remove(99, 0.0, exited=True) is False  # never counted


def test_quorum_max_zero_means_up_while_none_runs():
    q = ProcessQuorum(tp(quorum=0, quorum_max=0))
    assert q.reset(set()) is True and q.up
    assert q.add(7, 0.0, forked=False) is True and not q.up
    assert q.remove(7, 0.0, exited=True) is True and q.up


def test_a_fork_counts_after_fork_delay_and_an_exit_meanwhile_cancels_it():
    q = ProcessQuorum(tp(fork_delay=2.0))
    q.reset(set())
    assert q.add(10, 100.0, forked=True) is False and not q.up and q.deadline == 102.0
    assert q.expire(101.0) is False
    assert q.expire(102.0) is True and q.up and q.deadline is None
    q.reset(set())
    q.add(11, 200.0, forked=True)
    assert q.remove(11, 200.5, exited=True) is False and q.deadline is None and not q.up
    assert q.add(12, 300.0, forked=False) is True and q.up  # an exec counts at once


def test_an_exit_counts_after_terminate_delay_and_a_new_process_meanwhile_cancels_it():
    q = ProcessQuorum(tp(terminate_delay=3.0))
    q.reset({1})
    assert q.remove(1, 10.0, exited=True) is False and q.up and q.deadline == 13.0
    assert q.add(2, 11.0, forked=True) is False and q.up and q.deadline is None
    assert q.remove(2, 20.0, exited=True) is False and q.deadline == 23.0
    assert q.expire(23.0) is True and not q.up
    q.reset({5})
    assert q.remove(5, 30.0, exited=False) is True and not q.up  # renamed away: at once


def test_tracking_faults_with_weight_0_and_moves_the_priority_with_a_weight():
    procs = (TrackProcess("P0", "a"), TrackProcess("PW", "b", weight=-30))
    inst = VrrpInstance("VI", interface="eth0", virtual_router_id=1, priority=100, dont_track_primary=True,
                        track_process=(Tracked("P0"), Tracked("PW")))
    trackers = Trackers(Config(track_processes=procs, vrrp_instances=(inst,)))
    it = trackers.instance("VI")
    assert it.fault() and it.priority() == 70  # nothing read yet: no quorum
    assert trackers.set_process("P0", True) == {"VI"}
    assert not it.fault()
    assert trackers.set_process("PW", True) == {"VI"} and it.priority() == 100
    assert trackers.set_process("nobody", True) == set()
    assert [p.name for p in trackers.tracked_processes()] == ["P0", "PW"]
