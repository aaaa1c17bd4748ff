"""scripts/install-system-deps.sh never takes down a keepalived it did not install.

The script runs in private mount and PID namespaces (so nothing it does can reach the host: a ``pkill`` sees
only this namespace's processes, files written under /usr/sbin land on a tmpfs), with stub ``apt-get`` and
``systemctl`` first on PATH that only log their calls, and /usr/sbin hidden by a tmpfs so that keepalived
(and the other packages probed there) look missing.  A copy of ``sleep`` named ``keepalived`` stands for a
production keepalived.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-system-deps.sh"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare (namespaces)"
)

STUB_APT = """#!/bin/sh
echo "apt-get $*" >> "$STUB_LOG"
if [ "$1" = install ]; then
    if [ -x /usr/sbin/policy-rc.d ]; then
        /usr/sbin/policy-rc.d keepalived start
        echo "policy-rc.d exit $?" >> "$STUB_LOG"
    else
        echo "no policy-rc.d" >> "$STUB_LOG"
    fi
fi
exit 0
"""

STUB_SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$STUB_LOG"
exit 0
"""

INSIDE = r"""
set -u
mount -t tmpfs kpd-test /usr/sbin          # keepalived (and friends) now look missing; writes stay here
"$FAKE_KEEPALIVED" 300 &
victim=$!
for _ in $(seq 100); do [ "$(cat /proc/$victim/comm 2>/dev/null)" = keepalived ] && break; sleep 0.05; done
PATH="$STUBS:/usr/bin:/bin" bash "$SCRIPT" > "$OUT" 2>&1
echo "script exit $?" >> "$STUB_LOG"
if kill -0 "$victim" 2>/dev/null; then state=alive; else state=dead; fi
echo "victim $state" >> "$STUB_LOG"
[ -e /usr/sbin/policy-rc.d ] && echo "policy-rc.d left behind" >> "$STUB_LOG"
kill "$victim" 2>/dev/null
exit 0
"""


def run_in_namespaces(tmp_path: Path, preexisting_policy: bool = False) -> tuple[list[str], str]:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, body in (("apt-get", STUB_APT), ("systemctl", STUB_SYSTEMCTL)):
        (stubs / name).write_text(body)
        (stubs / name).chmod(0o755)
    fake = tmp_path / "keepalived"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", fake)
    log = tmp_path / "calls.log"
    out = tmp_path / "out.txt"
    inside = INSIDE
    if preexisting_policy:
        inside = inside.replace(
            "\"$FAKE_KEEPALIVED\" 300 &",
            "printf '#!/bin/sh\\nexit 0\\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d\n"
            "\"$FAKE_KEEPALIVED\" 300 &",
        )
    env = {
        "PATH": "/usr/bin:/bin",
        "STUBS": str(stubs),
        "STUB_LOG": str(log),
        "FAKE_KEEPALIVED": str(fake),
        "SCRIPT": str(SCRIPT),
        "OUT": str(out),
    }
    subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
         "bash", "-c", inside],
        env=env, check=True, timeout=120,
    )
    return log.read_text().splitlines(), out.read_text()


def test_a_running_keepalived_survives_and_only_the_installed_unit_is_touched(tmp_path: Path) -> None:
    calls, output = run_in_namespaces(tmp_path)
    assert "victim alive" in calls, (calls, output)
    assert "script exit 0" in calls, (calls, output)
    install = next(c for c in calls if c.startswith("apt-get install"))
    assert " keepalived" in install  # it was missing, so this run installs it
    # the just-installed service was kept from starting, and the guard was removed afterwards
    assert "policy-rc.d exit 101" in calls, calls
    assert "policy-rc.d left behind" not in calls
    # systemctl only ever concerns the keepalived unit this run installed: disabled, nothing stopped
    systemctl = [c for c in calls if c.startswith("systemctl")]
    assert systemctl == ["systemctl disable keepalived"], systemctl
    assert "keepalived" in output and "installed by this run" in output


def test_an_existing_policy_rc_d_is_left_alone(tmp_path: Path) -> None:
    calls, output = run_in_namespaces(tmp_path, preexisting_policy=True)
    assert "victim alive" in calls, (calls, output)
    assert "policy-rc.d exit 0" in calls  # the administrator's own policy, untouched
    assert "policy-rc.d left behind" in calls  # and still there afterwards
