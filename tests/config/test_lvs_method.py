"""lb_kind / lvs_method with keepalived's tunnel options (svr_forwarding_handler)."""

from __future__ import annotations

import pytest

from keepalived_py.check.specs import build
from keepalived_py.config import load_config
from keepalived_py.config.model import LvsMethod


def conf(vs_kind: str, rs_method: str = "") -> str:
    method = f"        lvs_method {rs_method}\n" if rs_method else ""
    return (f"virtual_server 192.0.2.10 80 {{\n    protocol TCP\n    lb_algo rr\n    lb_kind {vs_kind}\n"
            f"    real_server 10.0.0.1 80 {{\n{method}    }}\n}}\n")


@pytest.mark.parametrize(("text", "want", "error"), [
    ("TUN", LvsMethod("TUN"), None),
    ("TUN type gue port 6080", LvsMethod("TUN", "gue", 6080), None),
    ("TUN type gue port 6080 csum", LvsMethod("TUN", "gue", 6080, "csum"), None),
    ("TUN type gre remcsum", LvsMethod("TUN", ""), "gre tunnels do not support remote checksum"),
    ("TUN type gre csum", LvsMethod("TUN", "gre", 0, "csum"), None),
    ("TUN type gue", LvsMethod("TUN", ""), "gue tunnels require port"),
    ("TUN port 80", LvsMethod("TUN", ""), "gue tunnels require port"),
    ("TUN csum", LvsMethod("TUN", ""), "ipip tunnels do not support checksum"),
    ("TUN type vxlan", LvsMethod("TUN", ""), "unknown tunnel type 'vxlan'"),
    ("TUN type", LvsMethod("TUN", ""), "missing tunnel type"),
    ("TUN bogus", LvsMethod("TUN", ""), "invalid tunnel option 'bogus'"),
])
def test_tunnel_options_as_keepalived_reads_them(write_conf, text, want, error):
    result = load_config(write_conf(conf(text)), host_checks=False)
    vs = result.config.virtual_servers[0]
    assert vs.lb_kind == want  # method and every tunnel setting
    messages = [d.message for d in result.diagnostics]
    if error is None:
        assert int(result.exit_code) == 0, messages
    else:
        assert int(result.exit_code) == 5 and any(error in m for m in messages), messages


def test_a_real_server_takes_the_services_tunnel_unless_it_has_its_own(write_conf):
    result = load_config(write_conf(conf("TUN type gue port 6080")), host_checks=False)
    (vs,) = build(result.config)
    dest = vs.real_servers[0].dest
    assert (dest.tun_type, dest.tun_port, dest.tun_flags) == (1, 6080, 0)
    result = load_config(write_conf(conf("TUN type gue port 6080", "TUN type gre csum")), host_checks=False)
    (vs,) = build(result.config)
    dest = vs.real_servers[0].dest
    assert (dest.tun_type, dest.tun_port, dest.tun_flags) == (2, 0, 1)


def test_a_real_server_whose_tunnel_options_are_refused_keeps_its_services_tunnel(write_conf):
    # keepalived 2.2.7 (seen in the VM): the error leaves the real server with the service's settings
    result = load_config(write_conf(conf("TUN type gue port 6080 csum", "TUN type gre remcsum")),
                         host_checks=False)
    (vs,) = build(result.config)
    dest = vs.real_servers[0].dest
    assert (dest.tun_type, dest.tun_port, dest.tun_flags) == (1, 6080, 1)
