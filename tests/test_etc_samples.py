"""etc/: the annotated sample config, the director-pair template, the example scripts and the systemd unit.

The sample is checked as etc/kpd.conf tells an operator to install it: the scripts copied root-owned,
0755, into a root-owned 0755 directory, and a ``keepalived_script`` user.  The user is not created on
this host: ``kpd check-config`` and ``keepalived -t`` run in a private mount namespace where /etc/passwd
and /etc/group are copies with that user added (and in a fresh network namespace with an ``eth0``).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keepalived_py.config import load_config
from keepalived_py.config.serialize import to_data
from keepalived_py.runtime_files import ensure_runtime_dir
from netns_run import KPD, add_interface, fresh_netns

REPO = Path(__file__).resolve().parents[1]
ETC = REPO / "etc"
SAMPLE = ETC / "kpd.conf"
TEMPLATE = ETC / "templates" / "director-pair.conf.j2"
VARS = {n: ETC / "templates" / "vars" / f"director-{n}.yaml" for n in ("a", "b")}
SCRIPTS = ETC / "scripts"
SCRIPT_NAMES = ("kpd-notify.sh", "check-director.sh", "misc-check-http.sh")
UNIT = ETC / "systemd" / "kpd.service"
LIBEXEC = "/usr/local/libexec/kpd"

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (file ownership, namespaces)")
needs_keepalived = pytest.mark.skipif(not shutil.which("keepalived"), reason="real keepalived not installed")


# --- an installed node, isolated ------------------------------------------------------------------------


@dataclass
class Node:
    area: Path  # root-owned 0755: passwd, group, libexec/ (the scripts), keepalived.conf
    ns: str

    @property
    def libexec(self) -> Path:
        return self.area / "libexec"

    def conf(self, text: str, name: str = "keepalived.conf") -> Path:
        path = self.area / name
        path.write_text(text.replace(LIBEXEC, str(self.libexec)))
        return path

    def run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        """``cmd`` in the node's network namespace, seeing the passwd/group copies with keepalived_script."""
        shell = 'mount --bind "$0/passwd" /etc/passwd && mount --bind "$0/group" /etc/group && exec "$@"'
        argv = ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation", "private",
                "sh", "-c", shell, str(self.area), *cmd]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.area)

    def kpd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(*KPD, *args)

    def keepalived_t(self, path: Path) -> subprocess.CompletedProcess[str]:
        return self.run("keepalived", "-t", "-l", "-f", str(path))


def _free_id(taken: set[int]) -> int:
    return next(i for i in range(64000, 65000) if i not in taken)


@pytest.fixture
def node() -> Iterator[Node]:
    area = Path(tempfile.mkdtemp(prefix="kpd-etc-", dir="/tmp"))
    area.chmod(0o755)
    try:
        libexec = area / "libexec"
        libexec.mkdir(mode=0o755)
        for name in SCRIPT_NAMES:
            shutil.copy(SCRIPTS / name, libexec / name)
            os.chown(libexec / name, 0, 0)
            (libexec / name).chmod(0o755)
        passwd = Path("/etc/passwd").read_text()
        group = Path("/etc/group").read_text()
        uid = _free_id({int(line.split(":")[2]) for line in passwd.splitlines() if line.count(":") >= 3})
        gid = _free_id({int(line.split(":")[2]) for line in group.splitlines() if line.count(":") >= 3})
        assert "\nkeepalived_script:" not in "\n" + passwd, "this test wants a host without keepalived_script"
        # what `useradd -r -s /usr/sbin/nologin keepalived_script` adds
        entry = f"keepalived_script:x:{uid}:{gid}::/nonexistent:/usr/sbin/nologin\n"
        (area / "passwd").write_text(passwd + entry)
        (area / "group").write_text(group + f"keepalived_script:x:{gid}:\n")
        with fresh_netns() as ns:
            add_interface(ns, "eth0")
            yield Node(area, ns)
    finally:
        shutil.rmtree(area, ignore_errors=True)


def _only_valid(result: subprocess.CompletedProcess[str]) -> bool:
    """check-config printed nothing but its verdict: no warning, no note (e.g. a disabled script)."""
    out = (result.stdout + result.stderr).strip().splitlines()
    return result.returncode == 0 and len(out) == 1 and out[0].endswith("configuration is valid")


# --- etc/kpd.conf ---------------------------------------------------------------------------------------


@as_root
@pytest.mark.netns
def test_sample_is_valid_once_installed_as_documented(node: Node) -> None:
    conf = node.conf(SAMPLE.read_text())
    result = node.kpd("check-config", "--config", str(conf))
    assert _only_valid(result), result.stdout + result.stderr


