"""Helpers of the scenarios run inside the test VM (imported from the scenario's own directory)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable


def sh(cmd: str, check: bool = True, timeout: float = 60) -> str:
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def ipvs(prefix: str = "") -> dict[str, dict[str, list]]:
    """`ipvsadm -Ln` as {"TCP 10.0.2.100:80 rr": {"10.0.1.11:8080": ["Masq", 1]}} (``prefix``: e.g. ``ip
    netns exec NS``)."""
    table: dict[str, dict[str, list]] = {}
    current = None
    for line in sh(f"{prefix} ipvsadm -Ln").splitlines()[3:]:
        m = re.match(r"^(TCP|UDP|SCTP|FWM)\s+(\S+)\s+(\S+)(.*)$", line)
        if m:
            current = f"{m[1]} {m[2]} {m[3]}{m[4].rstrip()}"
            table[current] = {}
            continue
        m = re.match(r"^\s+->\s+(\S+)\s+(\w+)\s+(\d+)", line)
        if m and current is not None:
            table[current][m[1]] = [m[2], int(m[3])]
    return table


def wait_for(pred: Callable[[], object], timeout: float, poll: float = 0.1) -> float | None:
    """Seconds until ``pred()`` held, or None when it did not within ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():
            return time.monotonic() - start
        time.sleep(poll)
    return None
