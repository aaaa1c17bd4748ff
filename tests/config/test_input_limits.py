"""Bad inputs to the config front end end promptly in a located error: special files, oversized files, YAML
alias bombs, and templates that loop silently or hog memory (rendered under hard limits in a child)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from keepalived_py.config import load_config
from keepalived_py.config.diagnostics import DiagnosticSink, Severity
from keepalived_py.config.template import (
    MAX_TEMPLATE_BYTES,
    MAX_VARS_BYTES,
    RenderLimits,
    load_variables,
    render,
)
from keepalived_py.exitcodes import ExitCode

#: Generous: each case ends in well under a second on an idle machine; a regression hangs or runs away.
DEADLINE = 60
SILENT_LOOP = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}\n"
SMALL = RenderLimits(cpu_seconds=1, memory_bytes=64 * 2**20, wall_seconds=DEADLINE)


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))  # a regression must not eat the machine


def kpd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``kpd ARGS`` in a child process; a hang fails the test (TimeoutExpired) rather than blocking it."""
    return subprocess.run(
        [sys.executable, "-m", "keepalived_py", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        preexec_fn=_cap_memory,
        env={**os.environ, **(env or {})},
    )


def fatal(sink_or_result) -> list:
    return [d for d in sink_or_result.diagnostics if d.severity is Severity.FATAL]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "k.conf.j2"
    path.write_text("global_defs {\n    router_id {{ name }}\n}\n")
    return path


def test_dev_zero_as_vars_file_is_refused(template):
    out = kpd("check-config", "--config", str(template), "--vars", "/dev/zero")
    assert out.returncode == ExitCode.CONFIG_FATAL, out.stderr
    assert "cannot read variables file /dev/zero: it is a character device" in out.stderr
    assert "Traceback" not in out.stderr


def test_fifo_as_vars_file_is_refused_without_blocking(template, fifo):
    out = kpd("check-config", "--config", str(template), "--vars", str(fifo))
    assert out.returncode == ExitCode.CONFIG_FATAL, out.stderr
    assert f"cannot read variables file {fifo}: it is a FIFO" in out.stderr


def test_fifo_as_top_template_is_refused_without_blocking(tmp_path):
    top = tmp_path / "k.conf.j2"
    os.mkfifo(top)
    out = kpd("check-config", "--config", str(top))
    assert out.returncode == ExitCode.CONFIG_FATAL, out.stderr
    assert f"cannot read template {top}: it is a FIFO" in out.stderr
    out = kpd("render", str(top))
    assert out.returncode == ExitCode.CONFIG_FATAL and "it is a FIFO" in out.stderr


def test_fifo_as_top_config_is_refused_without_blocking(fifo):
    out = kpd("check-config", "--config", str(fifo))
    assert out.returncode == ExitCode.CONFIG_FATAL, out.stderr
    assert f"configuration file '{fifo}' is a FIFO" in out.stderr


def test_fifo_as_include_is_refused_at_the_include_line(tmp_path, fifo):
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n}\ninclude fifo\n")
    out = kpd("check-config", "--config", str(conf))
    assert out.returncode == ExitCode.CONFIG_FATAL, out.stderr
    assert f"{conf}:3:9: error: included file '{fifo}' is a FIFO" in out.stderr


def test_fifo_included_by_a_template_is_refused_at_the_include_line(tmp_path, fifo):
    top = tmp_path / "k.conf.j2"
    top.write_text("global_defs {\n}\n{% include 'fifo' %}\n")
    result = load_config(top, host_checks=False)
    (diag,) = fatal(result)
    assert diag.message == f"cannot read template {fifo}: it is a FIFO"
    assert diag.location is not None and (diag.location.file, diag.location.line) == (str(top), 3)


def test_dev_zero_imported_by_a_template_is_refused(tmp_path):
    top = tmp_path / "k.conf.j2"
    (tmp_path / "zero").symlink_to("/dev/zero")
    top.write_text("{% import 'zero' as z %}\n")
    result = load_config(top, host_checks=False)
    (diag,) = fatal(result)
    assert diag.message == f"cannot read template {tmp_path / 'zero'}: it is a character device"
    assert diag.location is not None and diag.location.line == 1


def test_directory_as_vars_file_is_refused(tmp_path):
    sink = DiagnosticSink()
    load_variables([tmp_path], [], sink)
    (diag,) = fatal(sink)
    assert diag.message == f"cannot read variables file {tmp_path}: it is a directory"