@as_root
@pytest.mark.netns
def test_sample_without_the_script_user_or_the_interface_is_exit_5(node: Node) -> None:
    conf = node.conf(SAMPLE.read_text())
    # the script user missing (run outside the passwd copy, in the namespace with eth0)
    result = subprocess.run(["ip", "netns", "exec", node.ns, *KPD, "check-config", "--config", str(conf)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 5 and "unknown user keepalived_script" in result.stderr, result.stderr
    # the interface missing
    other = conf.with_name("eth9.conf")
    other.write_text(conf.read_text().replace("eth0", "eth9"))
    result = node.kpd("check-config", "--config", str(other))
    assert result.returncode == 5 and "interface eth9 for vrrp_instance VI_WEB doesn't exist" in result.stderr


@as_root
@pytest.mark.netns
def test_scripts_not_installed_are_only_noted(node: Node) -> None:
    if Path(LIBEXEC).exists():
        pytest.skip(f"{LIBEXEC} exists on this host")
    result = node.kpd("check-config", "--config", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("cannot run") == 3 and "it is disabled" in result.stderr


@as_root
@pytest.mark.netns
def test_without_enable_script_security_is_exit_6(node: Node) -> None:
    text = SAMPLE.read_text()
    assert "\n    enable_script_security\n" in text
    conf = node.conf(text.replace("\n    enable_script_security\n", "\n"))
    result = node.kpd("check-config", "--config", str(conf))
    assert result.returncode == 6 and "SECURITY VIOLATION" in result.stderr, result.stderr


@as_root
@pytest.mark.netns
def test_group_writable_script_is_disabled_only_when_it_would_run_as_root(node: Node) -> None:
    """keepalived's rule: the path is checked only for scripts run with root privileges."""
    script = node.libexec / "check-director.sh"
    os.chown(script, 0, 65534)  # nogroup: any group but root's
    script.chmod(0o775)
    as_user = node.kpd("check-config", "--config", str(node.conf(SAMPLE.read_text())))
    assert _only_valid(as_user), as_user.stderr
    root_text = SAMPLE.read_text().replace("script_user keepalived_script", "script_user root")
    as_root_ = node.kpd("check-config", "--config", str(node.conf(root_text, "root.conf")))
    assert as_root_.returncode == 5, as_root_.stderr
    assert re.search(r"chk_director: script '.*check-director.sh' cannot run \(insecure: .*writable by group",
                     as_root_.stderr), as_root_.stderr
    assert "it is disabled" in as_root_.stderr


@as_root
@pytest.mark.netns
@needs_keepalived
@pytest.mark.interop
def test_keepalived_agrees_on_the_sample(node: Node) -> None:
    """keepalived -t gives kpd's exit codes: valid; group-writable root script disabled (5); no security (6).

    keepalived 2.2.7's -t kills itself on any script run as a non-root user (keepalived issue #2617), so
    the comparison runs with ``script_user root``, the only change; the 2.2.7 behaviour is checked too.
    """
    text = SAMPLE.read_text()
    root_text = text.replace("script_user keepalived_script", "script_user root")
    cases = {
        "root.conf": (root_text, 0),
        "nosec.conf": (root_text.replace("\n    enable_script_security\n", "\n"), 6),
    }
    for name, (body, code) in cases.items():
        conf = node.conf(body, name)
        kpd, keepalived = node.kpd("check-config", "--config", str(conf)), node.keepalived_t(conf)
        assert (kpd.returncode, keepalived.returncode) == (code, code), (name, kpd.stderr, keepalived.stderr)
    script = node.libexec / "check-director.sh"
    os.chown(script, 0, 65534)
    script.chmod(0o775)
    conf = node.conf(root_text, "root.conf")
    kpd, keepalived = node.kpd("check-config", "--config", str(conf)), node.keepalived_t(conf)
    assert (kpd.returncode, keepalived.returncode) == (5, 5), (kpd.stderr, keepalived.stderr)
    assert "insecure" in kpd.stderr and "insecure" in keepalived.stdout + keepalived.stderr
    version = subprocess.run(["keepalived", "--version"], capture_output=True, text=True)
    if "v2.2.7 " in version.stdout + version.stderr:
        documented = node.keepalived_t(node.conf(text))
        assert documented.returncode in (-15, 143), documented  # "Terminated", as etc/kpd.conf says


def test_sample_uses_no_kpd_keyword_uncommented() -> None:
    active = [line.split("#")[0].split("!")[0] for line in SAMPLE.read_text().splitlines()]
    assert not [line for line in active if "kpd_" in line]
    assert "# kpd_child_hung_timeout" in SAMPLE.read_text()
    continued = [line for line in SAMPLE.read_text().splitlines()
                 if line.lstrip().startswith(("!", "#")) and line.rstrip().endswith("\\")]
    assert not continued, "a comment ending in a backslash swallows the next line in keepalived"


# --- the template ---------------------------------------------------------------------------------------


def _render(*args: str, out: Path) -> None:
    result = subprocess.run([*KPD, "render", str(TEMPLATE), *args, "-o", str(out)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _model(path: Path) -> object:
    def strip(x: object) -> object:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "location"}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    result = load_config(path, host_checks=False)
    assert result.config is not None
    return strip(json.loads(json.dumps(to_data(result.config))))


SAMPLE_AS_VARS = (
    "--set", f"scripts={{dir: {LIBEXEC}}}", "--set", "vrrp.version=2", "--set", "node.peer=null",
    "--set", "service.real_servers=[{address: 198.51.100.21}, {address: 198.51.100.22}, "
    "{address: 198.51.100.23, weight: 2}, {address: 198.51.100.24, check: misc, check_port: 8080}]",
)


def test_template_with_the_samples_choices_is_the_sample(tmp_path: Path) -> None:
    out = tmp_path / "a.conf"
    _render("--vars", str(VARS["a"]), *SAMPLE_AS_VARS, out=out)
    assert _model(out) == _model(SAMPLE)


def test_template_nodes_differ_only_in_node_settings(tmp_path: Path) -> None:
    texts = {}
    for n, path in VARS.items():
        _render("--vars", str(path), out=tmp_path / f"{n}.conf")
        texts[n] = (tmp_path / f"{n}.conf").read_text()
    assert "\n\n\n" not in texts["a"] and "    \n" not in texts["a"]
    a, b = (load_config(tmp_path / f"{n}.conf", host_checks=False).config for n in "ab")
    assert a is not None and b is not None
    assert (a.vrrp_instances[0].priority, b.vrrp_instances[0].priority) == (150, 100)
    assert _strip_loc(a.virtual_servers) == _strip_loc(b.virtual_servers)
    rs = a.virtual_servers[0].real_servers
    assert len(rs) == 3 and all(c.kind == "HTTP_GET" for r in rs for c in r.checks)


def _strip_loc(x: object) -> object:
    return json.loads(json.dumps(to_data(x), default=str), object_hook=lambda d: {k: v for k, v in d.items()
                                                                                   if k != "location"})


def test_template_refuses_an_unknown_check(tmp_path: Path) -> None:
    result = subprocess.run([*KPD, "render", str(TEMPLATE), "--vars", str(VARS["a"]), "--set",
                             "service.check=ping"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 4 and "real_server_check_must_be_http_tcp_or_misc" in result.stderr


@as_root
@pytest.mark.netns
@pytest.mark.parametrize("n", ["a", "b"])
def test_template_renders_pass_check_config_and_keepalived(node: Node, n: str, tmp_path: Path) -> None:
    plain = node.area / f"{n}.conf"
    _render("--vars", str(VARS[n]), out=plain)
    assert _only_valid(result := node.kpd("check-config", "--config", str(plain))), result.stderr
    # straight from the template, as `make demo` uses it
    direct = node.kpd("check-config", "--config", str(TEMPLATE), "--vars", str(VARS[n]))
    assert _only_valid(direct), direct.stderr
    if shutil.which("keepalived"):
        keepalived = node.keepalived_t(plain)
        assert keepalived.returncode == 0, keepalived.stdout + keepalived.stderr
    # with the scripts installed and the MISC_CHECK server
    scripted = node.area / f"{n}-scripts.conf"
    _render("--vars", str(VARS[n]), *SAMPLE_AS_VARS, out=scripted)
    node.conf(scripted.read_text(), scripted.name)
    assert _only_valid(result := node.kpd("check-config", "--config", str(scripted))), result.stderr


# --- the scripts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_script_is_portable_shell(name: str) -> None:
    path = SCRIPTS / name
    lines = path.read_text().splitlines()
    assert lines[0] == "#!/bin/sh" and "set -eu" in lines
    assert path.stat().st_mode & 0o777 == 0o755
    for shell in ("sh", "bash", "dash"):
        if shutil.which(shell):
            result = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
            assert result.returncode == 0, (shell, result.stderr)


def test_notify_script_logs_keepalived_arguments(tmp_path: Path) -> None:
    real_logger = shutil.which("logger")
    if real_logger is None:
        pytest.skip("logger (util-linux) is not installed")
    sock_path = tmp_path / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(10)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "logger").write_text(f'#!/bin/sh\nexec {real_logger} --socket {sock_path} "$@"\n')
    (fake / "logger").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:/usr/sbin:/usr/bin:/sbin:/bin"}
    try:
        for args, prio, text in (
            (["INSTANCE", "VI_WEB", "MASTER", "150"], 29, "INSTANCE VI_WEB is now MASTER (priority 150)"),
            (["INSTANCE", "VI_WEB", "FAULT", "150"], 28, "INSTANCE VI_WEB is now FAULT (priority 150)"),
            (["GROUP", "G1", "BACKUP", "0"], 29, "GROUP G1 is now BACKUP (priority 0)"),
        ):
            result = subprocess.run([str(SCRIPTS / "kpd-notify.sh"), *args], env=env, capture_output=True,
                                    text=True, timeout=30)
            assert result.returncode == 0, result.stderr
            line = sock.recv(4096).decode()
            assert line.startswith(f"<{prio}>") and "kpd-notify" in line and line.endswith(text), line
        usage = subprocess.run([str(SCRIPTS / "kpd-notify.sh"), "INSTANCE"], env=env, capture_output=True)
        assert usage.returncode == 2
    finally:
        sock.close()


@pytest.fixture
def http_port(tmp_path: Path) -> Iterator[int]:
    """An HTTP server on 127.0.0.1 serving /health (what ``python3 -m http.server`` does, in a thread)."""
    (tmp_path / "health").write_text("ok\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 bound but not listening: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _run(name: str, *args: object) -> int:
    return subprocess.run([str(SCRIPTS / name), *map(str, args)], capture_output=True, timeout=60).returncode


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_misc_check_http(http_port: int, closed_port: int) -> None:
    assert _run("misc-check-http.sh", "127.0.0.1", http_port, "/health") == 0
    assert _run("misc-check-http.sh", "127.0.0.1", http_port, "/missing") == 1  # 404
    assert _run("misc-check-http.sh", "127.0.0.1", closed_port, "/health") == 1
    # misc_dynamic: exit WEIGHT + 2 when up, 1 when down
    assert _run("misc-check-http.sh", "127.0.0.1", http_port, "/health", 5) == 7
    assert _run("misc-check-http.sh", "127.0.0.1", http_port, "/health", "010") == 12
    assert _run("misc-check-http.sh", "127.0.0.1", http_port, "/health", 253) == 255
    assert _run("misc-check-http.sh", "127.0.0.1", closed_port, "/health", 5) == 1
    assert _run("misc-check-http.sh", "127.0.0.1", http_port, "/health", 254) == 1
    assert _run("misc-check-http.sh", "127.0.0.1", http_port) == 1  # usage


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_check_director(http_port: int, closed_port: int) -> None:
    assert _run("check-director.sh", "127.0.0.1", http_port, "/health") == 0
    assert _run("check-director.sh", "127.0.0.1", http_port, "/missing") == 1
    assert _run("check-director.sh", "127.0.0.1", closed_port) == 1


# --- the systemd unit -----------------------------------------------------------------------------------


def _unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_unit_settings_kpd_needs(tmp_path: Path) -> None:
    unit = _unit()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert int(unit["WatchdogSec"][0]) > 0 and unit["KillMode"] == ["mixed"]
    assert unit["Restart"] == ["on-failure"] and unit["RestartPreventExitStatus"] == ["4"]
    assert unit["RuntimeDirectory"] == ["kpd"] and "--runtime-dir /run/kpd" in unit["ExecStart"][0]
    mode = int(unit["RuntimeDirectoryMode"][0], 8)
    assert not mode & 0o022
    runtime = tmp_path / "kpd"
    runtime.mkdir(mode=mode)
    runtime.chmod(mode)
    ensure_runtime_dir(runtime)  # kpd accepts the directory systemd makes
    # etc/kpd.conf runs its scripts as keepalived_script: kpd must be able to switch users and stop them
    caps = unit["CapabilityBoundingSet"][0].split()
    assert {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"} <= set(caps)
    assert not [v for v in unit.get("ExecStartPre", []) if "check-config" in v]


def test_unit_accepted_by_systemd_analyze(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (systemd not on this host)")
    stub = tmp_path / "kpd"  # verify wants ExecStart's program to exist
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    unit = tmp_path / "kpd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/kpd", str(stub)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    # verify exits 0 even for a setting it ignores: any line about the unit is a failure
    assert result.returncode == 0 and str(unit) not in result.stdout + result.stderr, result.stderr
    assert "kpd.service" not in result.stdout + result.stderr, result.stderr


def test_sample_scripts_exist_in_etc_scripts() -> None:
    named = set(re.findall(re.escape(LIBEXEC) + r"/([\w.-]+)", SAMPLE.read_text()))
    assert named == set(SCRIPT_NAMES)
    for name in SCRIPT_NAMES:
        assert stat.S_IMODE((SCRIPTS / name).stat().st_mode) == 0o755
