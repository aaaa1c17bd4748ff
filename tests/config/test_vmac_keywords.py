"""``use_vmac [NAME] [MAC]`` and ``vmac_xmit_base`` read as keepalived's ``vrrp_vmac_handler`` reads them,
with its checks; and the VMAC the VRRP child makes of them (:func:`keepalived_py.vrrp.engine.vmac_of`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keepalived_py.config import Severity, load_config
from keepalived_py.config.model import UseVmac
from keepalived_py.vrrp.engine import vmac_of
from keepalived_py.vrrp.net.vmac import Vmac, link_local_of, virtual_mac, vmac_name


def _load(tmp_path: Path, *lines: str, vip: str = "10.0.0.1/24"):
    conf = tmp_path / "keepalived.conf"
    body = "".join(f" {line}\n" for line in lines)
    conf.write_text(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n"
        f"{body} virtual_ipaddress {{\n  {vip}\n }}\n}}\n"
    )
    result = load_config(conf, host_checks=False)
    errors = [(d.location.line, d.message) for d in result.diagnostics if d.severity is Severity.ERROR]
    return result.config, errors


@pytest.mark.parametrize(
    ("line", "expected", "error"),
    [
        ("use_vmac", UseVmac(), None),
        ("use_vmac vmac1", UseVmac("vmac1"), None),
        ("use_vmac vmac1 02:11:22:33:44:55", UseVmac("vmac1", "02:11:22:33:44:55"), None),
        ("use_vmac 02:11:22:33:44:55 vmac1", UseVmac("vmac1", "02:11:22:33:44:55"), None),
        ("use_vmac 02:11:22:33:44", UseVmac(None, "02:11:22:33:44", mac_uses_vrid=True), None),
        ("use_vmac 03:11:22:33:44:55", UseVmac(), "VMAC MAC address is multicast"),
        ("use_vmac 00:00:5e:00:01:07", UseVmac(), "not allowed to be RFC5798 address"),
        ("use_vmac 02:11:zz:33:44:55", UseVmac(), "VMAC invalid MAC address"),
        ("use_vmac a_name_longer_than_15", UseVmac(), "too long or invalid characters"),
        ("use_vmac one two", UseVmac("one"), "VMAC interface name already specified"),
    ],
)
def test_use_vmac_takes_a_name_and_a_mac_in_any_order(tmp_path, line, expected, error):
    config, errors = _load(tmp_path, line)
    assert config.vrrp_instances[0].use_vmac == expected
    if error is None:
        assert errors == []
    else:
        assert len(errors) == 1 and errors[0][0] == 5 and error in errors[0][1]


def test_the_vmac_gets_the_rfc_mac_of_its_family_and_the_vrid_completes_a_five_octet_mac(tmp_path):
    config, _ = _load(tmp_path, "use_vmac")
    gd = config.global_defs
    assert vmac_of(config.vrrp_instances[0], gd) == Vmac(None, "eth0", "00:00:5e:00:01:33", 4)
    config, _ = _load(tmp_path, "use_vmac", vip="2001:db8::1/64")
    assert vmac_of(config.vrrp_instances[0], gd).mac == "00:00:5e:00:02:33"
    config, _ = _load(tmp_path, "use_vmac 02:11:22:33:44")
    assert vmac_of(config.vrrp_instances[0], gd).mac == "02:11:22:33:44:33"
    config, _ = _load(tmp_path)
    assert vmac_of(config.vrrp_instances[0], gd) is None


def test_unicast_needs_vmac_xmit_base_and_keepalived_sets_it(tmp_path):
    unicast = ("unicast_src_ip 10.0.0.2", "unicast_peer {", " 10.0.0.3", "}")
    config, errors = _load(tmp_path, "use_vmac", *unicast)
    assert any("unicast with use_vmac requires vmac_xmit_base - setting" in m for _, m in errors)
    assert vmac_of(config.vrrp_instances[0], config.global_defs).sends_adverts is False


def test_strict_mode_refuses_vmac_xmit_base(tmp_path):
    config, errors = _load(tmp_path, "use_vmac", "vmac_xmit_base", "strict_mode")
    assert any("xmit_base is incompatible with strict mode - resetting" in m for _, m in errors)
    assert vmac_of(config.vrrp_instances[0], config.global_defs).sends_adverts is True


def test_vmac_xmit_base_without_use_vmac_is_reported(tmp_path):
    _, errors = _load(tmp_path, "vmac_xmit_base")
    assert errors == [(5, "(VI_1) vmac_xmit_base is only valid with a vmac; it is ignored")]


def test_names_are_chosen_as_keepalived_chooses_them():
    taken = {"vrrp.51"}
    assert vmac_name(51, 4, lambda n: n not in taken) == "vrrp1.51"
    assert vmac_name(51, 6, lambda n: n not in taken) == "vrrp6.51"
    assert vmac_name(51, 6, lambda n: n not in taken | {"vrrp6.51"}) == "vrrp1.51"
    assert vmac_name(7, 4, lambda n: True, prefix="averyverylongprefix") == "averyverylong.7"
    assert virtual_mac(255, 6) == "00:00:5e:00:02:ff"
    assert str(link_local_of(bytes.fromhex("020000000001"))) == "fe80::ff:fe00:1"


def test_garp_groups_without_a_delay_are_removed_and_an_interface_belongs_to_one(tmp_path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "garp_group {\n interface eth0\n}\n"
        "garp_group {\n garp_interval 0.1\n interfaces {\n  eth1\n  eth2\n }\n}\n"
        "garp_group {\n gna_interval 0.2\n interfaces {\n  eth2\n  eth3\n }\n}\n"
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n garp_extra_if all 30\n"
        " virtual_ipaddress {\n  10.0.0.1/24\n }\n}\n"
    )
    result = load_config(conf, host_checks=False)
    errors = [(d.location.line, d.message) for d in result.diagnostics if d.severity is Severity.ERROR]
    assert errors == [
        (1, "garp group 1 does not have any delay set - removing"),
        (11, "garp_group already specified for eth2 - ignoring"),
    ]
    assert [(g.interface, g.interfaces) for g in result.config.garp_groups] == [
        (None, ("eth1", "eth2")), (None, ("eth3",))
    ]
    extra = result.config.vrrp_instances[0].garp_extra_if
    assert (extra.interval, extra.all) == (30.0, True)
