"""lvs_sync_daemon, two kpd directors in the test VM: a TCP connection through the VIP survives a failover.

Run inside the kpd test VM by test_sync_daemon_vm.py. One bridge: a client, directors A and B (each a network
namespace with its own IPVS and its own kpd), a DR real server holding the VIP on lo. A is MASTER and runs
the MASTER sync daemon, B the BACKUP one; a client holds a TCP connection through the VIP, A is stopped,
B takes over with the connection already in its table, and the client's echoes go on. Writes
$KPD_VM_OUT/report.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from scenario_tools import sh, wait_for

OUT = Path(os.environ.get("KPD_VM_OUT", "/tmp"))
WORK = Path("/tmp/kpd-sync")
PY = sys.executable
report: dict[str, object] = {"errors": []}
T0 = time.monotonic()

ECHO = """
import asyncio
async def handle(r, w):
    while line := await r.readline():
        w.write(line); await w.drain()
    w.close()
async def main():
    s = await asyncio.start_server(handle, "0.0.0.0", 9000)
    await s.serve_forever()
asyncio.run(main())
"""

CLIENT = """
import json, socket, sys, time
out = {"echoed": 0, "error": None, "last": None}
s = socket.create_connection(("10.0.0.100", 9000), timeout=5)
deadline = time.monotonic() + float(sys.argv[1])
try:
    while time.monotonic() < deadline:
        s.sendall(b"ping\\n")
        data = b""
        while not data.endswith(b"\\n"):
            chunk = s.recv(100)
            if not chunk:
                raise ConnectionError("closed by the peer")
            data += chunk
        out["echoed"] += 1
        out["last"] = time.time()
        time.sleep(0.1)
except Exception as err:
    out["error"] = repr(err)
print(json.dumps(out))
"""






def log(text: str) -> None:
    print(f"[{time.monotonic() - T0:7.2f}] {text}", flush=True)


NODES = {"client": "10.0.0.2", "dira": "10.0.0.11", "dirb": "10.0.0.12", "rs": "10.0.0.21"}


def lab() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    sh("ip link add br0 type bridge && ip link set br0 up")
    for n, (ns, addr) in enumerate(NODES.items()):
        sh(f"ip netns add {ns} && ip link add p{n} type veth peer name eth0 netns {ns}")
        sh(f"ip link set p{n} master br0 up")
        sh(f"ip -n {ns} addr add {addr}/24 dev eth0 && ip -n {ns} link set eth0 up && "
           f"ip -n {ns} link set lo up")
    # the DR real server: the VIP on lo, never answering ARP for it
    sh("ip -n rs addr add 10.0.0.100/32 dev lo")
    for key, value in (("arp_ignore", 1), ("arp_announce", 2)):
        for dev in ("all", "eth0"):
            sh(f"ip netns exec rs sysctl -qw net.ipv4.conf.{dev}.{key}={value}")
    subprocess.Popen(["ip", "netns", "exec", "rs", PY, "-c", ECHO], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)


def config(name: str, priority: int) -> str:
    return f"""
global_defs {{
    router_id {name}
    lvs_sync_daemon eth0 VI_1
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        10.0.0.100/24
    }}
}}
virtual_server 10.0.0.100 9000 {{
    delay_loop 2
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.21 9000 {{
        TCP_CHECK {{
            connect_timeout 2
        }}
    }}
}}
"""


def start(ns: str, name: str, priority: int) -> subprocess.Popen:
    conf = WORK / f"{ns}.conf"
    conf.write_text(config(name, priority))
    logfile = open(OUT / f"{ns}.log", "w")  # noqa: SIM115 - the daemon's whole life
    return subprocess.Popen(["ip", "netns", "exec", ns, PY, "-m", "keepalived_py", "start", "--config",
                             str(conf), "--runtime-dir", f"/run/kpd-{ns}", "--log-console", "--log-level",
                             "debug"], stdout=logfile, stderr=subprocess.STDOUT)


def has_vip(ns: str) -> bool:
    return "10.0.0.100/24" in sh(f"ip -n {ns} -4 addr show dev eth0", check=False)


def daemons(ns: str) -> str:
    return sh(f"ip netns exec {ns} ipvsadm -Ln --daemon", check=False)


def conns(ns: str) -> str:
    return sh(f"ip netns exec {ns} ipvsadm -Lnc", check=False)


def scenario() -> None:
    a = start("dira", "A", 150)
    b = start("dirb", "B", 100)
    try:
        report["a_master_after"] = wait_for(lambda: has_vip("dira"), 60)
        wait_for(lambda: "master" in daemons("dira") and "backup" in daemons("dirb"), 30)
        wait_for(lambda: "10.0.0.21:9000" in sh("ip netns exec dira ipvsadm -Ln", check=False), 60)
        report["daemons_before"] = {"dira": daemons("dira"), "dirb": daemons("dirb")}
        log(f"A master after {report['a_master_after']}; daemons {report['daemons_before']}")
        client = subprocess.Popen(["ip", "netns", "exec", "client", PY, "-c", CLIENT, "25"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        report["synced_after"] = wait_for(lambda: "10.0.0.2:" in conns("dirb"), 20)
        report["conns_b_before"] = conns("dirb")
        log(f"connection synchronised to B after {report['synced_after']}")
        a.send_signal(signal.SIGTERM)
        a.wait(60)
        failover = time.time()
        report["b_master_after"] = wait_for(lambda: has_vip("dirb"), 30)
        wait_for(lambda: "master" in daemons("dirb"), 10)
        report["daemons_after"] = {"dirb": daemons("dirb")}
        report["conns_b_after"] = conns("dirb")
        log(f"B master after {report['b_master_after']}; {report['daemons_after']}")
        stdout, stderr = client.communicate(timeout=90)
        report["client"] = json.loads(stdout or "{}")
        report["client_err"] = stderr[-2000:]
        report["failover_at"] = failover
        report["conns_b_end"] = conns("dirb")
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        report["daemons_stopped"] = daemons("dirb")


def main() -> int:
    try:
        lab()
        scenario()
    except Exception as err:
        import traceback

        report["errors"].append(traceback.format_exc())  # type: ignore[union-attr]
        print(f"scenario failed: {err!r}", file=sys.stderr)
    (OUT / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
