"""A network-namespace lab: N hosts on Linux bridges, real kernel, real packets, nothing left behind.

::

    with Lab(("a", "b")) as lab:                      # namespaces kpdlab<pid>x<n>-a, -b and -br
        lab.run("a", "ip", "-o", "addr")              # a command inside a namespace
        with lab.enter("b"):                          # this thread now lives in b's network namespace
            sock = socket.socket(...)                 # ... so sockets opened here belong to b
        with lab.capture(filter="arp") as cap:        # tcpdump on the bridge (sees every frame)
            ...
            frames = cap.wait_for(lambda f: ..., timeout=3)

Layout: every host is a namespace with ``lo`` up and one veth per segment it belongs to (``eth0`` on
segment 0, which holds every host unless ``lan=`` says otherwise; :meth:`Lab.add_segment` adds segments,
with ``eth1`` etc.); the other end of each veth is a port of
the segment's bridge ``br<k>``, and all bridges live in one extra namespace ``<prefix>-br``, so nothing is
created in the root namespace (``ip netns add`` bind-mounts live under ``/run/netns`` and are removed with
the lab). Segment ``k`` uses IPv4 ``192.0.2.0/24``, ``198.51.100.0/24``, ``203.0.113.0/24`` (the TEST-NETs)
and IPv6 ``2001:db8:k::/64``; host number ``i + 1`` for the ``i``-th host, on every segment. IPv6 DAD and
router solicitations are off in the hosts (addresses are usable at once, captures stay quiet), the bridge
namespace has IPv6 disabled, and bridges run without STP delay or multicast snooping.

Names are unique per lab (``kpdlab<pid>x<counter>``), so labs of concurrent test runs never collide;
:meth:`Lab.cleanup_stale` removes the namespaces of labs whose process is gone (a crashed run).
:meth:`Lab.close` (also on ``__exit__``, even after a failure) kills what :meth:`Lab.popen` and
:meth:`Lab.capture` started, then every process still inside the lab's namespaces, then the namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import IO, Any

NETNS_DIR = Path("/run/netns")
LAB_PREFIX = "kpdlab"
_STALE_RE = re.compile(rf"^{LAB_PREFIX}(\d+)x\d+-")
_NODE_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
CLONE_NEWNET = 0x40000000
SEGMENTS_V4 = (IPv4Network("192.0.2.0/24"), IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))
BRIDGE = "br"

_HOST_SYSCTLS = {
    "net/ipv6/conf/all/accept_dad": "0",
    "net/ipv6/conf/default/accept_dad": "0",
    "net/ipv6/conf/all/dad_transmits": "0",
    "net/ipv6/conf/default/dad_transmits": "0",
    "net/ipv6/conf/all/router_solicitations": "0",
    "net/ipv6/conf/default/router_solicitations": "0",
}
_BRIDGE_SYSCTLS = {
    "net/ipv6/conf/all/disable_ipv6": "1",
    "net/ipv6/conf/default/disable_ipv6": "1",
}

IPAddress = IPv4Address | IPv6Address


class LabError(RuntimeError):
    """A lab command failed; the message has the command and its output."""


def _setns(fd: int) -> None:
    """Move the calling thread into the network namespace ``fd`` refers to."""
    setns = getattr(os, "setns", None)  # Python 3.12+
    if setns is not None:
        setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for(produce: Callable[[], Any], *, timeout: float = 3.0, interval: float = 0.01) -> Any:
    """Call ``produce`` until it returns something truthy (returned) or ``timeout`` passes (LabError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"nothing within {timeout}s from {getattr(produce, '__name__', produce)}")
        time.sleep(interval)


async def wait_for_async(produce: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.01) -> Any:
    """:func:`wait_for` for coroutines: polls without blocking the event loop (whose tasks make the condition
    come true)."""
    deadline = time.monotonic() + timeout
    while True:
        value = produce()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"nothing within {timeout}s from {getattr(produce, '__name__', produce)}")
        await asyncio.sleep(interval)


def _ip(*args: str, input: str | None = None, timeout: float = 10) -> str:
    proc = subprocess.run(["ip", *args], input=input, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _kill_namespace_processes(ns: str) -> None:
    """SIGKILL whatever still runs in ``ns`` (daemons started with plain ``run``, orphans)."""
    try:
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10).stdout
    except subprocess.SubprocessError:
        return
    for word in out.split():
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            pid = int(word)
            if pid != os.getpid():
                os.kill(pid, signal.SIGKILL)


def _delete_namespace(ns: str) -> None:
    _kill_namespace_processes(ns)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


