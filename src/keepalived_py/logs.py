"""Logging setup: the console (``--log-console``) or syslog, at a keepalived-like level, as keepalived's
command line chooses it: ``-S N`` logs to syslog facility LOCAL<N> (default daemon), ``-G`` not to syslog,
``-g [FILE]`` also to a file (default ``/tmp/keepalived.log``; each child its own, ``FILE_vrrp``,
``FILE_check``, as keepalived names them, after the namespace and instance names when set)."""

from __future__ import annotations

import logging
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


#: keepalived's ``-g`` without a file name
DEFAULT_LOG_FILE = "/tmp/keepalived.log"


def log_file_name(name: str, prog: str | None = None, *parts: str | None) -> str:
    """keepalived's ``make_file_name()``: ``/tmp/`` before a relative name, then ``_prog``, ``_namespace``,
    ``_instance`` before the extension."""
    path = name if name.startswith("/") else f"/tmp/{name}"
    head, slash, base = path.rpartition("/")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    for part in (prog, *parts):
        if part:
            stem += f"_{part}"
    return f"{head}{slash}{stem}{dot}{ext}"


def setup_logging(
    *,
    console: bool,
    level: str = "info",
    ident: str = "kpd",
    facility: int | None = None,
    syslog: bool = True,
    log_file: str | None = None,
) -> None:
    """``facility``: N for syslog's LOCAL<N> (None: daemon); ``syslog`` False: not to syslog (the console
    is then used unless ``log_file`` is given); ``log_file``: also append there."""
    import logging.handlers  # here: the commands that log nothing (check-config) need not import it

    root = logging.getLogger()
    for previous in list(root.handlers):
        root.removeHandler(previous)
    handlers: list[logging.Handler] = []
    if console or (syslog and not os.path.exists("/dev/log")) or (not syslog and log_file is None):
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(f"%(asctime)s {ident}[%(process)d]: %(message)s"))
        handlers.append(stream)
    elif syslog:
        which = logging.handlers.SysLogHandler.LOG_DAEMON if facility is None else (16 + facility)
        to_syslog = logging.handlers.SysLogHandler(address="/dev/log", facility=which)
        to_syslog.setFormatter(logging.Formatter(f"{ident}[%(process)d]: %(message)s"))
        handlers.append(to_syslog)
    if log_file is not None:
        try:
            to_file = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as err:
            print(f"{ident}: cannot log to {log_file}: {err}", file=sys.stderr)
        else:
            to_file.setFormatter(logging.Formatter(f"%(asctime)s {ident}[%(process)d]: %(message)s"))
            handlers.append(to_file)
    for each in handlers:
        root.addHandler(each)
    root.setLevel(LEVELS.get(level, logging.INFO))
