"""Runtime dir and files: unsafe directories refused, planted FIFOs/symlinks/dirs never hang or redirect."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import time
from pathlib import Path

import pytest

from keepalived_py.runtime_files import (
    REPLY_FILE_PATTERN,
    ensure_runtime_dir,
    read_runtime_file,
    read_runtime_json,
    remove_stale_replies,
    write_file_atomic,
    write_json_atomic,
    write_private_reply,
)
from promptly import promptly

NOBODY = 65534


def unblock_fifo(path: Path) -> None:
    """Open a FIFO's other end, so a thread stuck opening it (the bug) gets released."""
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    os.close(fd)


# --- ensure_runtime_dir -------------------------------------------------------------------------------------


def test_a_missing_runtime_dir_is_created_0700(tmp_path):
    path = ensure_runtime_dir(tmp_path / "run")
    st = os.lstat(path)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700


def test_an_existing_private_runtime_dir_is_accepted(tmp_path):
    (tmp_path / "run").mkdir(mode=0o700)
    assert ensure_runtime_dir(str(tmp_path / "run")) == tmp_path / "run"


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o1777])
def test_a_group_or_world_writable_runtime_dir_is_refused(tmp_path, mode):
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(mode)
    with pytest.raises(OSError, match=re.escape(str(run)) + ".*writable"):
        ensure_runtime_dir(run)


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_writable_parent_without_the_sticky_bit_is_refused(tmp_path, mode):
    parent = tmp_path / "parent"
    parent.mkdir()
    parent.chmod(mode)
    with pytest.raises(OSError, match=re.escape(str(parent)) + ".*writable"):
        ensure_runtime_dir(parent / "run")
    assert not (parent / "run").exists()  # nothing created in an unsafe place


def test_a_writable_grandparent_is_refused(tmp_path):
    top = tmp_path / "top"
    (top / "mid").mkdir(parents=True)
    top.chmod(0o777)
    with pytest.raises(OSError, match=re.escape(str(top)) + ".*writable"):
        ensure_runtime_dir(top / "mid" / "run")


def test_a_sticky_world_writable_parent_is_accepted(tmp_path):
    parent = tmp_path / "tmp"
    parent.mkdir()
    parent.chmod(0o1777)
    path = ensure_runtime_dir(parent / "run")
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700


def test_a_parent_owned_by_another_user_is_refused(tmp_path):
    parent = tmp_path / "theirs"
    parent.mkdir(mode=0o755)
    os.chown(parent, NOBODY, NOBODY)
    with pytest.raises(OSError, match=re.escape(str(parent)) + ".*owned by uid 65534"):
        ensure_runtime_dir(parent / "run")


def test_a_runtime_dir_owned_by_another_user_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    os.chown(run, NOBODY, NOBODY)
    with pytest.raises(OSError, match="owned by uid 65534"):
        ensure_runtime_dir(run)


def test_a_symlinked_runtime_dir_is_refused(tmp_path):
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "run").symlink_to(tmp_path / "real")
    with pytest.raises(OSError, match="symlink"):
        ensure_runtime_dir(tmp_path / "run")


def test_a_symlinked_parent_is_judged_by_its_target(tmp_path):
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    unsafe.chmod(0o777)
    (tmp_path / "link").symlink_to(unsafe)
    with pytest.raises(OSError, match=re.escape(str(unsafe)) + ".*writable"):
        ensure_runtime_dir(tmp_path / "link" / "run")


def test_a_missing_parent_is_a_clear_error_and_not_created(tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        ensure_runtime_dir(tmp_path / "absent" / "run")
    assert not (tmp_path / "absent").exists()


def test_a_file_at_the_runtime_dir_is_refused(tmp_path):
    (tmp_path / "run").write_text("")
    with pytest.raises(OSError, match="not a directory"):
        ensure_runtime_dir(tmp_path / "run")


# --- read_runtime_file / read_runtime_json ------------------------------------------------------------------


def test_a_regular_file_is_read(tmp_path):
    (tmp_path / "f").write_bytes(b"1234\n")
    assert read_runtime_file(tmp_path / "f", 64) == b"1234\n"
    assert read_runtime_file(str(tmp_path / "f"), 5) == b"1234\n"


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_runtime_file(tmp_path / "absent", 64)


def test_a_planted_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    try:
        with pytest.raises(OSError, match="FIFO") as err:
            promptly(lambda: read_runtime_file(fifo, 64))
    finally:
        unblock_fifo(fifo)
    assert not isinstance(err.value, FileNotFoundError)


def test_a_symlink_is_refused_and_not_followed(tmp_path):
    (tmp_path / "target").write_bytes(b"secret")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(OSError, match="symlink") as err:
        read_runtime_file(tmp_path / "link", 64)
    assert err.value.errno == errno.ELOOP


def test_a_symlink_to_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo", 0o600)
    (tmp_path / "link").symlink_to(tmp_path / "fifo")
    try:
        with pytest.raises(OSError, match="symlink"):
            promptly(lambda: read_runtime_file(tmp_path / "link", 64))
    finally:
        unblock_fifo(tmp_path / "fifo")


def test_a_directory_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError, match="directory"):
        read_runtime_file(tmp_path / "d", 64)


