"""IPVS in the test VM: kpd's driver against `ipvsadm --restore`, and kpd's checker against keepalived's.

    .venv/bin/python benchmarks/bench_ipvs.py            # boots the VM (scripts/vm), prints a markdown table
    .venv/bin/python benchmarks/bench_ipvs.py --program-only   # only the programming and dump table
    .venv/bin/python benchmarks/bench_ipvs.py --curve 2400,3200   # those checker points (not CURVE)
    .venv/bin/python benchmarks/bench_ipvs.py --loop-lag [--seconds 60] [--profile]
    .venv/bin/python benchmarks/bench_ipvs.py --engine-profile N   # cProfile of the engine, N TCP_CHECKs
    .venv/bin/python benchmarks/bench_ipvs.py --loop-lag --host [--responder] [--seconds 60] [--profile]

Everything runs inside the QEMU VM (TCG software emulation, so absolute times are several times slower
than on hardware; compare the columns, not the numbers with other sections):

* programming N services x 10 real servers from an empty table: kpd's driver (a reconciler plan applied
  with ``apply_all``: batches of requests per sendmsg) vs `ipvsadm -R` of the same rules; a full dump
  through the driver vs `ipvsadm -Ln` of the same table;
* the same checker configuration (TCP_CHECK, delay_loop 1, 100 to 1,600 real servers (``CURVE``) answering
  on the VM's loopback, plus one on a port that closes) under kpd and under keepalived's checker: checks per
  second done (the kernel's TCP ActiveOpens over 20 s), CPU of the whole daemon over the same 20 s, and
  the time from a real server's port closing to its removal from the kernel table (retry 0; polled with
  ipvsadm); beside them the responders' CPU and how busy the whole VM was, which tell where a plateau
  of checks per second comes from.

``--loop-lag`` instead runs the check engine with the real IPVS driver on the generated configuration of
1,000 virtual servers x 10 real servers (benchmarks/gen_config.py: HTTP_GET, delay_loop 6, retry 3) from
an empty table, with the loop-lag monitor the children use (keepalived_py.loop_lag) on its loop: the real
servers' addresses are local to the VM but nothing listens, so every check is a real TCP connection that
is refused, and every real server goes down after its retries (10,000 more operations) while the table is
still being programmed. Reported per phase (programming until the engine is ready, then ``--seconds`` of
checks, then the release on stop): how late a 100 ms timer on the loop woke (max, p99), operations, probes.
``--profile`` adds the top of a cProfile of the engine's process.

``--loop-lag --host`` runs the same on this host, without the VM: the IPVS driver is an in-memory table (so
this measures the check engine, not IPVS) and the real servers are moved to 127.168.x.y (loopback) on
port 18080, where nothing listens (every check refused, as in the VM) or, with ``--responder``, a process
answers every GET with a 200 (every real server stays up).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from ipaddress import ip_address
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the checker curve: TCP_CHECK real servers at delay_loop 1 (each one check a second asked)
CURVE = (100, 200, 400, 800, 1200, 1600)
#: processes accepting the real servers' connections in the VM (one per vCPU)
RESPONDERS = 2


def inside(program_only: bool = False, curve: tuple[int, ...] = CURVE) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    import psutil

    from keepalived_py.ipvs.driver import IpvsDriver
    from keepalived_py.ipvs.reconcile import plan
    from keepalived_py.ipvs.state import Dest, Entry, Forward, Service, ServiceKey

    out: dict[str, object] = {}
    driver = IpvsDriver()
    for n in (100, 1000):
        desired = {}
        lines = []
        for s in range(n):
            key = ServiceKey.for_address("TCP", ip_address(f"10.{s // 250}.{s % 250}.1"), 80)
            dests = [Dest(ip_address(f"192.168.{s % 250}.{r + 1}"), 8080, Forward.MASQ, 1)
                     for r in range(10)]
            desired[key] = Entry.of(Service(key, "wlc"), dests)
            lines.append(f"-A -t 10.{s // 250}.{s % 250}.1:80 -s wlc")
            lines += [f"-a -t 10.{s // 250}.{s % 250}.1:80 -r 192.168.{s % 250}.{r + 1}:8080 -m -w 1"
                      for r in range(10)]
        driver.flush()
        t0 = time.perf_counter()
        ops = plan(desired, driver.dump())
        failures = driver.apply_all(ops)
        t_driver = time.perf_counter() - t0
        t0 = time.perf_counter()
        dumped = driver.dump()
        t_dump = time.perf_counter() - t0
        assert dumped == desired and not failures
        driver.flush()
        t0 = time.perf_counter()
        subprocess.run(["ipvsadm", "-R"], input="\n".join(lines) + "\n", text=True, check=True)
        t_restore = time.perf_counter() - t0
        t0 = time.perf_counter()
        listed = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, check=True).stdout
        t_list = time.perf_counter() - t0
        assert listed.count("->") == n * 10 + 1, listed[-500:]  # + the header's "-> RemoteAddress"
        assert driver.dump() == desired
        driver.flush()
        out[f"program_{n}"] = {"ops": len(ops), "driver_s": t_driver, "dump_s": t_dump,
                               "restore_s": t_restore, "list_s": t_list}
    if program_only:
        print("BENCH " + json.dumps(out))
        return

    # a responder for every real server (one listener on the VM's loopback, accepted by RESPONDERS
    # processes, one per vCPU) and a victim on its own port
    work = Path("/tmp/kpd-bench")
    work.mkdir(exist_ok=True)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", 8080))
    listener.listen(4096)
    # the fd level (no socket object per connection): the responder is the cheapest Python can make it
    accept_loop = (f"import os, socket\nl = socket.socket(fileno={listener.fileno()})\n"
                   "while True:\n os.close(l._accept()[0])\n")
    responders = [subprocess.Popen([sys.executable, "-c", accept_loop], pass_fds=(listener.fileno(),))
                  for _ in range(RESPONDERS)]

    def config(real_servers: int) -> Path:
        rs = "".join(f"""    real_server 127.1.{i // 250}.{i % 250 + 1} 8080 {{
        TCP_CHECK {{
            connect_timeout 2
            retry 0
        }}
    }}
