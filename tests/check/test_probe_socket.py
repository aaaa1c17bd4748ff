"""The checkers' connection options on real sockets in a fresh namespace: fwmark (SO_MARK) counted by an
nftables rule, bind_if (SO_BINDTODEVICE) steering the probe out of an interface."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from netns_run import fresh_netns, in_netns

pytestmark = pytest.mark.netns

PROBES = textwrap.dedent(
    """
    import asyncio, json, socket, sys
    from keepalived_py.check.engine import run_probe
    from keepalived_py.check.probe_socket import Source
    from keepalived_py.check.specs import DnsSpec, SmtpSpec, TcpSpec, UdpSpec
    mark, bind_if = int(sys.argv[1]), sys.argv[2] or None
    src = Source(fwmark=mark or None, bind_if=bind_if)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 7001))
    listener.listen(8)
    specs = [TcpSpec("127.0.0.1", 7001, src, 1.0), SmtpSpec("127.0.0.1", 7002, source=src, timeout=1.0),
             UdpSpec("127.0.0.1", 7003, source=src, timeout=0.3), DnsSpec("127.0.0.1", 7004, source=src,
             timeout=0.3)]
    out = []
    for spec in specs:
        r = asyncio.run(run_probe(spec))
        out.append([type(spec).__name__, r.ok, r.reason])
    print(json.dumps(out))
    """
)


def counters(ns: str) -> dict[str, int]:
    rules = json.loads(in_netns(ns, "nft", "-j", "list", "table", "inet", "kpdmark").stdout)["nftables"]
    out = {}
    for item in rules:
        rule = item.get("rule")
        if rule is None:
            continue
        port = next(e["match"]["right"] for e in rule["expr"] if "match" in e
                    and e["match"]["left"].get("payload", {}).get("field") == "dport")
        packets = next(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
        out[str(port)] = packets
    return out


def test_fwmark_marks_every_connection_probes_packets():
    with fresh_netns() as ns:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        script = ["add table inet kpdmark",
                  "add chain inet kpdmark out { type filter hook output priority 0 ; }"]
        script += [f"add rule inet kpdmark out meta mark 42 {proto} dport {port} counter"
                   for proto, port in (("tcp", 7001), ("tcp", 7002), ("udp", 7003), ("udp", 7004))]
        nft = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input="\n".join(script) + "\n",
                             text=True, capture_output=True)
        assert nft.returncode == 0, nft.stderr
        unmarked = in_netns(ns, sys.executable, "-c", PROBES, "0", "")
        assert unmarked.returncode == 0, unmarked.stderr
        assert set(counters(ns).values()) == {0}
        marked = in_netns(ns, sys.executable, "-c", PROBES, "42", "")
        assert marked.returncode == 0, marked.stderr
        assert all(n > 0 for n in counters(ns).values()), counters(ns)


def test_bind_if_sends_the_probe_out_of_that_interface():
    with fresh_netns() as ns:
        for cmd in ("link set lo up", "link add pa type veth peer name pb"):
            subprocess.run(["ip", "-n", ns, *cmd.split()], check=True)
        via_lo = json.loads(in_netns(ns, sys.executable, "-c", PROBES, "0", "lo").stdout)
        assert via_lo[0][1], via_lo  # TCP to 127.0.0.1 through lo: up
        via_pa = json.loads(in_netns(ns, sys.executable, "-c", PROBES, "0", "pa").stdout)
        assert not via_pa[0][1], via_pa  # pa is down, no route through it
