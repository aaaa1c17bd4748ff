"""The `make demo` lab: two kpd directors, three HTTP real servers, a client, on a kernel with IPVS.

Run as root where `modprobe ip_vs` works (the host, or the kpd QEMU VM: see scripts/demo/demo.py, which
picks). Everything lives in network namespaces named kpddemo<pid>-*, the bridge included, so nothing is
created in the caller's namespace; every namespace, process and IPVS table (IPVS is per namespace) is
removed on exit, on an error and on Ctrl-C / SIGTERM.

Topology (one-armed LVS-NAT, one L2 segment; see docs/demo.md for why)::

    client 192.0.2.50 ---+
    director a 192.0.2.11 + 198.51.100.11 (kpd, MASTER, priority 150) ---+-- bridge (own namespace)
    director b 192.0.2.12 + 198.51.100.12 (kpd, BACKUP, priority 100) ---+
    rs1..rs3 198.51.100.21-23:80 (busybox httpd), default route via the VIP 192.0.2.100 (onlink)

Both directors run `kpd start` on a configuration rendered from etc/templates/director-pair.conf.j2 with
etc/templates/vars/director-{a,b}.yaml plus --set overrides (fast checks). The client sends an HTTP GET
through the VIP every CLIENT_INTERVAL seconds (each with a CLIENT_TIMEOUT) and logs every result with
its monotonic timestamps; `ipvsadm -Ln` in each director's namespace is the oracle for IPVS.

Exit status: 0 when every step met its expectation, 1 otherwise, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "etc" / "templates" / "director-pair.conf.j2"
VARS = {"a": REPO / "etc" / "templates" / "vars" / "director-a.yaml",
        "b": REPO / "etc" / "templates" / "vars" / "director-b.yaml"}
PY = sys.executable
IN_VM = os.environ.get("KPD_IN_VM") == "1"

# The template's values, as the etc/ vars files set them (checked against the rendered files at start).
VIP = "192.0.2.100"
PORT = 80
DIRECTOR_ADDR = {"a": ("192.0.2.11", "198.51.100.11"), "b": ("192.0.2.12", "198.51.100.12")}
PRIORITY = {"a": 150, "b": 100}
REAL_SERVERS = ["198.51.100.21", "198.51.100.22", "198.51.100.23"]
WEIGHTS = {"198.51.100.21": 1, "198.51.100.22": 1, "198.51.100.23": 2}   # director-{a,b}.yaml
CLIENT_ADDR = "192.0.2.50"

# Demo overrides (--set): fast health checks. retry 0: a server is removed after one failed check.
DELAY_LOOP = 1.0
CONNECT_TIMEOUT = 1.0
RETRY = 0
ADVERT_INT = 1.0
OVERRIDES = [f"service.delay_loop={DELAY_LOOP:g}", f"service.connect_timeout={CONNECT_TIMEOUT:g}",
             f"service.retry={RETRY}", f"vrrp.advert_int={ADVERT_INT:g}"]
# The reload of step 5: the first real server's weight 1 -> 3.
RELOAD_RS, RELOAD_WEIGHT = "198.51.100.21", 3

CLIENT_INTERVAL = 0.04
CLIENT_TIMEOUT = 1.0
# Scheduling slack allowed on top of a protocol bound: the emulated VM is 10-30x slower than a host.
MARGIN = 3.0 if IN_VM else 1.0
START_DEADLINE = 180.0 if IN_VM else 60.0

NAMES = ("br", "client", "a", "b", "rs1", "rs2", "rs3")
T0 = time.monotonic()


class Interrupted(Exception):
    pass


def _on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


# ------------------------------------------------------------------------------------------ helpers
def sh(cmd: str, check: bool = True, timeout: float = 60) -> str:
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def wait_for(pred, timeout: float, poll: float = 0.05):
    """Polls pred until it returns something truthy; returns that, or None after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > end:
            return None
        time.sleep(poll)


#: where each kpd director serves its Prometheus metrics (in its own namespace)
METRICS = "127.0.0.1:9650"


