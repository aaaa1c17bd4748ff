"""Configuration front-end benchmarks, with keepalived -t on the same files in the same run.

    .venv/bin/python benchmarks/bench_config.py [--repeat N]

Reports (CPU seconds, best of N):
- configs parsed per second for the largest keepalived sample in ../shared/corpus;
- the time to check a generated config of 1,000 vrrp_instances and 1,000 virtual servers of 10 real servers
  each (target: under 1 second), stage by stage, and `kpd check-config` as a whole process (wall clock,
  goal: 0.5 s), split into the interpreter's start, kpd's imports, the check (reading, checks, output)
  and the exit; its bytecode is cached (in a directory of the run), as for an installed kpd;
- the CPU time to load a config of 100,000 vrrp_script blocks and a virtual_ipaddress list of 100,000
  entries (reading was quadratic in the number of items);
- `keepalived -t` on the same files (wall clock of the process), when keepalived is installed.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_config import large_config, many_items_config  # noqa: E402

from keepalived_py.config import load_config  # noqa: E402
from keepalived_py.config.build import Origins, build_config  # noqa: E402
from keepalived_py.config.diagnostics import DiagnosticSink, Location  # noqa: E402
from keepalived_py.config.keywords import SCHEMA  # noqa: E402
from keepalived_py.config.lexer import read_config  # noqa: E402
from keepalived_py.config.reader import Reader  # noqa: E402
from keepalived_py.config.tree import build_tree  # noqa: E402
from keepalived_py.config.validate import validate  # noqa: E402

SAMPLES = HERE.parent.parent / "shared" / "corpus" / "keepalived-samples"


def best_of(n: int, fn) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def stages(path: Path, repeat: int) -> dict[str, float]:
    """Each stage of load_config timed alone (with the garbage collector paused, as load_config does)."""
    gc.disable()
    best: dict[str, float] = {}
    for _ in range(repeat):
        sink = DiagnosticSink()
        t0 = time.process_time()
        lines = read_config(path, config_id="bench", sink=sink)
        t1 = time.process_time()
        nodes = build_tree(lines, sink)
        t2 = time.process_time()
        root = Reader(SCHEMA, sink).read(nodes, Location(str(path), 1))
        t3 = time.process_time()
        origins = Origins()
        cfg = build_config(root, (), origins)
        t4 = time.process_time()
        validate(cfg, origins, sink)
        t5 = time.process_time()
        for key, value in (
            ("lex", t1 - t0),
            ("tree", t2 - t1),
            ("read", t3 - t2),
            ("build", t4 - t3),
            ("validate", t5 - t4),
        ):
            best[key] = min(best.get(key, float("inf")), value)
    gc.enable()
    best["total"] = sum(best.values())
    return best


def wall(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> tuple[float, int]:
    best, code = float("inf"), -1
    for _ in range(repeat):
        t = time.perf_counter()
        code = subprocess.run(cmd, capture_output=True, timeout=600, env=env).returncode
        best = min(best, time.perf_counter() - t)
    return best, code


def kpd_env(cache: Path) -> dict[str, str]:
    """The environment of the kpd processes: bytecode written to and read from *cache*, as an installed
    kpd has it (PYTHONDONTWRITEBYTECODE would make every run compile kpd again)."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(cache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


#: `kpd check-config` as its console script runs it (cli.run), timing its imports and its check
_SPLIT = """
import os, sys, time
t0 = time.perf_counter()
from keepalived_py import cli
t1 = time.perf_counter()
code = cli.main(sys.argv[1:], whole_process=True)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, flush=True)
sys.stderr.flush()
os._exit(code)
"""


def process_split(wrap, path: Path, repeat: int, env: dict[str, str]) -> str:
    """The fastest of *repeat* check-config processes, split: start, imports, check, exit."""
    start, _ = wall(wrap([sys.executable, "-c", "pass"]), repeat, env)
    best: tuple[float, float, float] = (float("inf"), 0.0, 0.0)
    for _ in range(repeat):
        t = time.perf_counter()
        out = subprocess.run(
            wrap([sys.executable, "-c", _SPLIT, "check-config", "--config", str(path)]),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=600,
            env=env,
        ).stdout
        total = time.perf_counter() - t
        imports, check = (float(x) for x in out.split())
        best = min(best, (total, imports, check))
    total, imports, check = best
    return (
        f"{total:.3f} s = interpreter start {start:.3f} + imports {imports:.3f} + check {check:.3f} "
        f"(reading, checks, output) + exit {max(0.0, total - start - imports - check):.3f}"
    )


