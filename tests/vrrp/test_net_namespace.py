"""``net_namespace`` beside keepalived 2.2.7: the daemon, started in the host's namespace, runs its instances
in the named one (kpd used to ignore the keyword and manage the host's interfaces).

The interface (``vrrpns0``) exists only in the lab node's namespace, so a daemon that stayed in the host's
namespace could not touch anything of the host's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest
from nodes import KEEPALIVED, KPD, open_lab, wait_until

from lab import Lab

pytestmark = pytest.mark.netns

IFNAME = "vrrpns0"


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        the_lab.add_segment(["a"], ifname=IFNAME)
        yield the_lab


def config(namespace: str | None, vip: str) -> str:
    top = f"net_namespace {namespace}\n" if namespace else ""
    return top + (
        "global_defs {\n    router_id ns-test\n    vrrp_version 3\n}\n"
        "vrrp_instance VI_1 {\n    state BACKUP\n"
        f"    interface {IFNAME}\n    virtual_router_id 61\n    priority 100\n    advert_int 0.5\n"
        f"    virtual_ipaddress {{\n        {vip}/24\n    }}\n}}\n"
    )


def start(lab: Lab, kind: str, conf: Path, *extra: str) -> subprocess.Popen[bytes]:
    """The daemon in the test's own (host) namespace, in a session of its own."""
    run = lab.workdir / f"run-{kind}"
    run.mkdir(mode=0o700, exist_ok=True)
    if kind == KPD:
        cmd = [sys.executable, "-m", "keepalived_py", "start", "--config", str(conf)]
        cmd += ["--runtime-dir", str(run), "--log-console", "--log-level", "debug", *extra]
    else:
        cmd = ["keepalived", "-n", "-l", "-D", "--vrrp", "-f", str(conf)]
        cmd += ["-p", str(run / "keepalived.pid"), "-r", str(run / "vrrp.pid"), *extra]
    log = open(lab.workdir / f"{kind}.log", "wb")  # noqa: SIM115 - the child holds it
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def holds(lab: Lab, vip: str) -> bool:
    want = ip_address(vip)
    return any(ip_address(i["local"]) == want for i in lab.addresses("a", IFNAME) if "local" in i)


def host_holds(vip: str) -> bool:
    out = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout
    return any(a.get("local") == vip for link in json.loads(out) for a in link.get("addr_info", ()))


def stop(proc: subprocess.Popen[bytes]) -> int:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_instances_run_in_the_configured_namespace(lab: Lab, kind: str) -> None:
    vip = str(lab.network(1)[100])
    conf = lab.workdir / f"{kind}.conf"
    conf.write_text(config(lab.ns("a"), vip))
    proc = start(lab, kind, conf)
    try:
        wait_until(lambda: holds(lab, vip), 20, what=f"{kind} becomes MASTER inside {lab.ns('a')}")
        assert not host_holds(vip)
        if kind == KPD:
            status = subprocess.run(
                [sys.executable, "-m", "keepalived_py", "status", "--json", "--runtime-dir",
                 str(lab.workdir / "run-kpd")],
                capture_output=True, text=True, check=True,
            ).stdout
            (inst,) = json.loads(status)["instances"]
            assert inst["state"] == "MASTER"
    finally:
        code = stop(proc)
        print((lab.workdir / f"{kind}.log").read_text(errors="replace")[-4000:])
    assert code == 0
    wait_until(lambda: not holds(lab, vip), 10, what="the address is released on stop")


def test_namespace_flag_overrides_the_configuration(lab: Lab) -> None:
    """``kpd start --namespace`` (keepalived -s) wins over the configuration's net_namespace."""
    vip = str(lab.network(1)[101])
    conf = lab.workdir / "override.conf"
    conf.write_text(config("kpd-no-such-namespace", vip))
    proc = start(lab, KPD, conf, "--namespace", lab.ns("a"))
    try:
        wait_until(lambda: holds(lab, vip), 20, what="kpd becomes MASTER inside the --namespace one")
    finally:
        assert stop(proc) == 0


def test_a_missing_namespace_cannot_run(lab: Lab, tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(config("kpd-no-such-namespace", "192.0.2.200"))
    out = subprocess.run(
        [sys.executable, "-m", "keepalived_py", "check-config", "--config", str(conf)],
        capture_output=True, text=True,
    )
    assert out.returncode == 4, out.stdout + out.stderr
    assert f"{conf}:1:1:" in out.stdout + out.stderr
    assert "network namespace kpd-no-such-namespace does not exist (create it with: ip netns add" in (
        out.stdout + out.stderr
    )
