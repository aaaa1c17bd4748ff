"""The IPVS driver: the kernel's IPVS table over generic netlink. The only module that uses pyroute2.ipvs.

pyroute2's IPVS message classes (``pyroute2.netlink.generic.ipvs.ipvsmsg``) encode and decode; the requests
go over a plain blocking generic-netlink socket (the kernel answers in microseconds, so the checkers' event
loop can call it directly; pyroute2's own IPVS socket object cannot be used inside a running asyncio loop).

Only the add, set, del, dump and flush commands are used (pyroute2's "update" command sends a delete).
The forwarding method is always sent explicitly (pyroute2's IPVSDest defaults to DR), and it is read back
from the raw attribute (pyroute2 0.9.7's IPVSDest.from_message reports 3 whatever the kernel says).
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import struct
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from keepalived_py.ipvs.reconcile import Op, OpKind
from keepalived_py.ipvs.state import (
    PROTOCOL_NAMES,
    PROTOCOLS,
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    SVC_F_SCHED_MASK,
    Dest,
    DestKey,
    Entry,
    Forward,
    Service,
    ServiceKey,
)

NETLINK_GENERIC = 16
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
_HEADER = struct.Struct("=LHHLL")
_RECV_SIZE = 1 << 20
_TIMEOUT = 5.0
#: the flags kpd owns in IPVS_SVC_ATTR_FLAGS (the kernel's HASHED bit etc. are left alone)
_FLAGS_MASK = SVC_F_PERSISTENT | SVC_F_ONEPACKET | SVC_F_SCHED_MASK


class IpvsError(OSError):
    """The kernel refused an IPVS operation."""

    def __init__(self, code: int, message: str, op: Op | None = None) -> None:
        super().__init__(code, message)
        self.op = op

    def __str__(self) -> str:
        return str(self.strerror)


class IpvsDriver:
    """A generic-netlink socket bound to the kernel's IPVS family."""

    def __init__(self) -> None:
        from pyroute2.netlink.generic import ipvs

        self._ipvs = ipvs
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   NETLINK_GENERIC)
        try:
            self._sock.bind((0, 0))
            self._sock.settimeout(_TIMEOUT)
            self._seq = itertools.count(1)
            self.family = self._resolve_family(ipvs.GENL_NAME)
        except BaseException:
            self._sock.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> IpvsDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- netlink ------------------------------------------------------------------------------------------

    def _resolve_family(self, name: str) -> int:
        from pyroute2.netlink.generic import ctrlmsg

        msg = ctrlmsg()
        msg["cmd"] = CTRL_CMD_GETFAMILY
        msg["version"] = 1
        msg["attrs"] = [("CTRL_ATTR_FAMILY_NAME", name)]
        try:
            replies = self._exchange(msg, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, ctrlmsg)
        except IpvsError as err:
            if err.errno == errno.ENOENT:
                raise IpvsError(err.errno, "the kernel has no IPVS (is the ip_vs module loaded?)") from None
            raise
        for reply in replies:
            family = reply.get_attr("CTRL_ATTR_FAMILY_ID")
            if family is not None:
                return int(family)
        raise IpvsError(errno.ENOENT, "the kernel has no IPVS (is the ip_vs module loaded?)")

    def _exchange(self, msg: Any, msg_type: int, flags: int, reply_class: Any) -> list[Any]:
        replies = []
        for data in self._exchange_raw(msg, msg_type, flags):
            reply = reply_class(data)
            reply.decode()
            replies.append(reply)
        return replies

    def _exchange_raw(self, msg: Any, msg_type: int, flags: int) -> list[bytes]:
        """The replies, undecoded (decoding is most of the cost: callers may spread it out)."""
        seq = next(self._seq)
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = seq
        msg["header"]["pid"] = 0
        msg.encode()
        self._sock.send(msg.data)
        replies: list[bytes] = []
        for kind, data in self._replies(seq):
            if kind == NLMSG_DONE:
                return replies
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, _HEADER.size)
                if code:
                    raise IpvsError(-code, os.strerror(-code))
                return replies
            replies.append(data)
        return replies  # pragma: no cover

    def _replies(self, seq: int) -> Iterator[tuple[int, bytes]]:
        while True:
            data = self._sock.recv(_RECV_SIZE)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, _flags, rseq, _pid = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    break
                chunk = data[offset:offset + length]
                offset += (length + 3) & ~3
                if rseq != seq:
                    continue
                yield kind, chunk
                if kind in (NLMSG_DONE, NLMSG_ERROR):
                    return

    def _request(self, cmd: int, attrs: list[tuple[str, Any]], *, dump: bool = False) -> list[Any]:
        replies = []
        for data in self._request_raw(cmd, attrs, dump=dump):
            reply = self._ipvs.ipvsmsg(data)
            reply.decode()
            replies.append(reply)
        return replies

    def _request_raw(self, cmd: int, attrs: list[tuple[str, Any]], *, dump: bool = False) -> list[bytes]:
        msg = self._ipvs.ipvsmsg()
        msg["cmd"] = cmd
        msg["version"] = self._ipvs.GENL_VERSION
        msg["attrs"] = attrs
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        return self._exchange_raw(msg, self.family, flags)

    # --- encoding -----------------------------------------------------------------------------------------

    @staticmethod
    def _service_key_attrs(key: ServiceKey) -> list[tuple[str, Any]]:
        af = socket.AF_INET6 if key.family == 6 else socket.AF_INET
        if key.fwmark:
            return [("IPVS_SVC_ATTR_AF", af), ("IPVS_SVC_ATTR_FWMARK", key.fwmark)]
        return [
            ("IPVS_SVC_ATTR_AF", af),
            ("IPVS_SVC_ATTR_PROTOCOL", PROTOCOLS[key.protocol]),
            ("IPVS_SVC_ATTR_ADDR", str(key.address)),
            ("IPVS_SVC_ATTR_PORT", key.port),
        ]

    def _service_attrs(self, svc: Service) -> list[tuple[str, Any]]:
        netmask = svc.netmask
        if isinstance(netmask, int):  # IPv6: a prefix length, as a host-order u32 (as ipvsadm sends it)
            netmask = IPv4Address(struct.unpack("!I", struct.pack("=I", netmask))[0])
        attrs = [
            *self._service_key_attrs(svc.key),
            ("IPVS_SVC_ATTR_SCHED_NAME", svc.scheduler),
            ("IPVS_SVC_ATTR_FLAGS", {"flags": svc.flags, "mask": _FLAGS_MASK}),
            ("IPVS_SVC_ATTR_TIMEOUT", svc.persistence_timeout or 0),
            ("IPVS_SVC_ATTR_NETMASK", str(netmask)),
        ]
        if svc.persistence_engine:
            attrs.append(("IPVS_SVC_ATTR_PE_NAME", svc.persistence_engine))
        return attrs

    @staticmethod
    def _dest_attrs(dest: Dest, with_settings: bool = True) -> list[tuple[str, Any]]:
        af = socket.AF_INET6 if dest.address.version == 6 else socket.AF_INET
        attrs: list[tuple[str, Any]] = [
            ("IPVS_DEST_ATTR_ADDR_FAMILY", af),
            ("IPVS_DEST_ATTR_ADDR", str(dest.address)),
            ("IPVS_DEST_ATTR_PORT", dest.port),
        ]
        if with_settings:
            attrs += [
                ("IPVS_DEST_ATTR_FWD_METHOD", int(dest.forward)),
                ("IPVS_DEST_ATTR_WEIGHT", dest.weight),
                ("IPVS_DEST_ATTR_U_THRESH", dest.u_threshold),
                ("IPVS_DEST_ATTR_L_THRESH", dest.l_threshold),
                ("IPVS_DEST_ATTR_TUN_TYPE", dest.tun_type),
                # the kernel reads the port in network order; pyroute2 encodes this one in host order
                ("IPVS_DEST_ATTR_TUN_PORT", socket.htons(dest.tun_port)),
                ("IPVS_DEST_ATTR_TUN_FLAGS", dest.tun_flags),
            ]
        return attrs

    # --- the table ----------------------------------------------------------------------------------------

    def dump(self) -> dict[ServiceKey, Entry]:
        """Every virtual service with its real servers."""
        return dict(self.iter_dump())

    def iter_dump(self) -> Iterator[tuple[ServiceKey, Entry]]:
        """Every virtual service with its real servers, one at a time: the list of services is read at
        once, but each is decoded, and its real servers read, only when the caller asks for the next one
        (a caller on an event loop can let it turn between services; other requests may go in between)."""
        for data in self._request_raw(self._ipvs.IPVS_CMD_GET_SERVICE, [], dump=True):
            reply = self._ipvs.ipvsmsg(data)
            reply.decode()
            svc_nla = reply.get_attr("IPVS_CMD_ATTR_SERVICE")
            if svc_nla is None:
                continue
            service = _decode_service(svc_nla)
            key_attrs = {"attrs": self._service_key_attrs(service.key)}
            dests = self._request(self._ipvs.IPVS_CMD_GET_DEST, [("IPVS_CMD_ATTR_SERVICE", key_attrs)],
                                  dump=True)
            yield service.key, Entry.of(service, [
                _decode_dest(d.get_attr("IPVS_CMD_ATTR_DEST"))
                for d in dests if d.get_attr("IPVS_CMD_ATTR_DEST") is not None
            ])

    def apply(self, op: Op) -> None:
        """Carry out one reconciler operation; :class:`IpvsError` when the kernel refuses it."""
        ipvs = self._ipvs
        key_attrs = {"attrs": self._service_key_attrs(op.service)}
        try:
            if op.kind in (OpKind.ADD_SERVICE, OpKind.SET_SERVICE):
                assert isinstance(op.item, Service)
                add = op.kind is OpKind.ADD_SERVICE
                cmd = ipvs.IPVS_CMD_NEW_SERVICE if add else ipvs.IPVS_CMD_SET_SERVICE
                self._request(cmd, [("IPVS_CMD_ATTR_SERVICE", {"attrs": self._service_attrs(op.item)})])
            elif op.kind is OpKind.DEL_SERVICE:
                self._request(ipvs.IPVS_CMD_DEL_SERVICE, [("IPVS_CMD_ATTR_SERVICE", key_attrs)])
            elif op.kind in (OpKind.ADD_DEST, OpKind.SET_DEST):
                assert isinstance(op.item, Dest)
                cmd = ipvs.IPVS_CMD_NEW_DEST if op.kind is OpKind.ADD_DEST else ipvs.IPVS_CMD_SET_DEST
                self._request(cmd, [("IPVS_CMD_ATTR_SERVICE", key_attrs),
                                    ("IPVS_CMD_ATTR_DEST", {"attrs": self._dest_attrs(op.item)})])
            elif op.kind is OpKind.DEL_DEST:
                assert isinstance(op.item, DestKey)
                dest = Dest(op.item.address, op.item.port)
                self._request(ipvs.IPVS_CMD_DEL_DEST, [
                    ("IPVS_CMD_ATTR_SERVICE", key_attrs),
                    ("IPVS_CMD_ATTR_DEST", {"attrs": self._dest_attrs(dest, with_settings=False)})])
        except IpvsError as err:
            raise IpvsError(err.errno or 0, f"{op}: {err.strerror}", op) from None

    def apply_all(self, ops: list[Op]) -> list[tuple[Op, IpvsError]]:
        """Apply every operation, carrying on after a failure; the failures."""
        failed = []
        for op in ops:
            try:
                self.apply(op)
            except IpvsError as err:
                failed.append((op, err))
        return failed

    def flush(self) -> None:
        """Remove every virtual service (``ipvsadm -C``)."""
        self._request(self._ipvs.IPVS_CMD_FLUSH, [])

    # --- configuration (pyroute2 has no encoding for these attributes: raw netlink) -------------------------

    def _raw(self, cmd: int, attrs: bytes = b"", *, dump: bool = False) -> list[bytes]:
        seq = next(self._seq)
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        body = _GENL.pack(cmd, self._ipvs.GENL_VERSION, 0) + attrs
        self._sock.send(_HEADER.pack(_HEADER.size + len(body), self.family, flags, seq, 0) + body)
        replies: list[bytes] = []
        for kind, data in self._replies(seq):
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, _HEADER.size)
                if code:
                    raise IpvsError(-code, os.strerror(-code))
                return replies
            if kind == NLMSG_DONE:
                return replies
            replies.append(data)
            if not dump:
                return replies
        return replies  # pragma: no cover

    def set_timeouts(self, tcp: int, tcp_fin: int, udp: int) -> None:
        """``ipvsadm --set tcp tcpfin udp``: 0 leaves that timeout as it is."""
        attrs = b"".join(_nla(kind, struct.pack("=I", value))
                         for kind, value in ((_ATTR_TIMEOUT_TCP, tcp), (_ATTR_TIMEOUT_TCP_FIN, tcp_fin),
                                             (_ATTR_TIMEOUT_UDP, udp)))
        self._raw(self._ipvs.IPVS_CMD_SET_CONFIG, attrs)

    def start_daemon(
        self,
        state: int,
        interface: str,
        syncid: int,
        *,
        maxlen: int = 0,
        port: int = 0,
        ttl: int = 0,
        group: str | None = None,
    ) -> None:
        """Start the kernel's connection-synchronisation daemon as SYNC_MASTER or SYNC_BACKUP (``ipvsadm
        --start-daemon``); 0 / None leave the kernel's defaults."""
        inner = _nla(_DAEMON_STATE, struct.pack("=I", state))
        inner += _nla(_DAEMON_IFN, interface.encode() + b"\0")
        inner += _nla(_DAEMON_SYNCID, struct.pack("=I", syncid))
        if maxlen:
            inner += _nla(_DAEMON_MAXLEN, struct.pack("=H", maxlen))
        if group:
            address = ip_address(group)
            inner += _nla(_DAEMON_GROUP6 if address.version == 6 else _DAEMON_GROUP, address.packed)
        if port:
            inner += _nla(_DAEMON_PORT, struct.pack("!H", port))
        if ttl:
            inner += _nla(_DAEMON_TTL, struct.pack("=B", ttl))
        self._raw(self._ipvs.IPVS_CMD_NEW_DAEMON, _nla(_ATTR_DAEMON | NLA_F_NESTED, inner))

    def stop_daemon(self, state: int) -> None:
        """Stop the SYNC_MASTER or SYNC_BACKUP daemon (``ipvsadm --stop-daemon``)."""
        inner = _nla(_DAEMON_STATE, struct.pack("=I", state))
        self._raw(self._ipvs.IPVS_CMD_DEL_DAEMON, _nla(_ATTR_DAEMON | NLA_F_NESTED, inner))

    def daemons(self) -> list[dict[str, object]]:
        """The running daemons: state ("master"/"backup"), interface, syncid."""
        out: list[dict[str, object]] = []
        for reply in self._raw(self._ipvs.IPVS_CMD_GET_DAEMON, dump=True):
            for kind, value in _attrs(reply[_HEADER.size + _GENL.size:]):
                if kind != _ATTR_DAEMON:
                    continue
                found = dict(_attrs(value))
                state = struct.unpack("=I", found.get(_DAEMON_STATE, b"\0" * 4)[:4])[0]
                out.append({
                    "state": {SYNC_MASTER: "master", SYNC_BACKUP: "backup"}.get(state, str(state)),
                    "interface": found.get(_DAEMON_IFN, b"").split(b"\0", 1)[0].decode(errors="replace"),
                    "syncid": struct.unpack("=I", found.get(_DAEMON_SYNCID, b"\0" * 4)[:4])[0],
                })
        return out

    def timeouts(self) -> tuple[int, int, int]:
        """The kernel's (tcp, tcpfin, udp) timeouts in seconds."""
        (reply,) = self._raw(self._ipvs.IPVS_CMD_GET_CONFIG)
        found = dict(_attrs(reply[_HEADER.size + _GENL.size:]))
        tcp, tcp_fin, udp = (int(struct.unpack("=I", found.get(k, b"\0\0\0\0")[:4])[0])
                             for k in (_ATTR_TIMEOUT_TCP, _ATTR_TIMEOUT_TCP_FIN, _ATTR_TIMEOUT_UDP))
        return tcp, tcp_fin, udp


