"""Control-plane benchmarks: start to READY, idle CPU, child respawn time, reload time of 1,000 instances.

    .venv/bin/python benchmarks/bench_control.py [--trials 5] [--idle-seconds 20]

Runs as root in a fresh network namespace (veth interfaces, no peer: every instance becomes MASTER).

* start: `kpd start` to systemd's READY=1 (a NOTIFY_SOCKET of our own), and to the VIP being present,
  beside real keepalived's start to the VIP (advert_int 1, `state MASTER`);
* idle CPU of the whole daemon (parent and children) at steady state, kpd beside keepalived;
* respawn: SIGKILL of the `kpd-vrrp` child to its successor heartbeating (healthy in `kpd status`);
* reload: SIGHUP to READY=1 for a 1,000-instance configuration, all MASTER, unchanged and with one
  priority changed; and whether any instance changed state or lost its address meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KPD = [sys.executable, "-m", "keepalived_py"]
INTERFACES = 4


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


class Namespace:
    def __init__(self) -> None:
        self.name = f"kpdbench-{uuid.uuid4().hex[:6]}"

    def __enter__(self) -> Namespace:
        sh("ip", "netns", "add", self.name)
        sh("ip", "-n", self.name, "link", "set", "lo", "up")
        for i in range(INTERFACES):
            sh("ip", "-n", self.name, "link", "add", f"eth{i}", "type", "veth", "peer", "name", f"peer{i}")
            sh("ip", "-n", self.name, "addr", "add", f"10.200.{i}.1/24", "dev", f"eth{i}")
            sh("ip", "-n", self.name, "link", "set", f"eth{i}", "up")
            sh("ip", "-n", self.name, "link", "set", f"peer{i}", "up")
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "pids", self.name], capture_output=True)
        for pid in subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                                  text=True).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", self.name], check=False)

    def addresses(self) -> str:
        return sh("ip", "-n", self.name, "-o", "addr", "show")


def config(instances: int, changed: int | None = None) -> str:
    out = []
    for i in range(instances):
        prio = 101 if i == changed else 100
        out.append(f"""vrrp_instance VI_{i} {{
    state MASTER
    interface eth{i // 250}
    virtual_router_id {i % 250 + 1}
    priority {prio}
    advert_int 1
    virtual_ipaddress {{
        10.{100 + i // 250}.{i % 250}.1/32 dev eth{i // 250}
    }}
}}
""")
    return "".join(out)


class Notify:
    """A NOTIFY_SOCKET: the messages kpd sends systemd, with their arrival times."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"notify-{uuid.uuid4().hex[:6]}.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))

    def wait(self, text: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            if text in msg.split("\n"):
                return time.monotonic()
        raise TimeoutError(f"no {text} within {timeout} s")

    def close(self) -> None:
        self.sock.close()


def start_kpd(ns: Namespace, conf: Path, run: Path, notify: Notify | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if notify is not None:
        env["NOTIFY_SOCKET"] = str(notify.path)
    return subprocess.Popen(["ip", "netns", "exec", ns.name, *KPD, "start", "--config", str(conf),
                             "--runtime-dir", str(run), "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_keepalived(ns: Namespace, conf: Path, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ip", "netns", "exec", ns.name, "keepalived", "-n", "-P", "-f", str(conf),
                             "-p", str(tmp / "ka.pid"), "-r", str(tmp / "ka-vrrp.pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    # `ip netns exec` execs the daemon: proc.pid is the daemon's pid
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_vip(ns: Namespace, vip: str, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if vip in ns.addresses():
            return time.monotonic()
        time.sleep(0.005)
    raise TimeoutError(f"{vip} never appeared")


def tree_cpu(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def bench_start(tmp: Path, trials: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"kpd_ready": [], "kpd_vip": [], "keepalived_vip": []}
    conf = tmp / "one.conf"
    conf.write_text(config(1))
    for _ in range(trials):
        with Namespace() as ns:
            notify = Notify(tmp)
            t0 = time.monotonic()
            proc = start_kpd(ns, conf, tmp / f"run-{uuid.uuid4().hex[:6]}", notify)
            out["kpd_ready"].append(notify.wait("READY=1", 60) - t0)
            out["kpd_vip"].append(wait_vip(ns, "10.100.0.1/32") - t0)
            stop(proc)
            notify.close()
        with Namespace() as ns:
            t0 = time.monotonic()
            proc = start_keepalived(ns, conf, tmp)
            out["keepalived_vip"].append(wait_vip(ns, "10.100.0.1/32") - t0)
            stop(proc)
    return out


def bench_idle(tmp: Path, seconds: float, instances: int) -> dict[str, float]:
    conf = tmp / f"idle-{instances}.conf"
    conf.write_text(config(instances))
    out = {}
    for impl in ("kpd", "keepalived"):
        with Namespace() as ns:
            proc = start_kpd(ns, conf, tmp / f"run-{uuid.uuid4().hex[:6]}") if impl == "kpd" else \
                start_keepalived(ns, conf, tmp)
            wait_vip(ns, f"10.{100 + (instances - 1) // 250}.{(instances - 1) % 250}.1/32", 60)
            time.sleep(5.0)  # past the start-up GARP bursts
            c0, t0 = tree_cpu(proc.pid), time.monotonic()
            time.sleep(seconds)
            out[impl] = (tree_cpu(proc.pid) - c0) / (time.monotonic() - t0)
            stop(proc)
    return out


def status(run: Path) -> dict:
    for _ in range(50):
        p = subprocess.run([*KPD, "status", "--json", "--runtime-dir", str(run)], capture_output=True,
                           text=True)
        if p.returncode == 0:
            return json.loads(p.stdout)
        time.sleep(0.1)
    pid = (run / "kpd.pid").read_text().strip() if (run / "kpd.pid").exists() else "?"
    stack = subprocess.run(["cat", f"/proc/{pid}/stack", f"/proc/{pid}/wchan"], capture_output=True,
                           text=True).stdout
    raise RuntimeError(f"kpd status: {p.stderr}; parent {pid} blocked in: {stack}")


def bench_respawn(tmp: Path, trials: int) -> list[float]:
    """SIGKILL of the VRRP child to its successor heartbeating; a fresh daemon per trial, since respawns
    within a minute of each other back off (0, 1, 2, 4 ... s, as keepalived's)."""
    conf = tmp / "one.conf"
    conf.write_text(config(1))
    out = []
    for _ in range(trials):
        with Namespace() as ns:
            run = tmp / f"run-{uuid.uuid4().hex[:6]}"
            notify = Notify(tmp)
            proc = start_kpd(ns, conf, run, notify)
            notify.wait("READY=1", 60)
            time.sleep(1.0)
            old = status(run)["children"]["vrrp"]["pid"]
            t0 = time.monotonic()
            os.kill(old, signal.SIGKILL)
            while True:
                child = status(run)["children"].get("vrrp", {})
                if child.get("pid") not in (None, old) and child.get("healthy"):
                    out.append(time.monotonic() - t0)
                    break
                if time.monotonic() - t0 > 30:
                    raise TimeoutError("the VRRP child was not respawned")
                time.sleep(0.01)
            stop(proc)
            notify.close()
    return out


def bench_reload(tmp: Path, instances: int, trials: int) -> dict[str, object]:
    conf = tmp / "reload.conf"
    conf.write_text(config(instances))
    out: dict[str, object] = {"unchanged": [], "one_priority": [], "transitions": 0, "vip_losses": 0}
    with Namespace() as ns:
        run = tmp / f"run-{uuid.uuid4().hex[:6]}"
        notify = Notify(tmp)
        proc = start_kpd(ns, conf, run, notify)
        notify.wait("READY=1", 120)
        last_vip = f"10.{100 + (instances - 1) // 250}.{(instances - 1) % 250}.1/32"
        wait_vip(ns, last_vip, 60)
        time.sleep(7.0)
        before = {i["name"]: (i["state"], i["counters"]["became_master"]) for i in status(run)["instances"]}
        for trial in range(trials):
            for kind in ("unchanged", "one_priority"):
                conf.write_text(config(instances, changed=trial if kind == "one_priority" else None))
                t0 = time.monotonic()
                proc.send_signal(signal.SIGHUP)
                notify.wait("RELOADING=1", 30)
                took = notify.wait("READY=1", 120) - t0
                out[kind].append(took)  # type: ignore[union-attr]
                addresses = ns.addresses()
                out["vip_losses"] += sum(  # type: ignore[operator]
                    f"10.{100 + i // 250}.{i % 250}.1/32" not in addresses for i in range(instances))
        after = {i["name"]: (i["state"], i["counters"]["became_master"]) for i in status(run)["instances"]}
        out["transitions"] = sum(before[k] != after.get(k) for k in before)
        stop(proc)
        notify.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--idle-seconds", type=float, default=20.0)
    p.add_argument("--reload-instances", type=int, default=1000)
    p.add_argument("--stack-on-error", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if os.geteuid() != 0:
        print("run as root (network namespaces)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kpd-bench-control-") as d:
        tmp = Path(d)
        start = bench_start(tmp, args.trials)
        print(json.dumps({"start": start}), file=sys.stderr, flush=True)
        idle1 = bench_idle(tmp, args.idle_seconds, 1)
        idle100 = bench_idle(tmp, args.idle_seconds, 100)
        print(json.dumps({"idle1": idle1, "idle100": idle100}), file=sys.stderr, flush=True)
        respawn = bench_respawn(tmp, args.trials)
        print(json.dumps({"respawn": respawn}), file=sys.stderr, flush=True)
        reload = bench_reload(tmp, args.reload_instances, max(1, args.trials // 2))
        print(json.dumps({"reload": reload}), file=sys.stderr, flush=True)

    def med(xs: list[float]) -> str:
        return f"{statistics.median(xs):.3f} s (min {min(xs):.3f}, max {max(xs):.3f})"

    version = subprocess.run(["keepalived", "--version"], capture_output=True, text=True)
    ka = (version.stderr or version.stdout).split()[1] if (version.stderr or version.stdout) else "?"
    print(f"# kpd control plane (CPython {sys.version.split()[0]}, {os.cpu_count()} CPUs, keepalived {ka})\n")
    print("| measure | kpd | keepalived |")
    print("| --- | --- | --- |")
    print(f"| `start` to READY=1 | {med(start['kpd_ready'])} | - |")
    print(f"| `start` to the VIP present (state MASTER, advert_int 1) | {med(start['kpd_vip'])} | "
          f"{med(start['keepalived_vip'])} |")
    print(f"| idle CPU, whole daemon, 1 instance | {idle1['kpd']:.2%} | {idle1['keepalived']:.2%} |")
    print(f"| idle CPU, whole daemon, 100 instances | {idle100['kpd']:.2%} | {idle100['keepalived']:.2%} |")
    print(f"| VRRP child SIGKILL to its successor heartbeating | {med(respawn)} | no watchdog |")
    print(f"| SIGHUP to READY=1, {args.reload_instances} instances all MASTER, unchanged | "
          f"{med(reload['unchanged'])} | - |")  # type: ignore[arg-type]
    print(f"| SIGHUP to READY=1, {args.reload_instances} instances, one priority changed | "
          f"{med(reload['one_priority'])} | - |")  # type: ignore[arg-type]
    print(f"| instances that changed state / VIPs missing after the reloads | "
          f"{reload['transitions']} / {reload['vip_losses']} | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
