"""VRRP daemon benchmarks in a network-namespace lab, with real keepalived measured in the same lab and run.

    .venv/bin/python benchmarks/bench_vrrp.py [--trials N] [--window S] [--quick]

Needs root (network namespaces), tcpdump, and keepalived for the comparison (skipped when absent).

1. Takeover overhead (VRRPv3, advert_int 0.1). Node A (priority 200) is MASTER and node B (priority 100)
   BACKUP, both running the same implementation. A's daemon is killed with SIGKILL (its whole process
   group: no priority-0 advert); tcpdump on the lab bridge (-U, microsecond timestamps) records the frames.
   overhead = (first advert or gratuitous ARP from B) - (last advert from A) - B's Master_Down_Interval
   (3 * 0.1 + (256 - 100) * 0.1 / 256 = 360.9375 ms). A is restarted and the pair is left to settle between
   trials. The trials are split into rounds alternating kpd and keepalived, so load from elsewhere on the
   machine falls on both alike.
2. CPU of the process doing VRRP (user + sys seconds per wall second, from /proc/PID/stat) over a steady
   window, on the MASTER and on the BACKUP side: (a) 100 instances (VRIDs 1-100 on one interface) at
   advert_int 1, (b) one instance at advert_int 0.01. kpd's VRRP process is its ``kpd-vrrp`` child;
   keepalived runs with ``--vrrp`` and its VRRP child is measured. The parent process of each is reported
   too, and so is how busy the whole machine was during each window.

Everything runs in namespaces of its own (tests/lab.py); they and every process started are removed at the
end, also after a failure or on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from lab import Capture, Lab, LabError  # noqa: E402

sys.path.insert(0, str(HERE))
from bench_run import Run, exit_with, prepare, rounds  # noqa: E402

IMPLEMENTATIONS = ("kpd", "keepalived")
FAST_INT = 0.1  # the takeover benchmark's advert_int
MASTER_PRIO, BACKUP_PRIO = 200, 100
TAKEOVER_VRID = 51
BPF = "arp or (ip proto 112)"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BUSY = 0.5  # machine CPUs busy during a takeover above which the trial is marked as disturbed


def master_down_interval(advert_int: float, priority: int) -> float:
    """RFC 5798 Master_Down_Interval of a backup of ``priority`` (keepalived's is the same to 1 us)."""
    return 3 * advert_int + (256 - priority) * advert_int / 256


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- configurations ------------------------------------------------------------------------------


def vrrp_config(router_id: str, state: str, priority: int, advert_int: float, vrids: list[int]) -> str:
    """A keepalived.conf both implementations read: VRRPv3, one VIP per instance, all on eth0."""
    out = ["global_defs {", f"    router_id {router_id}", "    vrrp_version 3", "}"]
    for vrid in vrids:
        out += [
            f"vrrp_instance VI_{vrid} {{",
            f"    state {state}",
            "    interface eth0",
            f"    virtual_router_id {vrid}",
            f"    priority {priority}",
            f"    advert_int {advert_int:g}",
            "    virtual_ipaddress {",
            f"        192.0.2.{100 + vrid}/24",
            "    }",
            "}",
        ]
    return "\n".join(out) + "\n"


# --- processes -----------------------------------------------------------------------------------


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, comm) of the processes whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            out.append((int(entry), comm))
    return out


def cpu_seconds(pid: int) -> float:
    """user + sys CPU seconds of a process, all its threads included (/proc/PID/stat utime + stime)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_seconds(pid: int) -> float:
    """The scheduler's run time of a process (sum over its live threads of /proc/PID/task/*/schedstat), in
    seconds: the same quantity as :func:`cpu_seconds`, without the 1/CLK_TCK rounding."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds, idle CPU seconds) of the whole machine so far, from /proc/stat."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in first[:8]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / CLK_TCK, idle / CLK_TCK


def busy_cpus(before: tuple[float, float], after: tuple[float, float]) -> float:
    """How many CPUs the whole machine kept busy, on average, between two :func:`machine_busy` readings."""
    busy, idle = after[0] - before[0], after[1] - before[1]
    return busy / max(1e-9, busy + idle) * (os.cpu_count() or 1)


