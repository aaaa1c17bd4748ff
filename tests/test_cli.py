"""The kpd command line: subcommands, exit codes, JSON output, and no traceback whatever the input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from keepalived_py import __version__
from keepalived_py.cli import main

VALID = """
global_defs {
    router_id test
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.10/24
    }
}
"""


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "keepalived_py", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout


def test_check_config_valid_config_exits_zero(write_conf, capsys):
    path = write_conf(VALID)
    assert main(["check-config", "--config", str(path)]) == 0
    assert "configuration is valid" in capsys.readouterr().err


def test_check_config_json_prints_model_and_diagnostics(write_conf, capsys):
    path = write_conf(VALID.replace("priority 100", "priority 256\n    bogus_keyword 1"))
    code = main(["check-config", "--config", str(path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 5 and doc["exit_code"] == 5
    assert doc["config"]["vrrp_instances"][0]["priority"] == 100
    messages = [(d["line"], d["message"]) for d in doc["diagnostics"]]
    assert any(line == 8 and "out of range" in msg for line, msg in messages)
    assert any(line == 9 and "bogus_keyword" in msg for line, msg in messages)


def test_check_config_lists_unsupported_keywords_by_name(write_conf, capsys):
    path = write_conf(VALID + "\nbfd_instance b {\n  neighbor_ip 192.0.2.9\n}\n")
    assert main(["check-config", "--config", str(path)]) == 5
    assert "not (fully) implemented by kpd: bfd_instance" in capsys.readouterr().err


def test_check_config_missing_file_cannot_run(tmp_path, capsys):
    assert main(["check-config", "--config", str(tmp_path / "absent.conf")]) == 4
    err = capsys.readouterr().err
    assert "absent.conf" in err and "Traceback" not in err


def test_render_writes_output_file(tmp_path):
    template = tmp_path / "t.conf.j2"
    template.write_text("global_defs {\n    router_id {{ name }}\n}\n")
    out = tmp_path / "out.conf"
    assert main(["render", str(template), "--set", "name=node1", "-o", str(out)]) == 0
    assert "router_id node1" in out.read_text()


def test_render_undefined_variable_is_located_error(tmp_path, capsys):
    template = tmp_path / "t.conf.j2"
    template.write_text("global_defs {\n    router_id {{ nmae }}\n}\n")
    assert main(["render", str(template)]) == 4
    err = capsys.readouterr().err
    assert f"{template}:2:" in err and "nmae" in err


def test_start_refuses_a_config_that_cannot_run(write_conf):
    path = write_conf("vrrp_instance VI_1 {\n    virtual_router_id 0\n}\n")
    assert main(["start", "--config", str(path), "--runtime-dir", "/nonexistent"]) == 4


def test_default_runtime_dir_follows_net_namespace_and_instance() -> None:
    from keepalived_py.cli import _runtime_dir, build_parser

    args = build_parser().parse_args(["status", "--namespace", "blue", "--instance", "web"])
    assert _runtime_dir(args, args.namespace, args.instance) == "/run/kpd/blue/web"
    args = build_parser().parse_args(["status", "--instance", "web"])
    assert _runtime_dir(args, args.namespace, args.instance) == "/run/kpd/web"
    args = build_parser().parse_args(["status", "--runtime-dir", "/x", "--namespace", "blue"])
    assert _runtime_dir(args, args.namespace, args.instance) == "/x"  # given: used as it is


def test_a_namespace_that_cannot_name_a_runtime_dir_is_a_plain_error(capsys) -> None:
    from keepalived_py.cli import main

    assert main(["status", "--namespace", "a/b"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kpd status: ") and "'a/b' cannot name a runtime directory" in err


def test_a_bad_namespace_flag_is_not_blamed_on_the_configuration(write_conf, capsys) -> None:
    from keepalived_py.cli import main

    path = write_conf(VALID)
    runtime = str(path.parent / "r")
    assert main(["start", "--config", str(path), "--namespace", "../x", "--runtime-dir", runtime]) == 4
    err = capsys.readouterr().err
    assert "--namespace ../x: invalid network namespace name '../x'" in err
    assert f"{path}:1:1" not in err


def test_events_is_a_command_with_its_options_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "events" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["events", "--help"])
    text = capsys.readouterr().out
    assert all(opt in text for opt in ("--follow", "--json", "--since", "--limit", "--runtime-dir"))
    with pytest.raises(SystemExit) as exit_:
        main(["events", "--limit", "-1"])
    assert exit_.value.code == 2


def test_events_without_a_daemon_is_a_plain_failure(tmp_path, capsys):
    assert main(["events", "--runtime-dir", str(tmp_path)]) == 1
    assert main(["events", "--follow", "--runtime-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("kpd events: no kpd is running") == 2
