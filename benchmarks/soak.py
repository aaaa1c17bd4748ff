"""Soak: consecutive failovers of a kpd pair in the namespace lab; leaks and double MASTERs.

    .venv/bin/python benchmarks/soak.py [--failovers 200] [--advert-int 0.1] [--max-minutes 60]

Needs root (network namespaces). The pair of bench_vrrp.py: a (priority 200, state MASTER) and b (priority
100, BACKUP), VRRPv3, one instance (VRID 51, VIP 192.0.2.151). One failover: a's daemon - its whole
process group, parent and children - is SIGKILLed (no priority-0 advert, its VIP left on its interface),
b takes over, a's daemon is started again and preempts back, and the pair is left to settle. b lives
through every failover; after each one (b MASTER, VIP held) the RSS and open file descriptors of each of
b's kpd processes (parent and children, psutil) are sampled.

Which nodes hold the VIP is sampled every 5 ms all along (tests/lab.py's VipSampler, netlink). A dead
daemon's leftover address is not a MASTER: a's holding is discounted from the kill until the first sample
where a does not hold the VIP (its restarted daemon removed the residual address); how long the leftover
stayed is reported. Per failover: the longest span with two holders, the span with none after the kill
(the detection window: at most b's Master_Down_Interval after a's last advert), the longest span with none
during the preemption back, the sampler's longest gap, and anomalies (b taking the VIP more than once, a
never seen without its leftover). A span runs from its first sample to the first sample after it (an upper
bound, at most one sampling interval too long).

Bounded: --failovers and --max-minutes (stops early, reports what was done); everything started is stopped
and the lab removed at the end, also after a failure or on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_pair import check_dead  # noqa: E402
from bench_run import Run, exit_with, prepare  # noqa: E402
from bench_vrrp import (  # noqa: E402
    BACKUP_PRIO,
    TAKEOVER_VRID,
    Daemon,
    log,
    master_down_interval,
    pair,
)
from pairlab import Sample, longest, mask_stale, max_gap, percentile, runs, slope, timeline  # noqa: E402

from lab import Lab, LabError, VipSampler  # noqa: E402

VIP = f"192.0.2.{100 + TAKEOVER_VRID}"


@dataclass
class Failover:
    takeover_gap: float  # no holder after the kill (the detection window)
    double: float  # longest span with two (live) holders
    failback_gap: float  # longest span with no holder after b took over
    leftover: float  # kill -> a's leftover address seen gone
    sampler_gap: float
    anomalies: list[str] = field(default_factory=list)


@dataclass
class Memory:
    """One sample of b's kpd processes: name -> (pid, RSS bytes, open fds)."""

    procs: dict[str, tuple[int, int, int]]


def kpd_processes(pid: int) -> Memory:
    parent = psutil.Process(pid)
    procs = {}
    for proc in [parent, *parent.children(recursive=True)]:
        with proc.oneshot():
            name = proc.name()
            if name in procs:
                name = f"{name}[{proc.pid}]"
            procs[name] = (proc.pid, proc.memory_info().rss, proc.num_fds())
    return Memory(procs)


EVENTS = {  # kpd log lines worth counting over a soak: what the parent's watchdog and supervisor did
    "child hung, SIGKILLed": "hung, restarting it",
    "child exited": "child (pid",
    "control loop stalled": "the control loop stalled",
}


def log_events(lab: Lab) -> dict[str, dict[str, list[str]]]:
    """node -> event -> the matching lines of every kpd log the lab kept for that node."""
    out: dict[str, dict[str, list[str]]] = {}
    for path in sorted(lab.workdir.glob("*.log")):
        node = path.name.split("-", 1)[0]
        for line in path.read_text(errors="replace").splitlines():
            for event, text in EVENTS.items():
                if text in line and (event != "child exited" or "exited with" in line):
                    out.setdefault(node, {}).setdefault(event, []).append(line.strip())
    return out


def wait_holders(vips: VipSampler, want: tuple[str, ...], timeout: float, since: float) -> float:
    """Wait until a sample taken after ``since`` shows exactly ``want``; its time."""
    deadline = time.monotonic() + timeout
    while True:
        if vips.samples:
            when, holders = vips.samples[-1]
            if when >= since and holders == want:
                return when
        if time.monotonic() > deadline:
            last = vips.samples[-1][1] if vips.samples else None
            raise LabError(f"timed out after {timeout:g}s waiting for VIP holders {want} (last seen {last})")
        time.sleep(0.01)


