"""Director pairs with real IPVS, in the kpd test VM: what tests/pair/test_pair_vm.py checks.

Three labs of scripts/demo/lab.py (network namespaces: a client looping HTTP GETs to the VIP, two
directors, three busybox HTTP real servers), one after the other, each torn down before the next:

* ``nat``:   two kpd directors, LVS-NAT. Master crash (SIGKILL of its process group, link cut), the master
             returns and preempts, then a second crash during which a real server dies.
* ``dr``:    two kpd directors, LVS-DR: the real servers hold the VIP on lo (arp_ignore/arp_announce) and
             answer the client directly; a master crash.
* ``mixed``: kpd (a) and real keepalived (b) on the same rendered configuration, LVS-NAT. kpd MASTER with
             keepalived BACKUP; kpd crashes and keepalived takes over; kpd returns with a lower priority as
             BACKUP of keepalived; keepalived crashes and kpd takes over.

Writes $KPD_VM_OUT/report.json: {"labs": {lab: {step: measurements}}, "errors": [...]}, and each
director's log as <lab>-<director>.log. Run as root where IPVS works: `python tests/pair/pair_vm_scenario.py
[lab ...]`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("demo_lab", REPO / "scripts" / "demo" / "lab.py")
assert _spec is not None and _spec.loader is not None
lab_mod = importlib.util.module_from_spec(_spec)
sys.modules["demo_lab"] = lab_mod  # its dataclasses look their module up there
_spec.loader.exec_module(lab_mod)

Lab, Client, wait_for = lab_mod.Lab, lab_mod.Client, lab_mod.wait_for
VIP, PORT, REAL_SERVERS, PRIORITY = lab_mod.VIP, lab_mod.PORT, lab_mod.REAL_SERVERS, lab_mod.PRIORITY
ADVERT_INT = lab_mod.ADVERT_INT
CHECK_BOUND = lab_mod.DELAY_LOOP + (lab_mod.RETRY + 1) * lab_mod.CONNECT_TIMEOUT
OUT = Path(os.environ.get("KPD_VM_OUT", "/tmp"))
T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {text}", flush=True)


def master_down_interval(backup_priority: int) -> float:
    return 3 * ADVERT_INT + (256 - backup_priority) * ADVERT_INT / 256


def served(client: Any, since: float, until: float) -> dict[str, Any]:
    reqs = client.since(since, until)
    return {"requests": len(reqs), "failed": sum(not r.ok for r in reqs),
            "bodies": sorted({r.detail for r in reqs if r.ok})}


def traffic(lab: Any, client: Any, via: str, seconds: float = 3.0) -> dict[str, Any]:
    """The client's results over the next seconds, and the connections director ``via`` scheduled."""
    before = lab.ipvs_conns(via)
    t = time.monotonic()
    time.sleep(seconds)
    return {**served(client, t, time.monotonic()), "via": via, "conns": lab.ipvs_conns(via) - before}


def crash(lab: Any, client: Any, master: str, backup: str, backup_priority: int,
          kill_rs: int | None = None) -> dict[str, Any]:
    """SIGKILL of ``master``'s daemon (and its link cut); optionally real server ``kill_rs`` dies 1 s into
    the outage. Measures when the VIP is on ``backup`` and when the client is served again through it."""
    conns = lab.ipvs_conns(backup)
    tk = time.monotonic()
    lab.kill_director(master)
    t_cut = time.monotonic()  # from here on, only the backup can answer a new request
    t_rs = None
    if kill_rs is not None:
        time.sleep(max(0.0, tk + 1.0 - time.monotonic()))
        t_rs = time.monotonic()
        lab.httpd(kill_rs, up=False)
    on_backup = wait_for(lambda: lab.has_vip(backup), 60, 0.05)
    t_vip = time.monotonic() - tk if on_backup else None
    first = wait_for(lambda: client.success_after(t_cut), 60, 0.05)
    removed_after = None
    if kill_rs is not None:
        victim = REAL_SERVERS[kill_rs - 1]
        gone = wait_for(lambda: (r := lab.ipvs_reals(backup)) is not None and victim not in r, 60, 0.1)
        removed_after = time.monotonic() - t_rs if gone else None
    time.sleep(3)  # traffic after the takeover
    t_end = time.monotonic()
    steady_from = max(first.start if first else t_end, t_rs + removed_after if removed_after else 0.0)
    after = client.since(steady_from, t_end)
    return {
        "master_down_interval": master_down_interval(backup_priority),
        "vip_on_backup_after": t_vip,
        "served_again_after": (first.end - tk) if first else None,
        "failed_after_first_success": sum(not r.ok for r in after),
        "requests_after": len(after),
        "bodies_after": sorted({r.detail for r in after if r.ok}),
        "conns_through_backup": lab.ipvs_conns(backup) - conns,
        "backup_state": lab.state(backup),
        "rs_removed_on_backup_after": removed_after,
        "check_bound": CHECK_BOUND,
    }


def preempt(lab: Any, client: Any, d: str, other: str) -> dict[str, Any]:
    """Director ``d`` (the higher priority) comes back after a crash; it must take the VIP back."""
    lab.reboot_director(d)
    t = time.monotonic()
    lab.start_director(d)
    on_d = wait_for(lambda: lab.has_vip(d) and not lab.has_vip(other), 180, 0.3)
    t_vip = time.monotonic() - t if on_d else None
    other_backup = wait_for(lambda: lab.state(other) == "BACKUP", 60, 0.5)
    wait_for(lambda: lab.ipvs_reals(d) == lab_mod.WEIGHTS, 60, 0.5)
    return {"vip_on_returning_master_after": t_vip, "other_backup": bool(other_backup), "state": lab.state(d),
            "traffic": traffic(lab, client, via=d)}


