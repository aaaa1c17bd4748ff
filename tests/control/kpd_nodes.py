"""kpd nodes for the control-plane tests: a ``kpd start`` per namespace of a two-host lab."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab, wait_for

VIP = "192.0.2.100"
HUNG_1_5 = """
global_defs {{
    kpd_child_hung_timeout 1.5
}}
"""
INSTANCE = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int 1
    version 3
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
"""
CONFIG = HUNG_1_5 + INSTANCE
#: kpd's defaults: the hung timeout is derived from the Master_Down_Interval
DEFAULTS = INSTANCE


@pytest.fixture
def lab() -> Iterator[Lab]:  # used through tests/control/conftest.py
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the control-plane tests need root and iproute2 (make test runs them as root)")
    Lab.cleanup_stale()
    with Lab(("a", "b")) as the_lab:
        yield the_lab


class Node:
    def __init__(self, lab: Lab, name: str, priority: int, config: str = CONFIG,
                 file: str = "keepalived.conf"):
        self.lab = lab
        self.name = name
        self.dir = Path(lab.workdir) / f"kpd-{name}"
        self.dir.mkdir()
        self.config = self.dir / file
        self.config.write_text(config.format(priority=priority))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra_args: str) -> Node:
        self.proc = self.lab.popen(
            self.name,
            sys.executable,
            "-m",
            "keepalived_py",
            "start",
            "--config",
            str(self.config),
            "--runtime-dir",
            str(self.dir / "run"),
            "--log-console",
            *extra_args,
        )
        return self

    def children(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid), "-x", "kpd-vrrp"], capture_output=True, text=True
        )
        return [int(p) for p in out.stdout.split()]

    def has_vip(self) -> bool:
        return VIP in self.lab.run(self.name, "ip", "-o", "addr", "show", "eth0").stdout

    def state(self) -> str | None:
        try:
            return json.loads((self.dir / "run" / "vrrp-status.json").read_text())[0]["state"]
        except (OSError, ValueError, IndexError, KeyError):
            return None

    def log(self) -> str:
        assert self.proc is not None
        return Path(self.proc.log_path).read_text()  # type: ignore[attr-defined]


def start_pair(lab: Lab, config: str = CONFIG) -> tuple[Node, Node]:
    master, backup = Node(lab, "a", 150, config).start(), Node(lab, "b", 100, config).start()
    wait_for(lambda: (master.state() == "MASTER" and backup.state() == "BACKUP") or None, timeout=10)
    return master, backup


def kpd_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keepalived_py", *args], capture_output=True, text=True, timeout=20
    )


