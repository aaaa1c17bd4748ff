"""Client-visible failover time of a VRRP pair, kpd and keepalived in the same lab and the same run.

    .venv/bin/python benchmarks/bench_pair.py [--trials N] [--rounds R] [--quick]

Needs root (network namespaces), tcpdump, and keepalived for the comparison (skipped when absent).

Lab: directors a (priority 200, state MASTER) and b (priority 100, BACKUP) and a client c on one bridge;
VRRPv3, advert_int 1, one instance (VRID 51, VIP 192.0.2.151/24) - the configuration of bench_vrrp.py. Each
director runs a responder (benchmarks/pairlab.py) answering HTTP on port 8080 with its name; it is
reachable on the VIP on whichever director holds the VIP. The client loops HTTP GETs to the VIP every 10 ms
(connect and read timeouts 100 ms) and timestamps each one.

Trial: the director a dies - its daemon's whole process group (kpd's parent and children; keepalived's
parent and children) and its responder are SIGKILLed at once, and the namespace is checked to hold no
process of it. The VIP stays on a's interface (nobody removes it) and the client's ARP entry keeps pointing
at a, whose kernel refuses connections to port 8080, until b takes over and its gratuitous ARP moves the
client over: that is what a client sees, the same for both implementations. Measured, from the client's
records and tcpdump on the bridge:

- outage: start of the first failed request after the kill -> answer of the first successful one; the
  number of failed requests in between;
- from a's last advert to the client's first answer from b, to compare with b's Master_Down_Interval
  (3 * 1 + (256 - 100) / 256 = 3.609 s): the outage itself depends on where in a's advert period the kill
  fell (up to one advert_int less);
- detection: a's last advert -> b's first VRRP or gratuitous ARP frame.

Then a's responder and daemon are restarted; a preempts back (the client's failures during that handover
are reported too) and the pair is left to settle. Trials are split into rounds alternating kpd and
keepalived, so load from elsewhere on the machine falls on both alike. Everything started is stopped and
the lab removed at the end, also after a failure or on SIGINT/SIGTERM.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_run import Run, exit_with, prepare, rounds  # noqa: E402
from bench_vrrp import (  # noqa: E402
    BACKUP_PRIO,
    BPF,
    IMPLEMENTATIONS,
    TAKEOVER_VRID,
    Daemon,
    Frames,
    log,
    master_down_interval,
    pair,
    wait_master,
    wait_quiet,
)
from pairlab import LineFile, Outage, Request, outage_after, parse_requests, percentile  # noqa: E402

from lab import Lab, LabError  # noqa: E402

ADVERT_INT = 1.0
VIP = f"192.0.2.{100 + TAKEOVER_VRID}"
PAIRLAB = str(HERE / "pairlab.py")
INTERVAL, TIMEOUT = 0.01, 0.1  # the client's request interval and its connect / read timeouts


def namespace_pids(lab: Lab, node: str) -> list[int]:
    """Every process still inside ``node``'s network namespace."""
    out = subprocess.run(
        ["ip", "netns", "pids", lab.ns(node)], capture_output=True, text=True, timeout=10
    ).stdout
    return [int(word) for word in out.split()]


def check_dead(lab: Lab, node: str, timeout: float = 2.0) -> None:
    """After a SIGKILL: wait until ``node``'s namespace holds no process (dying ones take a moment to be
    reaped); LabError naming whatever is still there after ``timeout`` (it is SIGKILLed too)."""
    deadline = time.monotonic() + timeout
    while left := namespace_pids(lab, node):
        if time.monotonic() > deadline:
            names = []
            for pid in left:
                with contextlib.suppress(OSError):
                    raw = Path(f"/proc/{pid}/stat").read_text()
                    state, _ppid, pgid = raw[raw.rindex(")") + 2 :].split()[:3]
                    names.append(
                        f"{pid} {raw[raw.index('(') + 1 : raw.rindex(')')]} state {state} pgid {pgid}"
                    )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise LabError(f"processes left in {node}'s namespace {timeout:g}s after the SIGKILL: {names}")
        time.sleep(0.02)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


