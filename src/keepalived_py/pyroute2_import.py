"""pyroute2's netlink layer without the eager top level of its package.

``import pyroute2.netlink.rtnl`` first runs ``pyroute2/__init__.py``, which imports every API pyroute2 has
(IPRoute, NDB, IPDB, conntrack, devlink, wireless, ethtool ...: about 160 modules and 8 MiB in each process
that imports it, and a third of a child's start-up imports). kpd uses none of them: it uses the message
classes and constants of ``pyroute2.netlink`` and ``pyroute2.netns``. :func:`use_netlink_only` registers
the ``pyroute2`` package without running its top level, so that the submodules kpd imports load alone
(about 120 modules, 4.6 MiB). The children call it first thing; a process that has already imported
pyroute2 is left as it is.
"""

from __future__ import annotations

import importlib.util
import sys


def use_netlink_only() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed: the first real import says so
    sys.modules["pyroute2"] = importlib.util.module_from_spec(spec)  # __path__ set, top level not run