def say(text: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {text}", flush=True)


def kpd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "keepalived_py", *args], capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------------------ client
def client_main(out: str) -> int:
    """In the client namespace: GET / through the VIP every CLIENT_INTERVAL s, each with its own timeout
    (requests overlap when some hang), one line per result: start end ok detail (monotonic seconds)."""
    log = open(out, "a", buffering=1)  # noqa: SIM115 - for the client's whole life
    request = f"GET / HTTP/1.0\r\nHost: {VIP}\r\nUser-Agent: kpd-demo\r\n\r\n".encode()

    async def one() -> None:
        start = time.monotonic()
        writer = None
        try:
            async def go() -> bytes:
                nonlocal writer
                reader, writer = await asyncio.open_connection(VIP, PORT)
                writer.write(request)
                return await reader.read(-1)
            data = await asyncio.wait_for(go(), CLIENT_TIMEOUT)
            head, _, body = data.partition(b"\r\n\r\n")
            ok = head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0] + b" "
            detail = body.decode(errors="replace").strip() if ok else head[:30].decode(errors="replace")
        except TimeoutError:
            ok, detail = False, "timeout"
        except OSError as e:
            ok, detail = False, (e.strerror or type(e).__name__).replace(" ", "_")
        finally:
            if writer is not None:
                writer.close()
        log.write(f"{start:.4f} {time.monotonic():.4f} {int(ok)} {detail or '-'}\n")

    async def loop() -> None:
        tasks: set[asyncio.Task[None]] = set()
        nxt = time.monotonic()
        while True:
            t = asyncio.ensure_future(one())
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            # the next one CLIENT_INTERVAL later; after a stall, no burst to catch up
            nxt = max(nxt + CLIENT_INTERVAL, time.monotonic())
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(loop())
    return 0


@dataclass
class Req:
    start: float
    end: float
    ok: bool
    detail: str


@dataclass
class Client:
    path: Path
    reqs: list[Req] = field(default_factory=list)
    _offset: int = 0

    def poll(self) -> list[Req]:
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        self._offset += cut
        for line in data[:cut].decode().splitlines():
            s, e, ok, detail = line.split(" ", 3)
            self.reqs.append(Req(float(s), float(e), ok == "1", detail))
        return self.reqs

    def since(self, t: float, until: float = float("inf")) -> list[Req]:
        """Results of the requests started in [t, until), in start order."""
        return sorted((r for r in self.poll() if t <= r.start < until), key=lambda r: r.start)

    def success_after(self, t: float) -> Req | None:
        ok = [r for r in self.since(t) if r.ok]
        return ok[0] if ok else None


