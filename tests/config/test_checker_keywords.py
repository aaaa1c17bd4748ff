"""The checker blocks added for issue 12 as keepalived reads them: SMTP_CHECK host blocks, UDP_CHECK hex
strings, DNS_CHECK type and name, per-kind retry defaults."""

from __future__ import annotations

import pytest

from keepalived_py.check.specs import DnsSpec, SmtpSpec, UdpSpec, build
from keepalived_py.config import load_config


def real_server(write_conf, checks: str):
    text = ("virtual_server 192.0.2.10 25 {\n    protocol TCP\n    lb_algo rr\n    lb_kind NAT\n"
            "    delay_loop 10\n    real_server 10.0.0.1 25 {\n" + checks + "\n    }\n}\n")
    result = load_config(write_conf(text), host_checks=False)
    (vs,) = build(result.config)
    return result, vs.real_servers[0].checkers


def test_each_smtp_host_block_is_a_checker_and_its_timing_keywords_apply_to_all(write_conf):
    result, keys = real_server(write_conf, """
        SMTP_CHECK {
            helo_name mx.example
            host {
                connect_ip 10.0.0.3
                connect_port 2525
                retry 4
            }
            host {
                connect_ip 10.0.0.4
                connect_timeout 2
            }
        }""")
    assert int(result.exit_code) == 0, result.diagnostics
    # no connection option on the SMTP_CHECK itself: its first host replaces its target
    assert [(k.probe.host, k.probe.port) for k in keys] == [("10.0.0.3", 2525), ("10.0.0.4", 25)]
    assert all(isinstance(k.probe, SmtpSpec) and k.probe.helo_name == "mx.example" for k in keys)
    assert [k.timing.retry for k in keys] == [4, 4]  # keepalived: a host's retry sets the parent's
    assert [k.probe.timeout for k in keys] == [5.0, 2.0]


def test_an_smtp_check_with_its_own_connection_is_a_checker_besides_its_hosts(write_conf):
    _, keys = real_server(write_conf, """
        SMTP_CHECK {
            connect_port 587
            host {
                connect_ip 10.0.0.3
            }
        }""")
    # a host has a connection of its own (keepalived zeroes it): the real server's port, not 587
    assert [(k.probe.host, k.probe.port) for k in keys] == [("10.0.0.1", 587), ("10.0.0.3", 25)]
    assert keys[0].probe.helo_name == "smtpchecker.keepalived.org"  # keepalived's default


def test_udp_check_hex_strings_as_keepalived_reads_them(write_conf):
    result, (key,) = real_server(write_conf, """
        UDP_CHECK {
            payload 0a22fe 1 23
            require_reply 2a X3 f
        }""")
    assert int(result.exit_code) == 0, result.diagnostics
    probe = key.probe
    assert isinstance(probe, UdpSpec)
    assert probe.payload == b"\x0a\x22\xfe\x01\x23"
    assert probe.require_reply == (b"\x2a\x03\x0f", b"\xff\x0f\xff")


@pytest.mark.parametrize(("line", "error"), [
    ("payload 0x12", "not a hex string"),
    ("payload 1x", "not a hex string"),  # no wildcard in a payload
])
def test_bad_hex_strings_are_located_errors(write_conf, line, error):
    result, _ = real_server(write_conf, f"        UDP_CHECK {{\n            {line}\n        }}")
    assert int(result.exit_code) == 5
    assert any(error in d.message for d in result.diagnostics), result.diagnostics


def test_dns_check_defaults_and_retry_defaults_by_kind(write_conf):
    _, (dns, udp, tcp) = real_server(write_conf, """
        DNS_CHECK {
            type aaaa
            name www.example.com
        }
        UDP_CHECK {
        }
        TCP_CHECK {
        }""")
    assert isinstance(dns.probe, DnsSpec) and (dns.probe.type, dns.probe.name) == ("AAAA", "www.example.com")
    # keepalived: DNS retry 3, delay_before_retry = delay_loop; the others retry 1, 1 s
    assert (dns.timing.retry, dns.timing.delay_before_retry) == (3, 10.0)
    assert (udp.timing.retry, udp.timing.delay_before_retry) == (1, 1.0)
    assert not udp.timing.retry_when_down and tcp.timing.retry_when_down


@pytest.mark.parametrize("name", [".example.com", "www..example.com", "a" * 64 + ".com"])
def test_bad_dns_names_are_refused(write_conf, name):
    result, (dns,) = real_server(write_conf, f"        DNS_CHECK {{\n            name {name}\n        }}")
    assert int(result.exit_code) == 5
    assert dns.probe.name == ""  # the default stays: the root


def ssl_targets(write_conf, check: str, rs_extra: str = ""):
    text = ("virtual_server 192.0.2.10 443 {\n    virtualhost vs.example\n    lb_kind NAT\n    lb_algo rr\n"
            "    protocol TCP\n    real_server 10.0.0.1 443 {\n" + rs_extra + "\n" + check + "\n    }\n}\n")
    result = load_config(write_conf(text), host_checks=False)
    assert int(result.exit_code) == 0, result.diagnostics
    (vs,) = build(result.config)
    (key,) = vs.real_servers[0].checkers
    return key.probe.urls


def test_ssl_get_sends_sni_only_with_enable_sni(write_conf):
    """keepalived's enable_sni is off unless given: no server name in the handshake by default."""
    (t,) = ssl_targets(write_conf, "SSL_GET {\n url {\n path /\n }\n }")
    assert t.sni is None and t.virtualhost == "vs.example"


def test_sni_names_the_url_checker_or_virtual_server_virtualhost_never_the_real_server_s(write_conf):
    """keepalived's SNI name: url, SSL_GET, then virtual server virtualhost (the real server's is in the
    Host header only)."""
    check = "SSL_GET {\n enable_sni\n url {\n path /a\n }\n url {\n path /b\n virtualhost u.example\n }\n }"
    a, b = ssl_targets(write_conf, check, rs_extra="virtualhost rs.example")
    assert (a.virtualhost, a.sni) == ("rs.example", "vs.example")
    assert (b.virtualhost, b.sni) == ("u.example", "u.example")
    (c,) = ssl_targets(write_conf, "SSL_GET {\n enable_sni\n virtualhost c.example\n url {\n path /\n }\n }",
                       rs_extra="virtualhost rs.example")
    assert (c.virtualhost, c.sni) == ("c.example", "c.example")


@pytest.mark.parametrize("where", ["checker", "url"])
def test_tls_compliant_on_the_ssl_get_or_its_url(write_conf, where):
    flag = "tls_compliant"
    check = (f"SSL_GET {{\n {flag if where == 'checker' else ''}\n url {{\n path /a\n"
             f" {flag if where == 'url' else ''}\n }}\n url {{\n path /b\n }}\n }}")
    a, b = ssl_targets(write_conf, check)
    assert a.tls_compliant and b.tls_compliant == (where == "checker")
    (plain,) = ssl_targets(write_conf, "SSL_GET {\n url {\n path /\n }\n }")
    assert not plain.tls_compliant