def test_a_device_is_refused(tmp_path):
    with pytest.raises(OSError, match="device"):
        promptly(lambda: read_runtime_file("/dev/zero", 64))


def test_an_oversized_file_is_refused(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 65)
    with pytest.raises(OSError, match="65 bytes") as err:
        read_runtime_file(tmp_path / "big", 64)
    assert err.value.errno == errno.EFBIG


def test_a_file_owned_by_another_user_is_refused(tmp_path):
    (tmp_path / "f").write_bytes(b"1")
    os.chown(tmp_path / "f", NOBODY, NOBODY)
    with pytest.raises(OSError, match="owned by uid 65534"):
        read_runtime_file(tmp_path / "f", 64)


def test_json_is_read_and_bad_json_is_a_value_error(tmp_path):
    (tmp_path / "ok.json").write_text('{"a": [1, 2]}')
    assert read_runtime_json(tmp_path / "ok.json", 1024) == {"a": [1, 2]}
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError):
        read_runtime_json(tmp_path / "bad.json", 1024)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError):
        read_runtime_json(tmp_path / "deep.json", 1024 * 1024)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError):
        read_runtime_json(tmp_path / "bin.json", 1024)


# --- write_file_atomic --------------------------------------------------------------------------------------


def test_write_file_atomic_writes_0600(tmp_path):
    write_file_atomic(tmp_path / "f", b"data")
    st = os.lstat(tmp_path / "f")
    assert (tmp_path / "f").read_bytes() == b"data" and stat.S_IMODE(st.st_mode) == 0o600
    write_json_atomic(tmp_path / "f", {"a": 1})
    assert json.loads((tmp_path / "f").read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # no temporary left behind


@pytest.mark.parametrize("kind", ["fifo", "dir", "symlink"])
def test_planted_temporary_names_neither_hang_nor_redirect(tmp_path, kind):
    target = tmp_path / "state.json"
    (tmp_path / "elsewhere").write_bytes(b"keep")
    # planted at what the old, predictable temporary name was (and at a neighbour's)
    for pid in (os.getpid(), os.getpid() + 1):
        planted = tmp_path / f".state.json.{pid}.tmp"
        if kind == "fifo":
            os.mkfifo(planted, 0o600)
        elif kind == "dir":
            planted.mkdir()
        else:
            planted.symlink_to(tmp_path / "elsewhere")
    try:
        promptly(lambda: write_file_atomic(target, b"new"))
    finally:
        for pid in (os.getpid(), os.getpid() + 1):
            planted = tmp_path / f".state.json.{pid}.tmp"
            if kind == "fifo" and planted.exists():
                unblock_fifo(planted)
    assert target.read_bytes() == b"new"
    assert (tmp_path / "elsewhere").read_bytes() == b"keep"


@pytest.mark.parametrize("kind", ["fifo", "dir", "symlink"])
def test_a_non_regular_target_is_not_replaced(tmp_path, kind):
    target = tmp_path / "state.json"
    if kind == "fifo":
        os.mkfifo(target, 0o600)
    elif kind == "dir":
        target.mkdir()
    else:
        (tmp_path / "elsewhere").write_bytes(b"keep")
        target.symlink_to(tmp_path / "elsewhere")
    try:
        with pytest.raises(OSError, match="refusing to replace"):
            promptly(lambda: write_file_atomic(target, b"new"))
    finally:
        if kind == "fifo":
            unblock_fifo(target)
    mode = os.lstat(target).st_mode
    assert {"fifo": stat.S_ISFIFO, "dir": stat.S_ISDIR, "symlink": stat.S_ISLNK}[kind](mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary left behind


# --- private reply files ------------------------------------------------------------------------------------


def test_private_replies_are_fresh_0600_files(tmp_path):
    first = write_private_reply(tmp_path, {"instances": [1, 2]})
    second = write_private_reply(tmp_path, {"instances": [3]})
    assert first != second and first.parent == tmp_path == second.parent
    for path in (first, second):
        assert REPLY_FILE_PATTERN.fullmatch(path.name)
        st = os.lstat(path)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert json.loads(first.read_text()) == {"instances": [1, 2]}
    assert json.loads(second.read_text()) == {"instances": [3]}


def test_a_reply_that_is_not_json_leaves_no_file(tmp_path):
    with pytest.raises(TypeError):
        write_private_reply(tmp_path, {"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_stale_replies_are_removed_and_fresh_ones_kept(tmp_path):
    old = write_private_reply(tmp_path, {"a": 1})
    past = time.time() - 3600
    os.utime(old, (past, past))
    fresh = write_private_reply(tmp_path, {"a": 2})
    other = tmp_path / "kpd-state.json"
    other.write_text("{}")
    os.utime(other, (past, past))
    assert remove_stale_replies(tmp_path, older_than=60) == 1
    assert not old.exists() and fresh.exists() and other.exists()
    assert remove_stale_replies(tmp_path, older_than=0) == 1
    assert not fresh.exists() and other.exists()


def test_remove_stale_replies_skips_what_it_cannot_remove(tmp_path):
    (tmp_path / f"control-reply-{'0' * 32}.json").mkdir()
    assert remove_stale_replies(tmp_path, older_than=0) == 0
    assert remove_stale_replies(tmp_path / "absent", older_than=0) == 0
