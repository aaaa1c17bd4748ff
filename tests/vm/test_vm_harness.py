"""The QEMU VM harness itself: exit status and output, real IPVS, pyroute2's IPVS client, netns + veth."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "scripts" / "vm" / "run"
VENV_PY = Path(sys.executable)

pytestmark = pytest.mark.vm


def test_exit_status_and_output(run_in_vm, tmp_path):
    r = run_in_vm("echo hello; echo oops >&2; echo \"$HOME $KPD_IN_VM $PROBE\"; pwd; exit 7",
                  cwd=tmp_path, env={"PROBE": "a b'c"})
    assert r.returncode == 7, r
    # only the command's output: no kernel or init messages
    assert r.stdout == f"hello\n/root 1 a b'c\n{tmp_path.resolve()}\n"
    assert r.stderr == "oops\n"
    assert "kpd-vm-init" in r.console


def test_cli_propagates_status_and_shares_cwd(vm_cache, tmp_path):
    """scripts/vm/run: exit status, separate stdout and stderr, the caller's cwd (under /tmp) shared rw."""
    proc = subprocess.run(
        [str(RUN), "-t", "240", "-c", "echo out; echo err >&2; echo written > from-vm.txt; exit 3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc
    assert proc.stdout == "out\n"
    assert proc.stderr == "err\n"
    assert (tmp_path / "from-vm.txt").read_text() == "written\n"


def test_real_ipvs_with_ipvsadm(run_in_vm):
    r = run_in_vm("ipvsadm -A -t 10.0.0.1:80 -s rr && "
                  "ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3 && ipvsadm -Ln")
    assert r.returncode == 0, r
    assert re.search(r"^TCP\s+10\.0\.0\.1:80 rr\s*$", r.stdout, re.M), r.stdout
    assert re.search(r"^\s+->\s+10\.0\.0\.2:80\s+Masq\s+3\s+0\s+0\s*$", r.stdout, re.M), r.stdout


def test_pyroute2_ipvs_from_the_venv(run_in_vm):
    snippet = textwrap.dedent("""
        import json
        from socket import IPPROTO_TCP
        from pyroute2 import IPVS, IPVSDest, IPVSService

        ipvs = IPVS()
        svc = IPVSService(addr="10.0.0.1", port=8080, protocol=IPPROTO_TCP, sched_name="wrr")
        ipvs.service("add", service=svc)
        # fwd_method: 0 masquerade, 2 tunnel, 3 direct routing
        ipvs.dest("add", service=svc, dest=IPVSDest(addr="10.0.0.2", port=8080, fwd_method=0, weight=5))
        ipvs.dest("add", service=svc, dest=IPVSDest(addr="10.0.0.3", port=8080, fwd_method=3, weight=2))
        services = [IPVSService.from_message(m) for m in ipvs.service("dump")]
        # Read the dests' raw attributes: in pyroute2 0.9.7 IPVSDest.from_message() leaves
        # "fwd_method" at its default 3 whatever the kernel says (the true value is only under
        # "IPVS_DEST_ATTR_FWD_METHOD").
        dests = [m.get("IPVS_CMD_ATTR_DEST") for m in ipvs.dest("dump", service=svc)]
        print(json.dumps({
            "services": [[s["addr"], s["port"], s["sched_name"]] for s in services],
            "dests": sorted([d.get("IPVS_DEST_ATTR_ADDR"), d.get("IPVS_DEST_ATTR_PORT"),
                             d.get("IPVS_DEST_ATTR_FWD_METHOD"), d.get("IPVS_DEST_ATTR_WEIGHT")]
                            for d in dests),
        }))
        ipvs.close()
    """)
    r = run_in_vm([str(VENV_PY), "-c", snippet + "\nimport subprocess\n"
                   "subprocess.run(['ipvsadm', '-Ln'], check=True)\n"], cwd=ROOT)
    assert r.returncode == 0, r
    first, _, ipvsadm = r.stdout.partition("\n")
    dump = json.loads(first)
    assert dump["services"] == [["10.0.0.1", 8080, "wrr"]]
    assert dump["dests"] == [["10.0.0.2", 8080, 0, 5], ["10.0.0.3", 8080, 3, 2]]
    assert re.search(r"^TCP\s+10\.0\.0\.1:8080 wrr\s*$", ipvsadm, re.M), ipvsadm
    assert re.search(r"->\s+10\.0\.0\.2:8080\s+Masq\s+5\s", ipvsadm), ipvsadm
    assert re.search(r"->\s+10\.0\.0\.3:8080\s+Route\s+2\s", ipvsadm), ipvsadm


def test_netns_and_veth(run_in_vm):
    script = textwrap.dedent("""
        set -eu
        PING="$(command -v ping || echo busybox ping)"
        ip netns add a
        ip link add v0 type veth peer name v1 netns a
        ip addr add 192.0.2.1/24 dev v0
        ip link set v0 up
        ip -n a addr add 192.0.2.2/24 dev v1
        ip -n a link set v1 up
        ip -n a link set lo up
        $PING -c 1 -W 5 192.0.2.2
        ip netns exec a $PING -c 1 -W 5 192.0.2.1
        ip netns exec a ip -o -4 addr show dev v1
        ip netns list
    """)
    r = run_in_vm(script)
    assert r.returncode == 0, r
    assert "inet 192.0.2.2/24" in r.stdout
    assert re.search(r"^a\b", r.stdout, re.M), r.stdout
    assert r.stdout.count(" 0% packet loss") == 2, r.stdout


def test_checkout_under_tmp_is_mounted_at_its_path(vm_cache, tmp_path):
    """A checkout under /tmp (as CI's) is shared and mounted back over the VM's tmpfs /tmp."""
    copy = tmp_path / "fresh"
    (copy / "scripts").mkdir(parents=True)
    subprocess.run(["cp", "-a", str(ROOT / "scripts" / "vm"), str(copy / "scripts" / "vm")], check=True)
    # reuse this checkout's cache rather than building another
    proc = subprocess.run(
        [str(copy / "scripts" / "vm" / "run"), "-t", "240", "-c",
         'pwd; test -x scripts/vm/run && echo repo-visible; echo x > from-vm.txt'],
        cwd=copy, capture_output=True, text=True, timeout=300,
        env={**os.environ, "KPD_VM_CACHE": str(vm_cache.parent)})
    assert proc.returncode == 0, proc
    assert proc.stdout == f"{copy.resolve()}\nrepo-visible\n"
    assert (copy / "from-vm.txt").read_text() == "x\n"


def test_timeout_kills_the_vm_and_shows_what_the_command_printed(vm_cache, vm_harness):
    with pytest.raises(vm_harness.VMTimeout, match=r"(?s)timed out after 20 s.*stdout.*reached-sleep"):
        vm_harness.run_vm("echo reached-sleep; sleep 600", timeout=20, build=False)


def test_boot_failure_raises(vm_cache, vm_harness, monkeypatch):
    # an init that exits at once: the kernel panics, QEMU exits, no exit status comes back
    monkeypatch.setenv("KPD_VM_APPEND", "rdinit=/bin/false")
    with pytest.raises(vm_harness.VMError, match="did not run the command") as info:
        vm_harness.run_vm(["true"], timeout=120, build=False)
    assert not isinstance(info.value, vm_harness.VMTimeout)
    assert "Kernel panic" in info.value.console


# The console of the demo run that hung in CI (2026-12-06): both vCPUs stuck in the guest kernel.
CI_LOCKUP_CONSOLE = """\
[  190.100000] some earlier line
[  213.542792] watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [ksoftirqd/0:14]
[  213.542800] CPU: 0 PID: 14 Comm: ksoftirqd/0 Not tainted 6.1.0-57-amd64 #1  Debian 6.1.192-3
[  1272.542792] watchdog: BUG: soft lockup - CPU#0 stuck for 1062s! [ksoftirqd/0:14]
[  1272.630820] watchdog: BUG: soft lockup - CPU#1 stuck for 1069s! [kpd-vrrp:901]
[  1281.857678] rcu: INFO: rcu_preempt self-detected stall on CPU
[  1281.858265] rcu: rcu_preempt kthread starved for 286883 jiffies! g45913 f0x0 RCU_GP_WAIT_FQS(5)
"""


def test_kernel_lockup_reports_from_the_first_report_once_a_cpu_is_stuck_long_enough(vm_harness):
    report = vm_harness.kernel_lockup(CI_LOCKUP_CONSOLE)
    assert report is not None
    assert report.splitlines()[0].endswith("CPU#0 stuck for 23s! [ksoftirqd/0:14]")
    assert "Comm: ksoftirqd/0" in report


@pytest.mark.parametrize("console", [
    "",
    "[  213.5] watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [ksoftirqd/0:14]\n",
    "[  13.0] rcu: rcu_preempt kthread starved for 2500 jiffies! g1 f0x0\n",   # 10 s at HZ 250
    "[  13.0] job printed: stuck for 500s without the kernel's words\n",
])
def test_kernel_lockup_ignores_short_stalls_and_other_text(vm_harness, console):
    assert vm_harness.kernel_lockup(console) is None


def test_rcu_starvation_alone_counts_in_jiffies(vm_harness):
    console = "[  400.0] rcu: INFO: rcu_preempt detected stalls\n[  400.1] rcu: rcu_preempt kthread " \
              "starved for 31000 jiffies! g1 f0x0\n"
    assert vm_harness.kernel_lockup(console).startswith("[  400.0] rcu: INFO: rcu_preempt detected")


def test_a_kernel_lockup_ends_the_run_at_once_with_the_report_and_the_output(vm_cache, vm_harness):
    # the guest's console gets what its kernel would print (through /dev/kmsg, at emergency level)
    cmd = ("echo step-3-reached; echo '<0>watchdog: BUG: soft lockup - CPU#1 stuck for 130s! [kpd-vrrp:9]'"
           " > /dev/kmsg; sleep 600")
    t = time.monotonic()
    with pytest.raises(vm_harness.VMLockup) as info:
        vm_harness.run_vm(cmd, timeout=500, build=False)
    assert time.monotonic() - t < 400   # not the timeout
    text = str(info.value)
    assert "the kernel's first report" in text and "CPU#1 stuck for 130s! [kpd-vrrp:9]" in text
    assert "--- command stdout (tail) ---\nstep-3-reached" in text

