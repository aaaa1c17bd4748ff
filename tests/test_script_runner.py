"""Behaviour of keepalived_py.script_runner with real processes (nothing mocked)."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from keepalived_py.command_line import split_command_line
from keepalived_py.script_runner import (
    DEFAULT_PATH,
    ScriptResult,
    run_script,
)
from keepalived_py.script_security import script_is_secure, script_needs_protection
from lab import wait_for_async

T = TypeVar("T")

is_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (switches user, chowns files)")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    alive = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def our_zombies() -> list[psutil.Process]:
    return [c for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE]


def wait_gone(pgid: int, within: float = 2.0) -> list[psutil.Process]:
    """Group members still alive after ``within`` seconds (killed processes take a moment to vanish)."""
    deadline = time.monotonic() + within
    while True:
        members = group_members(pgid)
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.02)


# --- exit status, signals, errors ---------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_exit_status_zero_is_ok() -> None:
    result = run(run_script(["true"], timeout=5))
    assert result.ok and result.returncode == 0 and result.signal is None and result.error is None
    assert not result.timed_out and result.pid is not None


@pytest.mark.timeout(10)
@pytest.mark.parametrize("code", [1, 2, 42, 255])
def test_non_zero_exit_status_is_reported_and_not_ok(code: int) -> None:
    result = run(run_script(["sh", "-c", f"exit {code}"], timeout=5))
    assert result.returncode == code and not result.ok and result.error is None


@pytest.mark.timeout(10)
def test_death_by_signal_reports_the_signal_not_an_exit_code() -> None:
    result = run(run_script(["sh", "-c", "kill -USR1 $$"], timeout=5))
    assert result.returncode is None and result.signal == signal.SIGUSR1 and not result.ok
    assert "SIGUSR1" in result.describe()


@pytest.mark.timeout(10)
def test_missing_binary_is_an_error_not_an_exception() -> None:
    result = run(run_script(["/nonexistent/kpd-script"], timeout=5))
    assert result.error == "not found" and not result.ok and result.returncode is None
    bare = run(run_script(["kpd-no-such-command-xyz"], timeout=5))
    assert bare.error == "not found"
    assert "not found" in bare.describe()


@pytest.mark.timeout(10)
def test_non_executable_file_is_permission_denied(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    result = run(run_script([str(script)], timeout=5))
    # root can exec only files with an execute bit set, so this holds for root too
    assert result.error == "permission denied" and not result.ok


@pytest.mark.timeout(10)
def test_script_without_shebang_runs_under_sh(tmp_path: Path) -> None:
    script = tmp_path / "noshebang"
    script.write_text('echo "args:$1:$2"\nexit 7\n')
    script.chmod(0o755)
    result = run(run_script([str(script), "a b", "c"], timeout=5))
    assert result.returncode == 7 and result.output == b"args:a b:c\n"
    assert result.argv == (str(script), "a b", "c")


@pytest.mark.timeout(10)
def test_empty_argv_and_nul_bytes_are_errors() -> None:
    assert run(run_script([], timeout=5)).error == "empty command"
    assert (run(run_script(["echo", "a\0b"], timeout=5)).error or "").startswith("invalid command")


def test_non_positive_timeout_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        run(run_script(["true"], timeout=0))


# --- no shell, environment, stdin, cwd ----------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_arguments_are_not_interpreted_by_a_shell() -> None:
    result = run(run_script(["echo", "$HOME;", "|", "`id`", "*"], timeout=5))
    assert result.output == b"$HOME; | `id` *\n"


@pytest.mark.timeout(10)
def test_environment_is_minimal_plus_what_is_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPD_SECRET_FROM_DAEMON", "leak")
    result = run(run_script(["env"], timeout=5, env={"KPD_EXTRA": "1"}))
    lines = set(result.output.decode().splitlines())
    assert f"PATH={DEFAULT_PATH}" in lines and "KPD_EXTRA=1" in lines
    assert not any(line.startswith("KPD_SECRET_FROM_DAEMON=") for line in lines)


@pytest.mark.timeout(10)
def test_stdin_is_dev_null_and_cwd_is_root() -> None:
    result = run(run_script(["sh", "-c", "cat; pwd"], timeout=5))
    assert result.output == b"/\n"


@pytest.mark.timeout(10)
def test_stdout_and_stderr_share_one_buffer() -> None:
    result = run(run_script(["sh", "-c", "echo out; echo err >&2; echo out2"], timeout=5))
    assert result.output == b"out\nerr\nout2\n"


@pytest.mark.timeout(10)
def test_missing_cwd_is_reported() -> None:
    result = run(run_script(["true"], timeout=5, cwd="/nonexistent-kpd-dir"))
    assert result.error is not None and "/nonexistent-kpd-dir" in result.error


@pytest.mark.timeout(10)
def test_descriptors_are_not_inherited() -> None:
    read_fd, write_fd = os.pipe()
    os.set_inheritable(write_fd, True)
    try:
        result = run(run_script(["sh", "-c", f"test -e /proc/self/fd/{write_fd} && echo leaked"], timeout=5))
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert b"leaked" not in result.output


@pytest.mark.timeout(10)
def test_script_runs_in_its_own_process_group() -> None:
    result = run(run_script(["sh", "-c", "ps -o pgid= -p $$; echo $$"], timeout=5))
    pgid, pid = (int(x) for x in result.output.split())
    assert pgid == pid == result.pid and pgid != os.getpgid(0)


# --- timeouts and process groups ----------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_hanging_script_is_killed_at_the_timeout() -> None:
    start = time.monotonic()
    result = run(run_script(["sleep", "1000"], timeout=0.3, kill_grace=0.5))
    elapsed = time.monotonic() - start
    assert result.timed_out and not result.ok and result.signal == signal.SIGTERM
    assert 0.3 <= elapsed < 2.0
    assert result.pid is not None and not wait_gone(result.pid)
    assert not our_zombies()


@pytest.mark.timeout(10)
def test_timeout_kills_the_whole_group_including_grandchildren() -> None:
    result = run(run_script(["sh", "-c", "sleep 1000 & sh -c 'sleep 1000 & sleep 1000' & sleep 1000"],
                            timeout=0.5, kill_grace=0.5))
    assert result.timed_out and result.pid is not None
    assert not wait_gone(result.pid)
    assert not our_zombies()


@pytest.mark.timeout(10)
def test_script_ignoring_sigterm_gets_sigkill_after_the_grace() -> None:
    start = time.monotonic()
    result = run(run_script(["sh", "-c", "trap '' TERM; (trap '' TERM; sleep 1000) & sleep 1000; sleep 1000"],
                            timeout=0.3, kill_grace=0.4))
    elapsed = time.monotonic() - start
    assert result.timed_out and result.signal == signal.SIGKILL
    assert 0.7 <= elapsed < 3.0
    assert result.pid is not None and not wait_gone(result.pid)


@pytest.mark.timeout(10)
def test_grandchild_holding_stdout_after_leader_exit_does_not_hang() -> None:
    start = time.monotonic()
    result = run(run_script(["sh", "-c", "sleep 1000 & echo done"], timeout=30, drain_grace=0.3))
    elapsed = time.monotonic() - start
    assert elapsed < 3.0  # not the 30 s timeout, let alone 1000 s
    assert result.ok and result.output == b"done\n" and result.orphans_killed
    assert result.pid is not None and not wait_gone(result.pid)


@pytest.mark.timeout(10)
def test_grandchild_ignoring_term_while_holding_stdout_is_killed() -> None:
    start = time.monotonic()
    result = run(run_script(["sh", "-c", "(trap '' TERM; sleep 1000) & echo done"],
                            timeout=30, drain_grace=0.2, kill_grace=0.3))
    assert time.monotonic() - start < 3.0
    assert result.ok and result.orphans_killed
    assert result.pid is not None and not wait_gone(result.pid)


@pytest.mark.timeout(10)
def test_background_child_that_released_the_pipe_is_left_alone() -> None:
    # keepalived does not kill what a finished script started; neither do we if it let go of our pipe.
    result = run(run_script(["sh", "-c", "sleep 5 >/dev/null 2>&1 & echo $!"], timeout=5))
    child = int(result.output)
    try:
        assert result.ok and not result.orphans_killed
        assert psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    finally:
        os.kill(child, signal.SIGKILL)


@pytest.mark.timeout(10)
def test_cancelling_run_script_kills_the_group() -> None:
    async def scenario() -> int:
        task = asyncio.create_task(run_script(["sh", "-c", "sleep 1000 & sleep 1000"], timeout=60))
        leader = None
        while leader is None:
            await asyncio.sleep(0.05)
            leader = next((c.pid for c in psutil.Process().children() if c.name() == "sh"), None)
        await wait_for_async(lambda: len(group_members(leader)) >= 2)  # the grandchildren have started
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return leader

    leader = run(scenario())
    assert not wait_gone(leader, within=15)  # a loaded machine reaps slowly; a group left alive still fails


@pytest.mark.timeout(10)
def test_output_keeps_only_the_tail() -> None:
    result = run(run_script(["sh", "-c", "seq 1 20000"], timeout=5, max_output=100))
    assert len(result.output) == 100 and result.output_truncated
    assert result.output.endswith(b"19999\n20000\n")
    small = run(run_script(["echo", "hi"], timeout=5, max_output=100))
    assert small.output == b"hi\n" and not small.output_truncated


@pytest.mark.timeout(20)
def test_output_flood_stays_bounded_and_finishes() -> None:
    start = time.monotonic()
    result = run(run_script(["head", "-c", "100M", "/dev/zero"], timeout=10, max_output=4096))
    assert result.ok and len(result.output) == 4096 and result.output_truncated
    assert time.monotonic() - start < 10


@pytest.mark.timeout(10)
def test_endless_flood_is_killed_at_the_timeout_with_bounded_output() -> None:
    process = psutil.Process()
    rss_before = process.memory_info().rss
    result = run(run_script(["yes"], timeout=1.0, max_output=8192, kill_grace=0.5))
    assert result.timed_out and len(result.output) <= 8192 and result.output_truncated
    assert set(result.output) <= set(b"y\n")
    assert process.memory_info().rss - rss_before < 64 * 1024 * 1024


# --- credentials --------------------------------------------------------------------------------------------


@is_root
@pytest.mark.timeout(10)
def test_runs_as_the_named_user_with_its_primary_group_only() -> None:
    result = run(run_script(["id"], timeout=5, user="nobody"))
    assert result.ok, result.describe()
    assert run(run_script(["id", "-u"], timeout=5, user="nobody")).output == b"65534\n"
    groups = run(run_script(["id", "-G"], timeout=5, user="nobody")).output.split()
    import pwd

    assert groups == [str(pwd.getpwnam("nobody").pw_gid).encode()]


@is_root
@pytest.mark.timeout(10)
def test_named_group_overrides_the_users_primary_group() -> None:
    result = run(run_script(["id", "-g"], timeout=5, user="nobody", group="users"))
    import grp

    assert result.output == f"{grp.getgrnam('users').gr_gid}\n".encode()


@pytest.mark.timeout(10)
def test_unknown_user_or_group_is_an_error_not_an_exception() -> None:
    result = run(run_script(["true"], timeout=5, user="kpd-no-such-user"))
    assert result.error == "unknown user kpd-no-such-user" and not result.ok
    result = run(run_script(["true"], timeout=5, user="nobody", group="kpd-no-such-group"))
    assert result.error == "unknown group kpd-no-such-group"


# --- describe ------------------------------------------------------------------------------------------


def test_describe_names_command_outcome_and_last_output_line() -> None:
    result = ScriptResult(("/bin/x", "a b"), 3, None, False, b"first\nlast line\n", False, 0.5)
    text = result.describe()
    assert "/bin/x 'a b'" in text and "status 3" in text and "last line" in text
    timed = ScriptResult(("sleep",), None, signal.SIGTERM, True, b"", False, 2.0, pid=10)
    assert "timed out" in timed.describe() and "SIGTERM" in timed.describe()


# --- split_command_line (keepalived's alloc_strvec_quoted_escaped rules) -----------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("/path/x arg 'a b'", ["/path/x", "arg", "a b"]),
        ('/bin/x "a b" c', ["/bin/x", "a b", "c"]),
        ("  a \t b\n", ["a", "b"]),
        ("a'b c'd", ["ab cd"]),  # quotes join parts of one word
        ("x '' y", ["x", "", "y"]),  # an empty quoted word is a word
        ("'it''s'", ["its"]),
        ("\"it's\"", ["it's"]),
        ("'say \"hi\"'", ['say "hi"']),
        ("a\\ b", ["a b"]),  # escaped blank
        ("'a\\'b'", ["a'b"]),  # backslash escapes inside single quotes too
        ('"a\\"b"', ['a"b']),
        ("a\\\\b", ["a\\b"]),
        ("\\n\\t\\r\\a\\b\\f\\v\\E", ["\n\t\r\x07\x08\x0c\x0b\x1b"]),
        ("\\x41\\x4a", ["AJ"]),
        ("\\x414", ["\x14"]),  # \x takes every hex digit: 0x414 & 0xff
        ("\\xg", ["xg"]),  # \x without a hex digit is x
        ("\\101\\60", ["A0"]),  # octal, up to three digits
        ("\\1014", ["A4"]),
        ("\\cA\\c[", ["\x01\x1b"]),  # control characters
        ("\\c", ["c"]),
        ("\\q\\$", ["q$"]),  # anything else stands for itself
        ("a\\000b c", ["a", "c"]),  # a word ends at a NUL byte, as a C string does
        ("a\\x00b", ["a\x0b"]),  # (\x00b is one escape: 0x00b)
        ("\\xc3\\xa9t\\xc3\\xa9", ["été"]),  # escapes produce bytes, decoded as UTF-8
        ("$HOME;|&", ["$HOME;|&"]),  # no shell syntax
    ],
)
def test_split_command_line_follows_keepalived_rules(text: str, words: list[str]) -> None:
    assert split_command_line(text) == words


def test_split_invalid_utf8_escape_round_trips_as_bytes() -> None:
    (word,) = split_command_line("\\xff")
    assert os.fsencode(word) == b"\xff"


@pytest.mark.parametrize("text", ["'unterminated", '"open', "a 'b c", "ends with\\", "", "   \t"])
def test_split_command_line_rejects_what_keepalived_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        split_command_line(text)


# --- script security (keepalived's check_security) --------------------------------------------------


def make_script(path: Path, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    os.chown(path, uid, gid)
    path.chmod(mode)
    return path


@pytest.fixture
def secure_dir(tmp_path: Path) -> Path:
    """A root-owned 0755 directory (tmp_path lies under root-owned dirs and the sticky /tmp)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    directory = tmp_path / "scripts"
    directory.mkdir()
    os.chown(directory, 0, 0)
    directory.chmod(0o755)
    return directory


