"""Nothing silently different from keepalived: every keyword has a support level, every use of one kpd does
not fully act on is reported at its line (exit 5), the generated docs list them, and a keyword declared
implemented is read by the code that runs (not only by the configuration layer)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from keepalived_py.config import load_config
from keepalived_py.config.diagnostics import Severity
from keepalived_py.config.keywords import SCHEMA
from keepalived_py.config.reference import differences
from keepalived_py.exitcodes import ExitCode

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "keepalived_py"
#: implemented keywords whose value the configuration builder folds into another attribute
FOLDED = {
    ("vrrp_instance", "preempt"): "clears nopreempt when it comes after it (build.py)",
    ("vrrp_instance", "no_accept"): "sets accept to False when it comes after accept (build.py)",
    ("vrrp_track_process", "delay"): "the default of fork_delay and terminate_delay (build.py)",
    ("global_defs", "vrrp_iptables"): "sets nftables and nftables_priority as keepalived does (build.py)",
    **{("virtual_server", flag): "folded into sched_flags (build.py)"
       for flag in ("flag-1", "flag-2", "flag-3", "sh-fallback", "sh-port", "mh-fallback", "mh-port")},
}

CONF = """\
global_defs {
    router_id lb1
    smtp_server 192.0.2.25
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 100
    strict_mode
    virtual_ipaddress {
        192.0.2.100/24
    }
}
virtual_server 192.0.2.100 80 {
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.21 80 {
        BFD_CHECK {
            name bfd1
        }
    }
    real_server 192.0.2.22 80 {
        HTTP_GET {
            url {
                path /
                regex "ok"
                regex_stack 32768 65536
            }
        }
    }
}
"""


def test_every_keyword_has_a_support_level():
    levels = {kw.support for kw in SCHEMA.all_keywords()}
    assert levels == {"implemented", "partial", "not implemented"}
    for kw in SCHEMA.all_keywords():
        assert (kw.support == "partial") == bool(kw.partial) and (kw.partial == "" or kw.supported)


def test_each_use_of_a_partly_implemented_keyword_is_reported_at_its_line_with_exit_5(write_conf):
    result = load_config(write_conf(CONF), host_checks=False)
    assert result.exit_code is ExitCode.CONFIG_ERRORS
    reported = {(d.keyword, d.location.line, d.location.col) for d in result.diagnostics
                if d.severity is Severity.UNSUPPORTED and d.location is not None}
    # smtp_server is implemented (SMTP alerts), strict_mode too (its nftables filter): not reported
    assert reported == {("BFD_CHECK", 19, 9), ("regex_stack", 28, 17)}
    (stack,) = [d for d in result.diagnostics if d.keyword == "regex_stack"]
    assert "only partly implemented" in stack.message and "JIT stack" in stack.message
    assert result.unsupported == ["BFD_CHECK", "regex_stack"]
    # the value is still read and checked: the model holds it
    assert result.config is not None
    assert result.config.virtual_servers[0].real_servers[1].checks[0].url[0].regex_stack


def test_a_configuration_without_such_keywords_stays_valid(write_conf):
    text = CONF.replace("    smtp_server 192.0.2.25\n", "").replace("    strict_mode\n", "")
    text = text.replace("                regex_stack 32768 65536\n", "")
    text = text.replace("BFD_CHECK {\n            name bfd1\n", "TCP_CHECK {\n")
    assert load_config(write_conf(text), host_checks=False).exit_code is ExitCode.OK


@pytest.mark.parametrize(("text", "nopreempt", "accept"), [
    ("nopreempt\n    preempt", False, None),
    ("preempt\n    nopreempt", True, None),
    ("accept\n    no_accept", False, False),
    ("no_accept\n    accept", False, True),
])
def test_the_later_of_two_opposite_flags_wins_as_in_keepalived(write_conf, text, nopreempt, accept):
    conf = ("vrrp_instance VI_1 {\n    interface lo\n    virtual_router_id 51\n    priority 100\n"
            f"    {text}\n    virtual_ipaddress {{\n        192.0.2.100/24\n    }}\n}}\n")
    result = load_config(write_conf(conf), host_checks=False)
    assert result.config is not None
    inst = result.config.vrrp_instances[0]
    assert inst.nopreempt is nopreempt and inst.accept is accept


def test_the_generated_differences_list_every_keyword_kpd_does_not_fully_act_on():
    text = "\n".join(differences())
    for kw in SCHEMA.all_keywords():
        if kw.support == "partial":
            assert f"| `{kw.name}` | {kw.partial} |" in text
        elif kw.support == "not implemented":
            assert f"`{kw.name}`" in text


def test_every_implemented_keyword_is_read_by_the_code_that_runs():
    """A model attribute that only the configuration layer reads is a keyword kpd parses and ignores."""
    runtime = "\n".join(
        p.read_text() for p in PACKAGE.rglob("*.py") if "config" not in p.relative_to(PACKAGE).parts)
    unread = []
    for kw in SCHEMA.all_keywords():
        if kw.support != "implemented" or (kw.section, kw.name) in FOLDED:
            continue
        if re.search(rf"\.{re.escape(kw.attr)}\b|['\"]{re.escape(kw.attr)}['\"]", runtime) is None:
            unread.append(f"{kw.section}.{kw.name} (model attribute {kw.attr})")
    assert not unread, "declared implemented, never read at run time: " + ", ".join(unread)


def test_nb_get_retry_outside_http_get_is_unknown_as_in_keepalived_with_the_fix_named(write_conf):
    conf = ("virtual_server 192.0.2.100 80 {\n    lb_algo wlc\n    lb_kind NAT\n    protocol TCP\n"
            "    real_server 192.0.2.21 80 {\n        TCP_CHECK {\n            nb_get_retry 3\n        }\n"
            "        HTTP_GET {\n            url {\n                path /\n            }\n"
            "            nb_get_retry 4\n        }\n    }\n}\n")
    result = load_config(write_conf(conf), host_checks=False)
    assert result.exit_code is ExitCode.CONFIG_ERRORS  # keepalived -t: "Unknown keyword 'nb_get_retry'", 5
    (unknown,) = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert (unknown.location.line, unknown.location.col) == (7, 13)
    assert "only in HTTP_GET/SSL_GET; here, use 'retry'" in unknown.message
    assert result.config is not None
    tcp, http = result.config.virtual_servers[0].real_servers[0].checks
    assert tcp.retry is None and http.retry == 4  # the TCP check keeps its default, as keepalived's


def test_warmup_and_delay_before_retry_accept_zero_as_keepalived(tmp_path):
    """keepalived reads both with a minimum of 0 (read_timer(..., 0, 0)) in a checker, a real server and a
    virtual server; kpd refused 0 ("out of range") and ignored the value."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text("""
virtual_server 192.0.2.10 80 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    warmup 0
    delay_before_retry 0
    real_server 10.0.0.1 80 {
        warmup 0
        delay_before_retry 0
        TCP_CHECK {
            warmup 0
            delay_before_retry 0
        }
    }
}
""")
    result = load_config(conf, host_checks=False)
    assert int(result.exit_code) == 0, [d.message for d in result.diagnostics]
    check = result.config.virtual_servers[0].real_servers[0].checks[0]
    assert (check.warmup, check.delay_before_retry) == (0.0, 0.0)


def test_a_checker_of_a_link_local_ipv6_address_needs_bind_if(write_conf):
    text = """
virtual_server fe80::1 80 {
    protocol TCP
    lb_algo rr
    lb_kind DR
    real_server fe80::10 80 {
        TCP_CHECK {
        }
        TCP_CHECK {
            bind_if lo
        }
    }
}
"""
    result = load_config(write_conf(text), host_checks=False)
    messages = [d.message for d in result.diagnostics]
    assert any("Checker link local address fe80::10 requires a bind_if" in m for m in messages), messages
    (check,) = result.config.virtual_servers[0].real_servers[0].checks
    assert check.bind_if == "lo"
