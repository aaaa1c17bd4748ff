"""The watchdog and reloads never cause the outage they exist to prevent (issue 9, items 1, 2, 5, 6, 8).

Two kpd nodes in network namespaces (advert_int 1), the VIP sampled on both every 5 ms through netlink.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest
from kpd_nodes import DEFAULTS, INSTANCE, Node, kpd_cli, start_pair

from keepalived_py import wire
from lab import VipSampler, wait_for

pytestmark = pytest.mark.netns
VIP = "192.0.2.100"


def _status(node: Node) -> dict:
    out = kpd_cli("status", "--json", "--runtime-dir", str(node.dir / "run"))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_master_vrrp_child_hung_for_good_is_replaced_without_any_takeover_at_default_settings(lab):
    master, backup = start_pair(lab, DEFAULTS)
    watchdog = _status(master)["children"]["vrrp"]
    assert watchdog["hung_timeout_source"].startswith("derived from VI_1's Master_Down_Interval")
    assert watchdog["hung_timeout"] < 1.0
    (old,) = master.children()
    with VipSampler(lab, ("a", "b"), VIP) as vips:
        os.kill(old, signal.SIGSTOP)  # hung for good: it never runs again
        stopped = time.monotonic()
        new = wait_for(lambda: [p for p in master.children() if p != old] or None, timeout=10)
        wait_for(lambda: master.state() == "MASTER" or None, timeout=10)
        # well past the backup's Master_Down_Interval (3.6 s): had it missed adverts, it would be MASTER
        time.sleep(max(0.0, stopped + 6.0 - time.monotonic()))
    assert vips.holders_seen() == {("a",)}, sorted(vips.holders_seen())
    assert vips.largest_gap() < 0.5
    wait_for(lambda: not os.path.exists(f"/proc/{old}") or None, timeout=10)  # SIGKILLed while stopped
    log = master.log()
    assert "hung, restarting it (SIGKILL" in log and "resuming MASTER: VI_1" in log
    assert "Entering MASTER" not in backup.log() and backup.state() == "BACKUP"
    assert new and _status(master)["children"]["vrrp"]["restarts_by_reason"] == {"hung": 1}


def test_a_hang_shorter_than_the_hung_timeout_changes_nothing(lab):
    master, _backup = start_pair(lab, DEFAULTS)
    timeout = _status(master)["children"]["vrrp"]["hung_timeout"]
    (child,) = master.children()
    with VipSampler(lab, ("a", "b"), VIP) as vips:
        os.kill(child, signal.SIGSTOP)
        time.sleep(timeout / 3)
        os.kill(child, signal.SIGCONT)
        time.sleep(5.0)
    assert vips.holders_seen() == {("a",)}
    assert master.children() == [child] and "hung" not in master.log()
    assert _status(master)["children"]["vrrp"]["restarts"] == 0


TEMPLATE = """{# SPIN x SPIN iterations: a render slower than the hung timeout for a large SPIN #}
{% for i in range(SPIN) %}{% for j in range(SPIN) %}{% if i * j == -1 %}never{% endif %}{% endfor %}
{%- endfor %}
""" + INSTANCE.format(priority=150)


def test_a_reload_slower_than_the_hung_timeout_keeps_the_children_and_serves_status(lab):
    master = Node(lab, "a", 150, DEFAULTS, file="keepalived.conf.j2")
    master.config.write_text(TEMPLATE.replace("SPIN", "2"))
    master.start()
    backup = Node(lab, "b", 100, DEFAULTS).start()
    wait_for(lambda: (master.state() == "MASTER" and backup.state() == "BACKUP") or None, timeout=20)
    children = master.children()
    master.config.write_text(TEMPLATE.replace("SPIN", "10000"))  # about 3 s: past 2 x the hung timeout
    started = time.monotonic()
    answers = []
    with VipSampler(lab, ("a", "b"), VIP) as vips:
        assert master.proc is not None
        master.proc.send_signal(signal.SIGHUP)
        while True:
            doc = _status(master)  # served while the reload is validated
            answers.append((time.monotonic() - started, doc["reload_in_progress"]))
            if doc["reload"] is not None:
                break
            assert time.monotonic() - started < 120
            time.sleep(0.2)
        time.sleep(1.0)
    assert any(busy for _, busy in answers), answers
    took = answers[-1][0]
    assert took > 2 * doc["children"]["vrrp"]["hung_timeout"], (
        f"the reload was not slow enough to matter: {doc['reload']}\n{master.log()[-3000:]}"
    )
    assert doc["reload"]["ok"] is True, doc["reload"]
    assert vips.holders_seen() == {("a",)}
    assert master.children() == children and "hung" not in master.log()
    assert backup.state() == "BACKUP"


def _control(node: Node) -> str:
    return str(node.dir / "run" / "control.sock")


def test_a_control_frame_with_a_huge_integer_costs_only_its_connection(lab):
    master, _ = start_pair(lab)
    frame = b'{"type":"request","cmd":"status","args":{"n":' + b"7" * 5000 + b"}}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(5)
        s.connect(_control(master))
        s.send(frame)
        with contextlib.suppress(OSError):  # an answer or a closed connection: only this client is affected
            s.recv(wire.MAX_FRAME + 1)
    time.sleep(0.5)
    assert master.proc is not None and master.proc.poll() is None, master.log()
    assert _status(master)["instances"][0]["state"] == "MASTER"


def test_a_thousand_idle_control_clients_neither_kill_the_parent_nor_keep_status_out(lab):
    master, _ = start_pair(lab)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while len(idle) < 1100 and time.monotonic() < deadline:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.setblocking(False)
            try:
                s.connect(_control(master))
            except BlockingIOError:  # the backlog is full for a moment: the parent accepts on
                s.close()
                time.sleep(0.001)
                continue
            idle.append(s)
        assert len(idle) > 1024, ("the flood did not get through", master.log()[-3000:])
        assert master.proc is not None and master.proc.poll() is None, master.log()
        out = subprocess.run([sys.executable, "-m", "keepalived_py", "status", "--json", "--runtime-dir",
                              str(master.dir / "run")], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        parent_fds = len(os.listdir(f"/proc/{master.proc.pid}/fd"))
        assert parent_fds < 200, parent_fds
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert master.proc.poll() is None


def test_a_forged_heartbeat_cannot_keep_a_hung_child_alive(lab):
    master, _ = start_pair(lab)
    (child,) = master.children()
    path = str(master.dir / "run" / "heartbeat.sock")
    os.kill(child, signal.SIGSTOP)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as forger:
        forger.connect(path)
        deadline = time.monotonic() + 10
        seq = 10_000
        while time.monotonic() < deadline and master.children() == [child]:
            forger.send(wire.encode(wire.Heartbeat("vrrp", child, seq, {"instances": {}})))
            seq += 1
            time.sleep(0.05)
    assert master.children() != [child], "the forged heartbeats kept a hung child alive"
    assert "not our child" in master.log()