class Daemon:
    """One implementation's daemon on one lab node; restartable; killed with its process group."""

    def __init__(self, lab: Lab, node: str, impl: str, config: str, tag: str) -> None:
        self.lab, self.node, self.impl = lab, node, impl
        self.dir = lab.workdir / f"{tag}-{impl}-{node}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "keepalived.conf"
        self.conf.write_text(config)
        self.proc: subprocess.Popen[Any] | None = None
        self._vrrp_pid: int | None = None

    def argv(self) -> list[str]:
        if self.impl == "kpd":
            return [
                sys.executable, "-m", "keepalived_py", "start", "--config", str(self.conf),
                "--runtime-dir", str(self.dir / "run"), "--log-console",
            ]  # fmt: skip
        return [
            "keepalived", "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
            "--use-file", str(self.conf), "--pid", str(self.dir / "keepalived.pid"),
            "--vrrp_pid", str(self.dir / "vrrp.pid"), "--checkers_pid", str(self.dir / "checkers.pid"),
        ]  # fmt: skip

    def start(self) -> None:
        for name in ("keepalived.pid", "vrrp.pid", "checkers.pid"):  # stale after a SIGKILL
            (self.dir / name).unlink(missing_ok=True)
        self._vrrp_pid = None
        self.proc = self.lab.popen(self.node, *self.argv())

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def vrrp_pid(self, timeout: float = 15.0) -> int:
        """The process doing VRRP: kpd's ``kpd-vrrp`` child, keepalived's VRRP child."""
        if self._vrrp_pid is not None:
            return self._vrrp_pid
        want = "kpd-vrrp" if self.impl == "kpd" else "keepalived"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise LabError(f"{self.impl} on {self.node} exited: {self.log_tail()}")
            found = [pid for pid, comm in children(self.pid) if comm == want]
            if found:
                self._vrrp_pid = found[0]
                return found[0]
            time.sleep(0.05)
        raise LabError(f"{self.impl} on {self.node}: no VRRP child after {timeout}s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the daemon's whole process group at once (parent and VRRP child: a crash, no goodbye)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)

    def stop(self) -> None:
        """A graceful stop (SIGTERM to the group), SIGKILL after 5 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):  # anything of the group left behind
            os.killpg(self.proc.pid, signal.SIGKILL)

    def wait_log(self, text: str, count: int = 1, timeout: float = 20.0) -> None:
        """Wait until this run's log has ``text`` ``count`` times (e.g. every instance entering BACKUP)."""
        path = getattr(self.proc, "log_path", None)
        assert path is not None

        def check() -> bool:
            if not self.alive():
                raise LabError(f"{self.impl} on {self.node} exited: {self.log_tail()}")
            return Path(path).read_text(errors="replace").count(text) >= count

        wait_until(check, timeout, f"{count} x {text!r} in the log of {self.impl} on {self.node}")

    def log_tail(self, lines: int = 15) -> str:
        path = getattr(self.proc, "log_path", None)
        if path is None or not Path(path).exists():
            return "(no log)"
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def pair(lab: Lab, impl: str, advert_int: float, vrids: list[int], tag: str) -> Iterator[dict[str, Daemon]]:
    """A (MASTER, priority 200) and B (BACKUP, priority 100) of ``impl``; stopped and cleaned on exit."""
    daemons = {
        "a": Daemon(lab, "a", impl, vrrp_config("A", "MASTER", MASTER_PRIO, advert_int, vrids), tag),
        "b": Daemon(lab, "b", impl, vrrp_config("B", "BACKUP", BACKUP_PRIO, advert_int, vrids), tag),
    }
    try:
        yield daemons
    finally:
        for daemon in daemons.values():
            daemon.stop()
        for node in daemons:
            clear_vips(lab, node)


def clear_vips(lab: Lab, node: str) -> None:
    """Remove addresses a killed daemon left on ``eth0`` (everything but the lab's own)."""
    own = lab.addr(node, 4)
    for info in lab.addresses(node):
        if info.get("family") == "inet" and IPv4Address(info["local"]) != own:
            lab.run(
                node, "ip", "addr", "del", f"{info['local']}/{info['prefixlen']}", "dev", "eth0", check=False
            )


# --- frames --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    time: float
    sender: str | None  # lab node, None when unknown
    kind: str  # "advert" or "garp"
    vrid: int = 0
    priority: int = 0


class Frames:
    """The VRRP adverts and gratuitous ARPs of a capture, classified by sending node; read incrementally."""

    def __init__(self, lab: Lab, capture: Capture) -> None:
        self.capture = capture
        self.by_ip = {lab.addr(n, 4).packed: n for n in lab.nodes}
        self.by_mac = {bytes.fromhex(lab.mac(n).replace(":", "")): n for n in lab.nodes}
        self._seen = 0
        self.frames: list[Frame] = []

    def update(self) -> list[Frame]:
        packets = self.capture.packets()
        for packet in packets[self._seen :]:
            frame = self._classify(packet.time, packet.data)
            if frame is not None:
                self.frames.append(frame)
        self._seen = len(packets)
        return self.frames

    def _classify(self, when: float, data: bytes) -> Frame | None:
        if len(data) < 42:
            return None
        ethertype = int.from_bytes(data[12:14], "big")
        if ethertype == 0x0806:
            spa, tpa = data[28:32], data[38:42]
            if spa != tpa:  # not gratuitous
                return None
            return Frame(when, self.by_mac.get(data[6:12]), "garp")
        if ethertype != 0x0800 or data[23] != 112:
            return None
        ihl = (data[14] & 0x0F) * 4
        vrrp = data[14 + ihl :]
        if len(vrrp) < 3:
            return None
        return Frame(when, self.by_ip.get(data[26:30]), "advert", vrrp[1], vrrp[2])

    def between(self, start: float, end: float) -> list[Frame]:
        return [f for f in self.update() if start <= f.time < end]


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def wait_master(frames: Frames, since: float, vrids: list[int], advert_int: float, timeout: float) -> None:
    """Wait until A advertises every VRID at priority 200 (adverts sent after ``since``)."""
    want = set(vrids)

    def check() -> bool:
        now = time.time()
        recent = {
            f.vrid
            for f in frames.between(max(since, now - 1.5 * advert_int - 0.2), now + 1)
            if f.sender == "a" and f.kind == "advert" and f.priority == MASTER_PRIO
        }
        return recent >= want

    wait_until(check, timeout, "A to advertise as MASTER", interval=max(0.1, advert_int / 2))


def wait_quiet(frames: Frames, node: str, quiet: float, timeout: float, since: float = 0.0) -> None:
    """Wait until ``node`` has sent nothing for ``quiet`` s (and ``quiet`` s have passed since ``since``)."""

    def check() -> bool:
        now = time.time()
        if now - since < quiet:
            return False
        return not [f for f in frames.between(now - quiet, now + 1) if f.sender == node]

    wait_until(check, timeout, f"{node} to fall silent", interval=0.2)


# --- 1. takeover ---------------------------------------------------------------------------------


@dataclass
class Takeover:
    overheads: list[float] = field(default_factory=list)  # seconds
    first_kinds: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)  # CPUs the machine kept busy while B's timer ran


