"""The daemon's pid file (``kpd.pid`` in the runtime dir): one kpd per runtime dir."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from keepalived_py.runtime_files import read_runtime_file, write_file_atomic
from keepalived_py.runtime_paths import PID_FILE

log = logging.getLogger("kpd.control")


#: A pid file kpd writes is a few digits and a newline; a larger regular file is stale garbage.
MAX_PID_FILE = 64


class PidFileError(RuntimeError):
    """The pid file cannot be claimed: a live kpd holds it, or something unsafe is planted there."""


def claim_pid_file(runtime_dir: Path) -> Path:
    """Write our pid to ``runtime_dir/kpd.pid`` (0600, atomically) and return that path.

    An existing pid file is read with :func:`~keepalived_py.runtime_files.read_runtime_file`: never through
    a symlink and never blocking. If it names a live process called ``kpd*`` (other than us), a kpd already
    holds this runtime dir and we refuse. Otherwise it is stale (dead pid, garbage, empty, oversized) and is
    replaced. Anything but a regular file there (a symlink, FIFO, directory, socket, device) or a file owned
    by another user is refused rather than replaced: someone planted it, and starting would be unsafe.

    :raises PidFileError: with a message naming the path and the reason.
    """
    path = Path(runtime_dir) / PID_FILE
    try:
        text = read_runtime_file(path, MAX_PID_FILE).decode("ascii", "replace").strip()
    except FileNotFoundError:
        text = None
    except OSError as err:
        if err.errno != errno.EFBIG:
            reason = err.strerror or str(err)
            raise PidFileError(f"refusing to start: {reason} (remove it if it is not kpd's)") from None
        text = ""
    if text is not None:
        if text.isdigit() and _is_kpd(int(text)):
            raise PidFileError(f"kpd is already running with pid {text} (runtime dir {runtime_dir})")
        log.info("removing stale pid file %s (pid %s is not running kpd)", path, text[:20] or "?")
    try:
        write_file_atomic(path, f"{os.getpid()}\n".encode())
    except OSError as err:
        raise PidFileError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def _is_kpd(pid: int) -> bool:
    """Whether ``pid`` is a live process (not us) whose name starts with ``kpd``."""
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return False
    return comm.startswith("kpd")
