"""Configs with very many items load in time linear in their size (reading was quadratic in items)."""

from __future__ import annotations

import pytest

from keepalived_py.config import load_config

ITEMS = 100_000


@pytest.mark.slow
@pytest.mark.timeout(30)  # about 3 s each; over 45 s when reading was quadratic
def test_100000_vrrp_script_blocks_load(write_conf):
    path = write_conf("".join(f"vrrp_script chk_{i} {{\n    script /bin/true\n}}\n" for i in range(ITEMS)))
    result = load_config(path, host_checks=False)
    assert result.config is not None, [d.format() for d in result.diagnostics[:5]]
    assert len(result.config.vrrp_scripts) == ITEMS


@pytest.mark.slow
@pytest.mark.timeout(30)  # about 3 s each; over 45 s when reading was quadratic
def test_a_list_of_100000_entries_loads(write_conf):
    ips = "".join(f"        10.{i // 65536}.{i // 256 % 256}.{i % 256}/32\n" for i in range(ITEMS))
    path = write_conf(
        "vrrp_instance VI_1 {\n    interface lo\n    virtual_router_id 1\n    priority 100\n"
        "    virtual_ipaddress {\n" + ips + "    }\n}\n"
    )
    result = load_config(path, host_checks=False)
    assert result.config is not None, [d.format() for d in result.diagnostics[:5]]
    (inst,) = result.config.vrrp_instances
    assert len(inst.virtual_ipaddress) == ITEMS
