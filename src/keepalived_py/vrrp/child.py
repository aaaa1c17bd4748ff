"""The VRRP child process (``kpd-vrrp``), started by the control plane through this entry point.
The parent forks and runs this module in the fork (:mod:`keepalived_py.control.child_fork`); run by hand:

    python -m keepalived_py.vrrp.child --config FILE --runtime-dir DIR --heartbeat-socket PATH
        [--heartbeat-interval SECONDS] [--vars FILE] [--config-id ID] [--resume-master NAME ...]
        [--dont-release-vrrp] [--log-console] [--log-level LEVEL]

It names itself ``kpd-vrrp``, gets SIGTERM when the parent dies (so it stops gracefully: priority 0 from
every MASTER, addresses released), reads the configuration the parent has validated, and runs the engine on
the child runtime (:mod:`keepalived_py.child_process`). Exit codes are :class:`ExitCode`.
"""

from __future__ import annotations

import sys

from keepalived_py.heartbeat import start_up_from_argv

# Heartbeat from the first moment, before the imports below (seconds on an emulated machine).
_STARTUP_BEATS = start_up_from_argv("vrrp", sys.argv[1:], 0.5) if __name__ == "__main__" else None

from keepalived_py.child_process import child_parser, start_child  # noqa: E402
from keepalived_py.pyroute2_import import use_netlink_only  # noqa: E402

NAME = "kpd-vrrp"


def main(argv: list[str] | None = None) -> int:
    p = child_parser(NAME)
    p.add_argument("--resume-master", action="append", default=[])
    p.add_argument("--dont-release-vrrp", action="store_true")
    p.add_argument("--home-netns-fd", type=int, help="the namespace kpd started in (process events)")
    start = start_child("vrrp", NAME, p, argv, _STARTUP_BEATS if argv is None else None)
    if isinstance(start, int):
        return start
    use_netlink_only()
    if start.heartbeat is not None:
        start.heartbeat.progress("importing the VRRP stack")
    from keepalived_py.vrrp import daemon

    return daemon.serve(start, release=not start.args.dont_release_vrrp,
                        resume_master=tuple(start.args.resume_master), home_netns=start.args.home_netns_fd)


if __name__ == "__main__":
    sys.exit(main())