def takeover_round(lab: Lab, impl: str, trials: int, result: Takeover, round_no: int) -> None:
    mdi = master_down_interval(FAST_INT, BACKUP_PRIO)
    with lab.capture(filter=BPF) as capture, pair(lab, impl, FAST_INT, [TAKEOVER_VRID], "takeover") as d:
        frames = Frames(lab, capture)
        t = time.time()
        d["a"].start()
        wait_master(frames, t, [TAKEOVER_VRID], FAST_INT, timeout=20)
        d["b"].start()
        d["b"].wait_log("Entering BACKUP STATE")
        wait_quiet(frames, "b", quiet=1.0, timeout=20, since=time.time())
        done = 0
        while done < trials:
            if not d["b"].alive():
                raise LabError(f"{impl} on b exited: {d['b'].log_tail()}")
            before = machine_busy()
            t_kill = time.time()
            d["a"].kill()
            time.sleep(mdi + 0.25)  # no polling (and no CPU taken from B) while B's timer runs
            busy = busy_cpus(before, machine_busy())

            def taken_over(t_kill: float = t_kill) -> Frame | None:
                b = [f for f in frames.between(t_kill - 0.5, t_kill + 10) if f.sender == "b"]
                return b[0] if b else None

            try:
                first = wait_until(taken_over, 3.0, "B to take over", interval=0.05)
            except LabError as err:
                result.failures.append(f"round {round_no}: {err}")
                log(f"  {impl}: trial failed: {err}")
            else:
                a_adverts = [
                    f.time
                    for f in frames.between(t_kill - 5, first.time)
                    if f.sender == "a" and f.kind == "advert"
                ]
                if not a_adverts:
                    result.failures.append(f"round {round_no}: no advert from A before the takeover")
                elif a_adverts[-1] > t_kill + 0.005:
                    result.failures.append(f"round {round_no}: A still advertised after the SIGKILL")
                else:
                    last_a = a_adverts[-1]
                    overhead = first.time - last_a - mdi
                    result.overheads.append(overhead)
                    result.first_kinds.append(first.kind)
                    result.busy.append(busy)
                    done += 1
                    log(
                        f"  {impl} trial {len(result.overheads)}: overhead {overhead * 1e3:+.3f} ms "
                        f"(first from B: {first.kind}; A's last advert {(t_kill - last_a) * 1e3:.1f} ms "
                        "before the kill)"
                    )
            if len(result.failures) > max(3, trials):
                raise LabError(f"{impl}: too many failed trials: {result.failures[-1]}")
            # Back to the starting point: A MASTER again, B BACKUP and silent.
            t = time.time()
            d["a"].start()
            wait_master(frames, t, [TAKEOVER_VRID], FAST_INT, timeout=20)
            wait_quiet(frames, "b", quiet=1.0, timeout=20)


