#!/usr/bin/env python3
"""Boot the kpd test VM (QEMU, stock Debian kernel, real IPVS) and run one command in it.

The VM's root is the host's / (shared read-only over 9p, made writable by a throwaway overlay), so host
binaries, ipvsadm, iproute2 and the project's venv run in it unchanged. The checkout (and the caller's
working directory when it is under /tmp or /run, which the VM covers with tmpfs) is shared read-write
and mounted back at the same absolute path. The command's stdout, stderr and exit status come back
through a per-run results share, never through the serial console, so kernel messages cannot mix in.

Shell use: see scripts/vm/run --help. Python use (stdlib only, Python >= 3.9):

    import kpdvm                      # e.g. loaded by tests/vm/conftest.py
    r = kpdvm.run_vm(["ipvsadm", "-Ln"], timeout=120)
    r.returncode, r.stdout, r.stderr  # VMError / VMTimeout when the VM itself failed
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("KPD_VM_CACHE") or REPO / ".cache" / "vm")
BUILD = HERE / "build.sh"

DEFAULT_TIMEOUT = 600.0
# Where the command runs inside the VM: the results share is bind-mounted here.
VM_OUT = "/run/kpd-vm"
VM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Copied from the caller's environment when set (plus every KPD_* except KPD_VM_*).
PASS_ENV = ("PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS",
            "CI", "LANG", "LC_ALL", "TZ", "HYPOTHESIS_PROFILE")
# Paths the VM hides behind its own mounts: a cwd below them is shared explicitly.
HIDDEN = ("/tmp", "/run", "/var/run", "/dev", "/proc", "/sys")
# loglevel=5: warnings reach the console too (the call traces of lockup and stall reports are warnings).
KERNEL_ARGS = "console=ttyS0 loglevel=5 panic=-1 cryptomgr.notests mitigations=off"
# A guest CPU the guest kernel reports stuck (soft lockup, RCU stall) this long is dead, not slow: the
# run is abandoned at once instead of at its timeout (on a loaded host the emulated guest is slow, but
# its watchdog keeps running: a stuck CPU is stuck).
LOCKUP_GIVE_UP = 120
_STUCK = re.compile(r"soft lockup - CPU#\d+ stuck for (\d+)s|rcu_\w+ kthread starved for (\d+) jiffies")
_REPORT_START = re.compile(r"\] (watchdog: BUG: soft lockup|rcu: INFO: |BUG: |Oops|WARNING: |Kernel panic)")


class VMError(RuntimeError):
    """The VM could not run the command (build, boot or harness failure): not the command's status."""

    def __init__(self, message: str, console: str = "", qemu_log: str = "") -> None:
        self.console = console
        self.qemu_log = qemu_log
        details = message
        if qemu_log.strip():
            details += "\n--- qemu ---\n" + _tail(qemu_log, 20)
        if console.strip():
            details += "\n--- console (tail) ---\n" + _tail(console, 40)
        super().__init__(details)


class VMTimeout(VMError):
    """The whole VM run took longer than its timeout; QEMU was killed."""


class VMLockup(VMError):
    """The guest kernel reported a CPU stuck for LOCKUP_GIVE_UP seconds; QEMU was killed."""


def kernel_lockup(console: str) -> str | None:
    """The guest kernel's first problem report when the console shows a CPU stuck for LOCKUP_GIVE_UP s.

    A soft lockup reports its duration in seconds; an RCU stall says how long the grace-period kthread
    was starved, in jiffies (taken at HZ 250, Debian's). Returns the console from the first report
    (its call traces), at most 80 lines, or None.
    """
    stuck = 0.0
    for m in _STUCK.finditer(console):
        stuck = max(stuck, float(m[1]) if m[1] else int(m[2]) / 250)
    if stuck < LOCKUP_GIVE_UP:
        return None
    lines = console.splitlines()
    first = next((i for i, line in enumerate(lines) if _REPORT_START.search(line)), 0)
    return "\n".join(lines[first:first + 80])


