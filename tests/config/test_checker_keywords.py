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
