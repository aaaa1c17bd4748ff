"""The Checkers end to end on a real IPVS: run inside the kpd test VM by test_checkers_vm.py.

Builds a namespace lab (director = the VM's root namespace; real servers rs1..rs4 behind a bridge; a client
namespace in front), runs `kpd start` on one configuration, drives real failures (HTTP servers stopped and
restarted, a MISC_CHECK script's exit code, `ipvsadm -C` behind kpd's back, a reload, a SIGSTOPped checker
child), sends client traffic through the VIP, then runs real keepalived's checker on the same
configuration. `ipvsadm -Ln` is the oracle throughout. The SMTP alerts (to a local SMTP server) and the
lvs_notify_fifo lines (read by an lvs_notify_fifo_script) of one real server going down and up are
recorded for both daemons. Writes a JSON report to $KPD_VM_OUT/report.json;
the pytest side asserts on it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from scenario_tools import ipvs, sh, wait_for

OUT = Path(os.environ.get("KPD_VM_OUT", "/tmp"))
WORK = Path("/tmp/kpd-ck")
RUNTIME = Path("/run/kpd-ck")
PY = sys.executable
REPO = Path(__file__).resolve().parents[2]
report: dict[str, object] = {"steps": {}, "errors": []}
T0 = time.monotonic()

DELAY_LOOP = 1.0
CONNECT_TIMEOUT = 1.0
RETRY = 1
DELAY_BEFORE_RETRY = 1.0
SMTP_PORT = 2525


class Inbox:
    """An SMTP server's mailbox (aiosmtpd handler): (subject, body) of every mail, in order."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        head, _, body = envelope.content.decode(errors="replace").partition("\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.split("\r\n") if ": " in line)
        with self.lock:
            self.mails.append((headers.get("Subject", ""), body.strip()))
        return "250 OK"

    def since(self, start: int) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.mails[start:])


INBOX = Inbox()


def smtp_server() -> None:
    from aiosmtpd.controller import Controller

    Controller(INBOX, hostname="127.0.0.1", port=SMTP_PORT).start()


def fifo_lines() -> list[str]:
    try:
        return (WORK / "fifo_lines").read_text().splitlines()
    except OSError:
        return []


def alerts_since(mark: tuple[int, int]) -> dict[str, list]:
    """The mails and FIFO lines since ``mark`` (from :func:`alerts_mark`), sorted (their order across
    checkers running at once is not meaningful)."""
    mails, lines = mark
    return {"mails": sorted(map(list, INBOX.since(mails))), "fifo": sorted(fifo_lines()[lines:])}


def alerts_mark() -> tuple[int, int]:
    return len(INBOX.since(0)), len(fifo_lines())








METRICS_PORT = 9650


def metrics() -> list[list[object]]:
    """The parent's metrics endpoint, parsed with prometheus_client: [name, labels, value] of every sample."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError as err:
        print(f"metrics: {err}", flush=True)
        return []
    return [[s.name, s.labels, s.value] for fam in text_string_to_metric_families(text) for s in fam.samples]


def _sample(samples: list[list[object]], name: str, **labels: str) -> float:
    return sum(float(v) for n, got, v in samples  # type: ignore[arg-type, misc]
               if n == name and all(got.get(k) == x for k, x in labels.items()))  # type: ignore[attr-defined]


def step(name: str, **data: object) -> None:
    data["at"] = round(time.monotonic() - T0, 2)
    report["steps"][name] = data  # type: ignore[index]
    print(f"[{data['at']:7.2f}] {name}: {json.dumps(data, default=str)[:400]}", flush=True)


def httpd(i: int, up: bool) -> None:
    pidfile = WORK / f"httpd{i}.pid"
    if up:
        proc = subprocess.Popen(["ip", "netns", "exec", f"rs{i}", "busybox", "httpd", "-f", "-p",
                                 f"10.0.1.1{i}:8080", "-h", str(WORK / f"www{i}")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pidfile.write_text(str(proc.pid))
        wait_for(lambda: subprocess.run(["ip", "netns", "exec", f"rs{i}", "curl", "-s", "-o", "/dev/null",
                                         "-m", "1", f"http://10.0.1.1{i}:8080/health"]).returncode == 0, 10)
    else:
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def fetch(n: int, vip: str = "10.0.2.100") -> list[str]:
    out = []
    for _ in range(n):
        p = subprocess.run(["ip", "netns", "exec", "client", "curl", "-sS", "-m", "3", f"http://{vip}/"],
                           capture_output=True, text=True, timeout=10)
        out.append(p.stdout.strip() if p.returncode == 0 else f"error {p.returncode}")
    return out


def lab() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    sh("sysctl -qw net.ipv4.ip_forward=1")
    sh("ip link add br0 type bridge && ip addr add 10.0.1.1/24 dev br0 && ip link set br0 up")
    for i in range(1, 5):
        ns = f"rs{i}"
        sh(f"ip netns add {ns} && ip link add v{i} type veth peer name eth0 netns {ns}")
        sh(f"ip link set v{i} master br0 up")
        sh(f"ip -n {ns} addr add 10.0.1.1{i}/24 dev eth0 && ip -n {ns} link set eth0 up && "
           f"ip -n {ns} link set lo up && ip -n {ns} route add default via 10.0.1.1")
        www = WORK / f"www{i}"
        www.mkdir(exist_ok=True)
        (www / "index.html").write_text(f"rs{i}\n")
        (www / "health").write_text("ok\n")
    sh("ip netns add client && ip link add cl0 type veth peer name eth0 netns client")
    sh("ip addr add 10.0.2.1/24 dev cl0 && ip link set cl0 up && "
       "ip addr add 10.0.2.100/32 dev cl0 && ip addr add 10.0.2.101/32 dev cl0")
    sh("ip -n client addr add 10.0.2.2/24 dev eth0 && ip -n client link set eth0 up && "
       "ip -n client link set lo up && ip -n client route add default via 10.0.2.1")
    for i in range(1, 5):
        httpd(i, True)


def config(rs3_weight: int = 1) -> str:
    check = (f"connect_timeout {CONNECT_TIMEOUT:g}\n            retry {RETRY}\n"
             f"            delay_before_retry {DELAY_BEFORE_RETRY:g}\n            warmup 0")
    return f"""