@dataclass
class VMResult:
    """Like subprocess.CompletedProcess: the command's status and output, plus the VM's console."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    console: str = ""
    seconds: float = 0.0
    files: dict[str, bytes] = field(default_factory=dict)

    def check_returncode(self) -> None:
        if self.returncode:
            raise subprocess.CalledProcessError(self.returncode, self.args, self.stdout, self.stderr)


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


# ------------------------------------------------------------------------------------------- cache
def script_hash() -> str:
    """The hash build.sh puts in its stamp: sha256 of build.sh followed by init, first 16 hex digits."""
    return hashlib.sha256(BUILD.read_bytes() + (HERE / "init").read_bytes()).hexdigest()[:16]


def cache_ready(cache: Path = CACHE) -> bool:
    current = cache / "current"
    try:
        stamp = (current / "stamp").read_text().split()
    except OSError:
        return False
    return (len(stamp) == 3 and stamp[2] == script_hash() and (current / "initrd.img").is_file()
            and ((current / "vmlinux").is_file() or (current / "vmlinuz").is_file()))


def ensure_cache(*, force: bool = False, quiet: bool = False) -> Path:
    """Build (or refresh) the kernel+initramfs cache when missing or stale; returns .cache/vm/current.

    With force, build.sh always runs (it is a fast no-op when up to date, and picks up a new kernel
    package version). Raises VMError when the build fails.
    """
    if force or not cache_ready():
        proc = subprocess.run(["bash", str(BUILD)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "KPD_VM_CACHE": str(CACHE)})
        if proc.returncode != 0:
            raise VMError(f"scripts/vm/build.sh failed with status {proc.returncode}:\n{proc.stdout}")
        if proc.stdout and not quiet:
            sys.stderr.write(proc.stdout)
        if not cache_ready():
            raise VMError(f"scripts/vm/build.sh succeeded but {CACHE}/current is not usable")
    return CACHE / "current"


# --------------------------------------------------------------------------------------------- run
def _virtfs(path: str, tag: str, *, readonly: bool = False) -> list[str]:
    opts = f"local,path={path.replace(',', ',,')},mount_tag={tag},security_model=none,multidevs=remap"
    if readonly:
        opts += ",readonly=on"
    return ["-virtfs", opts]


def _is_under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _vm_env(env: Mapping[str, str] | None, pass_env: Iterable[str]) -> dict[str, str]:
    out = {"PATH": VM_PATH, "HOME": "/root", "TERM": "dumb", "LANG": "C.UTF-8",
           "KPD_IN_VM": "1", "KPD_VM_OUT": VM_OUT}
    for name in (*PASS_ENV, *pass_env):
        if name in os.environ:
            out[name] = os.environ[name]
    for name, value in os.environ.items():
        if name.startswith("KPD_") and not name.startswith("KPD_VM_") and name != "KPD_IN_VM":
            out[name] = value
    out.update(env or {})
    return out


def run_vm(
    cmd: str | Sequence[str],
    *,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    pass_env: Iterable[str] = (),
    shares: Iterable[str | os.PathLike[str]] = (),
    mem: int | None = None,
    smp: int | None = None,
    on_stdout: Callable[[bytes], object] | None = None,
    on_stderr: Callable[[bytes], object] | None = None,
    on_console: Callable[[bytes], object] | None = None,
    keep: bool = False,
    build: bool = True,
) -> VMResult:
    """Boot the VM, run cmd (a shell string for /bin/sh -c, or an argv list), power off, return its result.

    cwd defaults to the caller's working directory; env is added to the VM environment (PATH, HOME=/root,
    TERM, LANG, KPD_IN_VM=1, KPD_VM_OUT plus the PASS_ENV variables and KPD_* of the caller); shares are
    extra host directories mounted read-write at their own path (the checkout always is). on_stdout,
    on_stderr, on_console get output as it arrives. Raises VMTimeout after timeout seconds (default
    $KPD_VM_TIMEOUT or 600), VMLockup as soon as the guest kernel reports a CPU stuck for LOCKUP_GIVE_UP
    seconds, and VMError when the VM failed to boot or to run the command.
    """
    if timeout is None:
        timeout = float(os.environ.get("KPD_VM_TIMEOUT") or DEFAULT_TIMEOUT)
    mem = mem or int(os.environ.get("KPD_VM_MEM") or 1024)
    smp = smp or int(os.environ.get("KPD_VM_SMP") or 2)
    argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else [os.fspath(a) for a in cmd]
    if not argv:
        raise ValueError("empty command")
    current = ensure_cache(quiet=True) if build else CACHE / "current"
    kernel = current / "vmlinux" if (current / "vmlinux").is_file() else current / "vmlinuz"
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise VMError("qemu-system-x86_64 not found (run scripts/vm/build.sh, which installs it)")

    workdir = os.path.realpath(os.fspath(cwd) if cwd is not None else os.getcwd())
    repo = os.path.realpath(REPO)
    # directories mounted back read-write at their own path, parents before children
    dirs: dict[str, str] = {repo: os.environ.get("KPD_VM_REPO_CACHE", "loose")}
    for s in shares:
        dirs.setdefault(os.path.realpath(os.fspath(s)), "none")
    if any(_is_under(workdir, h) for h in HIDDEN) and not any(_is_under(workdir, d) for d in dirs):
        dirs[workdir] = "none"
    for d in dirs:
        if not os.path.isdir(d):
            raise VMError(f"cannot share {d}: not a directory")

    results = Path(tempfile.mkdtemp(prefix="kpd-vm-"))
    qemu_cmd = [
        qemu, "-accel", os.environ.get("KPD_VM_ACCEL") or "tcg", "-cpu", "max",
        "-m", str(mem), "-smp", str(smp),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", str(kernel), "-initrd", str(current / "initrd.img"),
        "-append", KERNEL_ARGS + " " + os.environ.get("KPD_VM_APPEND", ""),
        "-serial", f"file:{results / 'console.log'}",
        "-device", "virtio-rng-pci",
        *_virtfs("/", "host", readonly=True),
        *_virtfs(str(results), "out"),
    ]
    job = []
    for i, (d, cache) in enumerate(sorted(dirs.items(), key=lambda kv: kv[0].count("/"))):
        tag = "repo" if d == repo else f"s{i}"
        qemu_cmd += _virtfs(d, tag)
        opts = "" if cache == "none" else f"cache={cache}"
        job.append(f"share {tag} {shlex.quote(d)} {shlex.quote(opts)}\n")
    (results / "job.sh").write_text("".join(job))
    envs = " ".join(shlex.quote(f"{k}={v}") for k, v in _vm_env(env, pass_env).items())
    qdir = shlex.quote(workdir)
    (results / "cmd.sh").write_text(
        f"cd {qdir} 2>/dev/null || {{ echo {qdir} >{VM_OUT}/cwd-error; exit 125; }}\n"
        f"exec env -i {envs} {shlex.join(argv)}\n"
    )
    for name in ("stdout", "stderr", "console.log"):
        (results / name).touch()

    streams = [(results / "stdout", on_stdout), (results / "stderr", on_stderr),
               (results / "console.log", on_console)]
    offsets = [0, 0, 0]

    console_text: list[str] = []

    def pump() -> None:
        for i, (path, callback) in enumerate(streams):
            if callback is None and path.name != "console.log":
                continue
            try:
                with open(path, "rb") as f:
                    f.seek(offsets[i])
                    chunk = f.read()
            except OSError:
                continue
            if chunk:
                offsets[i] += len(chunk)
                if path.name == "console.log":
                    console_text.append(chunk.decode("utf-8", "replace"))
                if callback is not None:
                    callback(chunk)

    def output_tail() -> str:
        out = _tail(_read(results / "stdout"), 15)
        err = _tail(_read(results / "stderr"), 15)
        return (f"\n--- command stdout (tail) ---\n{out}" if out.strip() else "") + (
            f"\n--- command stderr (tail) ---\n{err}" if err.strip() else "")

    start = time.monotonic()
    qemu_log = results / "qemu.log"
    try:
        with open(qemu_log, "wb") as log:
            proc = subprocess.Popen(qemu_cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        try:
            scanned = 0
            while proc.poll() is None:
                if time.monotonic() - start > timeout:
                    _kill(proc)
                    pump()
                    raise VMTimeout(f"kpd VM timed out after {timeout:g} s running {shlex.join(argv)}; "
                                    f"QEMU was killed{output_tail()}", _read(results / "console.log"),
                                    _read(qemu_log))
                pump()
                if len(console_text) != scanned:
                    scanned = len(console_text)
                    report = kernel_lockup("".join(console_text))
                    if report is not None:
                        _kill(proc)
                        raise VMLockup(f"the VM's kernel locked up (a CPU stuck for {LOCKUP_GIVE_UP} s or "
                                       f"more) running {shlex.join(argv)}; QEMU was killed after "
                                       f"{time.monotonic() - start:.0f} s{output_tail()}\n"
                                       f"--- the kernel's first report ---\n{report}",
                                       _read(results / "console.log"), _read(qemu_log))
                time.sleep(0.05)
        except BaseException:
            _kill(proc)
            raise
        pump()
        seconds = time.monotonic() - start
        console = _read(results / "console.log")
        if (results / "cwd-error").exists():
            raise VMError(f"working directory {workdir} does not exist inside the VM "
                          "(share it: --share DIR / shares=[...])", console)
        rc_file = results / "rc"
        if not rc_file.exists():
            init_error = _read(results / "init-error").strip()
            raise VMError(
                f"kpd VM did not run the command (qemu exit status {proc.returncode}"
                + (f"; init: {init_error}" if init_error else "") + ")",
                console, _read(qemu_log))
        try:
            returncode = int(rc_file.read_text().strip())
        except ValueError as e:
            raise VMError(f"bad exit status file in {results}: {e}", console) from None
        files = {}
        for p in results.iterdir():
            if p.is_file() and p.name not in {"stdout", "stderr", "console.log", "qemu.log", "rc",
                                              "job.sh", "cmd.sh"}:
                files[p.name] = p.read_bytes()
        return VMResult(argv, returncode, _read(results / "stdout"), _read(results / "stderr"),
                        console, seconds, files)
    finally:
        if keep:
            sys.stderr.write(f"kpd-vm: results kept in {results}\n")
        else:
            shutil.rmtree(results, ignore_errors=True)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --------------------------------------------------------------------------------------------- CLI
def _writer(stream: object) -> Callable[[bytes], None]:
    buf = stream.buffer  # type: ignore[attr-defined]

    def write(chunk: bytes) -> None:
        buf.write(chunk)
        buf.flush()

    return write


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="scripts/vm/run",
        description="Boot the kpd test VM (real IPVS), run COMMAND in it as root, power off. "
                    "COMMAND's stdout and stderr are copied to ours as they come and its exit status "
                    "becomes ours; 124 means the VM timed out, 125 that the VM itself failed (message "
                    "and console tail on stderr).",
        epilog="Environment: KPD_VM_TIMEOUT, KPD_VM_MEM, KPD_VM_SMP, KPD_VM_ACCEL (tcg; kvm where it "
               "works), KPD_VM_APPEND (extra kernel arguments, e.g. kpd.debug=1), KPD_VM_CACHE.")
    ap.add_argument("-c", dest="shell", metavar="STRING", help="run STRING with /bin/sh -c")
    ap.add_argument("-t", "--timeout", type=float, default=None,
                    help=f"seconds for the whole VM run (default $KPD_VM_TIMEOUT or {DEFAULT_TIMEOUT:g})")
    ap.add_argument("-e", "--env", action="append", default=[], metavar="NAME[=VALUE]",
                    help="set NAME in the VM (or pass the caller's NAME through)")
    ap.add_argument("-s", "--share", action="append", default=[], metavar="DIR",
                    help="also share host DIR read-write at the same path")
    ap.add_argument("-C", "--cwd", default=None, help="working directory in the VM (default: ours)")
    ap.add_argument("--mem", type=int, default=None, help="MiB of RAM (default 1024)")
    ap.add_argument("--smp", type=int, default=None, help="vCPUs (default 2)")
    ap.add_argument("--console", action="store_true", help="copy the VM's serial console to stderr")
    ap.add_argument("--keep", action="store_true", help="keep the per-run results directory")
    ap.add_argument("--time", action="store_true", help="print the VM's wall time on stderr")
    ap.add_argument("--build", action="store_true", help="only build or refresh the cache, then exit")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")
    args = ap.parse_args(argv)
    command: str | list[str]
    cmd_args = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.build:
        try:
            ensure_cache(force=True)
        except VMError as e:
            print(f"kpd-vm: {e}", file=sys.stderr)
            return 1
        return 0
    if args.shell is not None:
        if cmd_args:
            ap.error("give either -c STRING or COMMAND, not both")
        command = args.shell
    elif cmd_args:
        command = cmd_args
    else:
        ap.error("no command given")
    env: dict[str, str] = {}
    pass_env = []
    for item in args.env:
        name, eq, value = item.partition("=")
        if eq:
            env[name] = value
        else:
            pass_env.append(name)
    try:
        result = run_vm(command, timeout=args.timeout, cwd=args.cwd, env=env, pass_env=pass_env,
                        shares=args.share, mem=args.mem, smp=args.smp,
                        on_stdout=_writer(sys.stdout), on_stderr=_writer(sys.stderr),
                        on_console=_writer(sys.stderr) if args.console else None, keep=args.keep)
    except VMTimeout as e:
        print(f"kpd-vm: TIMEOUT: {e}", file=sys.stderr)
        return 124
    except VMError as e:
        print(f"kpd-vm: ERROR: {e}", file=sys.stderr)
        return 125
    if args.time:
        print(f"kpd-vm: {result.seconds:.2f} s (boot, command, power-off)", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
