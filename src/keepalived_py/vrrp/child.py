"""The VRRP child process (``kpd-vrrp``), started by the control plane through this entry point.

    python -m keepalived_py.vrrp.child --config FILE --runtime-dir DIR --heartbeat-socket PATH
        [--vars FILE] [--config-id ID] [--resume-master NAME ...] [--dont-release-vrrp]
        [--log-console] [--log-level LEVEL]

It names itself ``kpd-vrrp``, gets SIGTERM when the parent dies (so it stops gracefully: priority 0 from
every MASTER, addresses released), reads the configuration the parent has validated, and runs the engine,
heartbeating to the parent from inside its event loop. Exit codes are :class:`ExitCode`.
"""

from __future__ import annotations

import sys

from keepalived_py.child_process import child_parser, start_child
from keepalived_py.exitcodes import ExitCode
from keepalived_py.vrrp import daemon

NAME = "kpd-vrrp"


def main(argv: list[str] | None = None) -> int:
    p = child_parser(NAME)
    p.add_argument("--resume-master", action="append", default=[])
    p.add_argument("--dont-release-vrrp", action="store_true")
    start = start_child(NAME, p, argv)
    if isinstance(start, int):
        return start
    args = start.args
    import asyncio

    asyncio.run(
        daemon.serve(
            start.config,
            start.runtime_dir,
            release=not args.dont_release_vrrp,
            heartbeat_socket=args.heartbeat_socket,
            resume_master=tuple(args.resume_master),
            generation=start.generation,
        )
    )
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
