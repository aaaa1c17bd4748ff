"""How many checks per second the Checkers engine sustains on one core, and how late they run.

    .venv/bin/python benchmarks/bench_checkers.py [--sizes 1000,5000,10000] [--kinds tcp,http] [--seconds 15]

For each kind and size: a responder process (pinned to CPU 1) answers on 127.0.0.1 (TCP: accept and close;
HTTP: a 200 with a small body) for N real servers spread over 127.1.0.0/16 (one listener on 0.0.0.0), and
the check engine runs in a process pinned to CPU 0 at delay_loop 1 with N TCP_CHECK or HTTP_GET checkers.
The engine's IPVS driver here is an in-memory table (this measures the checks, not IPVS: the IPVS driver is
measured in the VM by bench_ipvs.py). Reported: probes completed per second, CPU of the engine process
(fraction of one core), how late probes start against their schedule (p50/p99/max), and failures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PORT = 18080
RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


def responder(kind: str) -> None:
    """Answer every connection: close at once (tcp), or read the request and send a 200 (http)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if kind == "http":
                await reader.readuntil(b"\r\n\r\n")
                writer.write(RESPONSE)
                await writer.drain()
        except Exception:  # the checker resets connections; that is fine
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "0.0.0.0", PORT, backlog=4096, reuse_address=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def config_text(kind: str, n: int) -> str:
    per_vs = 100
    out = []
    for v in range((n + per_vs - 1) // per_vs):
        out.append(f"virtual_server 192.0.2.{v % 250 + 1} {8000 + v // 250} {{\n"
                   "  delay_loop 1\n  lb_algo rr\n  protocol TCP\n")
        for r in range(min(per_vs, n - v * per_vs)):
            i = v * per_vs + r
            addr = f"127.1.{i // 250}.{i % 250 + 1}"
            if kind == "tcp":
                check = "    TCP_CHECK {\n      connect_timeout 2\n    }\n"
            else:
                check = ("    HTTP_GET {\n      url {\n        path /\n      }\n"
                         "      connect_timeout 2\n    }\n")
            out.append(f"  real_server {addr} {PORT} {{\n{check}  }}\n")
        out.append("}\n")
    return "".join(out)


def engine(kind: str, n: int, seconds: float, conf: str) -> None:
    import resource

    from keepalived_py.check.engine import CheckEngine
    from keepalived_py.config import load_config
    from keepalived_py.ipvs.reconcile import apply_in_place, copy_table

    class Table:
        def __init__(self) -> None:
            self.table: dict = {}

        def dump(self) -> dict:
            return copy_table(self.table)

        def iter_dump(self):  # type: ignore[no-untyped-def]
            yield from copy_table(self.table).items()

        def apply(self, op: object) -> None:
            apply_in_place(self.table, op)  # type: ignore[arg-type]

        def flush(self) -> None:
            self.table = {}

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = load_config(conf, host_checks=False)
    assert result.config is not None
    lateness: list[float] = []
    measuring = {"on": False}

    class Measured(CheckEngine):
        def _launch(self, key, now):  # type: ignore[no-untyped-def]
            c = self.checkers.get(key)
            if c is not None and measuring["on"]:
                lateness.append(now - c.next_due)
            super()._launch(key, now)

    async def main() -> dict:
        eng = Measured(result.config, Table())  # type: ignore[arg-type]
        eng.open()
        task = asyncio.create_task(eng.run())
        await asyncio.sleep(4.0)  # bootstrap delay + warmup spread
        down0 = sum(not c.up for c in eng.checkers.values())
        probes0 = eng.stats["probes"]
        cpu0 = time.process_time()
        measuring["on"] = True
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        measuring["on"] = False
        cpu = time.process_time() - cpu0
        probes = eng.stats["probes"] - probes0
        down = sum(not c.up for c in eng.checkers.values())
        eng.stop()
        await task
        lateness.sort()

        def pct(p: float) -> float:
            if not lateness:
                return 0.0
            return round(lateness[min(len(lateness) - 1, int(p * len(lateness)))] * 1000, 1)

        return {"kind": kind, "real_servers": n, "checks_per_s": round(probes / elapsed),
                "expected_per_s": n, "cpu_fraction": round(cpu / elapsed, 2),
                "late_p50_ms": pct(0.5), "late_p99_ms": pct(0.99), "late_max_ms": pct(1.0),
                "down_at_start": down0, "down_at_end": down}

    print(json.dumps(asyncio.run(main())))


def run_one(kind: str, n: int, seconds: float, tmp: Path) -> dict:
    conf = tmp / f"bench-{kind}-{n}.conf"
    conf.write_text(config_text(kind, n))
    resp = subprocess.Popen(["taskset", "-c", "1", sys.executable, __file__, "--responder", kind])
    try:
        time.sleep(1.0)
        out = subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "--engine", kind, str(n),
                              str(seconds), str(conf)], capture_output=True, text=True, timeout=seconds + 120)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        resp.terminate()
        resp.wait()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,5000,10000")
    p.add_argument("--kinds", default="tcp,http")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--responder", help=argparse.SUPPRESS)
    p.add_argument("--engine", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.responder:
        responder(args.responder)
        return 0
    if args.engine:
        kind, n, seconds, conf = args.engine
        engine(kind, int(n), float(seconds), conf)
        return 0
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "kpd-bench-checkers"
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in args.kinds.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            row = run_one(kind, n, args.seconds, tmp)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"# kpd check engine on one core (CPython {sys.version.split()[0]}, {os.cpu_count()} CPUs), "
          f"delay_loop 1, {args.seconds:g} s per run\n")
    print("| checker | real servers | checks/s (target) | engine CPU | late p50 / p99 / max | down |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['kind'].upper()} | {r['real_servers']} | {r['checks_per_s']} ({r['expected_per_s']}) "
              f"| {r['cpu_fraction']:.0%} | {r['late_p50_ms']} / {r['late_p99_ms']} / {r['late_max_ms']} ms "
              f"| {r['down_at_end']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