# --------------------------------------------------------------------------------------------- lab
class Lab:
    """The namespaces, processes and files of one lab; ``close()`` removes all of them.

    ``forwarding``: "NAT" (the real servers route via the VIP) or "DR" (direct routing: each real server
    holds the VIP on lo without answering ARP for it, and replies to the client directly).
    ``daemons``: which daemon runs on each director, "kpd" or "keepalived" (the same rendered file).
    ``tag`` tells labs of one process apart (namespaces kpddemo<pid>[-tag]-*)."""

    def __init__(self, forwarding: str = "NAT", daemons: dict[str, str] | None = None, tag: str = "") -> None:
        assert forwarding in ("NAT", "DR")
        self.forwarding = forwarding
        self.daemons = daemons or {"a": "kpd", "b": "kpd"}
        self.prefix = f"kpddemo{os.getpid()}" + (f"-{tag}" if tag else "")
        self.ns = {name: f"{self.prefix}-{name}" for name in NAMES}
        self.work = Path(f"/tmp/{self.prefix}")
        self.runtime = Path(f"/run/{self.prefix}")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    # -- commands in the lab
    def nsx(self, node: str, cmd: str, check: bool = True, timeout: float = 60) -> str:
        return sh(f"ip netns exec {self.ns[node]} {cmd}", check, timeout)

    def mac(self, node: str) -> str:
        return sh(f"ip -n {self.ns[node]} -br link show dev eth0").split()[2]

    # -- the oracle
    def ipvs_reals(self, d: str) -> dict[str, int] | None:
        """`ipvsadm -Ln -t VIP:80` in director d's namespace: {real server: weight}, None without the
        service."""
        p = subprocess.run(["ip", "netns", "exec", self.ns[d], "ipvsadm", "-Ln", "-t", f"{VIP}:{PORT}"],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            return None
        reals = {}
        for line in p.stdout.splitlines():
            m = re.match(r"^\s+->\s+([\d.]+):(\d+)\s+\w+\s+(\d+)", line)
            if m:
                reals[m[1]] = int(m[3])
        return reals

    def ipvs_stats(self, d: str) -> dict[str, int]:
        """Director d's IPVS counters of the VIP service since it was created: conns, inpkts, outpkts."""
        p = subprocess.run(["ip", "netns", "exec", self.ns[d], "ipvsadm", "-Ln", "--stats", "--exact", "-t",
                            f"{VIP}:{PORT}"], capture_output=True, text=True, timeout=30)
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) >= 5 and f[0] == "TCP" and f[1] == f"{VIP}:{PORT}":
                return {"conns": int(f[2]), "inpkts": int(f[3]), "outpkts": int(f[4])}
        return {"conns": 0, "inpkts": 0, "outpkts": 0}

    def ipvs_conns(self, d: str) -> int:
        """Connections IPVS in director d has scheduled for the VIP service since it was created."""
        return self.ipvs_stats(d)["conns"]

    def has_vip(self, d: str) -> bool:
        out = sh(f"ip -n {self.ns[d]} -o -4 addr show dev eth0", check=False)
        return f" {VIP}/" in out

    def status(self, d: str) -> dict:
        p = kpd("status", "--json", "--runtime-dir", str(self.runtime / d))
        if p.returncode != 0:
            return {}
        try:
            return json.loads(p.stdout)
        except ValueError:
            return {}

    def vrrp(self, d: str) -> dict:
        """kpd director d's VRRP instance from `kpd status --json` ({} when it does not answer)."""
        inst = self.status(d).get("instances") or [{}]
        return inst[0]

    def state(self, d: str) -> str | None:
        """MASTER/BACKUP/...: kpd's from `kpd status`; keepalived's from whether it holds the VIP."""
        if self.daemons[d] == "keepalived":
            return "MASTER" if self.has_vip(d) else "BACKUP"
        return self.vrrp(d).get("state")

    # -- build
    def build(self) -> None:
        self.work.mkdir(parents=True)
        self.runtime.mkdir(parents=True)
        br = self.ns["br"]
        script = ["set -e", *(f"ip netns add {ns}" for ns in self.ns.values()),
                  f"ip -n {br} link add br0 type bridge mcast_snooping 0",
                  f"ip -n {br} link set br0 up", f"ip -n {br} link set lo up"]
        for name, ns in self.ns.items():
            if name == "br":
                continue
            script += [f"ip -n {br} link add p-{name} type veth peer name eth0 netns {ns}",
                       f"ip -n {br} link set p-{name} master br0 up",
                       f"ip -n {ns} link set lo up", f"ip -n {ns} link set eth0 up",
                       f"ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                       "net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.eth0.accept_redirects=0"]
        script.append(f"ip -n {self.ns['client']} addr add {CLIENT_ADDR}/24 dev eth0")
        for d in ("a", "b"):
            script += self._director_addresses(d)
            # a router on one arm: forward, and never redirect the real servers past the IPVS un-NAT
            script.append(f"ip netns exec {self.ns[d]} sysctl -qw net.ipv4.ip_forward=1 "
                          "net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0 "
                          "net.ipv4.conf.default.send_redirects=0 net.ipv4.vs.expire_nodest_conn=1")
        for i, addr in enumerate(REAL_SERVERS, 1):
            ns = self.ns[f"rs{i}"]
            script.append(f"ip -n {ns} addr add {addr}/24 dev eth0")
            if self.forwarding == "NAT":
                script.append(f"ip -n {ns} route add default via {VIP} dev eth0 onlink")
            else:
                # DR: the VIP on lo, never announced nor answered for on eth0; replies go straight to the
                # client on the shared segment (a default route on the link: ARP for the client itself)
                script += [f"ip netns exec {ns} sysctl -qw net.ipv4.conf.all.arp_ignore=1 "
                           "net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.eth0.arp_ignore=1 "
                           "net.ipv4.conf.eth0.arp_announce=2",
                           f"ip -n {ns} addr add {VIP}/32 dev lo",
                           f"ip -n {ns} route add default dev eth0"]
            www = self.work / f"www{i}"
            www.mkdir()
            (www / "index.html").write_text(f"rs{i}\n")
            (www / "health").write_text("ok\n")
        sh("\n".join(script), timeout=300)
        for i in range(1, len(REAL_SERVERS) + 1):
            self.httpd(i, up=True)

    def _director_addresses(self, d: str) -> list[str]:
        front, back = DIRECTOR_ADDR[d]
        return [f"ip -n {self.ns[d]} addr add {front}/24 dev eth0",
                f"ip -n {self.ns[d]} addr add {back}/24 dev eth0"]

    def httpd(self, i: int, up: bool) -> None:
        key = f"httpd{i}"
        if not up:
            p = self.procs.pop(key)
            p.kill()
            p.wait(10)
            return
        # on every address: the real server's own (health checks, NAT) and, with DR, the VIP on lo
        self.procs[key] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns[f"rs{i}"], "busybox", "httpd", "-f", "-p", str(PORT),
             "-h", str(self.work / f"www{i}")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = wait_for(lambda: subprocess.run(
            ["ip", "netns", "exec", self.ns[f"rs{i}"], "curl", "-s", "-o", "/dev/null", "-m", "1",
             f"http://{REAL_SERVERS[i - 1]}/health"]).returncode == 0, 20, 0.1)
        if not ok:
            raise RuntimeError(f"busybox httpd did not start in rs{i}")

    # -- directors
    def config_path(self, d: str) -> Path:
        return self.work / f"director-{d}.conf"

    def render(self, d: str, *extra: str) -> None:
        overrides = [*OVERRIDES, f"service.forwarding={self.forwarding}", *extra]
        sets = [a for o in overrides for a in ("--set", o)]
        p = kpd("render", str(TEMPLATE), "--vars", str(VARS[d]), *sets, "-o", str(self.config_path(d)))
        if p.returncode != 0:
            raise RuntimeError(f"kpd render for director {d} failed: {p.stderr.strip()}")

    def start_director(self, d: str) -> None:
        rt = self.runtime / d
        log = self.work / f"{self.daemons[d]}-{d}.log"
        self.logs[d] = log
        if self.daemons[d] == "keepalived":
            rt.mkdir(parents=True, exist_ok=True)
            cmd = ["keepalived", "-n", "-l", "-D", "-f", str(self.config_path(d)), "-p",
                   str(rt / "keepalived.pid"), "-r", str(rt / "vrrp.pid"), "-c", str(rt / "checkers.pid")]
        else:
            cmd = [PY, "-m", "keepalived_py", "start", "--config", str(self.config_path(d)),
                   "--runtime-dir", str(rt), "--log-console", "--metrics-listen", METRICS]
        with open(log, "ab") as f:
            self.procs[f"director-{d}"] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns[d], *cmd], stdout=f, stderr=subprocess.STDOUT,
                start_new_session=True)

    def bring_up(self, d: str, master: bool, deadline: float = START_DEADLINE) -> float:
        """Starts director d and waits until its IPVS table lists every real server and it is the pair's
        MASTER holding the VIP (master) or BACKUP beside a MASTER (not master); the seconds it took."""
        started = time.monotonic()
        self.start_director(d)  # one after the other: the emulated VM starts Python slowly
        other = "b" if d == "a" else "a"
        m, b = (d, other) if master else (other, d)
        up = wait_for(lambda: self.ipvs_reals(d) == WEIGHTS, deadline, 0.5) and wait_for(
            lambda: self.has_vip(m) and not self.has_vip(b) and self.state(m) == "MASTER"
            and (not master or self.state(b) in ("BACKUP", None)) and (master or self.state(b) == "BACKUP"),
            60, 0.5)
        if not up:
            self.log_tail(d)
            raise RuntimeError(f"director {d} ({self.daemons[d]}) did not come up as "
                               f"{'MASTER' if master else 'BACKUP'} within {deadline:g} s: VIP on a "
                               f"{self.has_vip('a')}, on b {self.has_vip('b')}, IPVS {self.ipvs_reals(d)}, "
                               f"states a {self.state('a')}, b {self.state('b')}")
        return time.monotonic() - started

    def kill_director(self, d: str) -> None:
        """A crash: SIGKILL of the director's daemon (its process group, and keepalived's children by their
        pid files), then its link cut at once (the kernel of a dead host forwards nothing)."""
        p = self.procs.pop(f"director-{d}")
        os.killpg(p.pid, signal.SIGKILL)
        for name in ("vrrp.pid", "checkers.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((self.runtime / d / name).read_text().split()[0]), signal.SIGKILL)
        sh(f"ip -n {self.ns[d]} link set eth0 down")
        p.wait(30)

    def reboot_director(self, d: str) -> None:
        """The dead director's host comes back: addresses, IPVS table and runtime files gone, link up."""
        sh(f"ip -n {self.ns[d]} addr flush dev eth0")
        self.nsx(d, "ipvsadm -C")
        shutil.rmtree(self.runtime / d, ignore_errors=True)
        sh(" && ".join([*self._director_addresses(d), f"ip -n {self.ns[d]} link set eth0 up"]))

    def start_client(self) -> Client:
        out = self.work / "client.log"
        out.touch()
        self.procs["client"] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns["client"], PY, __file__, "client", str(out)],
            stdout=subprocess.DEVNULL, stderr=open(self.work / "client.err", "wb"))  # noqa: SIM115
        return Client(out)

    def log_tail(self, d: str, n: int = 30) -> None:
        with contextlib.suppress(OSError, KeyError):
            tail = self.logs[d].read_text(errors="replace").splitlines()[-n:]
            print(f"--- last lines of director {d}'s {self.daemons[d]} log\n" + "\n".join(tail), flush=True)

    # -- teardown
    def close(self) -> None:
        for p in self.procs.values():  # the daemons first get SIGTERM: they stop cleanly
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM) if p.pid == os.getpgid(p.pid) else p.terminate()
        deadline = time.monotonic() + 20
        for p in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, deadline - time.monotonic()))
        remove_namespaces(self.ns.values())
        for p in self.procs.values():
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                p.kill()
                p.wait(5)
        shutil.rmtree(self.runtime, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)

    def left_behind(self) -> list[str]:
        return [n for n in self.ns.values() if Path(f"/run/netns/{n}").exists()]


