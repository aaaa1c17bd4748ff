"""One script-security rule: check-config's report and what the engines run agree.

Every script kind (vrrp_script, MISC_CHECK, notify_up / quorum_up, the VRRP notify scripts) is judged by
:mod:`keepalived_py.script_security`.  These tests run real processes: an allowed script writes ``id -u``
to a file, a refused one would leave a marker.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keepalived_py.check import specs as check_specs
from keepalived_py.check.engine import CheckEngine
from keepalived_py.check.probe import ProbeResult
from keepalived_py.config import load_config
from keepalived_py.config.model import ScriptUser
from keepalived_py.script_security import DEFAULT_SCRIPT_USER, ScriptPolicy, decide
from keepalived_py.vrrp.track import ScriptScheduler, Trackers, unusable_scripts

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (file ownership, switching users)")

NOBODY = "nobody"


def _no_default_user() -> bool:
    try:
        pwd.getpwnam(DEFAULT_SCRIPT_USER)
    except KeyError:
        return True
    return False


def wait_until(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


async def await_until(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


@pytest.fixture
def area() -> Iterator[Path]:
    """A root-owned 0755 directory under /tmp (secure: /tmp is sticky), traversable by nobody."""
    path = Path(tempfile.mkdtemp(prefix="kpd-scrsec-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def insecure_script(area: Path, marker: Path) -> Path:
    """keepalived's textbook insecure script: 0777, in a 0777 directory."""
    loose = area / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    return script(loose / "evil.sh", f"echo ran >> {marker}", 0o777)


def out_dir(area: Path) -> Path:
    out = area / "out"
    out.mkdir()
    out.chmod(0o777)  # any script user may write its marker here
    return out


def conf(write_conf, text: str, host_checks: bool = False):
    result = load_config(write_conf(text), host_checks=host_checks)
    assert result.config is not None, result.diagnostics
    return result


# --- the decision itself --------------------------------------------------------------------------------


def test_decision_follows_keepalived(area: Path) -> None:
    ok = script(area / "ok.sh", "exit 0")
    marker = area / "m"
    bad = insecure_script(area, marker)
    root = ScriptUser("root")
    # secure, run as root by script_user root: allowed, program resolved
    d = decide((str(ok), "a"), enable_script_security=True, script_user=root)
    assert d.allowed and d.argv == (str(ok), "a") and d.user == "root"
    # a bare name is looked up on the scripts' PATH and replaced by the file found
    d = decide(("true",), enable_script_security=True, script_user=root)
    assert d.allowed and d.argv[0].startswith("/") and d.argv[0].endswith("/true")
    # insecure as root: refused with security, tolerated (and reported) without
    d = decide((str(bad),), enable_script_security=True, script_user=root)
    assert not d.allowed and "insecure" in (d.refused or "")
    d = decide((str(bad),), enable_script_security=False, script_user=root)
    assert d.allowed and d.unsafe
    # not run with root privileges: the path is not keepalived's concern
    d = decide((str(bad),), enable_script_security=True, script_user=ScriptUser(NOBODY))
    assert d.allowed and d.user == NOBODY
    # missing program, unknown user, not executable
    assert not decide((str(area / "nope"),), enable_script_security=False).allowed
    assert not decide(("no-such-program-here",), enable_script_security=False).allowed
    assert "unknown user" in (decide((str(ok),), enable_script_security=False,
                                     script_user=ScriptUser("no-such-user-kpd")).refused or "")
    noexec = script(area / "noexec.sh", "exit 0", 0o644)
    assert "not executable" in (decide((str(noexec),), enable_script_security=False).refused or "")
    # the script's own user wins over the global one
    d = decide((str(ok),), enable_script_security=True, user=ScriptUser(NOBODY), script_user=root)
    assert d.user == NOBODY


@pytest.mark.skipif(not _no_default_user(), reason=f"needs a host without a {DEFAULT_SCRIPT_USER} user")
def test_no_default_user_means_root_only_without_script_security(area: Path) -> None:
    ok = script(area / "ok.sh", "exit 0")
    off = decide((str(ok),), enable_script_security=False)
    assert off.allowed and off.user is None  # runs as ourselves (root), as keepalived does
    on = decide((str(ok),), enable_script_security=True)
    assert not on.allowed and DEFAULT_SCRIPT_USER in (on.refused or "")
    assert decide((str(ok),), enable_script_security=True, script_user=ScriptUser("root")).allowed


