"""Runtime files (pid file, state dumps, control replies) created and read safely.

The runtime directory is root-only (0700, owned by us, every ancestor writable only by root or by us, or
sticky). Files in it are written 0600 through a fresh temporary file and a rename, and read without ever
following a symlink, opening a FIFO or a device for real, or reading without bound. Whatever is planted there
(a FIFO, a symlink, a directory, a huge file), the answer is a clear :class:`OSError` in bounded time.

Errors raised by the readers are :class:`OSError` with an ``errno`` that says why:

* ``ENOENT`` (:class:`FileNotFoundError`): the file is absent;
* ``ELOOP``: it is a symlink (never followed);
* ``EISDIR``: it is a directory; ``EINVAL``: a FIFO, a socket or a device;
* ``EPERM``: it is owned by a user other than root or us;
* ``EFBIG``: it is larger than the caller's bound.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FILE_MODE = 0o600
DIR_MODE = 0o700
#: Private answers to control requests: ``control-reply-<32 hex digits>.json`` in the runtime dir.
REPLY_FILE_PREFIX = "control-reply-"
REPLY_FILE_PATTERN = re.compile(r"control-reply-[0-9a-f]{32}\.json")
#: Attempts at a fresh random name before giving up (a collision means someone is planting names).
_NAME_ATTEMPTS = 16


def _owners() -> tuple[int, int]:
    return (0, os.geteuid())


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def _check_ancestor(directory: str) -> None:
    """Refuse a directory others could use to swap what lies below it."""
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, f"parent directory {directory} of the runtime directory does not exist"
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, f"{directory} is not a directory")
    if st.st_uid not in _owners():
        raise PermissionError(
            errno.EPERM,
            f"unsafe runtime directory: its ancestor {directory} is owned by uid {st.st_uid} "
            "(only root or us may own it)",
        )
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise PermissionError(
            errno.EPERM,
            f"unsafe runtime directory: its ancestor {directory} is group- or world-writable "
            f"(mode {stat.S_IMODE(st.st_mode):04o}) without the sticky bit",
        )


def _ancestors(path: str) -> list[str]:
    """``path`` and every directory above it, up to ``/``."""
    out = [path]
    while (parent := os.path.dirname(path)) != path:
        out.append(parent)
        path = parent
    return out


def ensure_runtime_dir(path: str | Path) -> Path:
    """Make sure ``path`` is a safe runtime directory and return it (as a :class:`Path`).

    Every ancestor (up to ``/``, both as written and with symlinks resolved) must exist, be owned by root or
    by us, and not be group- or world-writable unless it has the sticky bit (``/tmp`` is fine). Missing
    ancestors are *not* created (``/run`` exists on any normal system): a clear :class:`FileNotFoundError`
    names the missing one. The directory itself is created 0700 when missing; an existing one must be a real
    directory (not a symlink), owned by us, without group/world write bits. Its read/search bits are left as
    they are (every file in it is 0600).

    :raises OSError: naming the offending path and why (``PermissionError`` for ownership and modes,
        ``NotADirectoryError``, ``FileNotFoundError``).
    """
    path = Path(path)
    absolute = os.path.abspath(path)
    parent = os.path.dirname(absolute)
    seen: set[str] = set()
    for directory in [*_ancestors(os.path.realpath(parent)), *_ancestors(parent)]:
        if directory not in seen:
            seen.add(directory)
            _check_ancestor(directory)
    with contextlib.suppress(FileExistsError):
        os.mkdir(absolute, DIR_MODE)
    st = os.lstat(absolute)
    if stat.S_ISLNK(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, f"runtime directory {path} is a symlink; refusing it")
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, f"runtime directory {path} is not a directory")
    if st.st_uid != os.geteuid():
        raise PermissionError(
            errno.EPERM, f"runtime directory {path} is owned by uid {st.st_uid}, not by us"
        )
    if st.st_mode & 0o022:
        raise PermissionError(
            errno.EPERM,
            f"runtime directory {path} is group- or world-writable (mode {stat.S_IMODE(st.st_mode):04o}); "
            "it must be 0700",
        )
    return path


def read_runtime_file(path: str | Path, max_bytes: int) -> bytes:
    """The content of the regular file ``path``, at most ``max_bytes`` bytes; never blocks.

    Opened with ``O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC`` after an ``lstat`` (so a device is not even
    opened) and checked again with ``fstat`` on the open descriptor: a symlink, FIFO, socket, device or
    directory is refused at once, as is a file owned by a user other than root or us, or one larger than
    ``max_bytes``.

    :raises FileNotFoundError: the file is absent.
    :raises OSError: anything else (see the module docstring for the ``errno`` values).
    """
    path = Path(path)
    st = os.lstat(path)
    _check_regular(path, st, max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, f"{path} is a symlink; refusing to follow it") from None
        raise
    try:
        _check_regular(path, os.fstat(fd), max_bytes)  # what we opened, if it was swapped since the lstat
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise OSError(errno.EFBIG, f"{path} grew beyond {max_bytes} bytes while being read")
    finally:
        os.close(fd)
    return b"".join(chunks)


def _check_regular(path: Path, st: os.stat_result, max_bytes: int) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise OSError(errno.ELOOP, f"{path} is a symlink; refusing to follow it")
    if stat.S_ISDIR(st.st_mode):
        raise OSError(errno.EISDIR, f"{path} is a directory, not a regular file")
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, f"{path} is {_kind(st.st_mode)}, not a regular file; refusing it")
    if st.st_uid not in _owners():
        raise OSError(errno.EPERM, f"{path} is owned by uid {st.st_uid}, not by root or us; refusing it")
    if st.st_size > max_bytes:
        raise OSError(errno.EFBIG, f"{path} is {st.st_size} bytes, more than the {max_bytes} accepted")


def read_runtime_json(path: str | Path, max_bytes: int) -> Any:
    """The JSON document in ``path``, read with :func:`read_runtime_file`.

    :raises OSError: as :func:`read_runtime_file`.
    :raises ValueError: not UTF-8, not JSON, or nested too deeply to parse.
    """
    data = read_runtime_file(path, max_bytes)
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply") from None


def _create_exclusive(directory: Path, make_name: Callable[[], str]) -> tuple[Path, int]:
    """A fresh file in ``directory`` (``O_CREAT|O_EXCL|O_NOFOLLOW``, 0600) under a name from ``make_name()``.

    ``O_EXCL`` never opens nor follows what is already there: a planted FIFO, symlink or directory at a name
    just makes us pick another random name.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(_NAME_ATTEMPTS):
        path = directory / make_name()
        try:
            return path, os.open(path, flags, FILE_MODE)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"cannot create a fresh file in {directory}: every name tried exists")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_file_atomic(path: str | Path, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` to ``path`` (0600) through a fresh temporary file and a rename.

    ``sync=False`` skips the fsync, for status files rewritten all the time (an event loop must not wait
    for the disk; they are rewritten at the next start anyway).

    The temporary file is ``.<name>.<random hex>.tmp`` next to ``path``, created with ``O_EXCL|O_NOFOLLOW``
    (whatever is planted at a name is never opened; another name is picked). Only a missing ``path`` or a
    regular file is replaced: a symlink, directory, FIFO, socket or device there is left alone and an
    :class:`OSError` raised ("refusing to replace ..."). No temporary file is left behind on failure.
    """
    path = Path(path)
    tmp, fd = _create_exclusive(path.parent, lambda: f".{path.name}.{os.urandom(8).hex()}.tmp")
    try:
        try:
            _write_all(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISREG(st.st_mode):
                raise OSError(
                    errno.EEXIST, f"refusing to replace {path}: it is {_kind(st.st_mode)}, not a regular file"
                )
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | Path, doc: Any, *, sync: bool = True) -> None:
    """``doc`` as compact JSON (keys sorted) through :func:`write_file_atomic`. Compact, because only
    without ``indent`` does :mod:`json` encode in C: the children rewrite their status files every second
    and the pure-Python encoder was most of a steady VRRP child's CPU (``kpd status`` shows them readably)."""
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n"
    write_file_atomic(path, text.encode(), sync=sync)


def write_private_reply(runtime_dir: Path, doc: Any) -> Path:
    """Write ``doc`` as JSON to a fresh, uniquely named 0600 file in ``runtime_dir`` and return its path.

    The name is ``control-reply-<32 random hex digits>.json`` (:data:`REPLY_FILE_PATTERN`), created with
    ``O_EXCL|O_NOFOLLOW``, so each control client gets its own answer; the client unlinks it once read, and
    :func:`remove_stale_replies` collects the ones no client read. The file is complete when this returns
    (no rename needed: its name is given to the client only afterwards).

    :raises TypeError, ValueError: ``doc`` is not JSON-serialisable (no file is left behind).
    :raises OSError: the file cannot be created or written (no file is left behind).
    """
    data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    runtime_dir = Path(runtime_dir)
    path, fd = _create_exclusive(runtime_dir, lambda: f"{REPLY_FILE_PREFIX}{os.urandom(16).hex()}.json")
    try:
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return path


def is_reply_file_name(name: str) -> bool:
    """Whether ``name`` (a bare file name) is one :func:`write_private_reply` makes."""
    return REPLY_FILE_PATTERN.fullmatch(name) is not None


def remove_stale_replies(runtime_dir: Path, older_than: float) -> int:
    """Remove reply files in ``runtime_dir`` last modified more than ``older_than`` seconds ago.

    Only names matching :data:`REPLY_FILE_PATTERN` are touched (a symlink is unlinked, never followed).
    Never raises: what cannot be listed or removed is skipped. Returns how many were removed.
    """
    now = time.time()
    removed = 0
    try:
        entries = list(os.scandir(runtime_dir))
    except OSError:
        return 0
    for entry in entries:
        if not is_reply_file_name(entry.name):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < older_than:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed += 1
    return removed
