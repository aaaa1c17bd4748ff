"""`make demo`: kpd's main job end to end -- two directors, three HTTP real servers, a client (docs/demo.md).

Runs scripts/demo/lab.py as root: on this host when its kernel has IPVS (`modprobe ip_vs` works), otherwise
inside the kpd QEMU VM (scripts/vm, stock Debian kernel with IPVS), in one VM boot. Exits with the lab's
status: 0 when every step met its expectation.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LAB = HERE / "lab.py"
VM_TIMEOUT = 600.0  # the whole VM run, boot to power-off


def host_has_ipvs() -> bool:
    if subprocess.run(["modprobe", "-q", "ip_vs"], capture_output=True).returncode != 0:
        return False
    return Path("/proc/net/ip_vs").exists()


def main() -> int:
    if os.geteuid() != 0:
        print("make demo needs root (network namespaces, IPVS): run it with sudo", file=sys.stderr)
        return 2
    start = time.monotonic()
    if host_has_ipvs():
        print("demo: this kernel has IPVS: the lab runs in network namespaces on this host", flush=True)
        try:
            code = subprocess.run([sys.executable, str(LAB)], cwd=REPO).returncode
        except KeyboardInterrupt:  # the lab got the same SIGINT and tears itself down
            code = 130
    else:
        print("demo: this kernel has no IPVS (modprobe ip_vs failed): the lab runs inside the kpd QEMU VM "
              "(scripts/vm, software emulation, a few minutes)", flush=True)
        spec = importlib.util.spec_from_file_location("kpdvm", REPO / "scripts" / "vm" / "kpdvm.py")
        assert spec is not None and spec.loader is not None
        kpdvm = importlib.util.module_from_spec(spec)
        sys.modules.setdefault("kpdvm", kpdvm)  # its dataclasses look their module up there
        spec.loader.exec_module(kpdvm)

        def out(chunk: bytes) -> None:
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()

        def err(chunk: bytes) -> None:
            sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()

        try:
            r = kpdvm.run_vm([sys.executable, str(LAB)], timeout=VM_TIMEOUT, cwd=REPO,
                             on_stdout=out, on_stderr=err)
            code = r.returncode
        except KeyboardInterrupt:  # run_vm killed QEMU: the lab died with the VM, nothing is left behind
            print("\ndemo: interrupted; the VM was stopped", file=sys.stderr)
            return 130
        except kpdvm.VMError as e:
            print(f"demo: the VM failed: {e}", file=sys.stderr)
            return 1
    print(f"demo: finished in {time.monotonic() - start:.0f} s (exit status {code})", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
