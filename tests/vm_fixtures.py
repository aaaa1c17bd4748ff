"""Fixtures for tests in the kpd QEMU VM (stock Debian kernel, real IPVS); loaded by tests/conftest.py.

`run_in_vm(cmd, timeout=..., **kw)` boots the VM, runs cmd (a shell string for /bin/sh -c, or an argv
list) as root and returns a CompletedProcess-like result (returncode, stdout, stderr, console, seconds,
files). The first use builds the cache in .cache/vm/ (scripts/vm/build.sh) and boots a trivial command:
when either fails the tests FAIL, they are never skipped. Keyword arguments go to kpdvm.run_vm (cwd, env,
pass_env, shares, mem, smp, keep).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("kpdvm", ROOT / "scripts" / "vm" / "kpdvm.py")
assert _spec is not None and _spec.loader is not None
kpdvm = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("kpdvm", kpdvm)
_spec.loader.exec_module(kpdvm)

# Below pytest-timeout's 300 s (setup.cfg), so that a hung VM fails with its console tail.
DEFAULT_VM_TIMEOUT = 240.0
_boot_seconds: list[float] = []


@pytest.fixture(scope="session")
def vm_harness() -> Any:
    """The scripts/vm/kpdvm.py module (run_vm, VMError, VMTimeout, ensure_cache, ...)."""
    return kpdvm


@pytest.fixture(scope="session")
def vm_cache() -> Path:
    """Builds or refreshes .cache/vm (kernel + initramfs) and checks that the VM boots; fails otherwise."""
    try:
        current = kpdvm.ensure_cache(quiet=True)
        smoke = kpdvm.run_vm(["true"], timeout=DEFAULT_VM_TIMEOUT, cwd=ROOT)
    except kpdvm.VMError as e:
        pytest.fail(f"the kpd test VM cannot boot:\n{e}", pytrace=False)
    if smoke.returncode != 0:
        pytest.fail(f"`true` exited {smoke.returncode} in the VM:\n{smoke.stderr}\n{smoke.console}",
                    pytrace=False)
    _boot_seconds.append(smoke.seconds)
    return current


#: guest kernel lockups met (each run again once), for the terminal summary
_lockups: list[str] = []


@pytest.fixture(scope="session")
def run_in_vm(vm_cache: Path) -> Callable[..., Any]:
    """run_in_vm(cmd, timeout=240, **kw) -> VMResult; a VM failure or timeout fails the test.

    A run whose guest kernel locked up (kpdvm.VMLockup: a vCPU stuck in the kernel for minutes, seen once
    in CI with the stock kernel under software emulation) is run once more, and the lockup's report goes
    into the terminal summary; a second lockup fails the test."""

    def run(cmd: str | list[str], timeout: float = DEFAULT_VM_TIMEOUT, **kw: Any) -> Any:
        for attempt in (1, 2):
            try:
                return kpdvm.run_vm(cmd, timeout=timeout, build=False, **kw)
            except kpdvm.VMTimeout as e:
                pytest.fail(f"VM timed out:\n{e}", pytrace=False)
            except kpdvm.VMLockup as e:
                if attempt == 2:
                    pytest.fail(f"the VM's kernel locked up twice:\n{e}", pytrace=False)
                _lockups.append(str(e))
            except kpdvm.VMError as e:
                pytest.fail(f"VM failed:\n{e}", pytrace=False)
        raise AssertionError("unreachable")

    return run


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for report in _lockups:
        terminalreporter.write_line(f"kpd VM: the guest kernel locked up; the run was repeated:\n{report}")
    if _boot_seconds:
        terminalreporter.write_line(
            f"kpd VM: boot + `true` + power-off took {_boot_seconds[0]:.1f} s")