def test_policy_keeps_arguments_and_remembers_the_decision(area: Path) -> None:
    ok = script(area / "ok.sh", "exit 0")
    policy = ScriptPolicy(enable_script_security=True, script_user=ScriptUser("root"))
    assert policy.decide((str(ok), "INSTANCE", "VI", "MASTER")).argv == (str(ok), "INSTANCE", "VI", "MASTER")
    ok.chmod(0o777)  # judged once, like keepalived at configuration time
    assert policy.decide((str(ok), "x")).allowed


# --- MISC_CHECK: check-config and the check engine agree ----------------------------------------------------


def _misc_conf(area: Path, insecure: Path, good: Path, global_defs: str) -> str:
    return f"""
global_defs {{
{global_defs}
}}
virtual_server 192.0.2.10 80 {{
    protocol TCP
    lb_algo rr
    delay_loop 0.2
    real_server 10.0.0.1 8080 {{
        MISC_CHECK {{
            misc_path "{insecure}"
            misc_timeout 5
            warmup 0
        }}
    }}
    real_server 10.0.0.2 8080 {{
        MISC_CHECK {{
            misc_path "{good}"
            misc_timeout 5
            warmup 0
        }}
    }}
}}
"""


def _run_check_engine(config, until: Callable[[], bool], probe=None) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "check"))
    from fake_ipvs import FakeIpvs

    async def main() -> None:
        kwargs = {"probe": probe} if probe is not None else {}
        engine = CheckEngine(config, FakeIpvs(), **kwargs)
        engine.open()
        task = asyncio.create_task(engine.run())
        try:
            assert await await_until(until), "the allowed script never ran"
        finally:
            engine.stop()
            await task
            await engine.shutdown()

    asyncio.run(main())


def test_insecure_misc_check_is_reported_and_never_run(write_conf, area: Path) -> None:
    out = out_dir(area)
    marker = out / "insecure-ran"
    bad = insecure_script(area, marker)
    good = script(area / "good.sh", f"id -u >> {out / 'good'}")
    text = _misc_conf(area, bad, good, "    enable_script_security\n    script_user root")
    # check-config: an error located at the misc_path line, saying the script is disabled
    checked = conf(write_conf, text, host_checks=True)
    errors = [d for d in checked.diagnostics if "evil.sh" in d.message]
    assert errors and all("disabled" in d.message for d in errors)
    assert errors[0].location.line == text.splitlines().index(f'            misc_path "{bad}"') + 1
    # the check engine: that checker does not exist, the other one runs (as root, script_user root)
    config = conf(write_conf, text).config
    built = check_specs.build(config)
    argvs = [c.probe.argv for vs in built for rs in vs.real_servers for c in rs.checkers]
    assert argvs == [(str(good),)]
    good_runs = out / "good"
    _run_check_engine(config, lambda: good_runs.exists() and len(good_runs.read_text().split()) >= 3)
    assert (out / "good").read_text().split()[0] == "0"
    assert not marker.exists()


@pytest.mark.skipif(not _no_default_user(), reason=f"needs a host without a {DEFAULT_SCRIPT_USER} user")
def test_misc_check_not_run_as_root_by_default_under_script_security(write_conf, area: Path) -> None:
    out = out_dir(area)
    good = script(area / "good.sh", f"id -u >> {out / 'good'}")
    text = _misc_conf(area, good, good, "    enable_script_security")
    checked = conf(write_conf, text, host_checks=True)
    assert any(DEFAULT_SCRIPT_USER in d.message for d in checked.diagnostics)
    built = check_specs.build(conf(write_conf, text).config)
    assert [c for vs in built for rs in vs.real_servers for c in rs.checkers] == []


def test_misc_check_runs_as_script_user(write_conf, area: Path) -> None:
    out = out_dir(area)
    good = script(area / "good.sh", f"id -u >> {out / 'good'}")
    text = _misc_conf(area, good, good, f"    enable_script_security\n    script_user {NOBODY}")
    checked = conf(write_conf, text, host_checks=True)
    assert not [d for d in checked.diagnostics if "good.sh" in d.message]
    _run_check_engine(conf(write_conf, text).config, lambda: (out / "good").exists())
    assert (out / "good").read_text().split()[0] == str(pwd.getpwnam(NOBODY).pw_uid)


