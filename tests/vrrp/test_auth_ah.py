"""auth_type AH is not implemented: such an instance never runs (no silent downgrade to no authentication)."""

from __future__ import annotations

import dataclasses

from keepalived_py.config import load_config
from keepalived_py.config.model import Authentication
from keepalived_py.exitcodes import ExitCode
from keepalived_py.vrrp.engine import VrrpEngine

CONF = """
vrrp_instance VI_AH {
    interface lo
    virtual_router_id 51
    authentication {
        auth_type %s
        auth_pass secret
    }
    virtual_ipaddress {
        192.0.2.1/32
    }
}
vrrp_instance VI_OK {
    interface lo
    virtual_router_id 52
    virtual_ipaddress {
        192.0.2.2/32
    }
}
"""


def test_check_config_refuses_an_ah_instance_and_drops_it(write_conf) -> None:
    result = load_config(write_conf(CONF % "AH"), host_checks=False)
    assert result.exit_code is ExitCode.CONFIG_FATAL
    (diag,) = [d for d in result.diagnostics if "AH" in d.message]
    assert "not implemented" in diag.message and "will not run" in diag.message
    assert (diag.location.line, diag.location.col) == (6, 9)  # the auth_type line
    assert result.config is not None
    assert [i.name for i in result.config.vrrp_instances] == ["VI_OK"]


def test_the_vrrp_engine_never_runs_an_ah_instance(write_conf) -> None:
    # Even handed a configuration that still holds it (validation bypassed), the engine refuses it
    # before opening any socket: it is reported unusable, in FAULT, and never becomes an instance.
    result = load_config(write_conf(CONF % "PASS"), host_checks=False)
    assert result.config is not None
    ah = dataclasses.replace(result.config.vrrp_instances[0], authentication=Authentication("AH", "secret"))
    engine = VrrpEngine(dataclasses.replace(result.config, vrrp_instances=(ah,)))
    assert engine._open_instance(ah) is None
    assert "VI_AH" not in engine.instances
    status = engine.unusable["VI_AH"]
    assert status.state == "FAULT" and "AH" in (status.last_reason or "")
