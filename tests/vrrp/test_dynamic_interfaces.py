"""``dynamic_interfaces`` beside keepalived 2.2.7: an instance whose interface does not exist at start starts
when it appears, goes FAULT when it is deleted and comes back when it is created again, without a reload.

One node runs the daemon (kpd or keepalived) alone on ``dyn0``, a veth created and deleted by the test; the
instance's ``notify`` script records every transition, and the virtual address is watched on ``dyn0``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from ipaddress import ip_address

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, open_lab, wait_until
from test_sync_group_interop import recorder

from lab import Lab

pytestmark = pytest.mark.netns

IFNAME = "dyn0"
ADDRESS = "198.51.100.1/24"
VIP = "198.51.100.100"
ADV = 0.5


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        yield the_lab


def create(lab: Lab) -> None:
    lab.run("a", "ip", "link", "add", IFNAME, "type", "veth", "peer", "name", f"{IFNAME}p")
    lab.run("a", "ip", "addr", "add", ADDRESS, "dev", IFNAME)
    lab.run("a", "ip", "link", "set", f"{IFNAME}p", "up")
    lab.run("a", "ip", "link", "set", IFNAME, "up")


def delete(lab: Lab) -> None:
    lab.run("a", "ip", "link", "del", IFNAME)


def holds(lab: Lab) -> bool:
    try:
        infos = lab.addresses("a", IFNAME)
    except Exception:
        return False
    return any(ip_address(i["local"]) == ip_address(VIP) for i in infos if "local" in i)


def states(log_text: str) -> list[str]:
    return [line.split()[2] for line in log_text.splitlines() if line.startswith("INSTANCE VI_1 ")]


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_instance_follows_its_interface_appearing_and_going(lab: Lab, kind: str) -> None:
    script, log = recorder(lab, "a")
    conf = Vrrp(
        priority=100,
        advert_int=ADV,
        vips=(f"{VIP}/24",),
        global_extra=("enable_script_security", "script_user root", "dynamic_interfaces"),
        instance_extra=(f'notify "{script}"',),
    )
    a = Daemon(lab, "a", conf, kind=kind)
    a.write_config()
    a.config_path.write_text(a.config_path.read_text().replace("interface eth0", f"interface {IFNAME}"))
    a.write_config = lambda: a.config_path  # type: ignore[method-assign]  # keep the edited file
    a.start()
    wait_until(lambda: states(log.read_text()) == ["FAULT"], 10, what="FAULT while the interface is missing")
    time.sleep(1)
    assert not holds(lab) and a.running

    create(lab)
    wait_until(lambda: holds(lab), 15, what="the instance starts on the new interface and becomes MASTER")
    wait_until(lambda: states(log.read_text())[-1:] == ["MASTER"], 5, what="MASTER notified")

    delete(lab)
    wait_until(lambda: states(log.read_text())[-1:] == ["FAULT"], 10, what="FAULT once the interface is gone")
    assert a.running

    create(lab)
    wait_until(lambda: holds(lab), 15, what="MASTER again on the interface created again")
    wait_until(lambda: states(log.read_text())[-1:] == ["MASTER"], 5, what="MASTER notified again")
    # keepalived's sequence: FAULT while the interface is missing, then BACKUP and MASTER; FAULT when it
    # goes; BACKUP and MASTER when it is back
    assert states(log.read_text()) == ["FAULT", "BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"]


def holds_on_vmac(lab: Lab) -> bool:
    try:
        infos = lab.addresses("a", "vrrp.51")
    except Exception:
        return False
    return any(ip_address(i["local"]) == ip_address(VIP) for i in infos if "local" in i)


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_a_vmac_comes_back_with_its_interface(lab: Lab, kind: str) -> None:
    """The kernel deletes a macvlan with its interface; with dynamic_interfaces the VMAC is made again when
    the interface is back, and the instance is MASTER on it again."""
    script, log = recorder(lab, "a")
    create(lab)
    conf = Vrrp(
        priority=100,
        advert_int=ADV,
        vips=(f"{VIP}/24",),
        global_extra=("enable_script_security", "script_user root", "dynamic_interfaces"),
        instance_extra=(f'notify "{script}"', "use_vmac"),
    )
    a = Daemon(lab, "a", conf, kind=kind)
    a.write_config()
    a.config_path.write_text(a.config_path.read_text().replace("interface eth0", f"interface {IFNAME}"))
    a.write_config = lambda: a.config_path  # type: ignore[method-assign]  # keep the edited file
    a.start()
    wait_until(lambda: holds_on_vmac(lab), 15, what="MASTER on the VMAC")
    delete(lab)
    wait_until(lambda: states(log.read_text())[-1:] == ["FAULT"], 10, what="FAULT once the interface is gone")
    create(lab)
    wait_until(lambda: holds_on_vmac(lab), 15, what="MASTER again on a new VMAC")
    wait_until(lambda: states(log.read_text())[-1:] == ["MASTER"], 5, what="MASTER notified again")
    assert a.stop() == 0