def analyse(samples: list[Sample], t_kill: float) -> Failover:
    masked, gone = mask_stale(samples, "a", t_kill)
    anomalies = []
    if gone is None:
        anomalies.append("a's leftover address never seen gone")
    t_b = next((t for t, h in masked if t >= t_kill and "b" in h), None)
    if t_b is None:
        raise LabError("b never held the VIP")
    empty = runs(masked, lambda h: not h)
    takeover = [(s, e) for s, e in empty if s < t_b]
    back = [(s, e) for s, e in empty if s >= t_b]
    b_gains = sum(1 for s, _ in runs(masked, lambda h: "b" in h))
    if b_gains != 1:
        anomalies.append(f"b took the VIP {b_gains} times")
    before = [h for t, h in masked if t < t_kill]
    if any(h != ("a",) for h in before):
        anomalies.append(f"holders before the kill: {sorted(set(before))}")
    if anomalies:
        anomalies.append(f"holders, ms from the kill (a's leftover discounted): {timeline(masked, t_kill)}")
    return Failover(
        takeover_gap=longest(takeover),
        double=longest(runs(masked, lambda h: len(h) >= 2)),
        failback_gap=longest(back),
        leftover=(gone - t_kill) if gone is not None else float("nan"),
        sampler_gap=max_gap(samples),
        anomalies=anomalies,
    )


def soak(
    lab: Lab,
    failovers: int,
    advert_int: float,
    stop_at: float,
    results: list[Failover],
    memory: list[Memory],
    events: dict[str, dict[str, list[str]]],
) -> None:
    """Run the failovers, appending to ``results`` and ``memory`` (kept when a LabError stops the run);
    ``events`` gets the kpd log lines of :data:`EVENTS` at the end."""
    with pair(lab, "kpd", advert_int, [TAKEOVER_VRID], "soak") as d, VipSampler(lab, ("a", "b"), VIP) as vips:
        try:
            _failovers(lab, d, vips, failovers, advert_int, stop_at, results, memory)
        finally:
            events.update(log_events(lab))


def _failovers(
    lab: Lab,
    d: dict[str, Daemon],
    vips: VipSampler,
    failovers: int,
    advert_int: float,
    stop_at: float,
    results: list[Failover],
    memory: list[Memory],
) -> None:
    mdi = master_down_interval(advert_int, BACKUP_PRIO)
    settle = max(0.5, 3 * advert_int)
    a: Daemon = d["a"]
    b: Daemon = d["b"]
    a.start()
    wait_holders(vips, ("a",), timeout=30, since=time.monotonic())
    b.start()
    b.wait_log("Entering BACKUP STATE", timeout=30)
    time.sleep(settle)
    memory.append(kpd_processes(b.pid))
    analysed_until = vips.samples[-1][0] - 0.1 if vips.samples else 0.0
    for i in range(failovers):
        if time.monotonic() > stop_at:
            log(f"--max-minutes reached after {i} failovers")
            break
        if not b.alive():
            raise LabError(f"kpd on b exited: {b.log_tail()}")
        # The previous failover's samples were analysed with it: keep only the later ones.
        keep = next((k for k, (t, _) in enumerate(vips.samples) if t > analysed_until), len(vips.samples))
        del vips.samples[:keep]
        t_kill = time.monotonic()
        a.kill()
        check_dead(lab, "a")
        time.sleep(mdi)  # no polling (and no CPU taken from b) while b's timer runs
        wait_holders(vips, ("a", "b"), timeout=10, since=t_kill)  # b took over; a's leftover still there
        time.sleep(0.1)
        memory.append(kpd_processes(b.pid))
        t_restart = time.monotonic()
        a.start()
        wait_holders(vips, ("a",), timeout=30, since=t_restart)
        time.sleep(settle)
        if vips.samples[-1][1] != ("a",):  # a flap: the analysis reports it; wait for the end of it
            wait_holders(vips, ("a",), timeout=30, since=time.monotonic())
            time.sleep(settle)
        samples = list(vips.samples)
        analysed_until = samples[-1][0]
        result = analyse(samples, t_kill)
        results.append(result)
        for anomaly in result.anomalies:
            log(f"  failover {i + 1}: {anomaly}")
        if (i + 1) % 10 == 0 or i == 0:
            total = sum(rss for _, rss, _ in memory[-1].procs.values())
            log(
                f"failover {i + 1}/{failovers}: detection {result.takeover_gap * 1e3:.0f} ms, double "
                f"{result.double * 1e3:.0f} ms, failback gap {result.failback_gap * 1e3:.0f} ms; b's kpd "
                f"RSS {total / 2**20:.1f} MiB, fds {sum(f for _, _, f in memory[-1].procs.values())}"
            )


# --- report --------------------------------------------------------------------------------------


def dist(values: list[float]) -> str:
    """median / p90 / max in ms."""
    if not values:
        return "-"
    return " / ".join(
        f"{v * 1e3:.0f}" for v in (statistics.median(values), percentile(values, 90), max(values))
    )