def test_root_owned_0755_script_is_secure(secure_dir: Path) -> None:
    assert script_is_secure(make_script(secure_dir / "ok")) is None


def test_system_binary_is_secure() -> None:
    assert script_is_secure("/bin/sh") is None  # via the /bin -> /usr/bin link on merged-/usr systems


def test_group_writable_script_with_non_root_group_is_insecure(secure_dir: Path) -> None:
    script = make_script(secure_dir / "gw", 0o775, gid=100)
    reason = script_is_secure(script)
    assert reason is not None and str(script) in reason and "group" in reason


def test_group_writable_by_root_group_is_allowed(secure_dir: Path) -> None:
    # keepalived only objects to group write when the group is not root
    assert script_is_secure(make_script(secure_dir / "rootgw", 0o775, gid=0)) is None


def test_world_writable_script_is_insecure(secure_dir: Path) -> None:
    script = make_script(secure_dir / "ww", 0o757)
    reason = script_is_secure(script)
    assert reason is not None and str(script) in reason


def test_script_owned_by_non_root_is_insecure(secure_dir: Path) -> None:
    script = make_script(secure_dir / "nobodys", 0o755, uid=65534)
    reason = script_is_secure(script)
    assert reason is not None and "65534" in reason and str(script) in reason


def test_script_in_world_writable_directory_is_insecure(secure_dir: Path) -> None:
    loose = secure_dir / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    reason = script_is_secure(make_script(loose / "s"))
    assert reason is not None and reason.startswith(f"{loose}:")


