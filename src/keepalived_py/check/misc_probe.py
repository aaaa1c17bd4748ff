"""MISC_CHECK: a script decides. Run without a shell, with a timeout, in its own process group.

Exit 0 is up; with ``misc_dynamic`` exit 1 is down and 2-255 up with weight ``code - 2`` (keepalived's
rule); without it every non-zero exit is down. A script that times out, is killed by a signal or cannot
start is down, with the reason.
"""

from __future__ import annotations

from keepalived_py.check.probe import ProbeResult
from keepalived_py.script_runner import run_script


async def probe_misc(
    argv: tuple[str, ...],
    *,
    timeout: float,
    dynamic: bool = False,
    user: str | None = None,
    group: str | None = None,
    kill_grace: float = 2.0,
) -> ProbeResult:
    if not argv:
        return ProbeResult.down("misc_path is empty")
    result = await run_script(argv, timeout=timeout, user=user, group=group, kill_grace=kill_grace,
                              max_output=4096, purpose="misc_check")
    if result.error is not None and result.returncode is None and result.signal is None:
        return ProbeResult.down(result.describe())
    if result.timed_out:
        return ProbeResult.down(f"timed out after {timeout:g} s")
    code = result.returncode
    if code is None:
        return ProbeResult.down(result.describe())
    if code == 0:
        return ProbeResult.up()
    if dynamic and 2 <= code <= 255:
        return ProbeResult.up(weight=code - 2)
    return ProbeResult.down(f"exited with status {code}")
