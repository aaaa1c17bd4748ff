"""The parent's metrics endpoint in a real ``kpd start``: where it listens (only where configured, the flag
over the keyword, moved by a reload), what it does when it cannot, and the child metrics it serves."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
import urllib.request

import pytest
from kpd_nodes import CONFIG, Node, kpd_cli
from prometheus_client.parser import text_string_to_metric_families

from lab import Lab, wait_for

pytestmark = pytest.mark.netns

WITH_METRICS = CONFIG.replace("kpd_child_hung_timeout 1.5", "kpd_child_hung_timeout 1.5\n    "
                              "kpd_metrics_listen 127.0.0.1:{port}")


def listening(lab: Lab, node: str) -> set[str]:
    """The TCP addresses a kpd process listens on in ``node``."""
    out = lab.run(node, "ss", "-Hltnp").stdout
    return {line.split()[3] for line in out.splitlines() if '"kpd"' in line}


def scrape(lab: Lab, node: str, port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with lab.enter(node), urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def status(node: Node) -> dict[str, object]:
    return json.loads(kpd_cli("status", "--json", "--runtime-dir", str(node.dir / "run")).stdout)


def test_no_listener_unless_configured(lab):
    node = Node(lab, "a", 150).start()
    wait_for(lambda: node.state() == "MASTER" or None, timeout=15)
    assert listening(lab, "a") == set()
    assert status(node)["metrics"] is None


def test_the_flag_wins_over_the_keyword_and_a_reload_moves_the_endpoint(lab):
    node = Node(lab, "a", 150, WITH_METRICS.replace("{port}", "9651")).start("--metrics-listen", "[::1]:9652")
    wait_for(lambda: listening(lab, "a") or None, timeout=15)
    assert listening(lab, "a") == {"[::1]:9652"}
    assert status(node)["metrics"] == {"listen": "[::1]:9652", "serving": True, "error": None}
    text = kpd_cli("status", "--runtime-dir", str(node.dir / "run")).stdout
    assert "metrics: http://[::1]:9652/metrics" in text
    node.proc.terminate()
    node.proc.wait(15)

    other = Node(lab, "b", 150, WITH_METRICS.replace("{port}", "9651")).start()
    wait_for(lambda: listening(lab, "b") == {"127.0.0.1:9651"} or None, timeout=15)
    assert scrape(lab, "b", 9651)["kpd_config_generation", frozenset()] == 0
    other.config.write_text(other.config.read_text().replace("9651", "9653"))
    assert kpd_cli("reload", "--runtime-dir", str(other.dir / "run")).returncode == 0
    wait_for(lambda: listening(lab, "b") == {"127.0.0.1:9653"} or None, timeout=15)
    samples = scrape(lab, "b", 9653)
    assert samples["kpd_config_generation", frozenset()] == 1
    assert samples["kpd_reloads_total", frozenset({("result", "accepted")})] == 1
    assert samples["kpd_last_reload_successful", frozenset()] == 1


def test_an_endpoint_that_cannot_listen_is_reported_and_vrrp_runs_on(lab):
    with lab.enter("a"):
        squatter = socket.socket()
    squatter.bind(("127.0.0.1", 9654))
    squatter.listen()
    try:
        node = Node(lab, "a", 150, WITH_METRICS.replace("{port}", "9654")).start()
        wait_for(lambda: node.state() == "MASTER" or None, timeout=15)
        metrics = status(node)["metrics"]
        assert metrics["serving"] is False and "Address already in use" in metrics["error"], metrics
        text = kpd_cli("status", "--runtime-dir", str(node.dir / "run")).stdout
        assert "metrics: NOT SERVED (cannot listen on 127.0.0.1:9654: Address already in use)" in text
        assert "metrics endpoint: cannot listen on 127.0.0.1:9654" in node.log()
    finally:
        squatter.close()


def test_child_restarts_are_counted_by_reason(lab):
    node = Node(lab, "a", 150, WITH_METRICS.replace("{port}", "9655")).start()
    wait_for(lambda: node.state() == "MASTER" or None, timeout=15)
    died = frozenset({("child", "vrrp"), ("reason", "died")})
    hung = frozenset({("child", "vrrp"), ("reason", "hung")})
    up = frozenset({("child", "vrrp")})
    wait_for(lambda: scrape(lab, "a", 9655).get(("kpd_child_up", up)) == 1 or None, timeout=15)
    (child,) = node.children()
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: scrape(lab, "a", 9655).get(("kpd_child_restarts_total", died)) == 1 or None, timeout=15)
    wait_for(lambda: (node.children() and node.children() != [child]) or None, timeout=15)
    (child,) = node.children()
    os.kill(child, signal.SIGSTOP)
    wait_for(lambda: scrape(lab, "a", 9655).get(("kpd_child_restarts_total", hung)) == 1 or None, timeout=30)
    samples = wait_for(lambda: (s := scrape(lab, "a", 9655)).get(("kpd_child_up", up)) == 1 and s, timeout=15)
    assert samples["kpd_child_restarts_total", died] == 1
    # the new child's first heartbeat may come before its loop-lag monitor's first sample (0.1 s)
    samples = wait_for(
        lambda: (s := scrape(lab, "a", 9655)).get(("kpd_child_loop_lag_seconds_count", up), 0) >= 1 and s,
        timeout=15,
    )
    assert samples["kpd_child_resident_memory_bytes", up] > 1_000_000
    assert samples["kpd_child_open_fds", up] > 3
    assert samples["kpd_child_loop_lag_seconds_count", up] >= 1


def test_idle_slow_and_malformed_clients_neither_stop_scrapes_nor_disturb_the_daemon(lab):
    node = Node(lab, "a", 150, WITH_METRICS.replace("{port}", "9656")).start()
    wait_for(lambda: node.state() == "MASTER" or None, timeout=15)
    wait_for(lambda: listening(lab, "a") or None, timeout=15)
    with lab.enter("a"):
        idle = [socket.create_connection(("127.0.0.1", 9656), timeout=5) for _ in range(100)]
        slow = [socket.create_connection(("127.0.0.1", 9656), timeout=5) for _ in range(5)]
        bad = socket.create_connection(("127.0.0.1", 9656), timeout=5)
    try:
        for sock in slow:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")  # and a byte now and then, never the end
        bad.sendall(b"\x16\x03\x01\x02\x00" + os.urandom(512) + b"\r\n\r\n")  # a TLS hello, say
        assert bad.recv(100).startswith(b"HTTP/1.1 400")
        absent = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if not node.has_vip():
                absent += 1
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"a")
            time.sleep(0.005)
        assert absent == 0
        began = time.monotonic()
        samples = scrape(lab, "a", 9656)  # the oldest idle connections made room
        assert time.monotonic() - began < 5
        assert samples["kpd_vrrp_instance_state", frozenset(
            {"instance": "VI_1", "vrid": "51", "state": "MASTER"}.items())] == 1
        assert status(node)["metrics"]["serving"] is True
        # every one of them is closed by its deadline (5 s to send a request), however slowly it sends
        for sock in [*idle, *slow]:
            sock.settimeout(20)
            with contextlib.suppress(ConnectionResetError):
                while sock.recv(4096):
                    pass
        assert node.state() == "MASTER" and "Traceback" not in node.log()
    finally:
        for sock in [*idle, *slow, bad]:
            sock.close()
