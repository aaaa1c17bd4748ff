"""Commands in a fresh, empty network namespace (for checks that depend on the host's interfaces)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator

KPD = (sys.executable, "-m", "keepalived_py")


@contextlib.contextmanager
def fresh_netns() -> Iterator[str]:
    """A new network namespace (only ``lo``), deleted afterwards; yields its name."""
    ns = f"kpdtest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def in_netns(ns: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout)


def add_interface(ns: str, name: str) -> None:
    """An interface called ``name`` in ``ns`` (one end of a veth pair: this kernel may lack dummy)."""
    subprocess.run(
        ["ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", f"{name}p"], check=True
    )


def run_kpd(ns: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return in_netns(ns, *KPD, *args, timeout=timeout)
