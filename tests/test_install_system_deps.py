"""scripts/install-system-deps.sh never takes down a keepalived or prometheus it did not install.

The script runs in private mount and PID namespaces (so nothing it does can reach the host: a ``pkill`` sees
only this namespace's processes, files written under /usr/sbin land on a tmpfs), with stub ``apt-get`` and
``systemctl`` first on PATH that only log their calls, and /usr/sbin hidden by a tmpfs so that keepalived
(and the other packages probed there) look missing.  promtool (package prometheus) looks missing because
the rest of PATH is a directory of links to /usr/bin and /bin without it.  Copies of ``sleep`` named
``keepalived`` and ``prometheus`` stand for a production keepalived and a monitoring server's prometheus.
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
        echo "policy-rc.d present" >> "$STUB_LOG"
    else
        echo "no policy-rc.d" >> "$STUB_LOG"
    fi
    # as the maintainer scripts do (invoke-rc.d): ask the policy before starting a service
    for pkg in "$@"; do
        case $pkg in
        keepalived | prometheus)
            if [ -x /usr/sbin/policy-rc.d ]; then
                /usr/sbin/policy-rc.d "$pkg" start
                echo "policy-rc.d $pkg exit $?" >> "$STUB_LOG"
            fi ;;
        esac
    done
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
if [ -n "$KEEPALIVED_PRESENT" ]; then
    printf '#!/bin/sh\nexit 0\n' > /usr/sbin/keepalived; chmod 755 /usr/sbin/keepalived
fi
"$FAKE_KEEPALIVED" 300 &
victim_k=$!
"$FAKE_PROMETHEUS" 300 &
victim_p=$!
for _ in $(seq 100); do
    [ "$(cat /proc/$victim_k/comm 2>/dev/null)" = keepalived ] \
        && [ "$(cat /proc/$victim_p/comm 2>/dev/null)" = prometheus ] && break
    sleep 0.05
done
PATH="$STUBS:$SHADOW" bash "$SCRIPT" > "$OUT" 2>&1
echo "script exit $?" >> "$STUB_LOG"
for victim in "keepalived $victim_k" "prometheus $victim_p"; do
    if kill -0 "${victim#* }" 2>/dev/null; then state=alive; else state=dead; fi
    echo "victim ${victim% *} $state" >> "$STUB_LOG"
done
[ -e /usr/sbin/policy-rc.d ] && echo "policy-rc.d left behind" >> "$STUB_LOG"
kill "$victim_k" "$victim_p" 2>/dev/null
exit 0
"""


def shadow_path(tmp_path: Path, without: str) -> Path:
    """A directory of links to every command in /usr/bin and /bin except ``without``: PATH without it."""
    shadow = tmp_path / "shadow-bin"
    shadow.mkdir()
    for directory in (Path("/usr/bin"), Path("/bin")):
        for entry in directory.iterdir():
            link = shadow / entry.name
            if entry.name != without and not link.is_symlink():
                link.symlink_to(entry)
    return shadow


def run_in_namespaces(
    tmp_path: Path,
    preexisting_policy: bool = False,
    keepalived_present: bool = False,
    promtool_present: bool = False,
) -> tuple[list[str], str]:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, body in (("apt-get", STUB_APT), ("systemctl", STUB_SYSTEMCTL)):
        (stubs / name).write_text(body)
        (stubs / name).chmod(0o755)
    if promtool_present:
        (stubs / "promtool").write_text("#!/bin/sh\nexit 0\n")
        (stubs / "promtool").chmod(0o755)
    fakes = {}
    for name in ("keepalived", "prometheus"):
        fakes[name] = tmp_path / name
        shutil.copy2(shutil.which("sleep") or "/bin/sleep", fakes[name])
    log = tmp_path / "calls.log"
    out = tmp_path / "out.txt"
    inside = INSIDE
    if preexisting_policy:
        inside = inside.replace(
            "\"$FAKE_KEEPALIVED\" 300 &",
            "printf '#!/bin/sh\\nexit 0\\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d\n"
            "\"$FAKE_KEEPALIVED\" 300 &",
        )
        assert inside != INSIDE
    env = {
        "PATH": "/usr/bin:/bin",
        "STUBS": str(stubs),
        "STUB_LOG": str(log),
        "FAKE_KEEPALIVED": str(fakes["keepalived"]),
        "FAKE_PROMETHEUS": str(fakes["prometheus"]),
        "KEEPALIVED_PRESENT": "1" if keepalived_present else "",
        "SHADOW": str(shadow_path(tmp_path, without="promtool")),
        "SCRIPT": str(SCRIPT),
        "OUT": str(out),
    }
    subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
         "bash", "-c", inside],
        env=env, check=True, timeout=120,
    )
    return log.read_text().splitlines(), out.read_text()


