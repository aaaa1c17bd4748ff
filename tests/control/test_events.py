"""``kpd events`` against a real ``kpd start`` in a network-namespace lab: the history, the follow stream."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest
from kpd_nodes import CONFIG, INSTANCE, Node, kpd_cli

from lab import wait_for

pytestmark = pytest.mark.netns

#: a notify_master script: a script_run event when the instance becomes MASTER
NOTIFY = CONFIG.replace("    advert_int 1\n", "    advert_int 1\n    notify_master /bin/true\n")


def events(node: Node, *args: str) -> list[dict[str, Any]]:
    out = kpd_cli("events", "--json", "--runtime-dir", str(node.dir / "run"), *args)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def find(evs: list[dict[str, Any]], kind: str, **fields: Any) -> list[dict[str, Any]]:
    return [e for e in evs if e["kind"] == kind and all(e.get(k) == v for k, v in fields.items())]


class Follower:
    """``kpd events --follow --json`` in the background; its lines on a queue."""

    def __init__(self, node: Node, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keepalived_py", "events", "--follow", "--json", "--runtime-dir",
             str(node.dir / "run"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def collect(self) -> list[dict[str, Any]]:
        while not self.lines.empty():
            self.seen.append(json.loads(self.lines.get_nowait()))
        return self.seen

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl-C
        code = self.proc.wait(timeout=20)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()


def test_a_node_becoming_master_shows_the_transition_with_its_reason_and_the_notify_script(lab):
    node = Node(lab, "a", 150, NOTIFY).start()
    wait_for(lambda: node.state() == "MASTER" or None, timeout=30)
    evs = wait_for(lambda: (e := events(node)) and find(e, "script_run", purpose="notify") and e, timeout=30)
    (master,) = find(evs, "vrrp_transition", to="MASTER")
    assert master["source"] == "vrrp" and master["instance"] == "VI_1" and master["vrid"] == 51
    assert master["from"] == "BACKUP" and master["priority"] == 150
    assert master["reason"] == "master_down" and master["reason_text"] == "master down timer expired"
    (started,) = find(evs, "child_started", child="vrrp")
    assert started["source"] == "parent" and started["pid"] == node.children()[0]
    (script,) = find(evs, "script_run", purpose="notify")
    assert script["script"] == "/bin/true" and script["exit_status"] == 0 and script["ok"] is True
    assert script["signal"] is None and script["timed_out"] is False and script["duration"] >= 0
    seqs = [e["seq"] for e in evs]
    assert seqs == list(range(1, len(seqs) + 1))  # numbered by the parent, in order, no gaps
    assert all(set(e) >= {"seq", "time", "source", "kind"} for e in evs)
    assert started["seq"] < master["seq"] < script["seq"]
    # --since and --limit select from the ring
    assert events(node, "--since", str(master["seq"]))[0]["seq"] == master["seq"] + 1
    (latest,) = events(node, "--limit", "1")
    assert latest["seq"] >= evs[-1]["seq"]
    # the text form: ISO-8601 UTC time with ms, seq, source, kind, sorted key=value fields
    text = kpd_cli("events", "--runtime-dir", str(node.dir / "run")).stdout.splitlines()
    line = next(t for t in text if " vrrp_transition " in t and "to=MASTER" in t)
    stamp, seq, source, kind, fields = line.split(" ", 4)
    assert stamp.endswith("Z") and len(stamp) == len("2024-01-01T00:00:00.000Z")
    assert (seq, source, kind) == (str(master["seq"]), "vrrp", "vrrp_transition")
    assert fields.startswith("from=BACKUP instance=VI_1 priority=150 reason=master_down ")
    assert fields.endswith('reason_text="master down timer expired" to=MASTER vrid=51')


def test_follow_prints_the_reload_and_the_transition_it_brings(lab):
    node = Node(lab, "a", 150).start()
    wait_for(lambda: node.state() == "MASTER" or None, timeout=30)
    # everything after the last event so far: whenever the follower connects (its Python may start after
    # the reload on a busy machine), it misses nothing
    last = max(e["seq"] for e in events(node))
    follower = Follower(node, "--since", str(last))
    vi2 = INSTANCE.replace("VI_1", "VI_2").replace("virtual_router_id 51", "virtual_router_id 52") \
        .replace("192.0.2.100/24", "192.0.2.101/24")
    node.config.write_text((CONFIG + vi2).format(priority=150))
    answer = kpd_cli("reload", "--runtime-dir", str(node.dir / "run"))
    assert answer.returncode == 0, answer.stderr

    def seen() -> list[dict[str, Any]] | None:
        evs = follower.collect()
        ok = find(evs, "reload", ok=True) and find(evs, "vrrp_transition", instance="VI_2", to="MASTER")
        return evs if ok else None

    evs = wait_for(seen, timeout=30)
    (reload,) = find(evs, "reload")
    assert reload["source"] == "parent" and reload["generation"] == 1 and reload["errors"] == 0
    assert "accepted" in reload["message"]
    assert all(e["seq"] > 0 for e in evs) and [e["seq"] for e in evs] == sorted(e["seq"] for e in evs)
    assert not find(evs, "vrrp_transition", instance="VI_1")  # the running instance did not flap
    code, err = follower.stop()
    assert code == 0, err  # Ctrl-C ends a follow cleanly


def test_a_rejected_reload_is_an_event_with_its_error_count(lab):
    node = Node(lab, "a", 150).start()
    wait_for(lambda: node.state() == "MASTER" or None, timeout=30)
    bad = CONFIG.format(priority=150).replace("virtual_router_id 51", "virtual_router_id 999")
    node.config.write_text(bad)
    assert node.proc is not None
    node.proc.send_signal(signal.SIGHUP)
    evs = wait_for(lambda: find(events(node), "reload") or None, timeout=30)
    (reload,) = evs
    assert reload["ok"] is False and reload["generation"] == 0 and reload["errors"] >= 1
    assert "keepalived.conf:8" in reload["message"] and "out of range" in reload["message"]


def test_a_sigkilled_child_yields_a_child_restart_event_then_its_successor_starts(lab):
    node = Node(lab, "a", 150).start()
    wait_for(lambda: node.state() == "MASTER" or None, timeout=30)
    (old,) = node.children()
    follower = Follower(node)
    os.kill(old, signal.SIGKILL)

    def restarted() -> list[dict[str, Any]] | None:
        evs = follower.collect()
        return evs if find(evs, "child_restart") and find(evs, "child_started", resumed_masters=1) else None

    evs = wait_for(restarted, timeout=30)
    (restart,) = find(evs, "child_restart")
    assert restart["source"] == "parent" and restart["child"] == "vrrp" and restart["reason"] == "died"
    assert restart["pid"] == old and restart["signal"] == "SIGKILL" and restart["exit_status"] is None
    (successor,) = find(evs, "child_started", resumed_masters=1)
    assert successor["seq"] > restart["seq"] and successor["pid"] != old
    wait_for(lambda: node.children() == [successor["pid"]] or None, timeout=10)
    follower.stop()


def test_a_hung_child_yields_a_child_restart_event_saying_why(lab):
    node = Node(lab, "a", 150).start()
    wait_for(lambda: node.state() == "MASTER" or None, timeout=30)
    (old,) = node.children()
    os.kill(old, signal.SIGSTOP)
    (restart,) = wait_for(lambda: find(events(node), "child_restart") or None, timeout=60)
    assert restart["reason"] == "hung" and restart["pid"] == old and restart["signal"] == "SIGKILL"
    assert "no heartbeat" in restart["detail"]


def test_follow_after_the_daemon_stops_ends_with_a_hint_to_resume(lab):
    node = Node(lab, "a", 150).start()
    wait_for(lambda: node.state() == "MASTER" or None, timeout=30)
    follower = Follower(node)
    wait_for(lambda: find(follower.collect(), "vrrp_transition", to="MASTER") or None, timeout=30)
    assert kpd_cli("stop", "--runtime-dir", str(node.dir / "run")).returncode == 0
    assert follower.proc.wait(timeout=30) == 1
    code, err = follower.stop()
    last = follower.collect()[-1]["seq"]
    assert code == 1 and f"resume with --since {last}" in err
