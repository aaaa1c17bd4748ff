"""The control-plane parent with real processes, real signals and real VRRP in network namespaces."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kpd_nodes import CONFIG, Node, kpd_cli, start_pair

from lab import wait_for

pytestmark = pytest.mark.netns

def test_children_are_named_and_only_the_parent_is_kpd(lab):
    master, _ = start_pair(lab)
    (child,) = master.children()
    assert Path(f"/proc/{child}/comm").read_text().strip() == "kpd-vrrp"
    assert master.proc is not None
    assert Path(f"/proc/{master.proc.pid}/comm").read_text().strip() == "kpd"


def test_sigkill_of_the_master_vrrp_child_respawns_it_without_a_flap(lab):
    master, backup = start_pair(lab)
    (old,) = master.children()
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    absent = 0
    new: list[int] = []
    while time.monotonic() - killed < 5:  # poll the VIP every 5 ms across the restart
        if not master.has_vip():
            absent += 1
        if not new:
            new = [p for p in master.children() if p != old]
        time.sleep(0.005)
    assert new, master.log()
    assert absent == 0, master.log()
    assert backup.state() == "BACKUP" and "Entering MASTER" not in backup.log()
    assert "resuming MASTER: VI_1" in master.log()


def test_a_stopped_child_is_declared_hung_killed_and_replaced(lab):
    master, _ = start_pair(lab)
    (old,) = master.children()
    os.kill(old, signal.SIGSTOP)
    wait_for(lambda: [p for p in master.children() if p != old] or None, timeout=30)
    assert "hung, restarting it" in master.log()
    wait_for(lambda: master.state() == "MASTER" or None, timeout=10)


def test_sigkill_of_the_parent_stops_the_children_and_the_peer_takes_over(lab):
    master, backup = start_pair(lab)
    (child,) = master.children()
    assert master.proc is not None
    os.kill(master.proc.pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{child}").exists() or None, timeout=5)
    wait_for(lambda: (not master.has_vip()) or None, timeout=5)  # released on the way out
    wait_for(lambda: backup.state() == "MASTER" or None, timeout=5)
    assert "master sent priority 0" in backup.log()


def test_a_child_that_cannot_run_the_configuration_stops_the_daemon(lab):
    master, _ = start_pair(lab)
    # the respawned child can read neither the parent's snapshot nor the file
    (master.dir / "run" / "config.pickle").write_bytes(b"not a snapshot")
    master.config.unlink()
    (child,) = master.children()
    os.kill(child, signal.SIGKILL)
    assert master.proc is not None
    assert master.proc.wait(timeout=10) == 4
    assert "cannot run the configuration" in master.log()


def test_a_second_kpd_on_the_same_runtime_dir_refuses_to_start(lab):
    master, _ = start_pair(lab)
    second = lab.run(
        "a",
        sys.executable,
        "-m",
        "keepalived_py",
        "start",
        "--config",
        str(master.config),
        "--runtime-dir",
        str(master.dir / "run"),
        check=False,
    )
    assert second.returncode == 1 and "already running" in second.stderr


def test_a_symlink_planted_at_the_pid_file_is_refused(lab, tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (run / "kpd.pid").symlink_to(tmp_path / "elsewhere")
    node = Node(lab, "a", 150)
    out = lab.run(
        "a",
        sys.executable,
        "-m",
        "keepalived_py",
        "start",
        "--config",
        str(node.config),
        "--runtime-dir",
        str(run),
        check=False,
    )
    assert out.returncode == 1 and "symlink" in out.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_a_crash_loop_backs_off_and_ends_with_a_non_zero_exit(lab):
    node = Node(lab, "a", 150).start()
    assert node.proc is not None
    deaths: list[float] = []
    seen: set[int] = set()
    while node.proc.poll() is None and len(deaths) < 10:
        pids = wait_for(
            lambda: [p for p in node.children() if p not in seen] or node.proc.poll() is not None, timeout=20
        )
        if pids is True:
            break
        for pid in pids:
            seen.add(pid)
            os.kill(pid, signal.SIGKILL)  # dies right after it starts, again and again
            deaths.append(time.monotonic())
    assert node.proc.wait(timeout=20) == 1
    gaps = [b - a for a, b in itertools.pairwise(deaths)]
    # keepalived's delays between quick deaths: 0, 1, 2, 4, 8 seconds (plus the time to start a child)
    assert all(gap >= want - 0.05 for gap, want in zip(gaps[1:], [1, 2, 4, 8], strict=True)), gaps
    assert len(deaths) == 6 and "died 6 times in a row" in node.log()


def test_systemd_hears_ready_status_watchdog_only_while_healthy_and_stopping(lab, tmp_path):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    notify.bind(str(path))
    notify.settimeout(0.2)
    node = Node(lab, "a", 150)
    node.proc = lab.popen(
        "a",
        "env",
        f"NOTIFY_SOCKET={path}",
        "WATCHDOG_USEC=400000",
        sys.executable,
        "-m",
        "keepalived_py",
        "start",
        "--config",
        str(node.config),
        "--runtime-dir",
        str(node.dir / "run"),
        "--log-console",
    )
    messages: list[tuple[float, str]] = []

    def collect(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with contextlib.suppress(TimeoutError):
                messages.append((time.monotonic(), notify.recv(4096).decode()))

    collect(6)
    texts = [m for _, m in messages]
    assert "READY=1" in texts
    assert any(m.startswith("STATUS=") and "VI_1 MASTER" in m for m in texts)
    assert texts.count("WATCHDOG=1") >= 5
    (child,) = node.children()
    os.kill(child, signal.SIGSTOP)
    stopped = time.monotonic()
    messages.clear()
    collect(1.4)  # within the hung timeout (1.5 s): no watchdog ping once the child misses two beats
    late = [t for t, m in messages if m == "WATCHDOG=1" and t - stopped > 0.8]
    assert late == []
    with contextlib.suppress(ProcessLookupError):  # on a loaded machine it may be replaced as hung by now
        os.kill(child, signal.SIGCONT)
    assert node.proc is not None
    node.proc.send_signal(signal.SIGTERM)
    collect(3)
    assert "STOPPING=1" in [m for _, m in messages]
    notify.close()


HUNG_6 = CONFIG.replace("kpd_child_hung_timeout 1.5", "kpd_child_hung_timeout 6")


def test_status_reports_instances_and_children_and_never_master_for_a_hung_child(lab):
    master, _ = start_pair(lab, HUNG_6)  # beats every second: unhealthy after two missed, hung after six
    run_dir = str(master.dir / "run")
    doc = json.loads(kpd_cli("status", "--json", "--runtime-dir", run_dir).stdout)
    (inst,) = doc["instances"]
    assert inst["name"] == "VI_1" and inst["state"] == "MASTER" and inst["vips"] == ["192.0.2.100/24"]
    vrrp = doc["children"]["vrrp"]
    assert vrrp["healthy"] and vrrp["pid"] == master.children()[0] and vrrp["rss_bytes"] > 0
    table = kpd_cli("status", "--runtime-dir", run_dir).stdout
    assert "VI_1" in table and "MASTER" in table and "HEARTBEAT AGE" in table
    (child,) = master.children()
    os.kill(child, signal.SIGSTOP)
    doc = wait_for(lambda: (d := json.loads(kpd_cli("status", "--json", "--runtime-dir", run_dir).stdout))
                   ["instances"][0]["state"] != "MASTER" and d, timeout=30)
    assert doc["instances"][0]["state"] == "UNKNOWN" and doc["children"]["vrrp"]["pid"] == child
    assert not doc["children"]["vrrp"]["healthy"]
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, signal.SIGCONT)


def test_control_socket_is_root_only_and_survives_bad_frames(lab):
    master, _ = start_pair(lab)
    path = master.dir / "run" / "control.sock"
    assert (path.stat().st_mode & 0o777) == 0o600
    pid = os.fork()
    if pid == 0:  # a non-root peer: the socket's mode refuses it
        code = 2
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
                s.connect(str(path))
            code = 0
        except PermissionError:
            code = 13
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 13
    for garbage in (b"\xff" * 100, b"{", b'{"type":"request","cmd":"rm"}', b"x" * 300_000):
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.settimeout(3)
            s.connect(str(path))
            try:
                s.send(garbage)
                answer = s.recv(300_000)
            except OSError:  # an oversized datagram may be refused by the kernel itself
                continue
            assert b'"ok":false' in answer
    assert master.proc is not None and master.proc.poll() is None
    assert json.loads(kpd_cli("status", "--json", "--runtime-dir", str(path.parent)).stdout)["instances"]


def test_sigusr1_and_sigusr2_write_state_and_stats_files_safely(lab):
    master, _ = start_pair(lab)
    run = master.dir / "run"
    assert master.proc is not None
    master.proc.send_signal(signal.SIGUSR1)
    master.proc.send_signal(signal.SIGUSR2)
    state = wait_for(lambda: (run / "kpd-state.json").exists() or None, timeout=5)
    assert state
    wait_for(lambda: (run / "kpd-stats.json").exists() or None, timeout=5)
    assert (run / "kpd-state.json").stat().st_mode & 0o777 == 0o600
    assert json.loads((run / "kpd-state.json").read_text())["instances"][0]["name"] == "VI_1"
    assert "VI_1" in json.loads((run / "kpd-stats.json").read_text())["instances"]


def test_kpd_stop_stops_the_daemon_gracefully(lab):
    master, backup = start_pair(lab)
    out = kpd_cli("stop", "--runtime-dir", str(master.dir / "run"))
    assert out.returncode == 0
    assert master.proc is not None and master.proc.wait(timeout=10) == 0
    wait_for(lambda: backup.state() == "MASTER" or None, timeout=5)


def test_an_instance_on_a_missing_interface_is_held_in_fault_and_the_child_keeps_running(lab):
    node = Node(lab, "a", 150)
    node.config.write_text(CONFIG.format(priority=150).replace("interface eth0", "interface eth9"))
    node.start()
    wait_for(lambda: node.state() == "FAULT" or None, timeout=10)
    (child,) = node.children()
    time.sleep(2)
    assert node.children() == [child] and "exited" not in node.log()


def _notify_socket(tmp_path: Path) -> tuple[socket.socket, Path]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock, path


def test_sighup_with_a_broken_config_is_rejected_the_old_one_runs_and_status_shows_why(lab, tmp_path):
    master, backup = start_pair(lab)
    children = master.children()
    good = master.config.read_text()
    master.config.write_text(good.replace("virtual_router_id 51", "virtual_router_id 999"))
    assert master.proc is not None
    master.proc.send_signal(signal.SIGHUP)
    run_dir = str(master.dir / "run")
    doc = wait_for(lambda: (d := json.loads(kpd_cli("status", "--json", "--runtime-dir", run_dir).stdout))
                   .get("reload") and d, timeout=10)
    assert doc["reload"]["ok"] is False and doc["config_generation"] == 0
    assert doc["router_id"] == socket.gethostname()  # no router_id configured: the host name, as keepalived
    assert any("virtual_router_id" in e and "keepalived.conf:" in e for e in doc["reload"]["errors"])
    assert "REJECTED" in kpd_cli("status", "--runtime-dir", run_dir).stdout
    answer = kpd_cli("reload", "--runtime-dir", run_dir)
    assert answer.returncode != 0 and "rejected" in answer.stderr and "virtual_router_id" in answer.stderr
    time.sleep(1.0)
    assert master.children() == children and master.state() == "MASTER" and master.has_vip()
    assert backup.state() == "BACKUP"


def test_sighup_reload_goes_reloading_then_ready_and_an_unchanged_config_does_not_flap(lab, tmp_path):
    sock, path = _notify_socket(tmp_path)
    messages: list[str] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                messages.append(sock.recv(4096).decode())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    node = Node(lab, "a", 150)
    node.proc = lab.popen("a", "env", f"NOTIFY_SOCKET={path}", sys.executable, "-m", "keepalived_py",
                          "start", "--config", str(node.config), "--runtime-dir", str(node.dir / "run"),
                          "--log-console")
    wait_for(lambda: (node.state() == "MASTER" and "READY=1" in messages) or None, timeout=10)
    children = node.children()
    mark = len(messages)
    node.proc.send_signal(signal.SIGHUP)
    gone = []
    end = time.monotonic() + 3
    while time.monotonic() < end:
        if not node.has_vip():
            gone.append(time.monotonic())
        time.sleep(0.005)
    done.set()
    listener.join()
    after = messages[mark:]
    assert "RELOADING=1" in after and "READY=1" in after[after.index("RELOADING=1"):], after
    doc = json.loads(kpd_cli("status", "--json", "--runtime-dir", str(node.dir / "run")).stdout)
    assert doc["reload"]["ok"] is True and doc["config_generation"] == 1
    assert gone == [] and node.state() == "MASTER" and node.children() == children
    assert "Entering" not in node.log().split("received SIGHUP", 1)[1]
    sock.close()


TWO = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    garp_master_delay 1
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
vrrp_instance VI_2 {{
    interface eth0
    virtual_router_id 52
    priority {prio2}
    advert_int 1
    garp_master_delay 1
    virtual_ipaddress {{
        192.0.2.101/24
    }}
}}
{extra}
"""
VI_3 = """
vrrp_instance VI_3 {
    interface eth0
    virtual_router_id 53
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.102/24
    }
}
"""