def test_script_in_sticky_world_writable_directory_is_allowed(secure_dir: Path) -> None:
    sticky = secure_dir / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    assert script_is_secure(make_script(sticky / "s")) is None


def test_script_in_directory_owned_by_non_root_is_insecure(secure_dir: Path) -> None:
    theirs = secure_dir / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    reason = script_is_secure(make_script(theirs / "s"))
    assert reason is not None and reason.startswith(f"{theirs}:")


def test_symlink_is_resolved_and_the_target_path_checked(secure_dir: Path) -> None:
    loose = secure_dir / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    target = make_script(loose / "real")
    link = secure_dir / "link"
    link.symlink_to(target)
    reason = script_is_secure(link)
    assert reason is not None and reason.startswith(f"{loose}:")


def test_missing_script_is_reported(secure_dir: Path) -> None:
    reason = script_is_secure(secure_dir / "absent")
    assert reason is not None and "not found" in reason


def test_needs_protection_only_when_running_with_root_privileges(secure_dir: Path) -> None:
    plain = make_script(secure_dir / "plain")
    assert script_needs_protection(plain, 0, 0)
    assert script_needs_protection(plain, 65534, 0)
    assert not script_needs_protection(plain, 65534, 65534)
    setuid = make_script(secure_dir / "setuid", 0o4755)
    assert stat.S_IMODE(setuid.stat().st_mode) & stat.S_ISUID
    assert script_needs_protection(setuid, 65534, 65534)