_GENL = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")
NLA_F_NESTED = 0x8000
_ATTR_DAEMON, _ATTR_TIMEOUT_TCP, _ATTR_TIMEOUT_TCP_FIN, _ATTR_TIMEOUT_UDP = 3, 4, 5, 6


def _nla(kind: int, data: bytes) -> bytes:
    raw = _NLA.pack(_NLA.size + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size:
            return
        yield kind & ~NLA_F_NESTED, data[offset + _NLA.size:offset + length]
        offset += (length + 3) & ~3


#: IP_VS_STATE_* of the connection-synchronisation daemon
SYNC_MASTER, SYNC_BACKUP = 1, 2
_DAEMON_STATE, _DAEMON_IFN, _DAEMON_SYNCID, _DAEMON_MAXLEN = 1, 2, 3, 4
_DAEMON_GROUP, _DAEMON_GROUP6, _DAEMON_PORT, _DAEMON_TTL = 5, 6, 7, 8


def _decode_service(nla: Any) -> Service:
    af = nla.get_attr("IPVS_SVC_ATTR_AF")
    family = 6 if af == socket.AF_INET6 else 4
    fwmark = nla.get_attr("IPVS_SVC_ATTR_FWMARK") or 0
    if fwmark:
        key = ServiceKey.for_fwmark(fwmark, family)
    else:
        proto = PROTOCOL_NAMES.get(nla.get_attr("IPVS_SVC_ATTR_PROTOCOL"), "?")
        key = ServiceKey(family, proto, ip_address(nla.get_attr("IPVS_SVC_ATTR_ADDR")),
                         nla.get_attr("IPVS_SVC_ATTR_PORT") or 0, 0)
    flags_nla = nla.get_attr("IPVS_SVC_ATTR_FLAGS")
    flags = flags_nla["flags"] if flags_nla is not None else 0
    netmask_text = nla.get_attr("IPVS_SVC_ATTR_NETMASK")
    netmask: IPv4Address | int | None = None
    if netmask_text is not None:
        raw = IPv4Address(netmask_text)
        netmask = struct.unpack("=I", raw.packed)[0] if family == 6 else raw
    persistent = bool(flags & SVC_F_PERSISTENT)
    default_mask = IPv4Address("255.255.255.255") if family == 4 else 128
    return Service(
        key=key,
        scheduler=nla.get_attr("IPVS_SVC_ATTR_SCHED_NAME") or "",
        persistence_timeout=nla.get_attr("IPVS_SVC_ATTR_TIMEOUT") if persistent else None,
        persistence_netmask=None if netmask == default_mask else netmask,
        persistence_engine=nla.get_attr("IPVS_SVC_ATTR_PE_NAME") or None,
        one_packet=bool(flags & SVC_F_ONEPACKET),
        sched_flags=flags & SVC_F_SCHED_MASK,
    )


def _decode_dest(nla: Any) -> Dest:
    address: IPv4Address | IPv6Address = ip_address(nla.get_attr("IPVS_DEST_ATTR_ADDR"))
    return Dest(
        address=address,
        port=nla.get_attr("IPVS_DEST_ATTR_PORT") or 0,
        forward=Forward((nla.get_attr("IPVS_DEST_ATTR_FWD_METHOD") or 0) & 0x7),
        weight=nla.get_attr("IPVS_DEST_ATTR_WEIGHT") or 0,
        u_threshold=nla.get_attr("IPVS_DEST_ATTR_U_THRESH") or 0,
        l_threshold=nla.get_attr("IPVS_DEST_ATTR_L_THRESH") or 0,
        tun_type=nla.get_attr("IPVS_DEST_ATTR_TUN_TYPE") or 0,
        tun_port=socket.ntohs(nla.get_attr("IPVS_DEST_ATTR_TUN_PORT") or 0),
        tun_flags=nla.get_attr("IPVS_DEST_ATTR_TUN_FLAGS") or 0,
    )
