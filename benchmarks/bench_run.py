"""What the root benchmarks (bench_vrrp, bench_pair, soak) do alike around their measurements.

``prepare`` refuses to run without root or a needed tool and turns SIGTERM/SIGHUP into KeyboardInterrupt,
so that the lab's ``with`` block tears everything down; ``Run.header`` heads the report with the command
that reproduces it, the machine and its load; ``exit_with`` runs main and exits 130 when interrupted.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def prepare(name: str, tools: Sequence[str] = ()) -> int | None:
    """None when the benchmark can run (signals then interrupt it cleanly); else the exit status, 2."""
    if os.geteuid() != 0:
        print(f"{name}: needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in tools:
        if shutil.which(tool) is None:
            print(f"{name}: needs {tool}", file=sys.stderr)
            return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    return None


def environment() -> list[str]:
    """The machine, as report lines: CPUs, kernel, Python, keepalived."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    keepalived = "not installed"
    if shutil.which("keepalived"):
        proc = subprocess.run(["keepalived", "--version"], capture_output=True, text=True, timeout=10)
        keepalived = (proc.stderr or proc.stdout).splitlines()[0].strip()
    return [
        f"- CPUs: {os.cpu_count()} ({model or 'unknown model'})",
        f"- kernel: {platform.system()} {platform.release()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        f"- keepalived: {keepalived}",
    ]


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Run:
    """One benchmark run: when it started and the load average then."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.load_before = _loadavg()

    def header(self, title: str, script: str, argv: Sequence[str]) -> list[str]:
        """The report's first lines: title, the command that reproduces it, the machine, load and time."""
        return [
            f"# {title}",
            "",
            f"Reproduce (as root): `{' '.join(['.venv/bin/python', f'benchmarks/{script}', *argv])}`",
            "",
            *environment(),
            f"- load average before / after: {self.load_before} / {_loadavg()}; "
            f"run took {time.monotonic() - self.started:.0f} s",
            "",
        ]


def rounds(impls: Sequence[str], trials: int, n_rounds: int) -> Iterator[tuple[int, int, str, int]]:
    """(round number from 1, number of rounds, implementation, trials in this round): ``trials`` per
    implementation split into rounds that alternate the implementations, so that load from elsewhere on
    the machine falls on all of them alike."""
    n_rounds = max(1, min(n_rounds, trials))
    for round_no in range(n_rounds):
        n = trials // n_rounds + (1 if round_no < trials % n_rounds else 0)
        for impl in impls:
            yield round_no + 1, n_rounds, impl, n


def exit_with(name: str, main: Callable[[], int]) -> NoReturn:
    """sys.exit(main()), or 130 with a line on stderr when interrupted (the lab is torn down by then)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt as interrupt:
        print(f"{name}: interrupted ({interrupt or 'SIGINT'}); lab removed", file=sys.stderr)
        sys.exit(130)