# --- pcap ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Packet:
    """One captured frame."""

    time: float
    data: bytes


def read_pcap(path: Path) -> list[Packet]:
    """The frames of a classic pcap file (as tcpdump ``-w`` writes it); a truncated tail is ignored."""
    raw = path.read_bytes()
    if len(raw) < 24:
        return []
    magic = raw[:4]
    orders = {
        b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
        b"\xa1\xb2\xc3\xd4": (">", 1e-6),
        b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
        b"\xa1\xb2\x3c\x4d": (">", 1e-9),
    }
    if magic not in orders:
        raise ValueError(f"{path}: not a pcap file")
    order, unit = orders[magic]
    packets: list[Packet] = []
    offset = 24
    while offset + 16 <= len(raw):
        seconds, fraction, caplen, _ = struct.unpack_from(f"{order}IIII", raw, offset)
        offset += 16
        if offset + caplen > len(raw):
            break
        packets.append(Packet(seconds + fraction * unit, raw[offset : offset + caplen]))
        offset += caplen
    return packets


class Capture:
    """A running ``tcpdump -U -w`` in one namespace; what it has written so far is readable at any time."""

    def __init__(self, lab: Lab, ns: str, iface: str, bpf: str, path: Path) -> None:
        self.lab = lab
        self.ns = ns
        self.iface = iface
        self.bpf = bpf
        self.path = path
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: list[str] = []

    def start(self, timeout: float = 5.0) -> Capture:
        """Start tcpdump and wait until it is listening (so no frame sent afterwards is missed)."""
        cmd = ["ip", "netns", "exec", self.ns, "tcpdump", "-U", "-n", "-Z", "root", "-i", self.iface]
        # Frames of at most 2 KiB (the lab's MTU is 1500) in an 8 MiB buffer: with the default snapshot
        # length each buffer slot is 256 KiB and a burst of more than about eight frames (100 instances'
        # adverts sent in one wake-up) lost frames in the capture, not on the wire.
        cmd += ["--immediate-mode", "-s", "2048", "-B", "8192", "-w", str(self.path)]
        if self.bpf:
            cmd.append(self.bpf)
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        self._proc = proc
        self.lab._register(proc)
        listening = threading.Event()

        def drain(stream: IO[str]) -> None:
            for line in stream:
                self._stderr.append(line)
                if "listening on" in line:
                    listening.set()

        assert proc.stderr is not None
        threading.Thread(target=drain, args=(proc.stderr,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not listening.wait(0.02):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise LabError(f"tcpdump did not start on {self.ns}/{self.iface}: {''.join(self._stderr)}")
        return self

    def packets(self) -> list[Packet]:
        """Every frame written so far."""
        return read_pcap(self.path) if self.path.exists() else []

    def wait_for(
        self, predicate: Callable[[bytes], bool], *, count: int = 1, timeout: float = 3.0
    ) -> list[bytes]:
        """Wait until ``count`` captured frames satisfy ``predicate``; return them (LabError on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [p.data for p in self.packets() if predicate(p.data)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise LabError(f"only {len(found)} of {count} expected frames captured on {self.iface}")
            time.sleep(0.02)

    def stop(self) -> list[Packet]:
        """Stop tcpdump (flushing its file) and return every captured frame."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=3)
        return self.packets()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the lab ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Port:
    """A host's interface on a segment and its bridge-side peer."""

    node: str
    ifname: str
    segment: int
    peer: str  # the veth end in the bridge namespace
    mac: str


class Lab:
    """Network namespaces joined by bridges; see the module docstring."""

    _serial = itertools.count()

    def __init__(
        self,
        nodes: Sequence[str] = ("a", "b"),
        *,
        lan: Sequence[str] | None = None,
        workdir: Path | None = None,
    ) -> None:
        """``nodes``: host names; ``lan``: the hosts on segment 0 (default all); ``workdir``: logs, pcaps."""
        for node in nodes:
            if not _NODE_RE.match(node) or node == BRIDGE:
                raise ValueError(f"bad node name {node!r}: 1-8 of [a-z0-9], starting with a letter, not 'br'")
        if len(set(nodes)) != len(nodes):
            raise ValueError("duplicate node names")
        self.nodes = tuple(nodes)
        self.lan = tuple(nodes if lan is None else lan)
        if not set(self.lan) <= set(self.nodes):
            raise ValueError("lan members must be nodes")
        self.prefix = f"{LAB_PREFIX}{os.getpid()}x{next(Lab._serial)}"
        self.bridge_ns = f"{self.prefix}-{BRIDGE}"
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-")) if workdir is None else workdir
        self.ports: list[Port] = []
        self.segments = 0
        self._procs: list[subprocess.Popen[Any]] = []
        self._cuts: set[tuple[str, int]] = set()
        self._created: list[str] = []
        self._lock = threading.Lock()

    # --- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Lab:
        """Create the namespaces and segment 0 (``eth0`` of every ``lan`` host)."""
        try:
            namespaces = [(self.bridge_ns, _BRIDGE_SYSCTLS)] + [
                (self.ns(n), _HOST_SYSCTLS) for n in self.nodes
            ]
            for ns, sysctls in namespaces:
                _ip("netns", "add", ns)
                self._created.append(ns)
                self._sysctls(ns, sysctls)
            self._ns_batch(self.bridge_ns, ["link set lo up"])
            for node in self.nodes:
                self._ns_batch(self.ns(node), ["link set lo up"])
            self.add_segment(self.lan, ifname="eth0")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Tear everything down; safe to call twice and after a failed start."""
        with self._lock:
            procs, self._procs = self._procs, []
            created, self._created = self._created, []
        for proc in procs:
            self._stop_process(proc)
        for ns in created:
            _delete_namespace(ns)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def cleanup_stale() -> list[str]:
        """Delete the namespaces (and temporary work directories) of labs whose process no longer exists.

        Returns the names of the namespaces removed.
        """
        removed: list[str] = []
        for name in sorted(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else []:
            match = _STALE_RE.match(name)
            if match and not _pid_alive(int(match.group(1))):
                _delete_namespace(name)
                removed.append(name)
        tmp = Path(tempfile.gettempdir())
        for path in tmp.glob(f"{LAB_PREFIX}*"):
            match = _STALE_RE.match(path.name)
            if match and path.is_dir() and not _pid_alive(int(match.group(1))):
                shutil.rmtree(path, ignore_errors=True)
        return removed

    # --- topology --------------------------------------------------------------------------------

    def ns(self, node: str) -> str:
        """The namespace name of ``node`` (``"br"`` is the bridge namespace; full names pass through)."""
        if node == BRIDGE:
            return self.bridge_ns
        if node in self.nodes:
            return f"{self.prefix}-{node}"
        if node.startswith(self.prefix + "-"):
            return node
        raise KeyError(f"no node {node!r} in this lab ({', '.join(self.nodes)})")

    def add_segment(self, members: Sequence[str], *, ifname: str | None = None) -> int:
        """A new bridge with a veth to every member (named ``ifname``, default ``eth<k>``); its index k."""
        segment = self.segments
        if segment >= len(SEGMENTS_V4):
            raise ValueError(f"at most {len(SEGMENTS_V4)} segments")
        ifname = ifname or f"eth{segment}"
        bridge = f"br{segment}"
        batch = [
            f"link add {bridge} type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
            f"link set {bridge} up",
        ]
        host_batches: dict[str, list[str]] = {}
        for node in members:
            index = self.nodes.index(node)
            peer = f"s{segment}n{index}"
            mac = f"02:00:00:00:{segment:02x}:{index + 1:02x}"
            batch.append(f"link add {peer} type veth peer name {ifname} address {mac} netns {self.ns(node)}")
            batch.append(f"link set {peer} master {bridge} up")
            host_batches[node] = [
                f"addr add {self.addr(node, 4, segment)}/24 dev {ifname}",
                f"addr add {self.addr(node, 6, segment)}/64 dev {ifname} nodad",
                f"link set {ifname} up",
            ]
            self.ports.append(Port(node, ifname, segment, peer, mac))
        self.segments += 1
        self._ns_batch(self.bridge_ns, batch)
        for node, commands in host_batches.items():
            self._ns_batch(self.ns(node), commands)
        for node in members:
            self.wait_link_local(node, ifname)
        return segment

    def port(self, node: str, ifname: str = "eth0") -> Port:
        """The :class:`Port` of ``node``'s ``ifname``."""
        for port in self.ports:
            if port.node == node and port.ifname == ifname:
                return port
        raise KeyError(f"{node} has no interface {ifname}")

    def network(self, segment: int = 0, family: int = 4) -> IPv4Network | IPv6Network:
        """The IPv4 /24 or IPv6 /64 of a segment."""
        if family == 4:
            return SEGMENTS_V4[segment]
        return IPv6Network(f"2001:db8:{segment:x}::/64")

    def addr(self, node: str, family: int = 4, segment: int = 0) -> IPAddress:
        """``node``'s static address on ``segment`` (host number = position in ``nodes`` + 1)."""
        return self.network(segment, family)[self.nodes.index(node) + 1]

    def link_json(self, node: str, ifname: str = "eth0") -> dict[str, Any]:
        """``ip -j link show`` of one interface."""
        data: list[dict[str, Any]] = json.loads(_ip("-j", "-n", self.ns(node), "link", "show", "dev", ifname))
        return data[0]

    def mac(self, node: str, ifname: str = "eth0") -> str:
        """The MAC address of ``node``'s ``ifname`` (``aa:bb:...``)."""
        return str(self.link_json(node, ifname)["address"])

    def ifindex(self, node: str, ifname: str = "eth0") -> int:
        """The interface index of ``node``'s ``ifname``."""
        return int(self.link_json(node, ifname)["ifindex"])

    def addresses(self, node: str, ifname: str = "eth0") -> list[dict[str, Any]]:
        """``addr_info`` of ``ip -j addr show dev ifname``."""
        data = json.loads(_ip("-j", "-n", self.ns(node), "addr", "show", "dev", ifname))
        return list(data[0].get("addr_info", [])) if data else []

    def link_local(self, node: str, ifname: str = "eth0") -> IPv6Address:
        """The (first) IPv6 link-local address of ``node``'s ``ifname``."""
        for info in self.addresses(node, ifname):
            if info.get("family") == "inet6" and info.get("scope") == "link":
                return IPv6Address(info["local"])
        raise LabError(f"{node}/{ifname} has no link-local address")

    def wait_link_local(self, node: str, ifname: str = "eth0", timeout: float = 5.0) -> IPv6Address:
        """Wait until ``ifname`` has a usable (not tentative) link-local address."""
        deadline = time.monotonic() + timeout
        while True:
            for info in self.addresses(node, ifname):
                if (
                    info.get("family") == "inet6"
                    and info.get("scope") == "link"
                    and not info.get("tentative")
                ):
                    return IPv6Address(info["local"])
            if time.monotonic() > deadline:
                raise LabError(f"{node}/{ifname}: no usable link-local address after {timeout}s")
            time.sleep(0.02)

    # --- running things --------------------------------------------------------------------------

    def run(
        self, node: str, *cmd: str, check: bool = True, timeout: float = 10, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside ``node``'s namespace and wait; LabError on failure when ``check``."""
        argv = ["ip", "netns", "exec", self.ns(node), *cmd]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise LabError(f"[{node}] {' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def popen(self, node: str, *cmd: str, log: bool = True, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` in ``node``'s namespace (own process group); the lab kills it on close.

        Unless ``stdout``/``stderr`` are given, both go to ``<workdir>/<node>-<pid>.log`` (``log=False``:
        discarded); the path is ``proc.log_path`` (None when not logging).
        """
        argv = ["ip", "netns", "exec", self.ns(node), *cmd]
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        log_file: IO[bytes] | None = None
        if "stdout" not in kwargs and "stderr" not in kwargs:
            if log:
                log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - handed to the child, closed below
                    dir=self.workdir, prefix=f"{node}-", suffix=".log", delete=False
                )
                kwargs["stdout"] = log_file
                kwargs["stderr"] = subprocess.STDOUT
            else:
                kwargs["stdout"] = kwargs["stderr"] = subprocess.DEVNULL
        proc: subprocess.Popen[Any] = subprocess.Popen(argv, start_new_session=True, **kwargs)
        if log_file is not None:
            log_file.close()
        proc.log_path = Path(log_file.name) if log_file is not None else None  # type: ignore[attr-defined]
        self._register(proc)
        return proc

    def _register(self, proc: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._procs.append(proc)

    @staticmethod
    def _stop_process(proc: subprocess.Popen[Any]) -> None:
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=3)

    @contextlib.contextmanager
    def enter(self, node: str) -> Iterator[None]:
        """Switch the calling thread into ``node``'s network namespace; switch back on exit.

        Sockets (and rtnetlink handles) created inside stay in that namespace after the block ends.
        """
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(NETNS_DIR / self.ns(node), os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(home)

    def capture(
        self, where: str = BRIDGE, filter: str = "", *, iface: str | None = None, segment: int = 0
    ) -> Capture:
        """Start tcpdump (``-U -w``) with BPF ``filter``.

        On bridge ``br<segment>`` by default (promiscuous, so it sees every frame of the segment), or in a
        host on ``iface`` (default ``eth0``).
        """
        default = f"br{segment}" if where == BRIDGE else "eth0"
        iface = iface or default
        path = Path(tempfile.mkstemp(dir=self.workdir, prefix=f"{where}-{iface}-", suffix=".pcap")[1])
        return Capture(self, self.ns(where), iface, filter, path).start()

    # --- faults ----------------------------------------------------------------------------------

    def cut(self, node: str, proto: int = 112) -> None:
        """Drop IP protocol ``proto`` (IPv4 and IPv6) in and out of ``node``, with iptables / ip6tables."""
        if (node, proto) in self._cuts:
            return
        for tool in ("iptables", "ip6tables"):
            for chain in ("INPUT", "OUTPUT"):
                self.run(node, tool, "-w", "-I", chain, "-p", str(proto), "-j", "DROP")
        self._cuts.add((node, proto))

    def heal(self, node: str, proto: int | None = None) -> None:
        """Undo :meth:`cut` (of ``proto``, or of every protocol cut in ``node``)."""
        for cut_node, cut_proto in sorted(self._cuts):
            if cut_node != node or (proto is not None and cut_proto != proto):
                continue
            for tool in ("iptables", "ip6tables"):
                for chain in ("INPUT", "OUTPUT"):
                    self.run(node, tool, "-w", "-D", chain, "-p", str(cut_proto), "-j", "DROP", check=False)
            self._cuts.discard((cut_node, cut_proto))

    def link_down(self, node: str, ifname: str = "eth0") -> None:
        """``ip link set ifname down`` in ``node`` (administratively down: IFF_UP cleared)."""
        _ip("-n", self.ns(node), "link", "set", ifname, "down")

    def link_up(self, node: str, ifname: str = "eth0") -> None:
        """``ip link set ifname up`` in ``node``."""
        _ip("-n", self.ns(node), "link", "set", ifname, "up")

    def carrier_down(self, node: str, ifname: str = "eth0") -> None:
        """Take the bridge-side veth end down: ``node``'s interface stays IFF_UP but loses carrier."""
        _ip("-n", self.bridge_ns, "link", "set", self.port(node, ifname).peer, "down")

    def carrier_up(self, node: str, ifname: str = "eth0") -> None:
        """Undo :meth:`carrier_down`."""
        _ip("-n", self.bridge_ns, "link", "set", self.port(node, ifname).peer, "up")

    # --- helpers ---------------------------------------------------------------------------------

    def _sysctls(self, ns: str, values: dict[str, str]) -> None:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        target = os.open(NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                for key, value in values.items():
                    Path("/proc/sys", key).write_text(value)
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)

    @staticmethod
    def _ns_batch(ns: str, commands: list[str]) -> None:
        _ip("-n", ns, "-batch", "-", input="\n".join(commands) + "\n")


class VipSampler:
    """Samples, every ``interval`` seconds, which of ``nodes`` hold ``vip`` on ``ifname`` (netlink, from a
    thread living in each node's namespace)::

        with VipSampler(lab, ("a", "b"), "192.0.2.100") as vips:
            ...
        assert vips.holders_seen() == {("a",)}
    """

    def __init__(self, lab: Lab, nodes: Sequence[str], vip: str, *, ifname: str = "eth0",
                 interval: float = 0.005) -> None:
        self.lab, self.nodes, self.vip, self.ifname, self.interval = lab, tuple(nodes), vip, ifname, interval
        #: (monotonic time, the nodes holding the VIP then)
        self.samples: list[tuple[float, tuple[str, ...]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> VipSampler:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise LabError("the VIP sampler did not start")
        return self

    def _sample(self, ready: threading.Event) -> None:
        from pyroute2 import IPRoute  # its sockets belong to the thread that opens them

        handles: dict[str, Any] = {}
        index: dict[str, int] = {}
        try:
            for node in self.nodes:
                with self.lab.enter(node):
                    handles[node] = IPRoute()
                (index[node],) = handles[node].link_lookup(ifname=self.ifname)
            ready.set()
            while not self._stop.is_set():
                now = time.monotonic()
                holding = tuple(n for n, ipr in handles.items() if self._holds(ipr, index[n]))
                self.samples.append((now, holding))
                self._stop.wait(self.interval)
        finally:
            for ipr in handles.values():
                ipr.close()

    def _holds(self, ipr: Any, index: int) -> bool:
        return any(msg.get_attr("IFA_ADDRESS") == self.vip for msg in ipr.get_addr(index=index))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def holders_seen(self) -> set[tuple[str, ...]]:
        return {h for _, h in self.samples}

    def largest_gap(self) -> float:
        """The longest time between two samples (the sampling really ran every few milliseconds)."""
        times = [t for t, _ in self.samples]
        return max((b - a for a, b in itertools.pairwise(times)), default=float("inf"))
