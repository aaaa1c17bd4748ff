"""VRRP daemons in lab nodes: configurations, kpd and real keepalived, their state, and the wire they make.

::

    with Lab(("a", "b")) as lab:
        a = Daemon(lab, "a", Vrrp(priority=200, state="MASTER"))
        b = Daemon(lab, "b", Vrrp(priority=100))          # kind="keepalived" for the real one
        with lab.capture(filter=VRRP_FILTER) as cap:
            a.start(); b.start()
            wait_until(lambda: a.state() == "MASTER")
            a.kill()                                       # SIGKILL: a crash (kpd: parent and child)
            adverts(cap.packets())                         # what went over the bridge, with timestamps

One configuration text serves both daemons (kpd reads keepalived's syntax). kpd state comes from its
``vrrp-status.json`` (written after every transition and at exit); keepalived's from whether it holds the
virtual address. Tests never look at one node's state without the other: "exactly one master" is checked on
the addresses (what matters to traffic) and on the capture (who sends adverts).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface
from pathlib import Path
from typing import Any

import pytest

from lab import Capture, Lab, Packet

KPD = "kpd"
KEEPALIVED = "keepalived"
INSTANCE = "VI_1"
VIP4 = "192.0.2.100/24"
VIP6 = "2001:db8::100/64"
VRRP_GROUP4 = IPv4Address("224.0.0.18")
VRRP_GROUP6 = IPv6Address("ff02::12")
#: What the VRRP tests capture on the bridge: adverts, ARP, and ICMPv6 (unsolicited NAs).
VRRP_FILTER = "ip proto 112 or ip6 proto 112 or arp or icmp6"
STATUS_FILE = "vrrp-status.json"

IPAddress = IPv4Address | IPv6Address


# --- configuration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """A ``vrrp_script`` tracked by the instance."""

    name: str
    path: str
    weight: int = 0
    interval: float = 1
    fall: int = 1
    rise: int = 1


@dataclass(frozen=True)
class Vrrp:
    """One ``vrrp_instance`` (``VI_1`` on ``eth0``) and the global_defs it needs."""

    priority: int = 100
    version: int = 3
    vrid: int = 51
    advert_int: float = 1.0
    family: int = 4
    vips: tuple[str, ...] = ()  # default: VIP4 or VIP6 by family
    auth_pass: str | None = None
    #: unicast: the addresses of the peers (the node's own address is the unicast_src_ip)
    unicast_peers: tuple[str, ...] = ()
    state: str = "BACKUP"
    nopreempt: bool = False
    scripts: tuple[Script, ...] = ()
    global_extra: tuple[str, ...] = ()
    instance_extra: tuple[str, ...] = ()
    #: configuration lines after the instance (more instances, a vrrp_sync_group)
    trailer: tuple[str, ...] = ()

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.vips or ((VIP4,) if self.family == 4 else (VIP6,))

    @property
    def vip(self) -> str:
        """The first virtual address, without its prefix length."""
        return str(ip_interface(self.addresses[0]).ip)

    def master_down_interval(self, priority: int | None = None) -> float:
        """RFC Master_Down_Interval of a backup of ``priority`` (default ours) hearing this interval."""
        return 3 * self.advert_int + self.skew_time(priority)

    def skew_time(self, priority: int | None = None) -> float:
        prio = self.priority if priority is None else priority
        if self.version == 3:
            return (256 - prio) * self.advert_int / 256
        return (256 - prio) / 256


def render(conf: Vrrp, *, router_id: str, source: str | None = None, ifname: str = "eth0") -> str:
    """keepalived.conf text for ``conf`` (``source``: the unicast_src_ip, needed with unicast peers)."""
    lines = ["global_defs {", f"    router_id {router_id}", f"    vrrp_version {conf.version}"]
    if conf.scripts:
        lines += ["    enable_script_security", "    script_user root"]
    lines += [f"    {x}" for x in conf.global_extra]
    lines.append("}")
    for s in conf.scripts:
        lines += [
            f"vrrp_script {s.name} {{",
            f'    script "{s.path}"',
            f"    interval {s.interval:g}",
            f"    weight {s.weight}",
            f"    fall {s.fall}",
            f"    rise {s.rise}",
            "}",
        ]
    lines += [
        f"vrrp_instance {INSTANCE} {{",
        f"    state {conf.state}",
        f"    interface {ifname}",
        f"    virtual_router_id {conf.vrid}",
        f"    priority {conf.priority}",
        f"    advert_int {conf.advert_int:g}",
    ]
    if conf.version == 2 or conf.family == 6:
        lines.append(f"    version {conf.version}")
    if conf.nopreempt:
        lines.append("    nopreempt")
    if conf.auth_pass is not None:
        lines += [
            "    authentication {",
            "        auth_type PASS",
            f"        auth_pass {conf.auth_pass}",
            "    }",
        ]
    if conf.unicast_peers:
        if source is None:
            raise ValueError("unicast needs the node's own address")
        lines.append(f"    unicast_src_ip {source}")
        lines += ["    unicast_peer {", *(f"        {p}" for p in conf.unicast_peers), "    }"]
    if conf.scripts:
        lines += ["    track_script {", *(f"        {s.name}" for s in conf.scripts), "    }"]
    lines += [f"    {x}" for x in conf.instance_extra]
    lines += ["    virtual_ipaddress {", *(f"        {v}" for v in conf.addresses), "    }", "}"]
    lines += conf.trailer
    return "\n".join(lines) + "\n"


_stale_cleaned = False


@contextlib.contextmanager
def open_lab(nodes: Sequence[str], *tools: str) -> Iterator[Lab]:
    """A lab of ``nodes`` for one test (skipped without root or ``tools``); its daemons' logs are printed."""
    global _stale_cleaned
    reason = lab_unavailable(*tools)
    if reason:
        pytest.skip(reason)
    if not _stale_cleaned:
        Lab.cleanup_stale()
        _stale_cleaned = True
    with Lab(tuple(nodes)) as the_lab:
        yield the_lab
        print_logs(the_lab)


