"""Script keywords read as keepalived reads them: the first word is the whole command line (quoted to pass
arguments), and notify-style scripts take the USER [GROUP] to run as after it (``notify_script_init()``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keepalived_py.config import Severity, load_config
from keepalived_py.config.model import ScriptUser


def _instance(tmp_path: Path, line: str):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n"
        f" {line}\n virtual_ipaddress {{\n  10.0.0.1/24\n }}\n}}\n"
    )
    result = load_config(conf, host_checks=False)
    return result.config.vrrp_instances[0], list(result.diagnostics)


@pytest.mark.parametrize(
    ("line", "argv", "user"),
    [
        (
            'notify_master "/bin/echo hello" nobody nogroup',
            ("/bin/echo", "hello"),
            ScriptUser("nobody", "nogroup"),
        ),
        ('notify_master "/bin/echo hello" nobody', ("/bin/echo", "hello"), ScriptUser("nobody")),
        ('notify_master "/bin/echo hello"', ("/bin/echo", "hello"), None),
        # unquoted: keepalived takes 'hello' for the user (and then refuses the script: no such user)
        ("notify_master /bin/echo hello", ("/bin/echo",), ScriptUser("hello")),
        # single quotes and escapes on the line, then again inside the script string
        ("notify_master '/bin/echo a\\x41' nobody", ("/bin/echo", "aA"), ScriptUser("nobody")),
        ("notify_master \"/bin/echo 'a b'\"", ("/bin/echo", "a b"), None),
        (
            'notify "/usr/local/bin/state.sh" root root',
            ("/usr/local/bin/state.sh",),
            ScriptUser("root", "root"),
        ),
    ],
)
def test_notify_script_command_user_and_group(tmp_path: Path, line: str, argv: tuple, user: object) -> None:
    inst, diags = _instance(tmp_path, line)
    script = getattr(inst, line.split()[0])
    assert script.argv == argv
    assert script.user == user
    assert not [d for d in diags if d.severity is not Severity.NOTE]


def test_words_after_user_and_group_are_ignored_with_a_note(tmp_path: Path) -> None:
    inst, diags = _instance(tmp_path, 'notify_master "/bin/echo" nobody nogroup extra')
    assert inst.notify_master.argv == ("/bin/echo",)
    notes = [d for d in diags if d.severity is Severity.NOTE]
    assert len(notes) == 1 and "keepalived ignores 'extra'" in notes[0].message
    assert (notes[0].location.line, notes[0].location.col) == (5, 43)


def test_vrrp_script_runs_only_the_first_word_and_says_so(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text("vrrp_script chk {\n    script /usr/bin/killall -0 haproxy\n}\n")
    result = load_config(conf, host_checks=False)
    assert result.config.vrrp_scripts[0].script == ("/usr/bin/killall",)
    (note,) = [d for d in result.diagnostics if d.severity is Severity.NOTE]
    assert "keepalived runs only '/usr/bin/killall' and ignores '-0 haproxy'" in note.message
    assert '"/usr/bin/killall -0 haproxy"' in note.message  # the fix, spelled out
    assert (note.location.line, note.location.col) == (2, 29)
    assert result.exit_code == 0  # keepalived accepts it silently: a note, not an error


def test_quoted_vrrp_script_keeps_its_arguments(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text('vrrp_script chk {\n    script "/usr/bin/killall -0 haproxy"\n}\n')
    result = load_config(conf, host_checks=False)
    assert result.config.vrrp_scripts[0].script == ("/usr/bin/killall", "-0", "haproxy")
    assert not list(result.diagnostics)


def test_unquoted_arguments_taken_for_a_user_are_reported_with_the_fix(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "global_defs {\n enable_script_security\n script_user root\n}\n"
        "vrrp_instance VI_1 {\n interface lo\n virtual_router_id 51\n priority 100\n"
        " notify_master /bin/echo no-such-user-kpd\n virtual_ipaddress {\n  10.0.0.1/24\n }\n}\n"
    )
    result = load_config(conf)
    (err,) = [d for d in result.diagnostics if "notify_master" in d.message]
    assert "unknown user no-such-user-kpd" in err.message and "quote the whole command line" in err.message
    assert err.location.line == 9


def test_a_vrrp_script_defined_after_the_instance_is_not_tracked(tmp_path: Path) -> None:
    """keepalived ignores the entry (the name is looked up when the track_script line is read): the model
    that runs keeps only what keepalived tracks."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        'vrrp_script early {\n script "/bin/true"\n}\n'
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n"
        " track_script {\n  late\n  early\n }\n virtual_ipaddress {\n  10.0.0.1/24\n }\n}\n"
        'vrrp_script late {\n script "/bin/true"\n}\n'
    )
    result = load_config(conf, host_checks=False)
    assert [t.name for t in result.config.vrrp_instances[0].track_script] == ["early"]


@pytest.mark.parametrize("line", ["dynamic_interfaces", "dynamic_interfaces allow_if_changes"])
def test_dynamic_interfaces_takes_allow_if_changes(tmp_path: Path, line: str) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(f"global_defs {{\n {line}\n}}\n")
    result = load_config(conf, host_checks=False)
    assert result.config.global_defs.dynamic_interfaces and not list(result.diagnostics)
