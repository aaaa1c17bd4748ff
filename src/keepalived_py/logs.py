"""Logging setup: the console (``--log-console``) or syslog, at a keepalived-like level."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": NOTICE,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def setup_logging(*, console: bool, level: str = "info", ident: str = "kpd") -> None:
    root = logging.getLogger()
    for previous in list(root.handlers):
        root.removeHandler(previous)
    handler: logging.Handler
    if console or not os.path.exists("/dev/log"):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"%(asctime)s {ident}[%(process)d]: %(message)s"))
    else:
        handler = logging.handlers.SysLogHandler(
            address="/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON
        )
        handler.setFormatter(logging.Formatter(f"{ident}[%(process)d]: %(message)s"))
    root.addHandler(handler)
    root.setLevel(LEVELS.get(level, logging.INFO))
