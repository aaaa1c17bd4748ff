"""The parent's pid file: claimed safely, refused beside a live kpd."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from keepalived_py.runtime_files import read_runtime_file, write_file_atomic
from keepalived_py.runtime_paths import PID_FILE

log = logging.getLogger("kpd.control")


class PidFileError(RuntimeError):
    pass


def claim_pid_file(runtime_dir: Path) -> Path:
    """Write our pid without following symlinks; refuse if a live kpd already holds the runtime dir."""
    path = runtime_dir / PID_FILE
    if path.is_symlink():
        raise PidFileError(f"{path} is a symlink; refusing to use it")
    try:
        text = read_runtime_file(path, 64).decode(errors="replace").strip()
    except FileNotFoundError:
        pass
    except OSError as err:
        raise PidFileError(f"{path}: {err}") from None
    else:
        if text.isdigit() and _is_kpd(int(text)):
            raise PidFileError(f"kpd is already running with pid {text} (runtime dir {runtime_dir})")
        log.info("removing stale pid file %s (pid %s is not running kpd)", path, text or "?")
    write_file_atomic(path, f"{os.getpid()}\n".encode())
    return path


def _is_kpd(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return comm.startswith("kpd")