def test_running_keepalived_and_prometheus_survive_and_only_the_installed_units_are_touched(
    tmp_path: Path,
) -> None:
    calls, output = run_in_namespaces(tmp_path)
    assert "victim keepalived alive" in calls, (calls, output)
    assert "victim prometheus alive" in calls, (calls, output)
    assert "script exit 0" in calls, (calls, output)
    install = next(c for c in calls if c.startswith("apt-get install"))
    # both were missing (promtool comes with prometheus), so this run installs both
    assert " keepalived" in install and " prometheus" in install, install
    # the just-installed services were kept from starting, and the guard was removed afterwards
    assert "policy-rc.d keepalived exit 101" in calls, calls
    assert "policy-rc.d prometheus exit 101" in calls, calls
    assert "policy-rc.d left behind" not in calls
    # systemctl only ever concerns the units this run installed: disabled, nothing stopped
    systemctl = [c for c in calls if c.startswith("systemctl")]
    assert systemctl == ["systemctl disable keepalived", "systemctl disable prometheus"], systemctl
    for service in ("keepalived", "prometheus"):
        assert f"{service} was installed by this run: its service was not started" in output, output


def test_installing_only_prometheus_guards_and_disables_only_prometheus(tmp_path: Path) -> None:
    calls, output = run_in_namespaces(tmp_path, keepalived_present=True)
    assert "victim keepalived alive" in calls and "victim prometheus alive" in calls, (calls, output)
    install = next(c for c in calls if c.startswith("apt-get install"))
    assert " prometheus" in install and " keepalived" not in install, install
    assert "policy-rc.d prometheus exit 101" in calls, calls
    assert "policy-rc.d left behind" not in calls
    systemctl = [c for c in calls if c.startswith("systemctl")]
    assert systemctl == ["systemctl disable prometheus"], systemctl
    assert "prometheus was installed by this run" in output and "keepalived was installed" not in output


def test_without_keepalived_or_prometheus_to_install_no_policy_and_no_unit_is_touched(tmp_path: Path) -> None:
    calls, output = run_in_namespaces(tmp_path, keepalived_present=True, promtool_present=True)
    install = next(c for c in calls if c.startswith("apt-get install"))  # ipvsadm etc. still look missing
    assert " prometheus" not in install and " keepalived" not in install, install
    assert "no policy-rc.d" in calls, calls
    assert [c for c in calls if c.startswith("systemctl")] == []
    assert "installed by this run" not in output
    assert "victim keepalived alive" in calls and "victim prometheus alive" in calls, (calls, output)


def test_an_existing_policy_rc_d_is_left_alone(tmp_path: Path) -> None:
    calls, output = run_in_namespaces(tmp_path, preexisting_policy=True)
    assert "victim keepalived alive" in calls and "victim prometheus alive" in calls, (calls, output)
    # the administrator's own policy, untouched
    assert "policy-rc.d keepalived exit 0" in calls and "policy-rc.d prometheus exit 0" in calls, calls
    assert "policy-rc.d left behind" in calls  # and still there afterwards
    assert "this host has its own /usr/sbin/policy-rc.d" in output, output