def remove_namespaces(names) -> None:
    """Kills every process inside the namespaces, then deletes them (their IPVS tables go with them)."""
    for ns in names:
        if not Path(f"/run/netns/{ns}").exists():
            continue
        for _ in range(50):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.1)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def remove_stale() -> None:
    """Namespaces and directories of earlier demo runs whose process is gone (a kill -9 of the demo)."""
    try:
        names = [n for n in os.listdir("/run/netns") if n.startswith("kpddemo")]
    except OSError:
        names = []
    dead = set()
    for n in names:
        m = re.match(r"kpddemo(\d+)-", n)
        if m and not Path(f"/proc/{m[1]}").exists():
            dead.add(m[1])
    remove_namespaces(n for n in names if any(n.startswith(f"kpddemo{pid}-") for pid in dead))
    for pid in dead:
        for base in ("/tmp", "/run"):
            for stale in Path(base).glob(f"kpddemo{pid}*"):
                shutil.rmtree(stale, ignore_errors=True)


# ---------------------------------------------------------------------------------------- scenario
@dataclass
class Step:
    name: str
    expectation: str
    measured: str = "-"
    ok: bool = False


def fmt(x: float | None) -> str:
    return "never" if x is None else f"{x:.2f} s"


def scenario(lab: Lab, results: list[Step]) -> None:
    master_down = 3 * ADVERT_INT + (256 - PRIORITY["b"]) * ADVERT_INT / 256
    check_bound = DELAY_LOOP + (RETRY + 1) * CONNECT_TIMEOUT + RETRY * 1.0

    # ---- lab up
    say(f"lab: namespaces {lab.prefix}-*: client {CLIENT_ADDR}, directors a/b, real servers "
        f"{', '.join(REAL_SERVERS)} (busybox httpd); VIP {VIP}:{PORT}")
    lab.build()
    for d in ("a", "b"):
        lab.render(d)
    text = lab.config_path("a").read_text()
    for needle in (f"{VIP}/24 dev eth0", f"virtual_server {VIP} {PORT}", f"priority {PRIORITY['a']}",
                   *(f"real_server {r} {PORT}" for r in REAL_SERVERS)):
        if needle not in text:
            raise RuntimeError(f"the rendered config lacks '{needle}': the etc/ template or vars changed")
    say(f"configs rendered from {TEMPLATE.relative_to(REPO)} with director-{{a,b}}.yaml and "
        f"--set {' '.join(OVERRIDES)}")
    full = dict(WEIGHTS)
    took = lab.bring_up("a", master=True)
    say(f"director a up after {took:.1f} s: VIP {VIP} on it, three real servers in IPVS")
    took += lab.bring_up("b", master=False)
    say(f"director b up after {took:.1f} s (both): a MASTER with the VIP, b BACKUP, three real servers in "
        "both IPVS tables")
    for d in ("a", "b"):
        p = kpd("status", "--runtime-dir", str(lab.runtime / d))
        print(f"--- kpd status, director {d}\n{(p.stdout + p.stderr).rstrip()}", flush=True)
    print(f"--- ipvsadm -Ln, director a\n{lab.nsx('a', 'ipvsadm -Ln').rstrip()}", flush=True)

    client = lab.start_client()
    got = wait_for(lambda: {r.detail for r in client.since(0) if r.ok} >= {"rs1", "rs2", "rs3"}, 60, 0.2)
    if not got:
        raise RuntimeError(f"the client is not served by all three real servers: {client.since(0)[-5:]}")
    c0 = time.monotonic()
    time.sleep(2)
    first = client.since(c0, time.monotonic())
    say(f"client: GET http://{VIP}/ every {CLIENT_INTERVAL * 1000:.0f} ms (timeout {CLIENT_TIMEOUT:g} s): "
        f"{sum(r.ok for r in first)}/{len(first)} ok in 2 s, served by "
        f"{', '.join(sorted({r.detail for r in first if r.ok}))}")

    # ---- 1. a real server dies
    victim, vi = REAL_SERVERS[1], 2
    st = Step("1 real server dies", f"removed from IPVS within delay_loop + connect_timeout = "
              f"{check_bound:g} s (+{MARGIN:g} s slack); no client error after")
    results.append(st)
    t = time.monotonic()
    lab.httpd(vi, up=False)
    gone = wait_for(lambda: (r := lab.ipvs_reals("a")) is not None and victim not in r, check_bound + 30, 0.1)
    took = time.monotonic() - t if gone else None
    t_rm = time.monotonic()
    time.sleep(3)
    before = [r for r in client.since(t, t_rm) if not r.ok]
    after = [r for r in client.since(t_rm, time.monotonic()) if not r.ok]
    served = {r.detail for r in client.since(t_rm, time.monotonic()) if r.ok}
    st.ok = took is not None and took <= check_bound + MARGIN and not after and f"rs{vi}" not in served
    st.measured = (f"removed after {fmt(took)}; {len(before)} failed requests before, {len(after)} after")
    say(f"1/5 rs{vi} ({victim}) killed: {st.measured}  {'OK' if st.ok else 'FAIL'}")

    # ---- 2. it recovers
    st = Step("2 real server recovers", f"re-added within delay_loop + connect_timeout = {check_bound:g} s "
              f"(+{MARGIN:g} s); served again")
    results.append(st)
    t = time.monotonic()  # from the restart, not from when the server answered its own probe
    lab.httpd(vi, up=True)
    back = wait_for(lambda: lab.ipvs_reals("a") == full, check_bound + 30, 0.1)
    took = time.monotonic() - t if back else None
    seen = wait_for(lambda: any(r.ok and r.detail == f"rs{vi}" for r in client.since(t)), 15, 0.1)
    failed = [r for r in client.since(t) if not r.ok]
    st.ok = took is not None and took <= check_bound + MARGIN and bool(seen) and not failed
    st.measured = f"re-added after {fmt(took)}; client served by rs{vi} again: {'yes' if seen else 'no'}; " \
                  f"{len(failed)} failed requests"
    say(f"2/5 rs{vi} restarted: {st.measured}  {'OK' if st.ok else 'FAIL'}")

    # ---- 3. the MASTER director dies
    st = Step("3 MASTER director killed", f"b takes over; the client is served again (Master_Down_Interval "
              f"{master_down:.2f} s)")
    results.append(st)
    b_conns = lab.ipvs_conns("b")
    tk = time.monotonic()
    lab.kill_director("a")
    left = sh(f"ip netns pids {lab.ns['a']}", check=False).split()
    if left:
        say(f"processes left in director a's namespace after the kill: {left}")
    b_master = wait_for(lambda: lab.has_vip("b"), 60, 0.1)
    t_vip = time.monotonic() - tk if b_master else None
    # served again: a request sent after the VIP moved to b succeeded
    resumed = wait_for(lambda: t_vip is not None and client.success_after(tk + t_vip), 60, 0.1)
    time.sleep(2)
    # outage: from the start of the first request the kill made fail to the end of the first request that
    # succeeded after it (both in the client's own log)
    fails = [r for r in client.since(tk - CLIENT_TIMEOUT) if not r.ok and r.end >= tk]
    through_b = lab.ipvs_conns("b") - b_conns
    outage = None
    late = []
    if fails:
        f0 = fails[0]
        s0 = next((r for r in client.since(max(tk, f0.start)) if r.ok), None)
        if s0 is not None:
            outage = (s0.end - f0.start) * 1000
            late = [r for r in fails if r.start > s0.start]
    else:
        s0 = client.success_after(tk)
        outage = 0.0
    st.ok = bool(b_master) and bool(resumed) and through_b > 0
    st.measured = (f"outage {'never ended' if outage is None else f'{outage:.0f} ms'}, {len(fails)} failed "
                   f"requests ({len(late)} after the first success); VIP on b after {fmt(t_vip)}; "
                   f"{through_b} connections through b")
    say(f"3/5 director a killed (SIGKILL of its kpd process group, link cut): {st.measured}  "
        f"{'OK' if st.ok else 'FAIL'}")

    # ---- 4. the master returns and preempts
    st = Step("4 master returns, preempts", "VIP back on a, the client served through a, b BACKUP")
    results.append(st)
    # the dead host reboots: its addresses, IPVS table and runtime files are gone
    lab.reboot_director("a")
    t = time.monotonic()
    lab.start_director("a")
    on_a = wait_for(lambda: lab.has_vip("a"), 150, 0.3)
    t_vip = time.monotonic() - t if on_a else None
    via_a = on_a and wait_for(lambda: lab.ipvs_conns("a") > 0, 30, 0.2)
    t_srv = time.monotonic() - t if via_a else None
    b_backup = wait_for(lambda: not lab.has_vip("b"), 30, 0.2) and wait_for(
        lambda: lab.vrrp("b").get("state") == "BACKUP", 30, 1.0)
    time.sleep(2)
    t_ok = time.monotonic()
    failed = [r for r in client.since(t) if not r.ok]
    st.ok = bool(on_a and via_a and b_backup) and client.success_after(t_ok - 1.5) is not None
    st.measured = (f"VIP on a {fmt(t_vip)} after kpd start, client served through a after {fmt(t_srv)}; "
                   f"{len(failed)} failed requests")
    say(f"4/5 director a restarted: {st.measured}  {'OK' if st.ok else 'FAIL'}")
    if not st.ok:
        lab.log_tail("a")
        lab.log_tail("b", 10)

    # ---- 5. reload with a changed weight
    st = Step("5 reload, weight changed", f"{RELOAD_RS} weight {WEIGHTS[RELOAD_RS]} -> {RELOAD_WEIGHT} in "
              "IPVS; no VRRP transition; no failed request")
    results.append(st)
    wait_for(lambda: lab.ipvs_reals("a") == full, 30, 0.2)
    before = {d: lab.vrrp(d) for d in ("a", "b")}
    new_weights = dict(WEIGHTS, **{RELOAD_RS: RELOAD_WEIGHT})
    reals = ", ".join(f"{{address: {r}, weight: {w}}}" for r, w in new_weights.items())
    t = time.monotonic()
    codes = []
    for d in ("a", "b"):
        lab.render(d, f"service.real_servers=[{reals}]")
        codes.append(kpd("reload", "--runtime-dir", str(lab.runtime / d)).returncode)
    want = dict(full, **{RELOAD_RS: RELOAD_WEIGHT})
    done = wait_for(lambda: lab.ipvs_reals("a") == want and lab.ipvs_reals("b") == want, 60, 0.1)
    took = time.monotonic() - t if done else None
    time.sleep(2)
    after = {d: lab.vrrp(d) for d in ("a", "b")}
    failed = [r for r in client.since(t) if not r.ok]

    def moves(i: dict) -> tuple:
        c = i.get("counters", {})
        return i.get("state"), c.get("became_master"), c.get("released_master"), i.get("last_transition")

    transitions = [d for d in ("a", "b") if moves(before[d]) != moves(after[d]) or not before[d]]
    st.ok = codes == [0, 0] and took is not None and not failed and not transitions
    st.measured = (f"weight {RELOAD_WEIGHT} in IPVS {fmt(took)} after the re-render; VRRP transitions: "
                   f"{', '.join(transitions) or 'none'}; {len(failed)} failed requests")
    say(f"5/5 reload (weight {WEIGHTS[RELOAD_RS]} -> {RELOAD_WEIGHT}): {st.measured}  "
        f"{'OK' if st.ok else 'FAIL'}")
    total = client.since(0)
    say(f"client: {len(total)} requests in all, {sum(not r.ok for r in total)} failed")
    show_metrics(lab)


