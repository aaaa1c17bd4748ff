"""Fixtures for the Linux I/O tests: namespace labs (root only; skipped otherwise)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from lab import Lab


def _lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, raw sockets)"
    for tool in ("ip", "tcpdump", "iptables"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


@pytest.fixture(scope="session")
def lab_ready() -> None:
    """Skip without root or tools; otherwise remove the namespaces of crashed earlier runs, once."""
    reason = _lab_unavailable()
    if reason:
        pytest.skip(reason)
    Lab.cleanup_stale()


@pytest.fixture
def lab(lab_ready: None) -> Iterator[Lab]:
    """Hosts ``a`` and ``b`` on one segment (``eth0``: 192.0.2.1-2/24, 2001:db8::1-2/64)."""
    with Lab(("a", "b")) as the_lab:
        yield the_lab


@pytest.fixture
def lab3(lab_ready: None) -> Iterator[Lab]:
    """Hosts ``a``, ``b``, ``c``: a and b on segment 0 (``eth0``), b and c on segment 1 (``eth1``).

    b's ``eth1`` is 198.51.100.2/24, c's 198.51.100.3/24 (c's only interface is called ``eth1``).
    """
    with Lab(("a", "b", "c"), lan=("a", "b")) as the_lab:
        the_lab.add_segment(("b", "c"), ifname="eth1")
        yield the_lab
