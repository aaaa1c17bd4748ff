"""lvs_sync_daemon: the daemon follows its instance (keepalived's order), and the keyword as keepalived
reads it. The kernel side runs in the IPVS VM (tests/ipvs/test_sync_daemon_vm.py)."""

from __future__ import annotations

import errno

from keepalived_py.config import load_config
from keepalived_py.config.model import LvsSyncDaemon
from keepalived_py.vrrp.lvs_sync import BACKUP, MASTER, LvsSync


class FakeDriver:
    def __init__(self, running: set[int] | None = None) -> None:
        self.calls: list[tuple] = []
        self.running = running if running is not None else set()

    def start_daemon(self, state, interface, syncid, **kw):
        self.calls.append(("start", state, interface, syncid, kw))
        if state in self.running:
            raise OSError(errno.EEXIST, "exists")
        self.running.add(state)

    def stop_daemon(self, state):
        self.calls.append(("stop", state))
        if state not in self.running:
            raise OSError(errno.ESRCH, "no such daemon")
        self.running.discard(state)

    def close(self):
        self.calls.append(("close",))


def test_backup_at_start_master_on_takeover_backup_again_and_stopped_at_the_end():
    driver = FakeDriver()
    sync = LvsSync(LvsSyncDaemon("eth0", "VI_1", 51, port=8849), lambda: driver)
    sync.follow(False)
    assert driver.running == {BACKUP}
    sync.follow(False)  # again BACKUP (FAULT): nothing to do
    sync.follow(True)
    assert driver.running == {MASTER}
    assert [c[:2] for c in driver.calls[-2:]] == [("stop", BACKUP), ("start", MASTER)]  # keepalived's order
    sync.follow(False)
    assert driver.running == {BACKUP}
    sync.stop()
    assert driver.running == set() and driver.calls[-1] == ("close",)
    starts = [c for c in driver.calls if c[0] == "start"]
    assert all(c[2:4] == ("eth0", 51) and c[4]["port"] == 8849 for c in starts)


def test_a_restarted_child_adopts_the_daemon_the_kernel_runs():
    driver = FakeDriver(running={MASTER})
    sync = LvsSync(LvsSyncDaemon("eth0", "VI_1", 51), lambda: driver)
    sync.follow(True)
    assert sync.running == MASTER and driver.running == {MASTER}


def test_no_ipvs_is_logged_and_vrrp_carries_on():
    def no_ipvs():
        raise OSError(errno.ENOENT, "the kernel has no IPVS")

    sync = LvsSync(LvsSyncDaemon("eth0", "VI_1", 51), no_ipvs)
    sync.follow(True)
    assert sync.running is None
    sync.stop()


CONF = """
global_defs {
    lvs_sync_daemon eth0 %s
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100
    }
}
"""


def test_keyword_defaults_the_sync_id_to_the_instances_vrid(write_conf):
    result = load_config(write_conf(CONF % "VI_1 port 8849 ttl 2 maxlen 1400 group 224.0.0.82"),
                         host_checks=False)
    assert int(result.exit_code) == 0, result.diagnostics
    syncd = result.config.global_defs.lvs_sync_daemon
    assert (syncd.interface, syncd.instance, syncd.syncid, syncd.port, syncd.ttl, syncd.maxlen) == (
        "eth0", "VI_1", 51, 8849, 2, 1400)
    assert str(syncd.group) == "224.0.0.82"


def test_an_unknown_instance_clears_the_setting_with_an_error(write_conf):
    result = load_config(write_conf(CONF % "VI_9 id 7"), host_checks=False)
    assert int(result.exit_code) == 5
    assert any("Unable to find vrrp instance VI_9" in d.message for d in result.diagnostics)
    assert result.config.global_defs.lvs_sync_daemon is None


def test_a_non_multicast_group_is_an_error(write_conf):
    result = load_config(write_conf(CONF % "VI_1 id 7 group 10.0.0.1"), host_checks=False)
    assert any("not multicast" in d.message for d in result.diagnostics)
    assert result.config.global_defs.lvs_sync_daemon.syncid == 7