global_defs {{
    router_id kpd-vm
    notification_email {{
        ops@example.com
    }}
    notification_email_from kpd@example.com
    smtp_server 127.0.0.1 {SMTP_PORT}
    lvs_notify_fifo {WORK}/lvs.fifo
    lvs_notify_fifo_script {WORK}/fifo_reader
}}
virtual_server 10.0.2.100 80 {{
    delay_loop {DELAY_LOOP:g}
    lb_algo rr
    lb_kind NAT
    protocol TCP
    sorry_server 10.0.1.14 8080
    quorum_up "{WORK}/mark quorum_up"
    quorum_down "{WORK}/mark quorum_down"
    real_server 10.0.1.11 8080 {{
        weight 1
        HTTP_GET {{
            url {{
                path /health
                status_code 200
            }}
            {check}
        }}
    }}
    real_server 10.0.1.12 8080 {{
        weight 1
        HTTP_GET {{
            url {{
                path /health
            }}
            {check}
        }}
    }}
    real_server 10.0.1.13 8080 {{
        weight {rs3_weight}
        TCP_CHECK {{
            {check}
        }}
    }}
}}
virtual_server 10.0.2.101 80 {{
    delay_loop {DELAY_LOOP:g}
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    inhibit_on_failure
    real_server 10.0.1.11 8080 {{
        weight 3
        MISC_CHECK {{
            misc_path "{WORK}/misc"
            misc_timeout 2
            misc_dynamic
            warmup 0
        }}
    }}
    real_server 10.0.1.12 8080 {{
        weight 2
        TCP_CHECK {{
            {check}
        }}
    }}
}}
virtual_server fwmark 5 {{
    delay_loop {DELAY_LOOP:g}
    lb_algo wlc
    lb_kind DR
    real_server 10.0.1.13 80 {{
        weight 2
    }}
}}
virtual_server 10.0.2.102 53 {{
    delay_loop {DELAY_LOOP:g}
    lb_algo sh
    lb_kind TUN
    protocol UDP
    persistence_timeout 300
    real_server 10.0.1.14 53 {{
        weight 1
    }}
}}
"""


EXPECTED = {
    "TCP 10.0.2.100:80 rr": {"10.0.1.11:8080": ["Masq", 1], "10.0.1.12:8080": ["Masq", 1],
                             "10.0.1.13:8080": ["Masq", 1]},
    "TCP 10.0.2.101:80 wrr": {"10.0.1.11:8080": ["Masq", 3], "10.0.1.12:8080": ["Masq", 2]},
    "FWM 5 wlc": {"10.0.1.13:0": ["Route", 2]},  # DR to a fwmark service: port 0 (as keepalived does)
    "UDP 10.0.2.102:53 sh persistent 300": {"10.0.1.14:53": ["Tunnel", 1]},
}


def checker_pid() -> int | None:
    out = sh("pgrep -x kpd-checker", check=False).split()
    return int(out[0]) if out else None


CHECK_STATUS = RUNTIME / "check-status.json"


def check_status() -> dict:
    """The Checkers child's check-status.json ({} while there is none)."""
    try:
        return json.loads(CHECK_STATUS.read_text())
    except (OSError, ValueError):
        return {}


