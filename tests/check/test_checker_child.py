"""The Checkers child as the parent runs it, on this host (the real-IPVS behaviour is in tests/ipvs)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from netns_run import fresh_netns

pytestmark = pytest.mark.netns

CONF = """
virtual_server 192.0.2.10 80 {
    delay_loop 1
    lb_algo rr
    protocol TCP
    real_server 10.0.0.1 8080 {
    }
}
"""


def _has_ipvs() -> bool:
    return Path("/proc/net/ip_vs").exists()


def test_a_checkers_only_configuration_runs_a_kpd_checker_child_or_stops_clearly_without_ipvs(tmp_path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    with fresh_netns() as ns:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "keepalived_py", "start",
                                 "--config", str(conf), "--runtime-dir", str(tmp_path / "run"),
                                 "--log-console"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if _has_ipvs():  # a kernel with IPVS: the child runs under its own name
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                names = subprocess.run(["pgrep", "-P", str(proc.pid), "-x", "kpd-checker"],
                                       capture_output=True, text=True).stdout.split()
                if names:
                    break
                time.sleep(0.1)
            proc.terminate()
            proc.wait(30)
            assert names
            return
        # no IPVS in this kernel (the development machines): a clear error, no respawn loop
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 3, out
        assert "IPVS is not available on this host" in out
        assert out.count("started checker child") == 1, out
        assert "cannot run on this host: stopping" in out