# --- notify_up: the check engine's notify scripts -------------------------------------------------------


async def _all_up(spec) -> ProbeResult:
    return ProbeResult.up()


def test_insecure_notify_up_is_reported_and_never_run(write_conf, area: Path) -> None:
    out = out_dir(area)
    marker = out / "insecure-ran"
    bad = insecure_script(area, marker)
    quorum = script(area / "quorum.sh", f"id -u >> {out / 'quorum'}")
    text = f"""
global_defs {{
    enable_script_security
    script_user root
}}
virtual_server 192.0.2.10 80 {{
    protocol TCP
    lb_algo rr
    delay_loop 0.2
    quorum_up "{quorum}"
    real_server 10.0.0.1 8080 {{
        notify_up "{bad}"
        TCP_CHECK {{
            connect_timeout 1
            retry 0
            warmup 0
        }}
    }}
}}
"""
    checked = conf(write_conf, text, host_checks=True)
    assert any("evil.sh" in d.message and "disabled" in d.message for d in checked.diagnostics)
    # The real server comes up (notify_up), then the quorum (quorum_up): notify scripts run in order, so
    # once quorum_up has run, notify_up would have run before it.
    _run_check_engine(conf(write_conf, text).config, lambda: (out / "quorum").exists(), probe=_all_up)
    assert (out / "quorum").read_text().split() == ["0"]
    assert not marker.exists()


# --- vrrp_script -------------------------------------------------------------------------------------------


def _vrrp_conf(argv: Path, global_defs: str) -> str:
    return f"""
global_defs {{
{global_defs}
}}
vrrp_script chk {{
    script "{argv}"
    interval 0.2
}}
vrrp_instance VI {{
    state BACKUP
    interface lo
    virtual_router_id 9
    priority 100
    track_script {{
        chk
    }}
    virtual_ipaddress {{
        192.0.2.99/32
    }}
}}
"""


def _run_vrrp_scripts(config, until: Callable[[], bool]) -> bool:
    async def main() -> bool:
        trackers = Trackers(config, disabled_scripts=unusable_scripts(config))
        sched = ScriptScheduler(trackers)
        sched.start()
        try:
            return await await_until(until, 5.0)
        finally:
            await sched.stop()

    return asyncio.run(main())


def test_insecure_vrrp_script_is_reported_and_never_run(write_conf, area: Path) -> None:
    out = out_dir(area)
    marker = out / "insecure-ran"
    bad = insecure_script(area, marker)
    text = _vrrp_conf(bad, "    enable_script_security\n    script_user root")
    checked = conf(write_conf, text, host_checks=True)
    assert any("evil.sh" in d.message and "disabled" in d.message for d in checked.diagnostics)
    config = conf(write_conf, text).config
    assert "chk" in unusable_scripts(config)
    assert not _run_vrrp_scripts(config, marker.exists)


@pytest.mark.skipif(not _no_default_user(), reason=f"needs a host without a {DEFAULT_SCRIPT_USER} user")
def test_vrrp_script_not_run_as_root_by_default_under_script_security(write_conf, area: Path) -> None:
    out = out_dir(area)
    marker = out / "ran"
    good = script(area / "good.sh", f"id -u >> {marker}")
    text = _vrrp_conf(good, "    enable_script_security")
    checked = conf(write_conf, text, host_checks=True)
    assert any(DEFAULT_SCRIPT_USER in d.message for d in checked.diagnostics)
    config = conf(write_conf, text).config
    assert "chk" in unusable_scripts(config)
    assert not _run_vrrp_scripts(config, marker.exists)


def test_vrrp_script_runs_as_script_user(write_conf, area: Path) -> None:
    out = out_dir(area)
    marker = out / "ran"
    good = script(area / "good.sh", f"id -u >> {marker}")
    text = _vrrp_conf(good, f"    enable_script_security\n    script_user {NOBODY}")
    checked = conf(write_conf, text, host_checks=True)
    assert not [d for d in checked.diagnostics if "good.sh" in d.message]
    assert _run_vrrp_scripts(conf(write_conf, text).config, marker.exists)
    assert wait_until(lambda: marker.read_text().strip() != "")
    assert marker.read_text().split()[0] == str(pwd.getpwnam(NOBODY).pw_uid)