#: what the demo shows of each director's metrics (docs/metrics.md lists them all)
SHOWN = ("kpd_vrrp_instance_state", "kpd_vrrp_transitions_total", "kpd_real_server_up",
         "kpd_ipvs_service_connections_total", "kpd_child_up", "kpd_child_heartbeat_age_seconds",
         "kpd_child_restarts_total", "kpd_reloads_total")


def show_metrics(lab: Lab) -> None:
    """Where the metrics and events are, and a few of them as each kpd director has them now."""
    for d in ("a", "b"):
        if lab.daemons[d] != "kpd":
            continue
        rt = lab.runtime / d
        p = kpd("events", "--runtime-dir", str(rt), "--limit", "8")
        print(f"--- events of director {d}, the last 8 (kpd events --runtime-dir {rt} [--follow] [--json]; "
              f"docs/events.md)\n{(p.stdout + p.stderr).rstrip()}", flush=True)

        def scrape(d: str = d) -> str:
            return lab.nsx(d, f"curl -sS -m 5 http://{METRICS}/metrics", check=False)

        # a moment when the VRRP child heartbeats (on the emulated CPU, a reload can hold its loop for
        # longer than two heartbeats, and an instance whose child is silent is reported UNKNOWN)
        # (the kernel's IPVS counters are read for a scrape and shown by the next one)
        wait_for(lambda: 'kpd_child_up{child="vrrp"} 1.0' in (t := scrape())
                 and "kpd_ipvs_service_connections_total" in t, 15, 0.5)
        text = scrape()
        lines = [line for line in text.splitlines() if line.startswith(SHOWN) and not line.endswith(" 0.0")]
        print(f"--- metrics of director {d}: http://{METRICS}/metrics in namespace {lab.ns[d]} "
              f"(kpd start --metrics-listen; all of them in docs/metrics.md), the non-zero ones of "
              f"{', '.join(SHOWN)}\n" + "\n".join(lines), flush=True)


