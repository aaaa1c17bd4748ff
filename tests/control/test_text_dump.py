"""keepalived's statistics layout from kpd's counters: drop reasons land in keepalived's error classes."""

from __future__ import annotations

from keepalived_py.config.model import Config, VirtualAddress, VrrpInstance
from keepalived_py.control.text_dump import data_text, stats_text


def test_drops_are_counted_in_keepalived_error_classes():
    text = stats_text({
        "VI_1": {
            "counters": {"adverts_sent": 7, "adverts_received": 3, "became_master": 1,
                         "priority_zero_sent": 1},
            "drops": {"ttl": 2, "length": 1, "too_short": 1, "auth_type": 4, "auth_password": 5,
                      "address_list": 1, "address_count": 2, "interval": 6, "type": 9},
        }
    })
    assert "    Received: 3\n    Sent: 7\n  Became master: 1\n" in text
    assert "    Length: 2\n    TTL: 2\n    Invalid Type: 9\n    Advertisement Interval: 6\n" in text
    assert "    Address List: 3\n" in text
    assert "    Invalid Type: 0\n    Type Mismatch: 4\n    Failure: 5\n" in text
    assert text.endswith("  Priority Zero:\n    Received: 0\n    Sent: 1\n")


def test_an_instance_without_a_record_is_dumped_from_its_configuration():
    from ipaddress import ip_interface

    inst = VrrpInstance("VI_9", interface="eth1", virtual_router_id=9, priority=150,
                        virtual_ipaddress=(VirtualAddress(ip_interface("10.0.0.1/24")),))
    text = data_text(Config(vrrp_instances=(inst,)), [])
    assert " VRRP Instance = VI_9\n   VRRP Version = 2\n   State = INIT\n" in text
    assert "   Virtual IP (1):\n     10.0.0.1/24 dev eth1 scope global\n" in text