# --- 2. CPU --------------------------------------------------------------------------------------


@dataclass
class CpuResult:
    impl: str
    config: str
    vrrp: dict[str, float] = field(default_factory=dict)  # node -> CPU-s/s of the VRRP process
    vrrp_run: dict[str, float] = field(default_factory=dict)  # the same from schedstat
    parent: dict[str, float] = field(default_factory=dict)  # node -> CPU-s/s of the parent process
    adverts_per_s: float = 0.0  # sent by A during the window
    b_frames: int = 0  # frames B sent during the window (0 when steady)
    machine: float = 0.0  # busy CPU-s/s of the whole machine during the window
    window: float = 0.0
    error: str = ""


def cpu_run(lab: Lab, impl: str, label: str, advert_int: float, vrids: list[int], window: float) -> CpuResult:
    result = CpuResult(impl, label)
    with lab.capture(filter=BPF) as capture, pair(lab, impl, advert_int, vrids, "cpu") as d:
        frames = Frames(lab, capture)
        t = time.time()
        d["a"].start()
        wait_master(frames, t, vrids, advert_int, timeout=30)
        t = time.time()
        d["b"].start()
        d["b"].wait_log("Entering BACKUP STATE", count=len(vrids), timeout=30)
        pids = {node: d[node].vrrp_pid() for node in d}
        # Settle: past B's start-up and A's delayed gratuitous ARPs (garp_master_delay, 5 s).
        wait_quiet(frames, "b", quiet=max(6.0, 4 * advert_int), timeout=60, since=t)
        parents = {node: d[node].pid for node in d}
        c0 = {n: cpu_seconds(p) for n, p in pids.items()}
        r0 = {n: run_seconds(p) for n, p in pids.items()}
        p0 = {n: cpu_seconds(p) for n, p in parents.items()}
        m0 = machine_busy()
        w0, t0 = time.time(), time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - t0
        w1 = time.time()
        c1 = {n: cpu_seconds(p) for n, p in pids.items()}
        r1 = {n: run_seconds(p) for n, p in pids.items()}
        p1 = {n: cpu_seconds(p) for n, p in parents.items()}
        m1 = machine_busy()
        for node in d:
            if not d[node].alive():
                raise LabError(f"{impl} on {node} exited during the window: {d[node].log_tail()}")
        time.sleep(0.2)  # let tcpdump write the window's last frames
        in_window = frames.between(w0, w1)
        result.vrrp = {n: (c1[n] - c0[n]) / elapsed for n in pids}
        result.vrrp_run = {n: (r1[n] - r0[n]) / elapsed for n in pids}
        result.parent = {n: (p1[n] - p0[n]) / elapsed for n in parents}
        result.adverts_per_s = sum(1 for f in in_window if f.sender == "a" and f.kind == "advert") / elapsed
        result.b_frames = sum(1 for f in in_window if f.sender == "b")
        result.machine = busy_cpus(m0, m1)
        result.window = elapsed
    return result


