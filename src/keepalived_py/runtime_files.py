"""Runtime files (pid files, state dumps) created safely: never through a symlink, mode 0600."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import time
from pathlib import Path
from typing import Any

from keepalived_py.runtime_paths import CONTROL_REPLY_PREFIX

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


def write_file_atomic(path: str | Path, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` to ``path`` through a fresh temporary file and a rename; no symlink is ever followed.

    ``sync=False`` skips the fsync, for status files rewritten all the time (an event loop must not wait
    for the disk; a crash loses nothing that is not rewritten at the next start)."""
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
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if path.is_symlink():
        os.unlink(tmp)
        raise OSError(f"refusing to replace symlink {path}")
    os.replace(tmp, path)


def write_json_atomic(path: str | Path, doc: Any, *, sync: bool = True) -> None:
    write_file_atomic(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), sync=sync)


def read_runtime_file(path: str | Path, max_bytes: int) -> bytes:
    """A regular file's content, never through a symlink, never blocking on a FIFO, at most ``max_bytes``."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(f"{path} is larger than {max_bytes} bytes")
    return data


def read_runtime_json(path: str | Path, max_bytes: int) -> Any:
    return json.loads(read_runtime_file(path, max_bytes))


def write_private_reply(runtime_dir: Path, doc: Any) -> Path:
    path = runtime_dir / f"{CONTROL_REPLY_PREFIX}{secrets.token_hex(8)}.json"
    write_json_atomic(path, doc, sync=False)
    return path


def remove_stale_replies(runtime_dir: Path, older_than: float) -> None:
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(runtime_dir):
            if entry.name.startswith(CONTROL_REPLY_PREFIX):
                with contextlib.suppress(OSError):
                    if now - entry.stat(follow_symlinks=False).st_mtime > older_than:
                        os.unlink(entry.path)
