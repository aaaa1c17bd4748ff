"""VRRP steady-state CPU at scale: N instances at advert_int 1 on one director pair, kpd beside keepalived.

    .venv/bin/python benchmarks/bench_vrrp_scale.py [--instances 1000] [--window 30]

Needs root. Two network namespaces joined by N/250 veth pairs (VRIDs 1-250 on each pair, so N instances
need N/250 interfaces), node a MASTER (priority 200) and node b BACKUP (priority 100) for every instance,
VRRPv3, advert_int 1, one VIP each. Each implementation runs the whole daemon (kpd: parent and children;
keepalived: ``-P``, parent and VRRP child) on both nodes; once every instance has settled (the settle time,
default 20 s), the CPU of every process of each daemon is summed over the window from
/proc/PID/task/*/schedstat (nanoseconds). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

PER_LINK = 250
NODES = {"a": ("MASTER", 200), "b": ("BACKUP", 100)}


def sh(cmd: str) -> None:
    subprocess.run(cmd, shell=True, check=True)


def lab(links: int) -> None:
    teardown()
    sh("ip netns add scale-a && ip netns add scale-b")
    for i in range(links):
        sh(f"ip -n scale-a link add v{i} type veth peer name v{i} netns scale-b")
        for n, host in (("a", 1), ("b", 2)):
            sh(f"ip -n scale-{n} addr add 10.{80 + i}.0.{host}/24 dev v{i}")
            sh(f"ip -n scale-{n} link set v{i} up")
    sh("ip -n scale-a link set lo up && ip -n scale-b link set lo up")


def teardown() -> None:
    for n in NODES:
        subprocess.run(f"ip netns del scale-{n}", shell=True, stderr=subprocess.DEVNULL)


def config(node: str, instances: int) -> str:
    state, priority = NODES[node]
    out = [f"global_defs {{\n  router_id scale-{node}\n}}\n"]
    for k in range(instances):
        link, vrid = divmod(k, PER_LINK)
        out.append(f"vrrp_instance VI_{k + 1} {{\n  state {state}\n  interface v{link}\n"
                   f"  virtual_router_id {vrid + 1}\n  priority {priority}\n  advert_int 1\n  version 3\n"
                   f"  virtual_ipaddress {{\n    10.{80 + link}.1.{vrid + 1}/32\n  }}\n}}\n")
    return "".join(out)


def vip_count(node: str) -> int:
    """The virtual addresses node holds (all on the MASTER, none on the BACKUP once settled)."""
    out = subprocess.run(["ip", "-n", f"scale-{node}", "-o", "addr"], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if ".1." in line.split()[3] and line.split()[3].endswith("/32"))


def cpu_ns(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(task.read_text().split()[0])
    return total


def tree(pid: int) -> list[int]:
    try:
        top = psutil.Process(pid)
        return [top.pid, *(p.pid for p in top.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def run(impl: str, instances: int, settle: float, window: float, work: Path) -> dict[str, float]:
    """CPU % of each node's daemon (all its processes) over the window, and the VIPs each node held."""
    lab((instances + PER_LINK - 1) // PER_LINK)
    procs = {}
    for node in NODES:
        conf = work / f"{impl}-{node}.conf"
        conf.write_text(config(node, instances))
        if impl == "kpd":
            argv = [sys.executable, "-m", "keepalived_py", "start", "--config", str(conf), "--runtime-dir",
                    str(work / f"run-{node}"), "--log-level", "warning"]
        else:
            argv = ["keepalived", "-n", "-l", "-P", "-f", str(conf), "-p", str(work / f"k-{node}.pid"),
                    "-r", str(work / f"v-{node}.pid")]
        procs[node] = subprocess.Popen(["ip", "netns", "exec", f"scale-{node}", *argv],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
    try:
        time.sleep(settle)
        vips = {node: vip_count(node) for node in NODES}
        pids = {node: tree(p.pid) for node, p in procs.items()}
        before = {node: cpu_ns(p) for node, p in pids.items()}
        start = time.monotonic()
        time.sleep(window)
        took = time.monotonic() - start
        after = {node: cpu_ns(p) for node, p in pids.items()}
        cpu = {node: (after[node] - before[node]) / 1e9 / took * 100 for node in NODES}
        return {**cpu, "vips_a": vips["a"], "vips_b": vips["b"]}
    finally:
        for p in procs.values():
            with_signal(p, signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                with_signal(p, signal.SIGKILL)
        teardown()


def with_signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=20.0)
    ap.add_argument("--window", type=float, default=30.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kpd-scale-"))
    impls = ["kpd"] + (["keepalived"] if shutil.which("keepalived") else [])
    rows = []
    try:
        for impl in impls:
            cpu = run(impl, args.instances, args.settle, args.window, work)
            rows.append(f"| {impl} | {args.instances} | {cpu['a']:.2f} | {cpu['b']:.2f} | "
                        f"{cpu['vips_a']:g} / {cpu['vips_b']:g} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"# VRRP steady state, {args.instances} instances at advert_int 1, {args.window:g} s window\n")
    print("| implementation | instances | MASTER node, all processes, % of a CPU | BACKUP node, % of a CPU | "
          "VIPs held by MASTER / BACKUP |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
