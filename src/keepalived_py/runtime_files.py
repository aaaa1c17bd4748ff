"""Runtime files (pid files, state dumps) created safely: never through a symlink, mode 0600."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_runtime_dir(path: str | Path) -> Path:
    """Create the runtime directory (0700) if needed; refuse a symlink or a non-directory."""
    path = Path(path)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, DIR_MODE)
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path):
        raise OSError(f"runtime directory {path} is not a directory (or is a symlink)")
    if st.st_uid != os.geteuid():
        raise OSError(f"runtime directory {path} is owned by uid {st.st_uid}, not by us")
    return path


def write_file_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fresh temporary file and a rename; no symlink is ever followed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, flags, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if path.is_symlink():
        os.unlink(tmp)
        raise OSError(f"refusing to replace symlink {path}")
    os.replace(tmp, path)


def write_json_atomic(path: str | Path, doc: Any) -> None:
    write_file_atomic(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