def reply_macs(lab: Any, seconds: float = 4.0) -> dict[str, Any]:
    """Source MAC addresses of the TCP segments from VIP:80 that reach the client (tcpdump -e)."""
    p = subprocess.run(["ip", "netns", "exec", lab.ns["client"], "timeout", str(seconds), "tcpdump", "-e",
                        "-n", "-l", "-c", "40", "-i", "eth0", f"tcp and src host {VIP} and src port {PORT}"],
                       capture_output=True, text=True, timeout=seconds + 30)
    macs = re.findall(r"^\S+ ([0-9a-f:]{17}) > ", p.stdout, re.M)
    names = {lab.mac(n): n for n in ("a", "b", "rs1", "rs2", "rs3")}
    return {"segments": len(macs), "senders": sorted({names.get(m, m) for m in macs})}


# ------------------------------------------------------------------------------------------- labs
def start(lab: Any) -> tuple[Any, dict[str, Any]]:
    lab.build()
    for d in ("a", "b"):
        lab.render(d)
    up_a = lab.bring_up("a", master=True)
    up_b = lab.bring_up("b", master=False)
    client = lab.start_client()
    ok = wait_for(lambda: {r.detail for r in client.since(0) if r.ok} >= {"rs1", "rs2", "rs3"}, 60, 0.2)
    if not ok:
        raise RuntimeError(f"the client is not served by every real server: {client.since(0)[-5:]}")
    return client, {"a_up_after": up_a, "b_up_after": up_b, "states": [lab.state("a"), lab.state("b")],
                    "traffic": traffic(lab, client, via="a")}


def lab_nat(lab: Any, steps: dict[str, Any]) -> None:
    client, steps["start"] = start(lab)
    say(f"nat: up {steps['start']}")
    steps["crash"] = crash(lab, client, "a", "b", PRIORITY["b"])
    say(f"nat: crash {steps['crash']}")
    steps["preempt"] = preempt(lab, client, "a", "b")
    say(f"nat: preempt {steps['preempt']}")
    steps["crash_with_rs_death"] = crash(lab, client, "a", "b", PRIORITY["b"], kill_rs=2)
    say(f"nat: crash with a real server dying {steps['crash_with_rs_death']}")


def lab_dr(lab: Any, steps: dict[str, Any]) -> None:
    client, steps["start"] = start(lab)
    steps["start"]["ipvs_a"] = lab.ipvs_stats("a")
    steps["start"]["replies"] = reply_macs(lab)
    steps["start"]["rs_lo"] = [lab.nsx(f"rs{i}", "ip -o -4 addr show dev lo") for i in (1, 2, 3)]
    steps["start"]["arp_ignore"] = [lab.nsx(f"rs{i}", "sysctl -n net.ipv4.conf.eth0.arp_ignore").strip()
                                    for i in (1, 2, 3)]
    say(f"dr: up {steps['start']}")
    steps["crash"] = crash(lab, client, "a", "b", PRIORITY["b"])
    steps["crash"]["ipvs_b"] = lab.ipvs_stats("b")
    steps["crash"]["replies"] = reply_macs(lab)
    say(f"dr: crash {steps['crash']}")


def lab_mixed(lab: Any, steps: dict[str, Any]) -> None:
    client, steps["start"] = start(lab)
    say(f"mixed: up {steps['start']}")
    steps["kpd_crash"] = crash(lab, client, "a", "b", PRIORITY["b"])
    say(f"mixed: kpd master crashed, keepalived took over {steps['kpd_crash']}")
    # kpd returns below keepalived: BACKUP of a keepalived MASTER
    low = 50
    lab.reboot_director("a")
    lab.render("a", f"node.priority={low}", "node.state=BACKUP")
    took = lab.bring_up("a", master=False)
    steps["kpd_backup"] = {"up_after": took, "states": [lab.state("a"), lab.state("b")],
                           "vip": [lab.has_vip("a"), lab.has_vip("b")],
                           "traffic": traffic(lab, client, via="b"), "ipvs_b": lab.ipvs_reals("b"),
                           "weights": lab_mod.WEIGHTS}
    say(f"mixed: kpd back as BACKUP {steps['kpd_backup']}")
    steps["keepalived_crash"] = crash(lab, client, "b", "a", low)
    say(f"mixed: keepalived master crashed, kpd took over {steps['keepalived_crash']}")


LABS = {"nat": (lab_nat, "NAT", {"a": "kpd", "b": "kpd"}),
        "dr": (lab_dr, "DR", {"a": "kpd", "b": "kpd"}),
        "mixed": (lab_mixed, "NAT", {"a": "kpd", "b": "keepalived"})}


def main() -> int:
    if os.geteuid() != 0:
        print("needs root (namespaces, IPVS)", file=sys.stderr)
        return 2
    lab_mod.remove_stale()
    report: dict[str, Any] = {"labs": {}, "errors": []}
    for name in sys.argv[1:] or list(LABS):
        run, forwarding, daemons = LABS[name]
        lab = Lab(forwarding=forwarding, daemons=daemons, tag=name)
        steps: dict[str, Any] = {}
        report["labs"][name] = steps
        say(f"{name}: {forwarding}, director a {daemons['a']}, b {daemons['b']}")
        try:
            run(lab, steps)
        except Exception as e:  # recorded; the next lab still runs
            report["errors"].append(f"{name}: {e}\n{traceback.format_exc()}")
            say(f"{name}: FAILED: {e}")
        finally:
            for d, log in lab.logs.items():
                if log.exists():
                    shutil.copy(log, OUT / f"{name}-{d}.log")
            lab.close()
            if lab.left_behind():
                report["errors"].append(f"{name}: namespaces left behind: {lab.left_behind()}")
        (OUT / "report.json").write_text(json.dumps(report, indent=1, default=str))
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
