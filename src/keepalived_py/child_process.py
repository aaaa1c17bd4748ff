"""What every child process does first: its command line, its name, its parent's death, its configuration.

    python -m keepalived_py.<kind>.child --config FILE --runtime-dir DIR --heartbeat-socket PATH
        [--vars FILE] [--config-id ID] [--log-console] [--log-level LEVEL] [child options]

:func:`start_child` names the process (``/proc/PID/comm``), asks for SIGTERM when the parent dies, sets up
logging and reads the configuration the parent validated (:func:`~keepalived_py.config.snapshot.
load_for_child`); it returns an exit code instead when the child must not run.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from keepalived_py.config.model import Config
from keepalived_py.config.snapshot import load_for_child
from keepalived_py.exitcodes import ExitCode
from keepalived_py.logs import LEVELS, setup_logging
from keepalived_py.procname import die_with_parent, set_name


def child_parser(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=name)
    p.add_argument("--config", required=True)
    p.add_argument("--vars", action="append", default=[])
    p.add_argument("--config-id")
    p.add_argument("--runtime-dir", required=True)
    p.add_argument("--heartbeat-socket")
    p.add_argument("--log-console", action="store_true")
    p.add_argument("--log-level", choices=tuple(LEVELS), default="info")
    return p


@dataclass
class ChildStart:
    args: argparse.Namespace
    runtime_dir: Path
    config: Config
    generation: int


def start_child(name: str, parser: argparse.ArgumentParser, argv: list[str] | None) -> ChildStart | int:
    args = parser.parse_args(argv)
    set_name(name)
    die_with_parent()
    if os.getppid() == 1:  # the parent died before we asked to be told
        return int(ExitCode.FAILURE)
    setup_logging(console=args.log_console, level=args.log_level, ident=name)
    runtime_dir = Path(args.runtime_dir)
    config, generation, errors = load_for_child(runtime_dir, args.config, vars_files=args.vars,
                                                config_id=args.config_id)
    if config is None:
        print("\n".join(errors), file=sys.stderr)
        return int(ExitCode.CONFIG_FATAL)
    return ChildStart(args, runtime_dir, config, generation)
