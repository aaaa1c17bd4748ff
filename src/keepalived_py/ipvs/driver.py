"""The IPVS driver: the kernel's IPVS table over generic netlink (the only module that talks to it).

Requests are encoded from precompiled templates (:mod:`keepalived_py.ipvs.codec`: pyroute2's message
layouts, the same bytes as its encoding, without building its message objects, which cost about 0.3 ms per
operation on the host) and go over a plain blocking generic-netlink socket (the kernel answers in
microseconds, so the checkers' event loop can call it directly; pyroute2's own IPVS socket object cannot be
used inside a running asyncio loop). :meth:`IpvsDriver.apply_all` sends many requests in one ``sendmsg``
and collects their acknowledgements in bulk (the kernel handles the requests of one message in order,
acknowledging each, a failure not stopping the others); replies are read into one large buffer and parsed
in place.

Only the add, set, del, dump and flush commands are used (pyroute2's "update" command sends a delete).
The forwarding method is always sent explicitly (pyroute2's IPVSDest defaults to DR).
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import struct
from collections.abc import Iterator
from ipaddress import ip_address

from keepalived_py.ipvs import codec
from keepalived_py.ipvs.codec import HEADER as _HEADER
from keepalived_py.ipvs.codec import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from keepalived_py.ipvs.reconcile import Op
from keepalived_py.ipvs.state import Dest, Entry, Service, ServiceKey

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
#: the receive buffer (a dump's replies come in chunks of at most 32 KiB; acknowledgements in bulk)
_RECV_SIZE = 1 << 20
#: the socket's receive queue: room for the acknowledgements of a whole batch (SO_RCVBUFFORCE as root)
_RCVBUF = 4 << 20
#: requests sent in one ``sendmsg`` at most ...
_BATCH = 256
#: ... and the room their acknowledgements may take in the receive queue, each (a refusal echoes the
#: request; the kernel counts a small message's whole buffer)
_ACK_ROOM = 2048
_TIMEOUT = 5.0
#: the errors a request's encoding raises for a value out of range (reported as EINVAL for that op)
_ENCODING_ERRORS = (struct.error, ValueError, OverflowError, KeyError, TypeError)


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
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   NETLINK_GENERIC)
        try:
            self._sock.bind((0, 0))
            self._sock.settimeout(_TIMEOUT)
            self._seq = itertools.count(1)
            self._buf = bytearray(_RECV_SIZE)
            self._dest_reader = codec.DestReader()
            self.batch = self._grow_receive_queue()
            self.family = self._resolve_family(codec.GENL_NAME)
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

    def _grow_receive_queue(self) -> int:
        """Enlarge the receive queue (beyond net.core.rmem_max when allowed); the batch size it has room
        for."""
        for option in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, option, _RCVBUF)
                break
            except OSError:
                continue
        room = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # the kernel reports 2x
        return max(1, min(_BATCH, room // _ACK_ROOM))

    def _resolve_family(self, name: str) -> int:
        from pyroute2.netlink.generic import ctrlmsg

        msg = ctrlmsg()
        msg["cmd"] = CTRL_CMD_GETFAMILY
        msg["version"] = 1
        msg["attrs"] = [("CTRL_ATTR_FAMILY_NAME", name)]
        seq = next(self._seq)
        msg["header"]["type"] = GENL_ID_CTRL
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
        msg["header"]["sequence_number"] = seq
        msg["header"]["pid"] = 0
        msg.encode()
        self._sock.send(msg.data)
        try:
            replies = self._collect(seq, dump=False)
        except IpvsError as err:
            if err.errno == errno.ENOENT:
                raise IpvsError(err.errno, "the kernel has no IPVS (is the ip_vs module loaded?)") from None
            raise
        for data in replies:
            reply = ctrlmsg(data)
            reply.decode()
            family = reply.get_attr("CTRL_ATTR_FAMILY_ID")
            if family is not None:
                return int(family)
        raise IpvsError(errno.ENOENT, "the kernel has no IPVS (is the ip_vs module loaded?)")

    def _replies(self, seq: int) -> Iterator[tuple[int, int, int]]:
        """(type, offset, length) in the receive buffer of each reply to request ``seq``, up to its
        NLMSG_DONE or NLMSG_ERROR; each is valid until the next is asked for (the buffer is reused)."""
        buf = self._buf
        while True:
            size = self._sock.recv_into(buf)
            for kind, rseq, offset, length in codec.iter_messages(buf, size):
                if rseq != seq:
                    continue
                yield kind, offset, length
                if kind in (NLMSG_DONE, NLMSG_ERROR):
                    return

    def _collect(self, seq: int, *, dump: bool) -> list[bytes]:
        """The replies to request ``seq`` (copied out of the buffer); :class:`IpvsError` on a refusal."""
        replies: list[bytes] = []
        for kind, offset, length in self._replies(seq):
            if kind == NLMSG_ERROR:
                code = codec.error_code(self._buf, offset)
                if code:
                    raise IpvsError(code, os.strerror(code))
                return replies
            if kind == NLMSG_DONE:
                return replies
            replies.append(bytes(self._buf[offset:offset + length]))
            if not dump:
                return replies
        return replies  # pragma: no cover

    def _dump(self, request: bytes, seq: int) -> Iterator[tuple[int, int]]:
        """Send a dump request; (offset, length) of each of its replies in the receive buffer (valid until
        the next is asked for)."""
        self._sock.send(request)
        for kind, offset, length in self._replies(seq):
            if kind == NLMSG_ERROR:
                code = codec.error_code(self._buf, offset)
                if code:
                    raise IpvsError(code, os.strerror(code))
                return
            if kind == NLMSG_DONE:
                return
            yield offset, length

    # --- the table ----------------------------------------------------------------------------------------

    def dump(self) -> dict[ServiceKey, Entry]:
        """Every virtual service with its real servers."""
        return dict(self.iter_dump())

    def services(self) -> list[Service]:
        """Every virtual service (without its real servers)."""
        seq = next(self._seq)
        request = codec.message(self.family, NLM_F_REQUEST | NLM_F_DUMP, seq, codec.CMD_GET_SERVICE)
        buf = self._buf
        out = []
        for offset, length in self._dump(request, seq):
            found = codec.nested(buf, offset, length, codec.ATTR_SERVICE)
            if found is not None:
                out.append(codec.decode_service(buf, found))
        return out

    def service_stats(self) -> dict[ServiceKey, dict[str, int]]:
        """Every virtual service's kernel counters (connections, packets and bytes in and out): one dump
        of the services, no real servers."""
        seq = next(self._seq)
        request = codec.message(self.family, NLM_F_REQUEST | NLM_F_DUMP, seq, codec.CMD_GET_SERVICE)
        buf = self._buf
        out = {}
        for offset, length in self._dump(request, seq):
            found = codec.nested(buf, offset, length, codec.ATTR_SERVICE)
            if found is not None:
                out[codec.decode_service(buf, found).key] = codec.decode_service_stats(buf, found)
        return out

    def dests(self, key: ServiceKey) -> list[Dest]:
        """The real servers of one virtual service."""
        seq = next(self._seq)
        af = socket.AF_INET6 if key.family == 6 else socket.AF_INET
        buf = self._buf
        read = self._dest_reader.read
        out = []
        for offset, length in self._dump(codec.dest_dump_request(key, self.family, seq), seq):
            dest = read(buf, offset, length, af)
            if dest is not None:
                out.append(dest)
        return out

    def iter_dump(self) -> Iterator[tuple[ServiceKey, Entry]]:
        """Every virtual service with its real servers, one at a time: the list of services is read at
        once, but each one's real servers are read only when the caller asks for the next one (a caller
        on an event loop can let it turn between services; other requests may go in between)."""
        for service in self.services():
            yield service.key, Entry.of(service, self.dests(service.key))

    def apply(self, op: Op) -> None:
        """Carry out one reconciler operation; :class:`IpvsError` when the kernel refuses it."""
        for _op, err in self.apply_all([op]):
            raise err

    def apply_all(self, ops: list[Op]) -> list[tuple[Op, IpvsError]]:
        """Apply every operation in order, carrying on after a failure; the failures, in order (each with
        its operation and the kernel's errno). Sent :attr:`batch` requests per ``sendmsg``."""
        failed: list[tuple[Op, IpvsError]] = []
        for start in range(0, len(ops), self.batch):
            failed += self._apply_batch(ops[start:start + self.batch])
        return failed

    def _apply_batch(self, ops: list[Op]) -> list[tuple[Op, IpvsError]]:
        failed: list[tuple[int, Op, IpvsError]] = []
        pending: dict[int, tuple[int, Op]] = {}
        requests: list[bytes] = []
        family = self.family
        for index, op in enumerate(ops):
            seq = next(self._seq)
            try:
                requests.append(codec.op_request(op, family, seq))
            except _ENCODING_ERRORS as err:
                failed.append((index, op, IpvsError(errno.EINVAL, f"{op}: cannot be encoded: {err}", op)))
                continue
            pending[seq] = (index, op)
        if requests:
            self._sock.sendmsg(requests)
        buf = self._buf
        while pending:
            size = self._sock.recv_into(buf)
            for kind, seq, offset, _length in codec.iter_messages(buf, size):
                if kind != NLMSG_ERROR:
                    continue
                found = pending.pop(seq, None)
                if found is None:
                    continue  # an answer to an earlier request that timed out
                code = codec.error_code(buf, offset)
                if code:
                    index, op = found
                    failed.append((index, op, IpvsError(code, f"{op}: {os.strerror(code)}", op)))
        failed.sort(key=lambda item: item[0])
        return [(op, err) for _index, op, err in failed]

    def flush(self) -> None:
        """Remove every virtual service (``ipvsadm -C``)."""
        self._raw(codec.CMD_FLUSH)

    # --- configuration (raw netlink) -----------------------------------------------------------------------

    def _raw(self, cmd: int, attrs: bytes = b"", *, dump: bool = False) -> list[bytes]:
        seq = next(self._seq)
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        self._sock.send(codec.message(self.family, flags, seq, cmd, attrs))
        return self._collect(seq, dump=dump)

    def set_timeouts(self, tcp: int, tcp_fin: int, udp: int) -> None:
        """``ipvsadm --set tcp tcpfin udp``: 0 leaves that timeout as it is."""
        attrs = b"".join(_nla(kind, struct.pack("=I", value))
                         for kind, value in ((_ATTR_TIMEOUT_TCP, tcp), (_ATTR_TIMEOUT_TCP_FIN, tcp_fin),
                                             (_ATTR_TIMEOUT_UDP, udp)))
        self._raw(codec.CMD_SET_CONFIG, attrs)

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
        self._raw(codec.CMD_NEW_DAEMON, _nla(_ATTR_DAEMON | NLA_F_NESTED, inner))

    def stop_daemon(self, state: int) -> None:
        """Stop the SYNC_MASTER or SYNC_BACKUP daemon (``ipvsadm --stop-daemon``)."""
        inner = _nla(_DAEMON_STATE, struct.pack("=I", state))
        self._raw(codec.CMD_DEL_DAEMON, _nla(_ATTR_DAEMON | NLA_F_NESTED, inner))

    def daemons(self) -> list[dict[str, object]]:
        """The running daemons: state ("master"/"backup"), interface, syncid."""
        out: list[dict[str, object]] = []
        for reply in self._raw(codec.CMD_GET_DAEMON, dump=True):
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
        (reply,) = self._raw(codec.CMD_GET_CONFIG)
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