# --- report --------------------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1e3:+.3f}"


def takeover_report(results: dict[str, Takeover], trials: int) -> list[str]:
    mdi = master_down_interval(FAST_INT, BACKUP_PRIO)
    out = [
        "## Takeover overhead",
        "",
        f"VRRPv3, advert_int {FAST_INT:g} s, A priority {MASTER_PRIO} SIGKILLed, B priority {BACKUP_PRIO} "
        f"takes over; Master_Down_Interval of B = {mdi * 1e3:.4f} ms. overhead = first advert or gratuitous "
        f"ARP from B - last advert from A - Master_Down_Interval, from tcpdump on the bridge; {trials} "
        "trials each. Machine busy: CPUs (of "
        f"{os.cpu_count()}) the whole machine kept busy, others' work included, from the kill until "
        f"{(mdi + 0.25) * 1e3:.0f} ms after it; * marks trials where it was {BUSY:g} or more.",
        "",
        "| implementation | trials | median (ms) | max (ms) | min (ms) | first frame from B | failed trials "
        "| machine busy, median / max |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for impl, r in results.items():
        if not r.overheads:
            out.append(f"| {impl} | 0 | - | - | - | - | {len(r.failures)} | - |")
            continue
        kinds = ", ".join(f"{k} {r.first_kinds.count(k)}" for k in sorted(set(r.first_kinds)))
        busy = f"{statistics.median(r.busy):.2f} / {max(r.busy):.2f}"
        out.append(
            f"| {impl} | {len(r.overheads)} | {ms(statistics.median(r.overheads))} | {ms(max(r.overheads))} "
            f"| {ms(min(r.overheads))} | {kinds} | {len(r.failures)} | {busy} |"
        )
    out.append("")
    for impl, r in results.items():
        raw = [f"{v * 1e3:.3f}{'*' if b >= BUSY else ''}" for v, b in zip(r.overheads, r.busy, strict=True)]
        out.append(f"- raw {impl} (ms, in trial order): " + ", ".join(raw))
        for failure in r.failures:
            out.append(f"  - failed: {failure}")
    out.append("")
    kpd, ka = results.get("kpd"), results.get("keepalived")
    if kpd and ka and kpd.overheads and ka.overheads:
        km, am = statistics.median(kpd.overheads), statistics.median(ka.overheads)
        verdict = "MET" if km <= am else "NOT MET"
        out.append(
            f"Target (kpd median at or below keepalived's in the same run): **{verdict}** -- kpd median "
            f"{km * 1e3:.3f} ms vs keepalived {am * 1e3:.3f} ms (max: kpd {max(kpd.overheads) * 1e3:.3f} ms, "
            f"keepalived {max(ka.overheads) * 1e3:.3f} ms)."
        )
    else:
        out.append("Target: not judged (an implementation has no successful trial).")
    return out


def cpu_report(results: list[CpuResult], window: float) -> list[str]:
    cpus = os.cpu_count() or 1
    out = [
        "## CPU in steady state",
        "",
        f"Percent of one CPU (user + sys seconds per wall second x 100) over a {window:g} s window, from "
        "/proc/PID/stat (10 ms ticks); in brackets the same from the scheduler's run time "
        "(/proc/PID/task/*/schedstat, ns). VRRP process: kpd's `kpd-vrrp` child, keepalived's VRRP child "
        "(`--vrrp`); parent: kpd's control process, keepalived's parent process. Machine busy: every "
        f"process on the machine (others' work included), in CPUs of {cpus}.",
        "",
        "| configuration | implementation | MASTER VRRP process % | BACKUP VRRP process % | MASTER parent % "
        "| BACKUP parent % | adverts/s from MASTER | frames from BACKUP | machine busy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if r.error:
            out.append(f"| {r.config} | {r.impl} | failed: {r.error} | | | | | | |")
            continue
        vrrp = {n: f"{r.vrrp[n] * 100:.2f} ({r.vrrp_run[n] * 100:.3f})" for n in ("a", "b")}
        out.append(
            f"| {r.config} | {r.impl} | {vrrp['a']} | {vrrp['b']} | {r.parent['a'] * 100:.2f} "
            f"| {r.parent['b'] * 100:.2f} | {r.adverts_per_s:.1f} | {r.b_frames} | {r.machine:.2f} |"
        )
    return out


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20, help="takeover trials per implementation (default 20)")
    ap.add_argument("--rounds", type=int, default=2, help="takeover rounds alternating the implementations")
    ap.add_argument("--window", type=float, default=20.0, help="CPU measurement window, seconds (default 20)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 3 trials, 1 round, 5 s windows")
    ap.add_argument("--only", choices=("takeover", "cpu"), help="run one benchmark only")
    args = ap.parse_args()
    if args.quick:
        args.trials, args.rounds, args.window = 3, 1, 5.0
    refused = prepare("bench_vrrp", tools=("tcpdump",))
    if refused is not None:
        return refused
    impls = [i for i in IMPLEMENTATIONS if i == "kpd" or shutil.which(i)]
    run = Run()
    takeover: dict[str, Takeover] = {impl: Takeover() for impl in impls}
    cpu: list[CpuResult] = []
    with Lab(("a", "b")) as lab:
        log(f"lab {lab.prefix} up; implementations: {', '.join(impls)}")
        if args.only in (None, "takeover"):
            for round_no, n_rounds, impl, n in rounds(impls, args.trials, args.rounds):
                log(f"takeover round {round_no}/{n_rounds}: {impl}, {n} trials")
                try:
                    takeover_round(lab, impl, n, takeover[impl], round_no)
                except LabError as err:
                    log(f"  {impl}: round failed: {err}")
                    takeover[impl].failures.append(f"round {round_no} aborted: {err}")
        if args.only in (None, "cpu"):
            configs = [
                ("100 instances, advert_int 1", 1.0, list(range(1, 101))),
                ("1 instance, advert_int 0.01", 0.01, [TAKEOVER_VRID]),
            ]
            for label, advert_int, vrids in configs:
                for impl in impls:
                    log(f"CPU: {label}, {impl} ({args.window:g} s window)")
                    try:
                        result = cpu_run(lab, impl, label, advert_int, vrids, args.window)
                    except LabError as err:
                        log(f"  {impl}: failed: {err}")
                        result = CpuResult(impl, label, error=str(err).splitlines()[0])
                    else:
                        log(
                            f"  VRRP process MASTER {result.vrrp['a'] * 100:.2f}%, BACKUP "
                            f"{result.vrrp['b'] * 100:.2f}% of a CPU; machine busy {result.machine:.2f} CPUs"
                        )
                    cpu.append(result)
    report = run.header("kpd VRRP benchmarks", "bench_vrrp.py", sys.argv[1:])
    if args.only in (None, "takeover"):
        report += [*takeover_report(takeover, args.trials), ""]
    if args.only in (None, "cpu"):
        report += cpu_report(cpu, args.window)
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    exit_with("bench_vrrp", main)
