"""The Checkers child process (``kpd-checker``), started by the control plane through this entry point.
The parent forks and runs this module in the fork (:mod:`keepalived_py.control.child_fork`); run by hand:

    python -m keepalived_py.check.child --config FILE --runtime-dir DIR --heartbeat-socket PATH
        [--heartbeat-interval SECONDS] [--vars FILE] [--config-id ID] [--dont-release-ipvs]
        [--log-console] [--log-level LEVEL]

It names itself ``kpd-checker``, gets SIGTERM when the parent dies, reads the configuration the parent
validated (the runtime directory's snapshot when there is one, else the file), adopts the kernel's IPVS
table and runs the check engine on the child runtime (:mod:`keepalived_py.child_process`).
"""

from __future__ import annotations

import resource
import sys

from keepalived_py.heartbeat import start_up_from_argv

# Heartbeat from the first moment, before the imports below (seconds on an emulated machine).
_STARTUP_BEATS = start_up_from_argv("checker", sys.argv[1:], 0.5) if __name__ == "__main__" else None

from keepalived_py.child_process import child_parser, start_child  # noqa: E402
from keepalived_py.exitcodes import ExitCode  # noqa: E402
from keepalived_py.pyroute2_import import use_netlink_only  # noqa: E402

NAME = "kpd-checker"


def main(argv: list[str] | None = None) -> int:
    p = child_parser(NAME)
    p.add_argument("--dont-release-ipvs", action="store_true")
    start = start_child("checker", NAME, p, argv, _STARTUP_BEATS if argv is None else None)
    if isinstance(start, int):
        return start
    use_netlink_only()
    # thousands of probes in flight need descriptors
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if start.heartbeat is not None:
        start.heartbeat.progress("importing the checkers and the IPVS driver")
    from keepalived_py.check import daemon
    from keepalived_py.ipvs.driver import IpvsDriver

    try:
        driver = IpvsDriver()
        driver.dump()
    except Exception as err:  # no ip_vs module, no CAP_NET_ADMIN ...
        print(f"{NAME}: IPVS is not available on this host: {err}", file=sys.stderr)
        return int(ExitCode.CHILD_FATAL)
    return daemon.serve(start, driver, release=not start.args.dont_release_ipvs)


if __name__ == "__main__":
    sys.exit(main())