def check_stats() -> dict:
    return check_status().get("stats", {})


def _status_version() -> tuple[int, int] | None:
    try:
        st = CHECK_STATUS.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def fresh_check_stats(timeout: float = 30) -> dict:
    """The stats of a check-status.json written after this call, so they count every IPVS operation done
    before it (the child coalesces its writes; a resync every 5 s always leads to one). {} if none came."""
    before = _status_version()
    if wait_for(lambda: _status_version() not in (None, before), timeout) is None:
        return {}
    return check_stats()


def every_check_passed(doc: dict) -> bool:
    """Whether every checker in a check-status document has a passing last result (so has given its
    verdict, and the operations that verdict needed are done)."""
    checks = [c for vs in doc.get("virtual_servers", []) for rs in vs["real_servers"] for c in rs["checks"]]
    return bool(checks) and all(c["last_ok"] is True for c in checks)


def kpd_scenario() -> None:
    conf = WORK / "keepalived.conf"
    conf.write_text(config())
    (WORK / "mark").write_text(f"#!/bin/sh\necho \"$1\" >> {WORK}/marks\n")
    (WORK / "misc").write_text(f"#!/bin/sh\nexit $(cat {WORK}/misc_code)\n")
    (WORK / "misc_code").write_text("0\n")
    reader = f'#!/bin/sh\nwhile read line; do echo "$line" >> {WORK}/fifo_lines; done < "$1"\n'
    (WORK / "fifo_reader").write_text(reader)
    os.chmod(WORK / "mark", 0o755)
    os.chmod(WORK / "misc", 0o755)
    os.chmod(WORK / "fifo_reader", 0o755)
    log = open(OUT / "kpd.log", "w")  # noqa: SIM115 - open for the daemon's whole life
    started = time.monotonic()
    kpd = subprocess.Popen([PY, "-m", "keepalived_py", "start", "--config", str(conf), "--runtime-dir",
                            str(RUNTIME), "--log-console", "--log-level", "debug",
                            "--metrics-listen", f"127.0.0.1:{METRICS_PORT}"],
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        took = wait_for(lambda: ipvs() == EXPECTED, 90, 0.2)
        wait_for(lambda: "quorum_up" in _marks(), 20)  # the script runs beside the programming of the table
        step("start", seconds=round(time.monotonic() - started, 2) if took is not None else None,
             table=ipvs(), expected=EXPECTED, marks=_marks())
        first = ipvs()
        report["kpd_table"] = first

        bodies = fetch(6)
        step("traffic", bodies=bodies)
        # the kernel's counters of the VIP's service, as the parent reads them for a scrape
        took = wait_for(lambda: _sample(metrics(), "kpd_ipvs_service_connections_total",
                                        service="TCP 10.0.2.100:80") >= 6, 30)
        step("metrics_traffic", seconds=took, samples=metrics())

        bound = DELAY_LOOP + (RETRY + 1) * CONNECT_TIMEOUT + RETRY * DELAY_BEFORE_RETRY
        mark = alerts_mark()
        httpd(2, False)
        t0 = time.monotonic()
        took = wait_for(lambda: "10.0.1.12:8080" not in ipvs().get("TCP 10.0.2.100:80 rr", {}), bound + 15)
        # the same server's TCP_CHECK in the inhibit_on_failure service runs on its own schedule
        wait_for(lambda: ipvs().get("TCP 10.0.2.101:80 wrr", {}).get("10.0.1.12:8080") == ["Masq", 0],
                 t0 + bound + 15 - time.monotonic())
        inhibited_after = round(time.monotonic() - t0, 2)
        t101 = ipvs().get("TCP 10.0.2.101:80 wrr", {})
        step("rs_down", seconds=took, bound=bound, table=ipvs(), inhibited=t101.get("10.0.1.12:8080"),
             inhibited_after=inhibited_after)
        step("traffic_after_removal", bodies=fetch(12))
        took = wait_for(lambda: any(n == "kpd_real_server_up" and "10.0.1.12" in str(labels) and v == 0
                                    for n, labels, v in metrics()), 30)
        step("metrics_rs_down", seconds=took, samples=metrics())

        httpd(2, True)
        took = wait_for(lambda: ipvs() == EXPECTED, bound + 15)
        step("rs_up", seconds=took, table=ipvs())
        time.sleep(bound)  # every checker of the server has given its verdict and alerted
        report["kpd_alerts"] = alerts_since(mark)

        weights = []
        for code, want in ((12, 10), (1, 0), (0, 3)):
            (WORK / "misc_code").write_text(f"{code}\n")
            took = wait_for(lambda w=want: ipvs().get("TCP 10.0.2.101:80 wrr", {}).get("10.0.1.11:8080",
                                                                                       [0, -1])[1] == w, 20)
            weights.append({"exit": code, "want": want, "seconds": took,
                            "got": ipvs().get("TCP 10.0.2.101:80 wrr", {}).get("10.0.1.11:8080")})
        step("misc_dynamic", results=weights)

        for i in (1, 2, 3):
            httpd(i, False)
        sorry = {"10.0.1.14:8080": ["Masq", 1]}
        took = wait_for(lambda: ipvs().get("TCP 10.0.2.100:80 rr") == sorry, bound + 20)
        wait_for(lambda: _marks()[-1:] == ["quorum_down"], 20)
        step("sorry_server", seconds=took, table=ipvs().get("TCP 10.0.2.100:80 rr"), marks=_marks(),
             bodies=fetch(2))
        for i in (1, 2, 3):
            httpd(i, True)
        took = wait_for(lambda: ipvs() == EXPECTED, bound + 20)
        wait_for(lambda: _marks()[-1:] == ["quorum_up"], 20)
        step("quorum_back", seconds=took, table=ipvs(), marks=_marks())

        sh("ipvsadm -C")
        took = wait_for(lambda: ipvs() == EXPECTED, 20)
        step("external_flush", seconds=took, table=ipvs())

        before = ipvs()
        ops_before = fresh_check_stats().get("ipvs_ops")  # the repair's operations included
        conf.write_text(config(rs3_weight=4))
        reload = subprocess.run([PY, "-m", "keepalived_py", "reload", "--runtime-dir", str(RUNTIME)],
                                capture_output=True, text=True, timeout=60)
        want = json.loads(json.dumps(EXPECTED))
        want["TCP 10.0.2.100:80 rr"]["10.0.1.13:8080"] = ["Masq", 4]
        took = wait_for(lambda: ipvs() == want, 30)
        ops_after = fresh_check_stats().get("ipvs_ops")
        step("reload_weight", seconds=took, exit=reload.returncode, output=reload.stdout + reload.stderr,
             before=before, after=ipvs(), ops_before=ops_before, ops_after=ops_after,
             ops=None if ops_before is None or ops_after is None else ops_after - ops_before)

        broken = config(rs3_weight=4).replace("virtual_server 10.0.2.101", "virtual_server 10.0.2.101 {")
        conf.write_text(broken)
        bad = subprocess.run([PY, "-m", "keepalived_py", "reload", "--runtime-dir", str(RUNTIME)],
                             capture_output=True, text=True, timeout=60)
        time.sleep(2.0)
        status = subprocess.run([PY, "-m", "keepalived_py", "status", "--json", "--runtime-dir",
                                 str(RUNTIME)], capture_output=True, text=True, timeout=60)
        step("reload_broken", exit=bad.returncode, output=bad.stdout + bad.stderr, table=ipvs(),
             reload=json.loads(status.stdout).get("reload") if status.returncode == 0 else status.stderr)
        conf.write_text(config(rs3_weight=4))

        # Starved of CPU for a second (less than its hung timeout): the checks due meanwhile run late, the
        # parent's status and metrics say so, and no healthy real server is failed for it.
        def late_checks() -> int | None:
            st = subprocess.run([PY, "-m", "keepalived_py", "status", "--json", "--runtime-dir",
                                 str(RUNTIME)], capture_output=True, text=True, timeout=60)
            if st.returncode != 0:
                return None
            return json.loads(st.stdout)["children"]["checker"].get("late_checks")

        late_before = late_checks() or 0
        starved = checker_pid()
        os.kill(starved, signal.SIGSTOP)  # type: ignore[arg-type]
        time.sleep(1.0)
        os.kill(starved, signal.SIGCONT)  # type: ignore[arg-type]
        took = wait_for(lambda: (late_checks() or 0) > late_before, 30)
        late_metric = wait_for(lambda: _sample(metrics(), "kpd_checks_late_total") > late_before, 30)
        disturbed = 0
        for _ in range(20):  # 2 s more of checks
            disturbed += ipvs() != want
            time.sleep(0.1)
        step("checker_starved", seconds=took, late_before=late_before, late_after=late_checks(),
             metric_seconds=late_metric, late_metric=_sample(metrics(), "kpd_checks_late_total"),
             same_child=checker_pid() == starved, table_disturbed=disturbed, table=ipvs(), want=want)

        old = checker_pid()
        os.kill(old, signal.SIGSTOP)  # type: ignore[arg-type]
        stopped = time.monotonic()
        short: list[float] = []
        new = None
        while time.monotonic() - stopped < 60:
            if ipvs() != want:
                short.append(round(time.monotonic() - stopped, 2))
            new = checker_pid()
            if new is not None and new != old:
                break
            time.sleep(0.05)
        respawned = time.monotonic() - stopped
        # The new child runs only once the old one has been reaped, and the old one wrote check-status.json
        # as it stopped: its ipvs_ops of the whole scenario so far. The new child's first write can come
        # seconds later (Python starting in a slow VM): take the old file away, so that whatever appears
        # from now on is the new child's own.
        predecessor_ops = check_stats().get("ipvs_ops")
        CHECK_STATUS.unlink(missing_ok=True)
        # settled: the new child has adopted the table and every one of its checks has passed (each gave its
        # first verdict); then a status written after that counts every operation those verdicts caused
        settled = wait_for(lambda: every_check_passed(check_status()), 90)
        stats = fresh_check_stats() if settled is not None else {}
        step("checker_hung", old=old, new=new, respawn_seconds=round(respawned, 2), table_disturbed_at=short,
             table=ipvs(), new_child_ops=stats.get("ipvs_ops"), new_child_stats=stats, settled=settled,
             predecessor_ops=predecessor_ops)
        status = subprocess.run([PY, "-m", "keepalived_py", "status", "--runtime-dir", str(RUNTIME)],
                                capture_output=True, text=True, timeout=60)
        step("status", exit=status.returncode, text=status.stdout + status.stderr)
    finally:
        kpd.send_signal(signal.SIGTERM)
        try:
            kpd.wait(60)
        except subprocess.TimeoutExpired:
            kpd.kill()
        step("stop", exit=kpd.returncode, table=ipvs())


def _marks() -> list[str]:
    try:
        return (WORK / "marks").read_text().split()
    except OSError:
        return []


def keepalived_scenario() -> None:
    """Real keepalived's checker on the same configuration: the same kernel table."""
    conf = WORK / "keepalived.conf"
    conf.write_text(config())
    sh("ipvsadm -C")
    proc = subprocess.Popen(["keepalived", "-n", "-l", "-C", "-f", str(conf), "-p", str(WORK / "ka.pid"),
                             "-c", str(WORK / "ka-check.pid")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        took = wait_for(lambda: ipvs() == EXPECTED, 60, 0.2)
        time.sleep(2 * DELAY_LOOP)
        step("keepalived", seconds=took, table=ipvs())
        report["keepalived_table"] = ipvs()
        # the same real server down and up: the same alerts
        bound = DELAY_LOOP + (RETRY + 1) * CONNECT_TIMEOUT + RETRY * DELAY_BEFORE_RETRY
        time.sleep(bound)
        mark = alerts_mark()
        httpd(2, False)
        wrr = "TCP 10.0.2.101:80 wrr"
        wait_for(lambda: ipvs().get(wrr, {}).get("10.0.1.12:8080") == ["Masq", 0], bound + 15)
        wait_for(lambda: "10.0.1.12:8080" not in ipvs().get("TCP 10.0.2.100:80 rr", {}), bound + 15)
        httpd(2, True)
        wait_for(lambda: ipvs() == EXPECTED, bound + 15)
        time.sleep(bound)
        report["keepalived_alerts"] = alerts_since(mark)
        step("keepalived_alerts", **report["keepalived_alerts"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> int:
    try:
        lab()
        smtp_server()
        kpd_scenario()
        keepalived_scenario()
    except Exception as err:
        import traceback

        report["errors"].append(traceback.format_exc())  # type: ignore[union-attr]
        print(f"scenario failed: {err!r}", file=sys.stderr)
    (OUT / "report.json").write_text(json.dumps(report, indent=1, default=str))
    if os.environ.get("KPD_SCENARIO_LOG"):
        print((OUT / "kpd.log").read_text()[-20000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