""" for i in range(real_servers))
        conf = work / f"bench-{real_servers}.conf"
        conf.write_text(f"""virtual_server 10.9.0.1 80 {{
    delay_loop 1
    lb_algo rr
    protocol TCP
{rs}}}
virtual_server 10.9.0.2 80 {{
    delay_loop 1
    lb_algo rr
    protocol TCP
    real_server 127.2.0.1 8081 {{
        TCP_CHECK {{
            connect_timeout 2
            retry 0
            warmup 0
        }}
    }}
    real_server 127.2.0.2 8081 {{
    }}
}}
""")
        return conf

    def ipvsadm() -> str:
        return subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True).stdout

    def tree_cpu(pid: int) -> float:
        total = 0.0
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
        return total

    def vm_busy() -> tuple[float, float]:
        """The VM's CPU time so far, busy and total, in seconds (every vCPU)."""
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        total = sum(fields[:8]) / os.sysconf("SC_CLK_TCK")
        return total - (fields[3] + fields[4]) / os.sysconf("SC_CLK_TCK"), total

    def active_opens() -> int:
        """TCP connections this (VM's) kernel has opened so far: every TCP_CHECK is one."""
        lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
                 if line.startswith("Tcp:")]
        return int(lines[1][lines[0].index("ActiveOpens")])

    for real_servers in curve:
        conf = config(real_servers)
        for impl in ("kpd", "keepalived"):
            driver.flush()
            victim = subprocess.Popen([sys.executable, "-c", (
                "import socket\nl=socket.socket()\nl.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                "l.bind(('127.2.0.1',8081))\nl.listen(64)\nwhile True:\n c,_=l.accept();c.close()\n")])
            if impl == "kpd":
                argv = [sys.executable, "-m", "keepalived_py", "start", "--config", str(conf),
                        "--runtime-dir", "/run/kpd-bench", "--log-level", "warning"]
            else:
                argv = ["keepalived", "-n", "-C", "-f", str(conf), "-p", str(work / "ka.pid"), "-c",
                        str(work / "ka-check.pid")]
            daemon = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
            deadline = time.monotonic() + 180
            while "127.2.0.1:8081" not in ipvsadm() or ipvsadm().count("127.1.") < real_servers:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{impl}: the table never filled")
                time.sleep(0.2)
            time.sleep(5.0)
            c0, o0, t0 = tree_cpu(daemon.pid), active_opens(), time.monotonic()
            r0, (b0, v0) = sum(tree_cpu(p.pid) for p in responders), vm_busy()
            time.sleep(20.0)
            elapsed = time.monotonic() - t0
            cpu = (tree_cpu(daemon.pid) - c0) / elapsed
            checks = (active_opens() - o0) / elapsed
            responder_cpu = (sum(tree_cpu(p.pid) for p in responders) - r0) / elapsed
            b1, v1 = vm_busy()
            busy = (b1 - b0) / (v1 - v0)
            victim.kill()
            victim.wait()
            t_kill = time.monotonic()
            while "127.2.0.1:8081" in ipvsadm():
                if time.monotonic() - t_kill > 30:
                    raise RuntimeError(f"{impl}: the dead real server was never removed")
                time.sleep(0.02)
            removed = time.monotonic() - t_kill
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)
            out[f"checker_{impl}_{real_servers}"] = {"cpu": cpu, "checks_s": checks, "removed_s": removed,
                                                     "responder_cpu": responder_cpu, "vm_busy": busy}
    for responder in responders:
        responder.kill()
    print("BENCH " + json.dumps(out))


def inside_engine_profile(real_servers: int) -> None:
    """The check engine alone (real IPVS driver) on ``real_servers`` TCP_CHECKs answered on the loopback;
    cProfile over 20 s of checks, after 8 s of start."""
    sys.path.insert(0, str(ROOT / "src"))
    import asyncio
    import cProfile
    import io
    import pstats

    from keepalived_py.check.engine import CheckEngine
    from keepalived_py.config import load_config
    from keepalived_py.ipvs.driver import IpvsDriver
    from keepalived_py.loop_lag import LoopLagMonitor

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", 8080))
    listener.listen(4096)
    responder = subprocess.Popen(
        [sys.executable, "-c", f"import socket\nl=socket.socket(fileno={listener.fileno()})\n"
                               "while True:\n c,_=l.accept();c.close()\n"], pass_fds=(listener.fileno(),))
    rs = "".join(f"    real_server 127.1.{i // 250}.{i % 250 + 1} 8080 {{\n        TCP_CHECK {{\n"
                 "            connect_timeout 2\n            retry 0\n        }\n    }\n"
                 for i in range(real_servers))
    conf = Path("/tmp/kpd-engine-profile.conf")
    conf.write_text(f"virtual_server 10.9.0.1 80 {{\n    delay_loop 1\n    lb_algo rr\n    protocol TCP\n"
                    f"    lb_kind NAT\n{rs}}}\n")
    config = load_config(conf, host_checks=False).config
    assert config is not None

    async def main() -> None:
        driver = IpvsDriver()
        driver.flush()
        engine = CheckEngine(config, driver)
        lag = LoopLagMonitor.start()
        engine.open()
        run = asyncio.get_running_loop().create_task(engine.run())
        await asyncio.sleep(8)
        p0, c0, t0 = engine.stats["probes"], time.process_time(), time.monotonic()
        prof = cProfile.Profile()
        prof.enable()
        await asyncio.sleep(20)
        prof.disable()
        elapsed = time.monotonic() - t0
        rate = (engine.stats["probes"] - p0) / elapsed
        print(f"{real_servers} TCP_CHECK real servers: {rate:.0f} probes/s, "
              f"engine CPU {(time.process_time() - c0) / elapsed:.1%} (profiled), "
              f"{engine.stats['verdicts']:.0f} verdicts, {engine.stats['late_probes']:.0f} late probes")
        engine.stop()
        await run
        await engine.shutdown()
        assert lag.task is not None
        lag.task.cancel()
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats(order).print_stats(25)
            print(out.getvalue())

    try:
        asyncio.run(main())
    finally:
        responder.kill()
        driver = IpvsDriver()
        driver.flush()


HOST_PORT = 18080


class MemoryIpvs:
    """The host run's IPVS driver: an in-memory table."""

    def __init__(self) -> None:
        self.table: dict = {}

    def dump(self) -> dict:
        from keepalived_py.ipvs.reconcile import copy_table

        return copy_table(self.table)

    def iter_dump(self):  # type: ignore[no-untyped-def]
        yield from self.dump().items()

    def apply(self, op: object) -> None:
        from keepalived_py.ipvs.reconcile import apply_in_place

        apply_in_place(self.table, op)  # type: ignore[arg-type]

    def flush(self) -> None:
        self.table = {}


def inside_lag(seconds: float, profile: bool, host: bool = False) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import asyncio
    import resource

    from gen_config import large_config

    from keepalived_py.check.engine import CheckEngine
    from keepalived_py.config import load_config
    from keepalived_py.loop_lag import LoopLagMonitor

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    text = large_config(instances=0)
    if host:
        text = text.replace("real_server 192.168.", "real_server 127.168.")
        text = text.replace(" 8080 {", f" {HOST_PORT} {{")
        conf = Path(os.environ.get("TMPDIR", "/tmp")) / f"kpd-loop-lag-{os.getpid()}.conf"
        driver: object = MemoryIpvs()
    else:
        from keepalived_py.ipvs.driver import IpvsDriver

        subprocess.run(["ip", "route", "add", "local", "192.168.0.0/16", "dev", "lo"], check=True)
        conf = Path("/tmp/kpd-loop-lag.conf")
        driver = IpvsDriver()
    conf.write_text(text)
    result = load_config(conf, host_checks=False)
    assert result.config is not None
    driver.flush()  # type: ignore[attr-defined]

    # The longest loop turns in CPU time of this thread: how long the loop itself was busy in one turn,
    # whatever else competes for the CPU (the lag above also counts time the process waited for a CPU).
    busy: list[tuple[float, float]] = []
    original_run_once = asyncio.base_events.BaseEventLoop._run_once

    def timed_run_once(loop):  # type: ignore[no-untyped-def]
        c0 = time.thread_time()
        try:
            return original_run_once(loop)
        finally:
            took = time.thread_time() - c0
            if took > 0.005:
                busy.append((loop.time(), took))

    asyncio.base_events.BaseEventLoop._run_once = timed_run_once  # type: ignore[method-assign]

    async def main() -> dict[str, object]:
        loop = asyncio.get_running_loop()
        # built before the monitor starts, as in the child (whose start-up heartbeats come from a thread
        # until the engine runs); reported on its own
        t0 = time.perf_counter()
        engine = CheckEngine(result.config, driver)  # type: ignore[arg-type]
        built = time.perf_counter() - t0
        lag = LoopLagMonitor.start(window=3600.0)
        await asyncio.sleep(0.3)
        marks = {"start": loop.time()}
        engine.open()
        print(f"open() took {loop.time() - marks['start']:.1f} s", file=sys.stderr, flush=True)
        run = loop.create_task(engine.run())

        async def progress() -> None:
            while True:
                await asyncio.sleep(5.0)
                print(f"t={loop.time() - marks['start']:.0f}s ready={engine.ready} "
                      f"ops={engine.stats['ipvs_ops']} probes={engine.stats['probes']} "
                      f"lag={lag.summary()}", file=sys.stderr, flush=True)

        report = loop.create_task(progress())
        while not engine.ready:
            await asyncio.sleep(0.1)
        marks["ready"] = loop.time()
        ops_ready = engine.stats["ipvs_ops"]
        probes_ready = engine.stats["probes"]
        await asyncio.sleep(seconds)
        marks["checks"] = loop.time()
        down = sum(not c.up for c in engine.checkers.values())
        checks_probes = engine.stats["probes"] - probes_ready
        engine.stop()
        await run
        await engine.shutdown()
        await asyncio.sleep(0.3)
        marks["stopped"] = loop.time()
        report.cancel()
        samples = lag.stats.samples()

        def phase(a: str, b: str) -> dict[str, float]:
            lags = sorted(x for t, x in samples if marks[a] <= t <= marks[b])
            if not lags:
                return {"max_ms": 0.0, "p99_ms": 0.0, "n": 0, "cpu_max_ms": 0.0}
            cpu = max((x for t, x in busy if marks[a] <= t <= marks[b]), default=0.0)
            return {"max_ms": round(lags[-1] * 1000, 1),
                    "p99_ms": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000, 1),
                    "n": len(lags), "seconds": round(marks[b] - marks[a], 1),
                    "cpu_max_ms": round(cpu * 1000, 1)}

        return {"programming": phase("start", "ready"), "checks": phase("ready", "checks"),
                "stop": phase("checks", "stopped"), "whole": phase("start", "stopped"),
                "ops_to_ready": ops_ready, "ops": engine.stats["ipvs_ops"],
                "ipvs_errors": engine.stats["ipvs_errors"], "probes": engine.stats["probes"],
                "down_at_end": down, "checkers": len(engine.checkers), "constructor_s": round(built, 2),
                "checks_per_s": round(checks_probes / (marks["checks"] - marks["ready"])),
                "late_probes": engine.stats["late_probes"],
                "max_lateness_s": round(engine.stats["max_lateness"], 2),
                "table_after_stop": len(driver.dump())}  # type: ignore[attr-defined]

    if profile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        out = prof.runcall(asyncio.run, main())
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(30)
        print(text.getvalue(), file=sys.stderr)
    else:
        out = asyncio.run(main())
    print("BENCH " + json.dumps(out))


def main_lag(seconds: float, profile: bool, kpdvm, *, host: bool = False,  # type: ignore[no-untyped-def]
             responder: bool = False) -> int:
    argv = [sys.executable, str(Path(__file__).resolve()), "--inside-lag", str(seconds)]
    if profile:
        argv.append("--profile")
    if host:
        argv.append("--host")
        answer = None
        if responder:
            answer = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "bench_checkers.py"),
                                       "--responder", "http"])
            time.sleep(1.0)
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=1800, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        finally:
            if answer is not None:
                answer.terminate()
                answer.wait()
        sys.stderr.write(r.stderr)
    else:
        r = kpdvm.run_vm(argv, timeout=1800, cwd=ROOT, on_stderr=lambda b: sys.stderr.buffer.write(b))
    line = next((x for x in r.stdout.splitlines() if x.startswith("BENCH ")), None)
    if r.returncode != 0 or line is None:
        print(r.stdout[-3000:], r.stderr[-3000:], file=sys.stderr)
        return 1
    res = json.loads(line[6:])
    print(json.dumps(res), file=sys.stderr)
    if host:
        print("# Check engine on this host (in-memory IPVS table, probes to loopback "
              f"{'answered 200' if responder else 'refused'}), 1,000 virtual servers x 10 real servers\n")
    else:
        print("# Check engine + real IPVS driver in the test VM, 1,000 virtual servers x 10 real servers\n")
    print("| phase | duration | loop lag max | loop lag p99 | longest loop turn (CPU) |")
    print("| --- | --- | --- | --- | --- |")
    servers = "every real server up" if responder else "every real server down by the end"
    for name, label in (("programming", "programming from empty (until ready)"),
                        ("checks", f"checks ({servers})"),
                        ("stop", "release on stop"),
                        ("whole", "whole run")):
        p = res[name]
        print(f"| {label} | {p.get('seconds', 0)} s | {p['max_ms']} ms | {p['p99_ms']} ms "
              f"| {p.get('cpu_max_ms', 0.0)} ms |")
    print(f"\n{res['ops_to_ready']} IPVS operations until ready, {res['ops']} in all "
          f"({res['ipvs_errors']} errors); {res['probes']} probes of {res['checkers']} checkers; "
          f"{res['down_at_end']} down at the end; {res['table_after_stop']} services left after stop.")
    print(f"CheckEngine() (configuration resolved, pool built; before the loop runs) took "
          f"{res['constructor_s']} s.")
    print(f"Checks phase: {res['checks_per_s']} probes/s ({res['checkers']} distinct checkers "
          "at delay_loop 6 "
          f"ask {res['checkers'] / 6:.0f}/s while up, more while failing: retry 3, delay_before_retry 2); "
          f"{res['late_probes']} probes started more than 0.1 s late, at most {res['max_lateness_s']} s.")
    return 0


