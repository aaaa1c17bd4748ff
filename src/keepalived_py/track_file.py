"""The value of a tracked file (``track_file``), read as keepalived reads it, and its ``init_file``.

Shared by the VRRP child (track_file moving an instance's priority) and the Checkers child (FILE_CHECK
moving a real server's weight); what the value does there is each side's business.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile

from keepalived_py.config.model import TrackFile

logger = logging.getLogger(__name__)

#: keepalived reads at most this many bytes of a tracked file.
_FILE_READ_SIZE = 127
#: Values keepalived accepts from a tracked file (anything else is logged and ignored).
_FILE_VALUE_MIN = -(2**31)
_FILE_VALUE_MAX = 2**31

_C_SPACE = frozenset(b" \t\n\v\f\r")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def parse_track_file_value(data: bytes) -> int | None:
    """The number in a tracked file's contents as keepalived reads it, or None when it must be ignored.

    keepalived reads at most 127 bytes and converts them with ``strtol(buf, NULL, 0)``: leading C blanks, an
    optional sign, then ``0x``/``0X`` hex, a leading ``0`` octal, or decimal; conversion stops at the first
    character that is not a digit of the base, and no digits at all give 0.  A value that overflows a C long,
    or lies outside [-2^31, 2^31], is ignored (None): the previous value stays.
    """
    buf = data[:_FILE_READ_SIZE].split(b"\0", 1)[0]
    n = len(buf)
    i = 0
    while i < n and buf[i] in _C_SPACE:
        i += 1
    sign = 1
    if i < n and buf[i] in b"+-":
        sign = -1 if buf[i] == ord("-") else 1
        i += 1
    if buf[i : i + 2] in (b"0x", b"0X") and i + 2 < n and buf[i + 2] in _HEX:
        base, i = 16, i + 2
        digits = frozenset(_HEX)
    elif buf[i : i + 1] == b"0":
        base, digits = 8, frozenset(b"01234567")
    else:
        base, digits = 10, frozenset(b"0123456789")
    j = i
    while j < n and buf[j] in digits:
        j += 1
    if j == i:
        return 0
    value = sign * int(buf[i:j].decode("ascii"), base)
    if not _LONG_MIN <= value <= _LONG_MAX or not _FILE_VALUE_MIN <= value <= _FILE_VALUE_MAX:
        return None
    return value


def read_raw(path: str) -> bytes | None:
    """The first 127 bytes of ``path``; None when it cannot be opened, b"" when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, _FILE_READ_SIZE)
    except OSError:
        return b""
    finally:
        os.close(fd)


def read_track_file(path: str) -> int | None:
    """The value of the tracked file at ``path`` (0 when missing or empty), or None when to be ignored."""
    raw = read_raw(path)
    return parse_track_file_value(raw) if raw else 0


def _umask() -> int:
    """The process umask, read without changing it (racy ``os.umask`` calls are avoided)."""
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open("/proc/self/status", encoding="ascii", errors="replace") as f,
    ):
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def initialise_track_file(track_file: TrackFile, *, reload: bool = False) -> bool:
    """Apply ``init_file``: write the initial value if keepalived would; True when the file was written.

    The value and a newline are written when the file does not exist, or over an existing regular file with
    ``overwrite`` (never on a reload), through a temporary file renamed into place, mode 0666 less the umask.
    """
    if track_file.init_file is None or not track_file.file:
        return False
    value, overwrite = track_file.init_file
    path = track_file.file
    try:
        st: os.stat_result | None = os.stat(path)
    except OSError:
        st = None
    if st is not None:
        if not overwrite:
            return False
        if not stat.S_ISREG(st.st_mode):
            logger.error("cannot initialise track file %s: %s is not a regular file", track_file.name, path)
            return False
        if reload:
            return False
    directory, base = os.path.split(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=base or "track_file", dir=directory or ".")
    except OSError as exc:
        logger.error("unable to initialise track file %s (%s): %s", track_file.name, path, exc.strerror)
        return False
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(f"{value}\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        logger.error("unable to initialise track file %s (%s): %s", track_file.name, path, exc.strerror)
        return False
    return True