def _states(node: Node) -> dict[str, str]:
    try:
        doc = json.loads((node.dir / "run" / "vrrp-status.json").read_text())
        return {i["name"]: i["state"] for i in doc}
    except (OSError, ValueError):
        return {}


def _reload_and_watch(node: Node, text: str, seconds: float) -> list[float]:
    """Write ``text``, SIGHUP the parent, poll VI_1's VIP every 5 ms: the times it was absent."""
    node.config.write_text(text)
    assert node.proc is not None
    node.proc.send_signal(signal.SIGHUP)
    gone = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if "192.0.2.100/" not in node.lab.run(node.name, "ip", "-o", "addr", "show", "eth0").stdout:
            gone.append(time.monotonic())
        time.sleep(0.005)
    return gone


def test_reload_applies_a_priority_change_and_added_and_removed_instances_without_disturbing_others(lab):
    sys.path.append(str(Path(__file__).resolve().parents[1] / "vrrp"))  # the wire parsers of the VRRP tests
    from nodes import adverts, garps

    node = Node(lab, "a", 150)
    node.config.write_text(TWO.format(prio2=150, extra=""))
    node.start()
    wait_for(lambda: _states(node) == {"VI_1": "MASTER", "VI_2": "MASTER"} or None, timeout=10)
    time.sleep(2.5)  # past the second GARP burst (garp_master_delay 1)
    children = node.children()
    cap = lab.capture()
    gone = _reload_and_watch(node, TWO.format(prio2=120, extra=VI_3), 4.0)
    wait_for(lambda: _states(node).get("VI_3") == "MASTER" or None, timeout=10)
    packets = cap.stop()
    assert gone == [] and node.children() == children
    assert _states(node)["VI_1"] == "MASTER" and _states(node)["VI_2"] == "MASTER"
    ads = adverts(packets)
    assert {a.priority for a in ads if a.vrid == 52}.issuperset({120}), [(a.vrid, a.priority) for a in ads]
    assert {a.priority for a in ads if a.vrid == 51} == {150}
    vi1 = [a.time for a in ads if a.vrid == 51]
    assert all(0.9 < b - a < 1.1 for a, b in itertools.pairwise(vi1)), vi1
    assert garps(packets, "192.0.2.100/24") == [], "VI_1 re-announced its address on reload"
    assert garps(packets, "192.0.2.102/24"), "the added instance announced its address"
    log = node.log().split("received SIGHUP", 1)[1]
    assert "(VI_1) Entering" not in log and "(VI_2) Entering" not in log
    assert "(VI_1) reload: unchanged" in log and "(VI_2) reload: updated" in log

    cap = lab.capture()
    gone = _reload_and_watch(node, TWO.format(prio2=120, extra=""), 3.0)
    packets = cap.stop()
    assert gone == []
    assert [a.priority for a in adverts(packets) if a.vrid == 53] == [0]
    assert "192.0.2.102/" not in lab.run("a", "ip", "-o", "addr", "show", "eth0").stdout
    assert "VI_3" not in _states(node) and _states(node)["VI_1"] == "MASTER"