class Probe:
    """The client running in c, and its records read as they come."""

    def __init__(self, lab: Lab, deadline: float) -> None:
        self.proc = lab.popen(
            "c", sys.executable, PAIRLAB, "client", VIP, "--interval", f"{INTERVAL:g}",
            "--timeout", f"{TIMEOUT:g}", "--deadline", f"{deadline:.0f}",
        )  # fmt: skip
        self.file = LineFile(self.proc.log_path)  # type: ignore[attr-defined]
        self.requests: list[Request] = []

    def update(self) -> list[Request]:
        self.requests += parse_requests(self.file.read())
        return self.requests

    def wait_ok(self, who: str, since: float, timeout: float, count: int = 1) -> Request:
        """Wait until ``count`` requests started after ``since`` were answered by ``who``; the first one."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise LabError("the client exited")
            ok = [r for r in self.update() if r.start >= since and r.ok and r.who == who]
            if len(ok) >= count:
                return ok[0]
            if time.monotonic() > deadline:
                raise LabError(f"timed out after {timeout:g}s waiting for {count} answers from {who}")
            time.sleep(0.05)

    def stop(self) -> None:
        kill_group(self.proc)


@dataclass
class Trial:
    outage: float
    failed: int
    since_advert: float  # a's last advert -> first answer from b
    detection: float  # a's last advert -> b's first frame
    garp: float  # a's last advert -> b's first gratuitous ARP
    failback_failed: int
    failback_outage: float  # 0 when the client saw no failure


@dataclass
class Result:
    trials: list[Trial] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def start_responder(lab: Lab, node: str) -> subprocess.Popen[Any]:
    proc = lab.popen(node, sys.executable, PAIRLAB, "responder", node)
    path = Path(proc.log_path)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 15
    while "responder" not in path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"the responder on {node} did not start: {path.read_text(errors='replace')}")
        time.sleep(0.05)
    return proc


def trial(
    lab: Lab, d: dict[str, Daemon], responders: dict[str, subprocess.Popen[Any]], probe: Probe, frames: Frames
) -> Trial:
    mdi = master_down_interval(ADVERT_INT, BACKUP_PRIO)
    t_kill = time.time()
    d["a"].kill()
    kill_group(responders["a"])
    check_dead(lab, "a")
    time.sleep(mdi)  # no polling (and no CPU taken from b) while b's timer runs
    probe.wait_ok("b", t_kill, timeout=10)
    t_restart = time.time()
    responders["a"] = start_responder(lab, "a")
    d["a"].start()
    probe.wait_ok("a", t_restart, timeout=30, count=int(0.5 / INTERVAL))
    wait_quiet(frames, "b", quiet=2 * ADVERT_INT, timeout=30)
    t_settled = time.time()
    requests = probe.update()
    outage = outage_after(requests, t_kill, t_restart)
    if outage is None:
        raise LabError("the client saw no outage")
    if outage.first_ok.who != "b":
        raise LabError(f"first answer after the outage from {outage.first_ok.who}")
    adverts = [
        f.time
        for f in frames.between(t_kill - 3 * ADVERT_INT, t_kill + 0.005)
        if f.sender == "a" and f.kind == "advert"
    ]
    if not adverts:
        raise LabError("no advert from a before the kill")
    b_first = [f.time for f in frames.between(t_kill, t_restart) if f.sender == "b"]
    b_garp = [f.time for f in frames.between(t_kill, t_restart) if f.sender == "b" and f.kind == "garp"]
    if not b_first or not b_garp:
        raise LabError("no advert or no gratuitous ARP from b after the kill")
    back: Outage | None = outage_after(requests, t_restart, t_settled)
    back_failed = sum(1 for r in requests if t_restart <= r.start < t_settled and not r.ok)
    return Trial(
        outage=outage.span,
        failed=outage.failed,
        since_advert=outage.first_ok.end - adverts[-1],
        detection=b_first[0] - adverts[-1],
        garp=b_garp[0] - adverts[-1],
        failback_failed=back_failed,
        failback_outage=back.span if back else 0.0,
    )


def run_round(lab: Lab, impl: str, trials: int, result: Result, round_no: int) -> None:
    responders: dict[str, subprocess.Popen[Any]] = {}
    probe: Probe | None = None
    with lab.capture(filter=BPF) as capture, pair(lab, impl, ADVERT_INT, [TAKEOVER_VRID], "pair") as d:
        try:
            frames = Frames(lab, capture)
            for node in ("a", "b"):
                responders[node] = start_responder(lab, node)
            t = time.time()
            d["a"].start()
            wait_master(frames, t, [TAKEOVER_VRID], ADVERT_INT, timeout=30)
            d["b"].start()
            d["b"].wait_log("Entering BACKUP STATE", timeout=30)
            wait_quiet(frames, "b", quiet=2 * ADVERT_INT, timeout=30, since=time.time())
            probe = Probe(lab, deadline=120 + 60 * trials)
            probe.wait_ok("a", time.time(), timeout=10, count=20)
            done = 0
            while done < trials:
                if not d["b"].alive():
                    raise LabError(f"{impl} on b exited: {d['b'].log_tail()}")
                try:
                    t_ = trial(lab, d, responders, probe, frames)
                except LabError as err:
                    result.failures.append(f"round {round_no}: {err}")
                    log(f"  {impl}: trial failed: {err}")
                    if len(result.failures) > max(3, trials):
                        raise
                    # back to the starting point
                    if not d["a"].alive():
                        if responders["a"].poll() is not None:
                            responders["a"] = start_responder(lab, "a")
                        d["a"].start()
                    probe.wait_ok("a", time.time(), timeout=30, count=20)
                    wait_quiet(frames, "b", quiet=2 * ADVERT_INT, timeout=30)
                    continue
                result.trials.append(t_)
                done += 1
                log(
                    f"  {impl} trial {len(result.trials)}: outage {t_.outage * 1e3:.0f} ms, "
                    f"{t_.failed} failed requests; a's last advert -> answer from b "
                    f"{t_.since_advert * 1e3:.0f} ms (b's first frame {t_.detection * 1e3:.1f} ms, first "
                    f"gratuitous ARP {t_.garp * 1e3:.1f} ms); "
                    f"failback: {t_.failback_failed} failed"
                )
        finally:
            if probe is not None:
                probe.stop()
            for proc in responders.values():
                kill_group(proc)


# --- report --------------------------------------------------------------------------------------


def stats(values: list[float], scale: float = 1e3, fmt: str = ".0f") -> str:
    if not values:
        return "- | - | -"
    return " | ".join(
        format(v * scale, fmt) for v in (statistics.median(values), percentile(values, 90), max(values))
    )


def report(results: dict[str, Result], trials: int) -> list[str]:
    mdi = master_down_interval(ADVERT_INT, BACKUP_PRIO)
    out = [
        "## Client-visible failover",
        "",
        f"VRRPv3, advert_int {ADVERT_INT:g} s; Master_Down_Interval of b = {mdi * 1e3:.1f} ms. Client: "
        f"HTTP GET to the VIP every {INTERVAL * 1e3:g} ms, {TIMEOUT * 1e3:g} ms connect/read timeout. a's "
        f"daemon (whole process group) and responder SIGKILLed; {trials} trials asked per "
        "implementation. Each cell: median / p90 / max.",
        "",
        "| implementation | trials | outage (ms) | failed requests | a's last advert -> answer from b (ms) "
        "| a's last advert -> b's first frame (ms) | a's last advert -> b's first gratuitous ARP (ms) "
        "| failback: failed requests | failed trials |",
        "| --- | ---: | --- | --- | --- | --- | --- | --- | ---: |",
    ]
    for impl, r in results.items():
        t = r.trials
        out.append(
            f"| {impl} | {len(t)} | {stats([x.outage for x in t]).replace(' | ', ' / ')} "
            f"| {stats([float(x.failed) for x in t], 1).replace(' | ', ' / ')} "
            f"| {stats([x.since_advert for x in t]).replace(' | ', ' / ')} "
            f"| {stats([x.detection for x in t], fmt='.1f').replace(' | ', ' / ')} "
            f"| {stats([x.garp for x in t], fmt='.1f').replace(' | ', ' / ')} "
            f"| {stats([float(x.failback_failed) for x in t], 1).replace(' | ', ' / ')} | {len(r.failures)} |"
        )
    out.append("")
    for impl, r in results.items():
        out.append(
            f"- raw {impl} outages (ms, in trial order): "
            + ", ".join(f"{x.outage * 1e3:.0f}" for x in r.trials)
        )
        for failure in r.failures:
            out.append(f"  - failed: {failure}")
    out.append("")
    kpd, ka = results.get("kpd"), results.get("keepalived")
    if kpd and ka and kpd.trials and ka.trials:
        km = statistics.median(x.outage for x in kpd.trials)
        am = statistics.median(x.outage for x in ka.trials)
        ks = statistics.median(x.since_advert for x in kpd.trials)
        as_ = statistics.median(x.since_advert for x in ka.trials)
        verdict = "MET" if ks <= as_ else "NOT MET"
        out.append(
            f"Target (kpd at or below keepalived, same run; judged on a's last advert -> answer from b, "
            f"which does not depend on where in the advert period the kill fell): **{verdict}** -- kpd "
            f"median {ks * 1e3:.0f} ms vs keepalived {as_ * 1e3:.0f} ms (Master_Down_Interval "
            f"{mdi * 1e3:.0f} ms); outage median kpd {km * 1e3:.0f} ms vs keepalived {am * 1e3:.0f} ms."
        )
    else:
        out.append("Target: not judged (an implementation has no successful trial).")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10, help="trials per implementation (default 10)")
    ap.add_argument(
        "--rounds", type=int, default=2, help="rounds alternating the implementations (default 2)"
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 trials, 1 round")
    args = ap.parse_args()
    if args.quick:
        args.trials, args.rounds = 2, 1
    refused = prepare("bench_pair", tools=("tcpdump",))
    if refused is not None:
        return refused
    impls = [i for i in IMPLEMENTATIONS if i == "kpd" or shutil.which(i)]
    run = Run()
    results = {impl: Result() for impl in impls}
    with Lab(("a", "b", "c")) as lab:
        log(f"lab {lab.prefix} up; implementations: {', '.join(impls)}")
        for round_no, n_rounds, impl, n in rounds(impls, args.trials, args.rounds):
            log(f"round {round_no}/{n_rounds}: {impl}, {n} trials")
            try:
                run_round(lab, impl, n, results[impl], round_no)
            except LabError as err:
                log(f"  {impl}: round failed: {err}")
                results[impl].failures.append(f"round {round_no} aborted: {err}")
    lines = [*run.header("kpd pair failover benchmark", "bench_pair.py", sys.argv[1:]),
             *report(results, args.trials)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    exit_with("bench_pair", main)