# --- script_run events --------------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, kind: str, **fields: Any) -> None:
        self.events.append({"kind": kind, **fields})


@pytest.mark.timeout(20)
def test_every_run_ends_in_a_script_run_event_saying_how_it_ended() -> None:
    sink = Sink()
    run(run_script(["sh", "-c", "exit 3"], timeout=5, purpose="vrrp_script", events=sink))
    run(run_script(["sh", "-c", "kill -TERM $$"], timeout=5, events=sink))
    run(run_script(["sleep", "10"], timeout=0.2, kill_grace=0.2, purpose="misc_check", events=sink))
    run(run_script(["/nonexistent/kpd-script", "x" * 300], timeout=5, purpose="notify", events=sink))
    exited, killed, timed_out, missing = sink.events
    assert exited == {"kind": "script_run", "script": "sh", "argv": "sh -c 'exit 3'",
                      "purpose": "vrrp_script", "ok": False, "exit_status": 3, "signal": None,
                      "timed_out": False, "duration": exited["duration"], "error": None}
    assert 0 <= exited["duration"] < 5
    assert killed["purpose"] == "script" and killed["signal"] == "SIGTERM" and killed["exit_status"] is None
    assert timed_out["timed_out"] is True and timed_out["purpose"] == "misc_check" and not timed_out["ok"]
    assert timed_out["duration"] >= 0.2
    assert missing["error"] == "not found" and missing["exit_status"] is None
    assert len(missing["argv"]) == 200 and missing["argv"].endswith("...")


@pytest.mark.timeout(10)
def test_runs_naming_no_sink_report_to_the_default_one_and_misc_check_says_so(monkeypatch) -> None:
    from keepalived_py import script_runner
    from keepalived_py.check.misc_probe import probe_misc
    from keepalived_py.events import EventBuffer

    assert script_runner.default_events is None  # nothing is recorded outside a child
    buf = EventBuffer()
    monkeypatch.setattr(script_runner, "default_events", buf.emit)
    result = run(probe_misc(("sh", "-c", "exit 1"), timeout=5))
    assert not result.ok
    (event,) = buf.pending()
    assert event["kind"] == "script_run" and event["purpose"] == "misc_check" and event["exit_status"] == 1
    own = Sink()
    run(run_script(["true"], timeout=5, events=own))  # a sink of its own wins
    assert len(own.events) == 1 and len(buf) == 1


@pytest.mark.timeout(10)
def test_a_failing_sink_never_breaks_the_run() -> None:
    def broken(kind: str, **fields: Any) -> None:
        raise RuntimeError("sink bug")

    assert run(run_script(["true"], timeout=5, events=broken)).ok
