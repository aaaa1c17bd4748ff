"""The children import pyroute2's netlink layer without the package's top level (every pyroute2 API)."""

from __future__ import annotations

import subprocess
import sys

SNIPPET = """
import sys
from keepalived_py.pyroute2_import import use_netlink_only
use_netlink_only()
import keepalived_py.check.daemon, keepalived_py.ipvs.driver
import keepalived_py.net_namespace, keepalived_py.vrrp.daemon
from pyroute2 import netns
from keepalived_py.vrrp.net.links import RtNetlink
names = [link.ifname for link in RtNetlink().links()]
assert "lo" in names, names
loaded = [m for m in sys.modules if m.startswith("pyroute2")]
heavy = ("pyroute2.ndb", "pyroute2.iproute", "pyroute2.ipdb")
print(len(loaded), sorted(m for m in loaded if m.startswith(heavy)))
"""


def test_the_children_s_netlink_works_without_pyroute2_s_top_level():
    out = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    count, heavy = out.stdout.split(" ", 1)
    assert heavy.strip() == "[]"  # NDB, IPRoute, IPDB... never loaded
    assert int(count) < 120  # 160-odd with the top level
