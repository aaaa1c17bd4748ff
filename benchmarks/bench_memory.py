"""Memory of every process of kpd and of keepalived on the same configuration, in the same run.

    .venv/bin/python benchmarks/bench_memory.py [--instances N] [--settle SECONDS]

Needs root (a network namespace of its own) and keepalived for the comparison (skipped when absent). One
VRRP instance by default (VRRPv3, advert_int 1, one VIP; no peer, so it becomes MASTER); no virtual server
(this host's kernel has no IPVS, which keepalived's checker needs). Each daemon is started in a fresh
namespace, left ``--settle`` seconds, and every process of it measured from /proc with psutil: PSS (a
shared page counts for its share), USS (pages only this process has) and RSS. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
NS = "kpdmem"


def config(instances: int) -> str:
    out = ["global_defs {\n  router_id mem\n}\n"]
    for i in range(1, instances + 1):
        out.append(f"vrrp_instance VI_{i} {{\n  state MASTER\n  interface veth0\n  virtual_router_id {i}\n"
                   f"  priority 200\n  advert_int 1\n  version 3\n  virtual_ipaddress {{\n"
                   f"    10.77.{i // 250 + 1}.{i % 250 + 1}/32\n  }}\n}}\n")
    return "".join(out)


def sh(cmd: str) -> None:
    subprocess.run(cmd, shell=True, check=True)


def lab() -> None:
    subprocess.run(f"ip netns del {NS}", shell=True, stderr=subprocess.DEVNULL)
    sh(f"ip netns add {NS} && ip -n {NS} link add veth0 type veth peer name veth1")
    sh(f"ip -n {NS} addr add 10.77.0.1/24 dev veth0 && ip -n {NS} link set veth0 up && "
       f"ip -n {NS} link set veth1 up && ip -n {NS} link set lo up")


def tree(pid: int) -> list[psutil.Process]:
    top = psutil.Process(pid)
    return [top, *top.children(recursive=True)]


def measure(name: str, argv: list[str], settle: float) -> list[tuple[str, str, float, float, float]]:
    lab()
    proc = subprocess.Popen(["ip", "netns", "exec", NS, *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(settle)
        rows = []
        for p in tree(proc.pid):
            if p.name() == "ip":
                continue
            m = p.memory_full_info()
            rows.append((name, p.name(), m.pss / 2**20, m.uss / 2**20, m.rss / 2**20))
        return rows
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(f"ip netns del {NS}", shell=True, stderr=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--settle", type=float, default=8.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kpd-mem-"))
    conf = work / "keepalived.conf"
    conf.write_text(config(args.instances))
    rows = measure("kpd", [sys.executable, "-m", "keepalived_py", "start", "--config", str(conf),
                           "--runtime-dir", str(work / "run"), "--log-level", "warning"], args.settle)
    if shutil.which("keepalived"):
        argv = ["keepalived", "-n", "-l", "-P", "-f", str(conf), "-p", str(work / "k.pid"),
                "-r", str(work / "v.pid")]
        rows += measure("keepalived", argv, args.settle)
    shutil.rmtree(work, ignore_errors=True)
    print(f"# memory, {args.instances} VRRP instance(s), {args.settle:g} s after start\n")
    print("| implementation | process | PSS MiB | USS MiB | RSS MiB |")
    print("| --- | --- | ---: | ---: | ---: |")
    for impl in ("kpd", "keepalived"):
        mine = [r for r in rows if r[0] == impl]
        for _, proc_name, pss, uss, rss in mine:
            print(f"| {impl} | {proc_name} | {pss:.1f} | {uss:.1f} | {rss:.1f} |")
        if mine:
            print(f"| {impl} | **all** | **{sum(r[2] for r in mine):.1f}** | {sum(r[3] for r in mine):.1f} | "
                  f"{sum(r[4] for r in mine):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