def summary(results: list[Step]) -> None:
    w = max(len(s.name) for s in results) if results else 10
    m = max(len(s.measured) for s in results) if results else 10
    print(f"\n{'step':<{w}}  {'measured':<{m}}  result\n{'-' * w}  {'-' * m}  ------")
    for s in results:
        print(f"{s.name:<{w}}  {s.measured:<{m}}  {'OK' if s.ok else 'FAIL'}")
    print()
    for s in results:
        print(f"  {s.name}: expected {s.expectation}")
    print(flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", default="run", choices=("run", "client"))
    parser.add_argument("out", nargs="?")
    args = parser.parse_args()
    if args.mode == "client":
        return client_main(args.out)
    if os.geteuid() != 0:
        print("the demo lab needs root (network namespaces, IPVS)", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    remove_stale()
    lab = Lab()
    results: list[Step] = []
    code = 1
    try:
        scenario(lab, results)
        code = 0 if results and all(s.ok for s in results) else 1
    except Interrupted as e:
        say(f"interrupted ({e}): tearing the lab down")
        code = 130
    except Exception as e:  # reported, then the lab is torn down
        say(f"demo failed: {e}")
        code = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if code == 1:
            for d in lab.logs:
                lab.log_tail(d, 25)
        if results:
            summary(results)
        lab.close()
        left = lab.left_behind()
        say("lab removed" if not left else f"could not remove namespaces {left}")
    if code == 0:
        print("demo: every step met its expectation")
    elif code == 1:
        print("demo: FAILED", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