def lab_unavailable(*tools: str) -> str | None:
    """Why a VRRP lab test cannot run here (None: it can): root and ``ip``/``tcpdump``/``iptables``."""
    import shutil

    if os.geteuid() != 0:
        return "needs root (network namespaces, raw sockets)"
    for tool in ("ip", "tcpdump", "iptables", *tools):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


# --- waiting ------------------------------------------------------------------------------------------


def wait_until(pred: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``pred`` until truthy (returned) or ``timeout``; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what or getattr(pred, '__name__', pred)}")
        time.sleep(interval)


def vip_present(lab: Lab, node: str, vip: str, ifname: str = "eth0") -> bool:
    """Whether ``node`` has ``vip`` (with or without prefix length) on ``ifname``."""
    want = ip_interface(vip).ip
    try:
        infos = lab.addresses(node, ifname)
    except Exception:
        return False
    return any(ip_address(i["local"]) == want for i in infos if "local" in i)


def holders(lab: Lab, nodes: Iterable[str], vip: str) -> list[str]:
    """The nodes holding ``vip``."""
    return [n for n in nodes if vip_present(lab, n, vip)]


# --- daemons ------------------------------------------------------------------------------------------


@dataclass(repr=False)
class Daemon:
    """kpd or keepalived running one instance in a lab node."""

    lab: Lab
    node: str
    conf: Vrrp
    kind: str = KPD
    proc: subprocess.Popen[Any] | None = None
    logs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = self.lab.workdir / f"{self.kind}-{self.node}"
        self.dir.mkdir(mode=0o755, exist_ok=True)
        daemons_of(self.lab).append(self)

    # --- addresses -------------------------------------------------------------------------------------

    @property
    def address(self) -> IPAddress:
        """The address the node sends adverts from: eth0's IPv4 address, or its IPv6 link-local one."""
        if self.conf.family == 6:
            return self.lab.link_local(self.node)
        return self.lab.addr(self.node, 4)

    @property
    def vip(self) -> str:
        return self.conf.vip

    def holds_vip(self) -> bool:
        return vip_present(self.lab, self.node, self.vip)

    # --- life cycle ------------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.dir / "keepalived.conf"

    def write_config(self) -> Path:
        source = str(self.lab.addr(self.node, self.conf.family)) if self.conf.unicast_peers else None
        self.config_path.write_text(render(self.conf, router_id=f"{self.kind}-{self.node}", source=source))
        return self.config_path

    def start(self, conf: Vrrp | None = None) -> Daemon:
        """(Re)start with ``conf`` (default: the current configuration)."""
        if self.running:
            raise RuntimeError(f"{self} already running")
        if conf is not None:
            self.conf = conf
        self.write_config()
        with contextlib.suppress(FileNotFoundError):
            (self.dir / STATUS_FILE).unlink()
        if self.kind == KPD:
            cmd = [sys.executable, "-m", "keepalived_py", "start", "--config", str(self.config_path)]
            cmd += ["--runtime-dir", str(self.dir), "--log-console", "--log-level", "debug"]
        else:
            # a crashed keepalived leaves its pid files (and an unreaped child pid may look alive)
            for pid_file in ("keepalived.pid", "vrrp.pid"):
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / pid_file).unlink()
            cmd = ["keepalived", "-n", "-l", "-D", "--vrrp", "-f", str(self.config_path)]
            cmd += ["-p", str(self.dir / "keepalived.pid"), "-r", str(self.dir / "vrrp.pid")]
        self.proc = self.lab.popen(self.node, *cmd)
        self.logs.append(self.proc.log_path)  # type: ignore[attr-defined]
        return self

    def wait_started(self, timeout: float = 10.0) -> None:
        """Until the instance has left INIT (kpd: status file written; keepalived: VRRP child running)."""

        def started() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self} exited with {self.proc.returncode}:\n{self.log()}")
            if self.kind == KPD:
                return self.state() in ("BACKUP", "MASTER")
            current = self.log(current=True)
            return "Entering BACKUP STATE" in current or "Entering MASTER STATE" in current

        wait_until(started, timeout, what=f"{self} started")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Graceful stop: SIGTERM to the daemon (its children stop with it); its exit code."""
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reap_group(signal.SIGKILL)
            self.proc = None

    def kill(self) -> None:
        """A crash: SIGKILL to the daemon's whole process group at once (kpd's parent and VRRP child,
        keepalived's parent and VRRP child), so nothing gets to send priority 0 or remove addresses."""
        if self.proc is None:
            return
        self._reap_group(signal.SIGKILL)
        self.proc.wait(5)
        self.proc = None

    def _reap_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
        # keepalived's VRRP child could have left the group; it writes its pid file
        vrrp_pid = self.dir / "vrrp.pid"
        if self.kind == KEEPALIVED and vrrp_pid.exists():
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.kill(int(vrrp_pid.read_text().split()[0]), sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(self.proc.pid):
            time.sleep(0.01)

    # --- state -----------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any] | None:
        """kpd: the instance's record in vrrp-status.json (None before the first write)."""
        try:
            records = json.loads((self.dir / STATUS_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return next((r for r in records if r.get("name") == INSTANCE), None)

    def state(self) -> str | None:
        """MASTER/BACKUP/...: kpd from its status file; keepalived from holding the VIP (None if stopped)."""
        if self.kind == KPD:
            st = self.status()
            return st["state"] if st else None
        if not self.running:
            return None
        return "MASTER" if self.holds_vip() else "BACKUP"

    def log(self, *, current: bool = False) -> str:
        """Everything the daemon logged, over all its runs (``current``: this run only)."""
        logs = self.logs[-1:] if current else self.logs
        return "".join(p.read_text(errors="replace") for p in logs if p and p.exists())

    def __str__(self) -> str:
        return f"{self.kind}@{self.node}"

    __repr__ = __str__


def vrrp_children(daemon: Daemon) -> list[int]:
    """The pids of a kpd daemon's VRRP children (keepalived's: its vrrp.pid), found by their command line."""
    if daemon.kind == KEEPALIVED:
        try:
            return [int((daemon.dir / "vrrp.pid").read_text().split()[0])]
        except (OSError, ValueError, IndexError):
            return []
    found = subprocess.run(["pgrep", "-x", "kpd-vrrp"], capture_output=True, text=True).stdout
    pids = []
    for pid in found.split():
        with contextlib.suppress(OSError):
            if str(daemon.dir) in Path(f"/proc/{pid}/cmdline").read_text():
                pids.append(int(pid))
    return pids


def kill_vrrp_child(daemon: Daemon, *, state: str = "MASTER", timeout: float = 15.0) -> None:
    """SIGKILL a kpd daemon's VRRP child (a crash: nothing released) and wait until its parent's successor
    runs the instance in ``state``."""
    (child,) = vrrp_children(daemon)
    os.kill(child, signal.SIGKILL)
    wait_until(
        lambda: vrrp_children(daemon) not in ([], [child]) and (daemon.status() or {}).get("state") == state,
        timeout,
        what=f"a new child resumes {state}",
    )


def daemons_of(lab: Lab) -> list[Daemon]:
    """Every :class:`Daemon` made in ``lab`` (kept on the lab object, for logs at teardown)."""
    found: list[Daemon] | None = getattr(lab, "_vrrp_daemons", None)
    if found is None:
        found = []
        lab._vrrp_daemons = found  # type: ignore[attr-defined]
    return found


def print_logs(lab: Lab, tail: int = 6000) -> None:
    """Print the last ``tail`` characters of every daemon's log (pytest shows them for failed tests)."""
    for d in daemons_of(lab):
        print(f"===== {d} log =====\n{d.log()[-tail:]}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies still count for killpg(0); look for a live member
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def start_all(*daemons: Daemon) -> None:
    for d in daemons:
        d.start()
    for d in daemons:
        d.wait_started()


def masters(daemons: Sequence[Daemon]) -> list[Daemon]:
    """The running daemons holding their VIP (what traffic sees; a crashed node's leftovers do not count)."""
    return [d for d in daemons if d.running and d.holds_vip()]


def assert_never_two_masters(daemons: Sequence[Daemon], duration: float, *, expect: Daemon) -> None:
    """Sample VIP holders for ``duration``: always exactly ``expect``."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        holding = [str(d) for d in masters(daemons)]
        assert holding == [str(expect)], f"VIP held by {holding}, expected only {expect}"
        time.sleep(0.05)


# --- the wire -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advert:
    """A VRRP advert seen on the wire (parsed here, independently of kpd's codec)."""

    time: float
    src: IPAddress
    dst: IPAddress
    ttl: int
    version: int
    vrid: int
    priority: int
    interval: float  # seconds
    payload: bytes


def _ip_payload(frame: bytes) -> tuple[IPAddress, IPAddress, int, int, bytes] | None:
    """(src, dst, ttl, protocol, payload) of an Ethernet frame carrying IPv4 or IPv6."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    ip = frame[14:]
    if ethertype == 0x0800 and len(ip) >= 20:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        return IPv4Address(ip[12:16]), IPv4Address(ip[16:20]), ip[8], ip[9], ip[ihl:total]
    if ethertype == 0x86DD and len(ip) >= 40:
        length = struct.unpack_from("!H", ip, 4)[0]
        return IPv6Address(ip[8:24]), IPv6Address(ip[24:40]), ip[7], ip[6], ip[40 : 40 + length]
    return None


def adverts(packets: Iterable[Packet], src: IPAddress | str | None = None) -> list[Advert]:
    """The VRRP adverts among captured frames (from ``src`` only, if given)."""
    want = ip_address(src) if isinstance(src, str) else src
    out = []
    for p in packets:
        parsed = _ip_payload(p.data)
        if parsed is None or parsed[3] != 112 or len(parsed[4]) < 8:
            continue
        s, d, ttl, _, payload = parsed
        if want is not None and s != want:
            continue
        version = payload[0] >> 4
        interval = payload[5] if version == 2 else (((payload[4] & 0x0F) << 8) | payload[5]) / 100
        out.append(Advert(p.time, s, d, ttl, version, payload[1], payload[2], float(interval), payload))
    return out


def garps(packets: Iterable[Packet], vip: str) -> list[tuple[float, bytes]]:
    """(time, sender MAC) of gratuitous ARPs (IPv4) or unsolicited NAs (IPv6) announcing ``vip``."""
    address = ip_interface(vip).ip
    out = []
    for p in packets:
        frame = p.data
        if len(frame) < 42:
            continue
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == 0x0806 and address.version == 4:
            spa, tpa = IPv4Address(frame[28:32]), IPv4Address(frame[38:42])
            if spa == address and tpa == address:
                out.append((p.time, frame[22:28]))
        elif ethertype == 0x86DD and address.version == 6:
            parsed = _ip_payload(frame)
            is_na = parsed is not None and parsed[3] == 58 and len(parsed[4]) >= 24 and parsed[4][0] == 136
            if is_na and IPv6Address(parsed[4][8:24]) == address:  # type: ignore[index]
                out.append((p.time, frame[6:12]))
    return out


def next_advert(cap: Capture, src: IPAddress, timeout: float = 3.0) -> Advert:
    """Wait for the next advert from ``src`` (after those captured so far) and return it, a few ms late."""
    seen = len(adverts(cap.packets(), src))
    deadline = time.monotonic() + timeout
    while True:
        ads = adverts(cap.packets(), src)
        if len(ads) > seen:
            return ads[seen]
        if time.monotonic() > deadline:
            raise AssertionError(f"no advert from {src} within {timeout:g}s")
        time.sleep(0.002)


def announced_by(cap: Capture, daemon: Daemon) -> bool:
    """Whether the capture holds a gratuitous ARP / unsolicited NA for ``daemon``'s VIP from its MAC."""
    mac = mac_bytes(daemon.lab.mac(daemon.node))
    return any(m == mac for _, m in garps(cap.packets(), daemon.vip))


def first_after(ads: Iterable[Advert], t: float) -> Advert | None:
    return next((ad for ad in ads if ad.time > t), None)


def spacing(ads: Sequence[Advert]) -> list[float]:
    return [b.time - a.time for a, b in itertools.pairwise(ads)]


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


# --- forging ------------------------------------------------------------------------------------------


def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def vrrp_payload(
    *,
    version: int,
    vrid: int,
    priority: int,
    addresses: Sequence[str],
    interval: float,
    src: IPv4Address,
    dst: IPv4Address = VRRP_GROUP4,
    password: str | None = None,
    bad_checksum: bool = False,
) -> bytes:
    """An IPv4 VRRP advert built by hand (v3: pseudo-header checksum as keepalived; v2: plain)."""
    addrs = b"".join(ip_interface(a).ip.packed for a in addresses)
    if version == 2:
        auth_type = 1 if password is not None else 0
        head = struct.pack("!BBBBBBH", 0x21, vrid, priority, len(addresses), auth_type, int(interval), 0)
        auth = (password or "").encode()[:8].ljust(8, b"\0")
        body = head + addrs + auth
        csum = inet_checksum(body)
    else:
        cs = round(interval * 100)
        head = struct.pack("!BBBBHH", 0x31, vrid, priority, len(addresses), cs & 0x0FFF, 0)
        body = head + addrs
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 112, len(body))
        csum = inet_checksum(pseudo + body)
    if bad_checksum:
        csum ^= 0x5A5A
    return body[:6] + struct.pack("!H", csum) + body[8:]


def ipv4_datagram(
    payload: bytes, *, src: IPv4Address, dst: IPv4Address = VRRP_GROUP4, ttl: int = 255
) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, ttl, 112, 0, src.packed, dst.packed
    )
    header = header[:10] + struct.pack("!H", inet_checksum(header)) + header[12:]
    return header + payload


class Injector:
    """A raw IP_HDRINCL socket in a lab node: sends hand-made IPv4 datagrams (any source, any TTL)."""

    def __init__(self, lab: Lab, node: str, ifname: str = "eth0") -> None:
        with lab.enter(node):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        local = lab.addr(node, 4)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, local.packed)

    def send(self, datagram: bytes) -> None:
        dst = IPv4Address(datagram[16:20])
        self.sock.sendto(datagram, (str(dst), 0))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Injector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "KEEPALIVED",
    "KPD",
    "VIP4",
    "VIP6",
    "VRRP_FILTER",
    "Advert",
    "Daemon",
    "Injector",
    "Script",
    "Vrrp",
    "adverts",
    "announced_by",
    "assert_never_two_masters",
    "first_after",
    "garps",
    "holders",
    "ipv4_datagram",
    "mac_bytes",
    "masters",
    "next_advert",
    "render",
    "spacing",
    "start_all",
    "vip_present",
    "vrrp_payload",
    "wait_until",
]