def test_a_notify_socket_nobody_reads_never_blocks_the_parent(lab, tmp_path):
    sock, path = _notify_socket(tmp_path)  # bound, never read: its queue fills after a few messages
    node = Node(lab, "a", 150)
    node.proc = lab.popen("a", "env", f"NOTIFY_SOCKET={path}", "WATCHDOG_USEC=100000", sys.executable, "-m",
                          "keepalived_py", "start", "--config", str(node.config), "--runtime-dir",
                          str(node.dir / "run"), "--log-console")
    wait_for(lambda: node.state() == "MASTER" or None, timeout=10)
    time.sleep(3.0)  # 60 watchdog pings, far more than the socket queues
    status = kpd_cli("status", "--json", "--runtime-dir", str(node.dir / "run"))
    assert status.returncode == 0, status.stderr
    (child,) = node.children()
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: (node.children() and node.children() != [child]) or None, timeout=5)
    sock.close()


def test_a_reload_cannot_change_net_namespace_or_instance() -> None:
    """keepalived refuses both at a reload; so does kpd (the running configuration stays)."""
    from types import SimpleNamespace

    from keepalived_py.config.model import Config
    from keepalived_py.control.arbiter import Arbiter

    running: Any = SimpleNamespace(config=Config(net_namespace="blue", instance_name="web"))
    running.namespace_override = None
    assert Arbiter._unchangeable(running, Config(net_namespace="blue", instance_name="web")) == []
    errors = Arbiter._unchangeable(running, Config(net_namespace="red", instance_name="db"))
    assert len(errors) == 2 and "net_namespace cannot change" in errors[0] and "instance cannot" in errors[1]
    running.namespace_override = "green"  # --namespace fixes the namespace whatever the file says
    assert Arbiter._unchangeable(running, Config(net_namespace="red", instance_name="web")) == []
