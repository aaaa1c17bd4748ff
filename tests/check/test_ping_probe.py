"""PING_CHECK in a fresh network namespace: ping sockets where ping_group_range allows them, raw otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from netns_run import fresh_netns, in_netns

pytestmark = pytest.mark.netns

PROBE = textwrap.dedent(
    """
    import asyncio, json, sys
    from keepalived_py.check import ping_probe
    results = []
    for host in sys.argv[1:]:
        r = asyncio.run(ping_probe.probe_ping(host, timeout=1.0))
        results.append({"host": host, "ok": r.ok, "reason": r.reason,
                        "raw": sorted(ping_probe._raw_only)})
    print(json.dumps(results))
    """
)


def ping_in(ns: str, *hosts: str) -> list[dict]:
    p = in_netns(ns, sys.executable, "-c", PROBE, *hosts)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize(("group_range", "raw"), [("1 0", True), ("0 2147483647", False)])
def test_ping_check_is_up_when_echo_is_answered_and_down_when_not(group_range, raw):
    with fresh_netns() as ns:
        for cmd in ("link set lo up", "link add pa type veth peer name pb", "addr add 10.9.0.1/24 dev pa",
                    "link set pa up"):
            subprocess.run(["ip", "-n", ns, *cmd.split()], check=True)
        # "1 0": no group may open ping sockets (a new namespace's default): kpd goes raw
        in_netns(ns, "sysctl", "-qw", f"net.ipv4.ping_group_range={group_range}")
        results = ping_in(ns, "127.0.0.1", "::1", "10.9.0.2")
    up4, up6, nobody = results
    assert up4["ok"] and up6["ok"], results
    assert not nobody["ok"] and nobody["reason"], results
    assert (2 in nobody["raw"]) is raw, results  # AF_INET
