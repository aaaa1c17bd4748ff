"""The validated configuration handed from the parent to its children on reload.

The parent validates a new configuration, then writes it here (pickled, with a generation number, 0600,
atomically, never through a symlink, in the root-only runtime directory) and signals the children, so
every child runs exactly the configuration the parent accepted, without parsing it again.
"""

from __future__ import annotations

import os
import pickle
import stat
from dataclasses import dataclass
from pathlib import Path

from keepalived_py.config.model import Config
from keepalived_py.runtime_files import write_file_atomic
from keepalived_py.runtime_paths import SNAPSHOT_FILE

MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024


class SnapshotError(ValueError):
    """The snapshot is missing, unreadable, not a private file of ours, oversized or not a snapshot."""


@dataclass(frozen=True)
class Snapshot:
    generation: int
    config: Config


def write_snapshot(runtime_dir: Path, generation: int, config: Config) -> Path:
    path = runtime_dir / SNAPSHOT_FILE
    write_file_atomic(path, pickle.dumps(Snapshot(generation, config), protocol=pickle.HIGHEST_PROTOCOL))
    return path


def read_snapshot(runtime_dir: Path) -> Snapshot:
    """The snapshot; :class:`SnapshotError` (only) whatever is wrong with it."""
    path = runtime_dir / SNAPSHOT_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise SnapshotError(f"{path}: not a regular file")
            if st.st_uid != os.geteuid() or st.st_mode & 0o077:
                raise SnapshotError(f"{path}: not a private file of this user")
            if st.st_size > MAX_SNAPSHOT_BYTES:
                raise SnapshotError(f"{path}: too large")
            data = f.read(MAX_SNAPSHOT_BYTES + 1)
        snap = pickle.loads(data)
    except SnapshotError:
        raise
    except Exception as err:  # OSError, EOFError, UnpicklingError, ImportError, AttributeError, ...
        raise SnapshotError(f"{path}: {err}") from err
    if not isinstance(snap, Snapshot) or not isinstance(snap.config, Config):
        raise SnapshotError(f"{path}: not a configuration snapshot")
    return snap


def load_for_child(
    runtime_dir: Path, path: str, *, vars_files: list[str], config_id: str | None
) -> tuple[Config | None, int, list[str]]:
    """A child's configuration at start: the parent's snapshot, else the file (for a child run by hand).

    Returns (config or None, generation, formatted diagnostics when the file cannot run).
    """
    try:
        snap = read_snapshot(runtime_dir)
        return snap.config, snap.generation, []
    except SnapshotError:
        pass
    from keepalived_py.config.load import load_config

    result = load_config(path, vars_files=vars_files, config_id=config_id, host_checks=False)
    if not result.runnable or result.config is None:
        return None, 0, [d.format() for d in result.diagnostics]
    return result.config, 0, []