def in_empty_netns(cmd: list[str]) -> list[str]:
    """Run keepalived -t and kpd check-config in one fresh namespace so host checks cost the same."""
    return ["ip", "netns", "exec", NETNS, *cmd]


def many_items(tmp: Path, repeat: int) -> None:
    many = tmp / "many.conf"
    many.write_text(many_items_config())
    t = best_of(max(1, repeat // 2), lambda: load_config(many, config_id="bench", host_checks=False))
    print(f"many items (100,000 vrrp_scripts + 100,000 virtual_ipaddress entries): load {t:.2f} CPU s")


NETNS = f"kpdbench-{os.getpid()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--many-items-only", action="store_true", help="only the 100,000-item config")
    args = ap.parse_args()
    if args.many_items_only:
        with tempfile.TemporaryDirectory() as tmp:
            many_items(Path(tmp), args.repeat)
        return
    largest = max(SAMPLES.iterdir(), key=lambda p: p.stat().st_size)
    print(
        f"# kpd config benchmarks ({platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs)"
    )
    t = best_of(args.repeat * 4, lambda: load_config(largest, config_id="bench", host_checks=False))
    print(
        f"largest sample {largest.name} ({largest.stat().st_size} bytes): {1 / t:.0f} configs/s "
        f"({t * 1e3:.2f} ms each)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.conf"
        big.write_text(large_config())
        n_lines = big.read_text().count("\n")
        st = stages(big, args.repeat)
        print(
            f"generated config ({n_lines} lines: 1000 vrrp_instances, 1000 virtual servers x 10 real servers)"
        )
        print(
            "  in-process CPU seconds, best of {}: {}".format(
                args.repeat, ", ".join(f"{k} {v:.3f}" for k, v in st.items())
            )
        )
        verdict = "meets" if st["total"] < 1.0 else "MISSES"
        print(f"  target: check in under 1 s -> {st['total']:.3f} s, {verdict} the target")
        many_items(Path(tmp), args.repeat)
        have_netns = shutil.which("ip") is not None and os.geteuid() == 0
        if have_netns:
            subprocess.run(["ip", "netns", "add", NETNS], check=True)
        try:
            wrap = in_empty_netns if have_netns else (lambda c: c)
            env = kpd_env(Path(tmp) / "pycache")
            kpd = [sys.executable, "-m", "keepalived_py", "check-config", "--config"]
            wall(wrap([*kpd, str(big)]), 1, env)  # compiles kpd's bytecode into the cache
            kpd_wall, kpd_code = wall(wrap([*kpd, str(big)]), max(1, args.repeat // 2), env)
            verdict = "meets" if kpd_wall <= 0.5 else "MISSES"
            print(
                f"  kpd check-config process (wall, best): {kpd_wall:.3f} s (exit {kpd_code}), "
                f"{verdict} the goal of 0.5 s"
            )
            print(f"    split: {process_split(wrap, big, max(1, args.repeat // 2), env)}")
            if shutil.which("keepalived"):
                for name, path in (("largest sample", largest), ("generated config", big)):
                    ka, code = wall(
                        wrap(["keepalived", "-t", "-l", "-f", str(path)]), max(1, args.repeat // 2)
                    )
                    kp, kcode = wall(wrap([*kpd, str(path)]), max(1, args.repeat // 2), env)
                    print(
                        f"  {name}: keepalived -t {ka:.3f} s (exit {code}) vs kpd check-config {kp:.3f} s "
                        f"(exit {kcode})"
                    )
            else:
                print("  keepalived not installed: no comparison")
        finally:
            if have_netns:
                subprocess.run(["ip", "netns", "del", NETNS], check=False)


if __name__ == "__main__":
    main()
