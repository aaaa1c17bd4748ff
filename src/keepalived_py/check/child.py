"""The Checkers child process (``kpd-checker``), started by the control plane through this entry point.

    python -m keepalived_py.check.child --config FILE --runtime-dir DIR --heartbeat-socket PATH
        [--vars FILE] [--config-id ID] [--dont-release-ipvs] [--log-console] [--log-level LEVEL]

It names itself ``kpd-checker``, gets SIGTERM when the parent dies, reads the configuration the parent
validated (the runtime directory's snapshot when there is one, else the file), adopts the kernel's IPVS
table and runs the check engine, heartbeating to the parent from inside its event loop.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from pathlib import Path

from keepalived_py.config.snapshot import load_for_child
from keepalived_py.exitcodes import ExitCode
from keepalived_py.logs import LEVELS, setup_logging
from keepalived_py.procname import die_with_parent, set_name

NAME = "kpd-checker"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=NAME)
    p.add_argument("--config", required=True)
    p.add_argument("--vars", action="append", default=[])
    p.add_argument("--config-id")
    p.add_argument("--runtime-dir", required=True)
    p.add_argument("--heartbeat-socket")
    p.add_argument("--dont-release-ipvs", action="store_true")
    p.add_argument("--log-console", action="store_true")
    p.add_argument("--log-level", choices=tuple(LEVELS), default="info")
    args = p.parse_args(argv)
    set_name(NAME)
    die_with_parent()
    if os.getppid() == 1:
        return int(ExitCode.FAILURE)
    setup_logging(console=args.log_console, level=args.log_level, ident=NAME)
    # thousands of probes in flight need descriptors
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    runtime_dir = Path(args.runtime_dir)
    config, generation, errors = load_for_child(runtime_dir, args.config, vars_files=args.vars,
                                                config_id=args.config_id)
    if config is None:
        print("\n".join(errors), file=sys.stderr)
        return int(ExitCode.CONFIG_FATAL)
    import asyncio

    from keepalived_py.check import daemon
    from keepalived_py.ipvs.driver import IpvsDriver

    try:
        driver = IpvsDriver()
        driver.dump()
    except Exception as err:  # no ip_vs module, no CAP_NET_ADMIN ...
        print(f"{NAME}: IPVS is not available on this host: {err}", file=sys.stderr)
        return int(ExitCode.CHILD_FATAL)
    asyncio.run(daemon.serve(config, runtime_dir, driver=driver, release=not args.dont_release_ipvs,
                             heartbeat_socket=args.heartbeat_socket, generation=generation))
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
