"""Configs rendered from Jinja2 templates: strict variables, sandbox, line mapping, the shipped template."""

from __future__ import annotations

from pathlib import Path

import pytest

from keepalived_py.config import load_config
from keepalived_py.config.diagnostics import DiagnosticSink, Severity
from keepalived_py.config.template import load_variables, render
from netns_run import add_interface, fresh_netns, run_kpd

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "etc" / "templates" / "director-pair.conf.j2"
VARS = ROOT / "etc" / "templates" / "vars"


def test_misspelt_variable_is_an_error_at_the_template_line(tmp_path):
    t = tmp_path / "k.conf.j2"
    t.write_text("global_defs {\n    router_id {{ node.name }}\n}\nvrrp_instance {{ insatnce }} {\n}\n")
    result = load_config(t, overrides=["node.name=a"], host_checks=False)
    assert result.config is None
    (diag,) = [d for d in result.diagnostics if d.severity is Severity.FATAL]
    assert "insatnce" in diag.message
    assert diag.location is not None and (diag.location.file, diag.location.line) == (str(t), 4)


def test_template_syntax_error_is_located(tmp_path):
    t = tmp_path / "k.conf.j2"
    t.write_text("global_defs {\n{% if %}\n}\n")
    result = load_config(t, host_checks=False)
    (diag,) = result.diagnostics
    assert diag.severity is Severity.FATAL and "syntax" in diag.message
    assert diag.location is not None and diag.location.line == 2


def test_parse_errors_in_rendered_output_point_at_the_template_line(tmp_path):
    t = tmp_path / "k.conf.j2"
    t.write_text(
        "{# comment line 1 #}\n"
        "vrrp_instance VI_1 {\n"
        "    interface lo\n"
        "    virtual_router_id 5\n"
        "{% for p in prios %}\n"
        "    priority {{ p }}\n"
        "{% endfor %}\n"
        "}\n"
    )
    result = load_config(t, overrides=["prios=[300]"], host_checks=False)
    (diag,) = [d for d in result.diagnostics if "out of range" in d.message]
    assert diag.location is not None
    assert (diag.location.file, diag.location.line) == (str(t), 6)
    assert diag.location.text.strip() == "priority 300"


def test_sandbox_refuses_python_internals(tmp_path):
    t = tmp_path / "k.conf.j2"
    t.write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    result = load_config(t, host_checks=False)
    assert result.config is None
    assert any(d.severity is Severity.FATAL for d in result.diagnostics)


def test_variables_come_from_yaml_json_and_set_overrides(tmp_path):
    y = tmp_path / "v.yaml"
    y.write_text("a: 1\nnode:\n  name: x\n")
    j = tmp_path / "v.json"
    j.write_text('{"b": [1, 2]}')
    sink = DiagnosticSink()
    variables = load_variables([y, j], ["node.name=y", "c=true"], sink)
    assert not sink.diagnostics
    assert variables == {"a": 1, "b": [1, 2], "node": {"name": "y"}, "c": True}


def test_bad_yaml_is_located(tmp_path):
    y = tmp_path / "v.yaml"
    y.write_text("a: 1\nb: [1, 2\n")
    sink = DiagnosticSink()
    load_variables([y], [], sink)
    (diag,) = sink.diagnostics
    assert diag.location is not None and diag.location.file == str(y) and diag.location.line >= 2


@pytest.mark.parametrize("node", ["a", "b"])
def test_director_pair_template_renders_each_node(node):
    sink = DiagnosticSink()
    variables = load_variables([VARS / f"director-{node}.yaml"], [], sink)
    rendered = render(TEMPLATE, variables, sink)
    assert rendered is not None, sink.format()
    result = load_config(TEMPLATE, vars_files=[VARS / f"director-{node}.yaml"], host_checks=False)
    assert result.exit_code == 0, "\n".join(d.format() for d in result.diagnostics)
    cfg = result.config
    assert cfg is not None
    (inst,) = cfg.vrrp_instances
    assert inst.priority == (150 if node == "a" else 100)
    assert [str(p.address) for p in inst.unicast_peer] == ["192.0.2.12" if node == "a" else "192.0.2.11"]
    (vs,) = cfg.virtual_servers
    assert len(vs.real_servers) == 3 and all(rs.checks for rs in vs.real_servers)


@pytest.mark.netns
@pytest.mark.parametrize("node", ["a", "b"])
def test_director_pair_template_passes_check_config_on_a_host_with_its_interface(node):
    """On a host that has the template's interface (eth0 in a fresh namespace), kpd check-config exits 0."""
    with fresh_netns() as ns:
        add_interface(ns, "eth0")
        out = run_kpd(
            ns, "check-config", "--config", str(TEMPLATE), "--vars", str(VARS / f"director-{node}.yaml")
        )
        assert out.returncode == 0, out.stderr