def report(
    results: list[Failover],
    memory: list[Memory],
    events: dict[str, dict[str, list[str]]],
    advert_int: float,
    asked: int,
) -> list[str]:
    mdi = master_down_interval(advert_int, BACKUP_PRIO)
    out = [
        "### Failovers and VIP holders",
        "",
        f"{len(results)} failovers done of {asked} asked; VRRPv3, advert_int {advert_int:g} s, b's "
        f"Master_Down_Interval {mdi * 1e3:.1f} ms; VIP holders sampled every 5 ms. Each cell: median / p90 / "
        "max over the failovers, ms.",
        "",
        "| measure | median / p90 / max (ms) |",
        "| --- | --- |",
        f"| no holder after the kill (detection window; at most {mdi * 1e3:.0f} ms + sampling) "
        f"| {dist([r.takeover_gap for r in results])} |",
        f"| two holders (a's leftover discounted) | {dist([r.double for r in results])} |",
        f"| no holder during the preemption back | {dist([r.failback_gap for r in results])} |",
        f"| a's leftover address, kill -> removed by the restarted daemon "
        f"| {dist([r.leftover for r in results if r.leftover == r.leftover])} |",
        f"| longest gap between two VIP samples | {dist([r.sampler_gap for r in results])} |",
        "",
    ]
    doubles = [r.double for r in results if r.double > 0]
    out.append(
        f"Failovers with any two-holder sample: {len(doubles)} of {len(results)}; with a two-holder span "
        f"longer than advert_int: {sum(1 for v in doubles if v > advert_int)}."
    )
    anomalies = [(i + 1, a) for i, r in enumerate(results) for a in r.anomalies]
    out.append(f"Anomalies: {len(anomalies)}" + "".join(f"\n- failover {i}: {a}" for i, a in anomalies))
    out += [
        "",
        "### b's kpd processes (sampled after each failover, b MASTER)",
        "",
        f"{len(memory)} samples (one before the first failover, then one per failover). Slope: least-squares "
        "over all samples, and over the second half.",
        "",
        "| process | pid changed | RSS first / last / max (MiB) "
        "| RSS slope (KiB per failover): all / 2nd half / longest run of one pid (samples) "
        "| fds first / last / max | fds slope (per failover) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    names = list(memory[0].procs) if memory else []
    for name in names:
        rows = [m.procs.get(name) for m in memory]
        present = [r for r in rows if r is not None]
        rss = [r[1] / 2**20 for r in present]
        fds = [float(r[2]) for r in present]
        changes = [i for i in range(1, len(present)) if present[i][0] != present[i - 1][0]]
        half = rss[len(rss) // 2 :]
        bounds = [0, *changes, len(present)]
        lo, hi = max(itertools.pairwise(bounds), key=lambda r: r[1] - r[0])
        one = rss[lo:hi]
        out.append(
            f"| {name} | {', '.join(f'after failover {i}' for i in changes) or 'no'}"
            f"{f' (missing from {len(rows) - len(present)} samples)' if len(present) < len(rows) else ''} "
            f"| {rss[0]:.2f} / {rss[-1]:.2f} / {max(rss):.2f} "
            f"| {slope(rss) * 1024:+.2f} / {slope(half) * 1024:+.2f} / {slope(one) * 1024:+.2f} ({hi - lo}) "
            f"| {fds[0]:.0f} / {fds[-1]:.0f} / {max(fds):.0f} | {slope(fds):+.3f} |"
        )
    out += ["", "kpd log events over the run (the parent's supervisor and watchdog), per node:", ""]
    for node in ("a", "b"):
        found = events.get(node, {})
        out.append(f"- {node}: " + (", ".join(f"{e} {len(found.get(e, []))}" for e in EVENTS)))
        for event_lines in found.values():
            out += [f"  - `{line[:200]}`" for line in event_lines[:5]]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--failovers", type=int, default=200, help="failovers (default 200)")
    ap.add_argument("--advert-int", type=float, default=0.1, help="advert_int, s (default 0.1)")
    ap.add_argument("--max-minutes", type=float, default=60.0, help="stop after this long (default 60)")
    args = ap.parse_args()
    refused = prepare("soak")
    if refused is not None:
        return refused
    run = Run()
    started = run.started
    results: list[Failover] = []
    memory: list[Memory] = []
    events: dict[str, dict[str, list[str]]] = {}
    error = ""
    with Lab(("a", "b")) as lab:
        log(f"lab {lab.prefix} up; {args.failovers} failovers, advert_int {args.advert_int:g}")
        try:
            soak(
                lab, args.failovers, args.advert_int, started + args.max_minutes * 60, results, memory, events
            )
        except LabError as err:
            log(f"stopped by an error: {err}")
            error = str(err).splitlines()[0]
    lines = [
        *run.header("kpd soak", "soak.py", sys.argv[1:]),
        *([f"**Stopped by an error after {len(results)} failovers:** {error}", ""] if error else []),
        *report(results, memory, events, args.advert_int, args.failovers),
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    exit_with("soak", main)