def curve_asked() -> tuple[int, ...]:
    """``--curve N,N,...``: the checker curve's points (real servers) instead of CURVE."""
    if "--curve" not in sys.argv:
        return CURVE
    return tuple(int(n) for n in sys.argv[sys.argv.index("--curve") + 1].split(","))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        inside(program_only="--program-only" in sys.argv, curve=curve_asked())
        return 0
    if len(sys.argv) > 2 and sys.argv[1] == "--inside-engine-profile":
        inside_engine_profile(int(sys.argv[2]))
        return 0
    if len(sys.argv) > 2 and sys.argv[1] == "--inside-lag":
        inside_lag(float(sys.argv[2]), "--profile" in sys.argv, host="--host" in sys.argv)
        return 0
    if "--loop-lag" in sys.argv and "--host" in sys.argv:
        seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 60.0
        return main_lag(seconds, "--profile" in sys.argv, None, host=True,
                        responder="--responder" in sys.argv)
    spec = importlib.util.spec_from_file_location("kpdvm", ROOT / "scripts" / "vm" / "kpdvm.py")
    assert spec is not None and spec.loader is not None
    kpdvm = importlib.util.module_from_spec(spec)
    sys.modules["kpdvm"] = kpdvm
    spec.loader.exec_module(kpdvm)
    if "--engine-profile" in sys.argv:
        n = sys.argv[sys.argv.index("--engine-profile") + 1]
        r = kpdvm.run_vm([sys.executable, str(Path(__file__).resolve()), "--inside-engine-profile", n],
                         timeout=900, cwd=ROOT)
        print(r.stdout, r.stderr[-3000:] if r.returncode else "", sep="")
        return r.returncode
    if "--loop-lag" in sys.argv:
        seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 60.0
        return main_lag(seconds, "--profile" in sys.argv, kpdvm)
    program_only = "--program-only" in sys.argv
    argv = [sys.executable, str(Path(__file__).resolve()), "--inside"]
    if program_only:
        argv.append("--program-only")
    if "--curve" in sys.argv:
        argv += ["--curve", sys.argv[sys.argv.index("--curve") + 1]]
    r = kpdvm.run_vm(argv, timeout=2400, cwd=ROOT)
    line = next((x for x in r.stdout.splitlines() if x.startswith("BENCH ")), None)
    if r.returncode != 0 or line is None:
        print(r.stdout[-3000:], r.stderr[-3000:], file=sys.stderr)
        return 1
    res = json.loads(line[6:])
    print("# IPVS in the test VM (QEMU TCG: compare columns, not absolute numbers)\n")
    print("| programming from empty | operations | kpd driver | ipvsadm -R | kpd dump | ipvsadm -Ln |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in (100, 1000):
        p = res[f"program_{n}"]
        print(f"| {n} services x 10 real servers | {p['ops']} | {p['driver_s']:.2f} s "
              f"({p['ops'] / p['driver_s']:.0f} ops/s) | {p['restore_s']:.2f} s | {p['dump_s']:.2f} s "
              f"| {p['list_s']:.2f} s |")
    print()
    if program_only:
        return 0
    print("| TCP_CHECK real servers, delay_loop 1 (+2) | checks/s asked | kpd checks/s | kpd CPU "
          "| keepalived checks/s | keepalived CPU | kpd / keepalived CPU | port closed to removed: kpd "
          "| keepalived | responder CPU: kpd / keepalived | VM busy (2 vCPUs): kpd / keepalived |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in curve_asked():
        k, ka = res[f"checker_kpd_{n}"], res[f"checker_keepalived_{n}"]
        print(f"| {n} | {n + 1} | {k['checks_s']:.0f} | {k['cpu']:.1%} | {ka['checks_s']:.0f} "
              f"| {ka['cpu']:.1%} | {k['cpu'] / ka['cpu']:.2f}x | {k['removed_s']:.2f} s "
              f"| {ka['removed_s']:.2f} s | {k['responder_cpu']:.1%} / {ka['responder_cpu']:.1%} "
              f"| {k['vm_busy']:.0%} / {ka['vm_busy']:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
