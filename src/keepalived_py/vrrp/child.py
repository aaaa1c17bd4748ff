"""The VRRP child process (``kpd-vrrp``), started by the control plane through this entry point.

    python -m keepalived_py.vrrp.child --config FILE --runtime-dir DIR --heartbeat-socket PATH
        [--vars FILE] [--config-id ID] [--resume-master NAME ...] [--dont-release-vrrp]
        [--log-console] [--log-level LEVEL]

It names itself ``kpd-vrrp``, gets SIGTERM when the parent dies (so it stops gracefully: priority 0 from
every MASTER, addresses released), reads the configuration the parent has validated, and runs the engine,
heartbeating to the parent from inside its event loop. Exit codes are :class:`ExitCode`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from keepalived_py.config.snapshot import load_for_child
from keepalived_py.exitcodes import ExitCode
from keepalived_py.logs import LEVELS, setup_logging
from keepalived_py.procname import die_with_parent, set_name
from keepalived_py.vrrp import daemon

NAME = "kpd-vrrp"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=NAME)
    p.add_argument("--config", required=True)
    p.add_argument("--vars", action="append", default=[])
    p.add_argument("--config-id")
    p.add_argument("--runtime-dir", required=True)
    p.add_argument("--heartbeat-socket")
    p.add_argument("--resume-master", action="append", default=[])
    p.add_argument("--dont-release-vrrp", action="store_true")
    p.add_argument("--log-console", action="store_true")
    p.add_argument("--log-level", choices=tuple(LEVELS), default="info")
    args = p.parse_args(argv)
    set_name(NAME)
    die_with_parent()
    if os.getppid() == 1:  # the parent died before we asked to be told
        return int(ExitCode.FAILURE)
    setup_logging(console=args.log_console, level=args.log_level, ident=NAME)
    runtime_dir = Path(args.runtime_dir)
    config, generation, errors = load_for_child(runtime_dir, args.config, vars_files=args.vars,
                                                config_id=args.config_id)
    if config is None:
        print("\n".join(errors), file=sys.stderr)
        return int(ExitCode.CONFIG_FATAL)
    import asyncio

    asyncio.run(
        daemon.serve(
            config,
            runtime_dir,
            release=not args.dont_release_vrrp,
            heartbeat_socket=args.heartbeat_socket,
            resume_master=tuple(args.resume_master),
            generation=generation,
        )
    )
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
