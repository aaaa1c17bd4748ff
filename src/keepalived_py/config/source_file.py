"""Reading a file of the configuration front end: a regular file of bounded size, never an endless read.

Every file the front end reads (the configuration, its includes, templates and what they include or
import, variables files) goes through :func:`read_source_file`: a FIFO, a device such as ``/dev/zero``, a
directory or a socket is refused before anything is read (opened with ``O_NONBLOCK``, so opening a FIFO
never waits for a writer), and a file larger than the limit is refused without reading more than the
limit plus one byte.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SourceFileError(Exception):
    """Why a file cannot be read; ``str()`` completes "cannot read FILE: ...".

    ``missing``: the file does not exist; ``not_regular``: it is a directory, FIFO, device or socket;
    ``too_large``: it holds more than the limit.
    """

    def __init__(
        self, reason: str, *, missing: bool = False, not_regular: bool = False, too_large: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing
        self.not_regular = not_regular
        self.too_large = too_large


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message: "a directory", "a FIFO", ..."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _os_reason(exc: OSError | ValueError) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def read_source_file(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file *path*, at most *limit* of them; :class:`SourceFileError` otherwise."""
    try:
        # stat first: opening some devices has effects of its own (a watchdog device arms the watchdog)
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise SourceFileError(_os_reason(exc), missing=True) from None
    except (OSError, ValueError) as exc:
        raise SourceFileError(_os_reason(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise SourceFileError(f"it is {file_kind(st.st_mode)}", not_regular=True)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError) as exc:
        raise SourceFileError(_os_reason(exc), missing=isinstance(exc, FileNotFoundError)) from None
    try:
        st = os.fstat(fd)  # what was opened, which may not be what was stat()ed
        if not stat.S_ISREG(st.st_mode):
            raise SourceFileError(f"it is {file_kind(st.st_mode)}", not_regular=True)
        if st.st_size > limit:
            raise SourceFileError(f"it is larger than {limit} bytes", too_large=True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise SourceFileError(_os_reason(exc)) from None
    finally:
        os.close(fd)
    if size > limit:  # it grew after fstat()
        raise SourceFileError(f"it is larger than {limit} bytes", too_large=True)
    return b"".join(chunks)