def test_oversized_files_are_refused_without_reading_them(tmp_path, template):
    big_vars = tmp_path / "big.yaml"
    with open(big_vars, "wb") as f:
        f.truncate(MAX_VARS_BYTES + 1)  # sparse: refused from its size, never read
    sink = DiagnosticSink()
    load_variables([big_vars], [], sink)
    (diag,) = fatal(sink)
    assert diag.message == f"cannot read variables file {big_vars}: it is larger than {MAX_VARS_BYTES} bytes"
    big_template = tmp_path / "big.j2"
    with open(big_template, "wb") as f:
        f.truncate(MAX_TEMPLATE_BYTES + 1)
    template.write_text("{% include 'big.j2' %}\n")
    result = load_config(template, host_checks=False)
    (diag,) = fatal(result)
    assert f"it is larger than {MAX_TEMPLATE_BYTES} bytes" in diag.message
    assert diag.location is not None and (diag.location.file, diag.location.line) == (str(template), 1)


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_yaml_alias_bomb_is_refused_at_the_value_that_expands_too_far(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    sink = DiagnosticSink()
    load_variables([bomb], [], sink)
    (diag,) = fatal(sink)
    assert "aliases expand this value to more than" in diag.message
    assert diag.location is not None and diag.location.file == str(bomb)
    assert diag.location.line == 7  # g: 9**7 values (the first past a million)


def test_yaml_aliases_within_the_limit_still_work(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text("base: &b {port: 80}\nweb: *b\nlist: [*b, *b]\n")
    sink = DiagnosticSink()
    assert load_variables([ok], [], sink) == {
        "base": {"port": 80},
        "web": {"port": 80},
        "list": [{"port": 80}, {"port": 80}],
    }
    assert not sink.diagnostics


def test_recursive_yaml_alias_is_refused(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("x: &x\n  - 1\n  - *x\n")
    sink = DiagnosticSink()
    load_variables([loop], [], sink)
    (diag,) = fatal(sink)
    assert "recursive alias" in diag.message and diag.location is not None


def test_alias_bomb_in_a_set_override_is_refused():
    sink = DiagnosticSink()
    levels = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    bomb = "[" + ", ".join(levels) + "]"  # 10**8 values in a few hundred bytes
    load_variables([], [f"x={bomb}"], sink)
    (diag,) = fatal(sink)
    assert diag.message.startswith("--set x: aliases expand this value to more than")


def test_silent_nested_loop_is_stopped_by_the_cpu_limit(tmp_path):
    t = tmp_path / "loop.j2"
    t.write_text("global_defs {\n}\n" + SILENT_LOOP)
    sink = DiagnosticSink()
    assert render(t, {}, sink, limits=SMALL) is None
    (diag,) = fatal(sink)
    assert diag.message == "template render exceeded 1 s of CPU time"
    assert diag.location is not None and (diag.location.file, diag.location.line) == (str(t), 3)


def test_silent_nested_loop_is_stopped_by_the_wall_clock_limit(tmp_path):
    t = tmp_path / "loop.j2"
    t.write_text(SILENT_LOOP)
    sink = DiagnosticSink()
    limits = RenderLimits(cpu_seconds=DEADLINE, memory_bytes=64 * 2**20, wall_seconds=0.5)
    assert render(t, {}, sink, limits=limits) is None
    (diag,) = fatal(sink)
    assert diag.message == "template render exceeded 0.5 s"
    assert diag.location is not None and diag.location.file == str(t)


def test_limits_come_from_the_environment_for_check_config(tmp_path):
    t = tmp_path / "loop.conf.j2"
    t.write_text(SILENT_LOOP)
    out = kpd("check-config", "--config", str(t), env={"KPD_TEMPLATE_CPU_SECONDS": "1"})
    assert out.returncode == ExitCode.CONFIG_FATAL, out.stderr
    assert f"{t}:1:1: error: template render exceeded 1 s of CPU time" in out.stderr


@pytest.mark.parametrize(
    "hog",
    [
        "{% set x = 'a' * 10**9 %}{{ x|length }}\n",
        "{% set l = [] %}{% for i in range(100000) %}{% set _ = l.append('x' * 100000 ~ i) %}{% endfor %}\n",
    ],
    ids=["one-big-string", "growing-list"],
)
def test_memory_hog_is_stopped_by_the_memory_limit(tmp_path, hog):
    t = tmp_path / "hog.j2"
    t.write_text("global_defs {\n}\n" + hog)
    sink = DiagnosticSink()
    assert render(t, {}, sink, limits=SMALL) is None
    (diag,) = fatal(sink)
    assert diag.message == "template render exceeded 64 MiB of memory"
    assert diag.location is not None and diag.location.file == str(t)


def test_render_limits_leave_ordinary_templates_alone(template):
    sink = DiagnosticSink()
    rendered = render(template, {"name": "r1"}, sink, limits=SMALL, mark_lines=True)
    assert rendered is not None, sink.format()
    assert rendered.text == "global_defs {\n    router_id r1\n}\n"
    assert rendered.line_numbers[:3] == (1, 2, 3)
