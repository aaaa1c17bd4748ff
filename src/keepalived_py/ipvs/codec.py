"""IPVS generic-netlink messages as bytes: requests encoded from precompiled templates, dump replies parsed.

Building each request with pyroute2's message classes cost about 0.3 ms per operation on the host (most of
the time programming a large table); here a request is a few ``struct`` packs of precompiled layouts. The
layouts are pyroute2's: the attribute numbers are read from its IPVS message definitions
(``pyroute2.netlink.generic.ipvs.ipvsmsg``) and the bytes are the same as its encoding of the same request
(tests/ipvs/test_codec.py compares them for every kind of operation). Likewise the replies of a dump are
parsed straight from the receive buffer, with the values pyroute2's decoding gives.

Pure functions: no socket here (the driver sends and receives).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pyroute2.netlink.generic import ipvs as _pyroute2_ipvs

from keepalived_py.ipvs.reconcile import Op, OpKind
from keepalived_py.ipvs.state import (
    PROTOCOL_NAMES,
    PROTOCOLS,
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    SVC_F_SCHED_MASK,
    Dest,
    DestKey,
    Forward,
    Service,
    ServiceKey,
)

GENL_NAME: str = _pyroute2_ipvs.GENL_NAME
GENL_VERSION: int = _pyroute2_ipvs.GENL_VERSION
CMD_NEW_SERVICE: int = _pyroute2_ipvs.IPVS_CMD_NEW_SERVICE
CMD_SET_SERVICE: int = _pyroute2_ipvs.IPVS_CMD_SET_SERVICE
CMD_DEL_SERVICE: int = _pyroute2_ipvs.IPVS_CMD_DEL_SERVICE
CMD_GET_SERVICE: int = _pyroute2_ipvs.IPVS_CMD_GET_SERVICE
CMD_NEW_DEST: int = _pyroute2_ipvs.IPVS_CMD_NEW_DEST
CMD_SET_DEST: int = _pyroute2_ipvs.IPVS_CMD_SET_DEST
CMD_DEL_DEST: int = _pyroute2_ipvs.IPVS_CMD_DEL_DEST
CMD_GET_DEST: int = _pyroute2_ipvs.IPVS_CMD_GET_DEST
CMD_NEW_DAEMON: int = _pyroute2_ipvs.IPVS_CMD_NEW_DAEMON
CMD_DEL_DAEMON: int = _pyroute2_ipvs.IPVS_CMD_DEL_DAEMON
CMD_GET_DAEMON: int = _pyroute2_ipvs.IPVS_CMD_GET_DAEMON
CMD_SET_CONFIG: int = _pyroute2_ipvs.IPVS_CMD_SET_CONFIG
CMD_GET_CONFIG: int = _pyroute2_ipvs.IPVS_CMD_GET_CONFIG
CMD_FLUSH: int = _pyroute2_ipvs.IPVS_CMD_FLUSH

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

HEADER = struct.Struct("=LHHLL")  # nlmsghdr
GENL = struct.Struct("=BBH")  # genlmsghdr
NLA = struct.Struct("=HH")
_ERRNO = struct.Struct("=i")
_U8 = struct.Struct("=B")
_U16 = struct.Struct("=H")
_BE16 = struct.Struct("!H")
_U32 = struct.Struct("=I")
_FLAGS = struct.Struct("=II")

#: the flags kpd owns in IPVS_SVC_ATTR_FLAGS (the kernel's HASHED bit etc. are left alone)
FLAGS_MASK = SVC_F_PERSISTENT | SVC_F_ONEPACKET | SVC_F_SCHED_MASK


def _ids(nla_map: Any, prefix: str) -> dict[str, int]:
    """Attribute name (without its prefix) -> number, from a pyroute2 ``nla_map`` (numbered by position)."""
    out = {}
    for number, entry in enumerate(nla_map):
        name = entry[0]
        out[name[len(prefix):]] = number
    return out


_CMD = _ids(_pyroute2_ipvs.ipvsmsg.nla_map, "IPVS_CMD_ATTR_")
_SVC = _ids(_pyroute2_ipvs.ipvsmsg.service.nla_map, "IPVS_SVC_ATTR_")
_DEST = _ids(_pyroute2_ipvs.ipvsmsg.dest.nla_map, "IPVS_DEST_ATTR_")

ATTR_SERVICE = _CMD["SERVICE"]
ATTR_DEST = _CMD["DEST"]
SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT = _SVC["AF"], _SVC["PROTOCOL"], _SVC["ADDR"], _SVC["PORT"]
SVC_FWMARK, SVC_SCHED_NAME, SVC_FLAGS = _SVC["FWMARK"], _SVC["SCHED_NAME"], _SVC["FLAGS"]
SVC_TIMEOUT, SVC_NETMASK, SVC_PE_NAME = _SVC["TIMEOUT"], _SVC["NETMASK"], _SVC["PE_NAME"]
SVC_STATS, SVC_STATS64 = _SVC["STATS"], _SVC["STATS64"]
_STATS = _ids(_pyroute2_ipvs.ipvsmsg.service.stats.nla_map, "IPVS_STATS_ATTR_")
DEST_ADDR, DEST_PORT, DEST_FWD_METHOD = _DEST["ADDR"], _DEST["PORT"], _DEST["FWD_METHOD"]
DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH = _DEST["WEIGHT"], _DEST["U_THRESH"], _DEST["L_THRESH"]
DEST_ADDR_FAMILY, DEST_TUN_TYPE = _DEST["ADDR_FAMILY"], _DEST["TUN_TYPE"]
DEST_TUN_PORT, DEST_TUN_FLAGS = _DEST["TUN_PORT"], _DEST["TUN_FLAGS"]

# --- templates -------------------------------------------------------------------------------------------
# Each is the packed layout of a run of attributes (header, value, padding to 4 bytes); the headers'
# lengths and numbers are bound once here, so encoding is one pack of the values.


class _Template:
    """A precompiled run of attributes: ``pack(*values)``."""

    __slots__ = ("_head", "_struct")

    def __init__(self, *attrs: tuple[int, str]) -> None:
        fmt = "="
        head: list[tuple[int, int, bool]] = []
        for number, value_fmt in attrs:
            size = struct.calcsize("=" + value_fmt)
            fmt += f"HH{value_fmt}{-(NLA.size + size) % 4}x"
            head.append((NLA.size + size, number, len(struct.unpack("=" + value_fmt, bytes(size))) > 1))
        self._struct = struct.Struct(fmt)
        self._head = head

    def pack(self, *values: Any) -> bytes:
        """The attributes with these values (a tuple for an attribute of several fields)."""
        args: list[Any] = []
        for (length, number, several), value in zip(self._head, values, strict=True):
            if several:
                args += (length, number, *value)
            else:
                args += (length, number, value)
        return self._struct.pack(*args)


# the key of a service: (AF, PROTOCOL, ADDR, PORT) or (AF, FWMARK); the port in network order
_KEY4 = _Template((SVC_AF, "H"), (SVC_PROTOCOL, "H"), (SVC_ADDR, "4s"), (SVC_PORT, "H"))
_KEY6 = _Template((SVC_AF, "H"), (SVC_PROTOCOL, "H"), (SVC_ADDR, "16s"), (SVC_PORT, "H"))
_KEY_FWMARK = _Template((SVC_AF, "H"), (SVC_FWMARK, "I"))
# a service's settings after its key (SCHED_NAME and PE_NAME are strings: packed apart)
_SVC_TAIL = _Template((SVC_FLAGS, "II"), (SVC_TIMEOUT, "I"), (SVC_NETMASK, "4s"))
# a real server's key, and its settings
_DEST4 = _Template((DEST_ADDR_FAMILY, "H"), (DEST_ADDR, "4s"), (DEST_PORT, "H"))
_DEST6 = _Template((DEST_ADDR_FAMILY, "H"), (DEST_ADDR, "16s"), (DEST_PORT, "H"))
_DEST_SETTINGS = _Template((DEST_FWD_METHOD, "I"), (DEST_WEIGHT, "I"), (DEST_U_THRESH, "I"),
                           (DEST_L_THRESH, "I"), (DEST_TUN_TYPE, "B"), (DEST_TUN_PORT, "H"),
                           (DEST_TUN_FLAGS, "H"))


def _nla(number: int, data: bytes) -> bytes:
    raw = NLA.pack(NLA.size + len(data), number) + data
    return raw + b"\0" * (-len(raw) % 4)


def _asciiz(number: int, text: str) -> bytes:
    return _nla(number, text.encode() + b"\0")


def service_key_attrs(key: ServiceKey) -> bytes:
    """The attributes naming a service (inside IPVS_CMD_ATTR_SERVICE)."""
    af = socket.AF_INET6 if key.family == 6 else socket.AF_INET
    if key.fwmark:
        return _KEY_FWMARK.pack(af, key.fwmark)
    assert key.address is not None
    template = _KEY6 if key.family == 6 else _KEY4
    return template.pack(af, PROTOCOLS[key.protocol], key.address.packed, socket.htons(key.port))


def service_attrs(svc: Service) -> bytes:
    """A service's key and settings (for NEW_SERVICE / SET_SERVICE)."""
    netmask = svc.netmask
    # IPv6: a prefix length, as a host-order u32 (as ipvsadm sends it)
    mask = _U32.pack(netmask) if isinstance(netmask, int) else netmask.packed
    out = (service_key_attrs(svc.key) + _asciiz(SVC_SCHED_NAME, svc.scheduler)
           + _SVC_TAIL.pack((svc.flags, FLAGS_MASK), svc.persistence_timeout or 0, mask))
    if svc.persistence_engine:
        out += _asciiz(SVC_PE_NAME, svc.persistence_engine)
    return out


def dest_attrs(dest: Dest | DestKey, with_settings: bool = True) -> bytes:
    """A real server's key, and with ``with_settings`` (a :class:`Dest`) its settings."""
    if dest.address.version == 6:
        out = _DEST6.pack(socket.AF_INET6, dest.address.packed, socket.htons(dest.port))
    else:
        out = _DEST4.pack(socket.AF_INET, dest.address.packed, socket.htons(dest.port))
    if with_settings:
        assert isinstance(dest, Dest)
        # the kernel reads the tunnel port in network order (pyroute2 declares it a host-order u16)
        out += _DEST_SETTINGS.pack(int(dest.forward), dest.weight, dest.u_threshold, dest.l_threshold,
                                   dest.tun_type, socket.htons(dest.tun_port), dest.tun_flags)
    return out


def message(family: int, flags: int, seq: int, cmd: int, attrs: bytes = b"") -> bytes:
    """A whole generic-netlink IPVS request."""
    return (HEADER.pack(HEADER.size + GENL.size + len(attrs), family, flags, seq, 0)
            + GENL.pack(cmd, GENL_VERSION, 0) + attrs)


def op_request(op: Op, family: int, seq: int) -> bytes:
    """The request carrying out one reconciler operation (acknowledged)."""
    kind = op.kind
    flags = NLM_F_REQUEST | NLM_F_ACK
    if kind is OpKind.ADD_DEST or kind is OpKind.SET_DEST:
        assert isinstance(op.item, Dest)
        cmd = CMD_NEW_DEST if kind is OpKind.ADD_DEST else CMD_SET_DEST
        attrs = _nla(ATTR_SERVICE, service_key_attrs(op.service)) + _nla(ATTR_DEST, dest_attrs(op.item))
    elif kind is OpKind.DEL_DEST:
        assert isinstance(op.item, DestKey)
        cmd = CMD_DEL_DEST
        attrs = (_nla(ATTR_SERVICE, service_key_attrs(op.service))
                 + _nla(ATTR_DEST, dest_attrs(op.item, with_settings=False)))
    elif kind is OpKind.ADD_SERVICE or kind is OpKind.SET_SERVICE:
        assert isinstance(op.item, Service)
        cmd = CMD_NEW_SERVICE if kind is OpKind.ADD_SERVICE else CMD_SET_SERVICE
        attrs = _nla(ATTR_SERVICE, service_attrs(op.item))
    elif kind is OpKind.DEL_SERVICE:
        cmd = CMD_DEL_SERVICE
        attrs = _nla(ATTR_SERVICE, service_key_attrs(op.service))
    else:  # pragma: no cover
        raise ValueError(f"unknown operation {kind}")
    return message(family, flags, seq, cmd, attrs)


def dest_dump_request(key: ServiceKey, family: int, seq: int) -> bytes:
    """The request dumping one service's real servers."""
    return message(family, NLM_F_REQUEST | NLM_F_DUMP, seq, CMD_GET_DEST,
                   _nla(ATTR_SERVICE, service_key_attrs(key)))


# --- parsing ---------------------------------------------------------------------------------------------


def iter_messages(buf: bytes | bytearray | memoryview, size: int) -> Iterator[tuple[int, int, int, int]]:
    """(type, sequence number, offset, length) of each netlink message in ``buf[:size]``."""
    offset = 0
    unpack = HEADER.unpack_from
    while offset + HEADER.size <= size:
        length, kind, _flags, seq, _pid = unpack(buf, offset)
        if length < HEADER.size:
            return
        yield kind, seq, offset, length
        offset += (length + 3) & ~3


def error_code(buf: bytes | bytearray | memoryview, offset: int) -> int:
    """The errno of an NLMSG_ERROR message at ``offset`` (0: an acknowledgement)."""
    return -int(_ERRNO.unpack_from(buf, offset + HEADER.size)[0])


def attrs(buf: bytes | bytearray | memoryview, start: int, end: int) -> dict[int, tuple[int, int]]:
    """Attribute number -> (offset, length) of its value, for the attributes in ``buf[start:end]``."""
    out = {}
    unpack = NLA.unpack_from
    while start + 4 <= end:
        length, number = unpack(buf, start)
        if length < 4:
            break
        out[number & NLA_TYPE_MASK] = (start + 4, length - 4)
        start += (length + 3) & ~3
    return out


def nested(buf: bytes | bytearray | memoryview, offset: int, length: int, number: int) \
        -> dict[int, tuple[int, int]] | None:
    """The attributes nested in top-level attribute ``number`` of the generic-netlink message at
    ``offset`` (None when it has none)."""
    top = attrs(buf, offset + HEADER.size + GENL.size, offset + length)
    found = top.get(number)
    if found is None:
        return None
    return attrs(buf, found[0], found[0] + found[1])


def _u(buf: bytes | bytearray | memoryview, found: dict[int, tuple[int, int]], number: int,
       fmt: struct.Struct) -> int:
    at = found.get(number)
    return int(fmt.unpack_from(buf, at[0])[0]) if at is not None and at[1] >= fmt.size else 0


def _text(buf: bytes | bytearray | memoryview, found: dict[int, tuple[int, int]], number: int) -> str:
    at = found.get(number)
    if at is None:
        return ""
    return bytes(buf[at[0]:at[0] + at[1]]).strip(b"\0").decode(errors="replace")


def _address(buf: bytes | bytearray | memoryview, at: tuple[int, int] | None, family: int) \
        -> IPv4Address | IPv6Address:
    if at is None:
        raise ValueError("an IPVS address attribute is missing")
    if family == socket.AF_INET6:
        return IPv6Address(bytes(buf[at[0]:at[0] + 16]))
    return IPv4Address(bytes(buf[at[0]:at[0] + 4]))


_ALL_ONES = IPv4Address("255.255.255.255")


def decode_service(buf: bytes | bytearray | memoryview, found: dict[int, tuple[int, int]]) -> Service:
    """A service from its attributes (as :func:`nested` finds them)."""
    af = _u(buf, found, SVC_AF, _U16)
    family = 6 if af == socket.AF_INET6 else 4
    fwmark = _u(buf, found, SVC_FWMARK, _U32)
    if fwmark:
        key = ServiceKey.for_fwmark(fwmark, family)
    else:
        proto = PROTOCOL_NAMES.get(_u(buf, found, SVC_PROTOCOL, _U16), "?")
        key = ServiceKey(family, proto, _address(buf, found.get(SVC_ADDR), af),
                         _u(buf, found, SVC_PORT, _BE16), 0)
    at = found.get(SVC_FLAGS)
    flags = int(_FLAGS.unpack_from(buf, at[0])[0]) if at is not None and at[1] >= _FLAGS.size else 0
    netmask: IPv4Address | int | None = None
    at = found.get(SVC_NETMASK)
    if at is not None and at[1] >= 4:
        raw = bytes(buf[at[0]:at[0] + 4])
        netmask = int(_U32.unpack(raw)[0]) if family == 6 else IPv4Address(raw)
    persistent = bool(flags & SVC_F_PERSISTENT)
    default_mask = _ALL_ONES if family == 4 else 128
    timeout = found.get(SVC_TIMEOUT)
    return Service(
        key=key,
        scheduler=_text(buf, found, SVC_SCHED_NAME),
        persistence_timeout=(_u(buf, found, SVC_TIMEOUT, _U32) if timeout is not None else None)
        if persistent else None,
        persistence_netmask=None if netmask == default_mask else netmask,
        persistence_engine=_text(buf, found, SVC_PE_NAME) or None,
        one_packet=bool(flags & SVC_F_ONEPACKET),
        sched_flags=flags & SVC_F_SCHED_MASK,
    )


_U64 = struct.Struct("=Q")
#: the kernel's counters of a service: stats name -> (attribute, its width in IPVS_SVC_ATTR_STATS)
_STATS_FIELDS = {"connections": (_STATS["CONNS"], _U32), "packets_in": (_STATS["INPKTS"], _U32),
                 "packets_out": (_STATS["OUTPKTS"], _U32), "bytes_in": (_STATS["INBYTES"], _U64),
                 "bytes_out": (_STATS["OUTBYTES"], _U64)}


def decode_service_stats(buf: bytes | bytearray | memoryview, found: dict[int, tuple[int, int]]) \
        -> dict[str, int]:
    """A service's counters since it was created (connections, packets and bytes in and out): the 64-bit
    ones where the kernel sends them (IPVS_SVC_ATTR_STATS64, Linux 4.1+), else the 32-bit ones."""
    at = found.get(SVC_STATS64)
    wide = at is not None
    if at is None:
        at = found.get(SVC_STATS)
    if at is None:
        return {}
    inner = attrs(buf, at[0], at[0] + at[1])
    return {name: _u(buf, inner, number, _U64 if wide else width)
            for name, (number, width) in _STATS_FIELDS.items()}


def decode_dest(buf: bytes | bytearray | memoryview, found: dict[int, tuple[int, int]], af: int) -> Dest:
    """A real server from its attributes; ``af`` is the service's (older kernels send no ADDR_FAMILY)."""
    if DEST_ADDR_FAMILY in found:
        af = _u(buf, found, DEST_ADDR_FAMILY, _U16)
    return Dest(
        address=_address(buf, found.get(DEST_ADDR), af),
        port=_u(buf, found, DEST_PORT, _BE16),
        forward=Forward(_u(buf, found, DEST_FWD_METHOD, _U32) & 0x7),
        weight=_u(buf, found, DEST_WEIGHT, _U32),
        u_threshold=_u(buf, found, DEST_U_THRESH, _U32),
        l_threshold=_u(buf, found, DEST_L_THRESH, _U32),
        tun_type=_u(buf, found, DEST_TUN_TYPE, _U8),
        tun_port=socket.ntohs(_u(buf, found, DEST_TUN_PORT, _U16)),
        tun_flags=_u(buf, found, DEST_TUN_FLAGS, _U16),
    )



#: how each real-server attribute kpd reads is unpacked (the ports as sent, byte-swapped after)
_DEST_FORMATS = {DEST_PORT: "H", DEST_FWD_METHOD: "I", DEST_WEIGHT: "I", DEST_U_THRESH: "I",
                 DEST_L_THRESH: "I", DEST_ADDR_FAMILY: "H", DEST_TUN_TYPE: "B", DEST_TUN_PORT: "H",
                 DEST_TUN_FLAGS: "H"}
_DEST_FIELDS = (DEST_ADDR, DEST_ADDR_FAMILY, DEST_PORT, DEST_FWD_METHOD, DEST_WEIGHT, DEST_U_THRESH,
                DEST_L_THRESH, DEST_TUN_TYPE, DEST_TUN_PORT, DEST_TUN_FLAGS)


class _DestLayout:
    """Where a kernel's real-server replies put the attributes kpd reads: the attribute headers of the
    leading run of attributes (checked with one unpack) and the values in it (read with another)."""

    __slots__ = ("complete", "expected", "heads", "index", "size", "values")

    def __init__(self, buf: bytes | bytearray | memoryview, start: int, end: int) -> None:
        order: list[tuple[int, int, int, int]] = []  # (raw type, number, value offset, length)
        at = start
        while at + 4 <= end:
            length, raw = NLA.unpack_from(buf, at)
            if length < 4:
                break
            order.append((raw, raw & NLA_TYPE_MASK, at + 4, length - 4))
            at += (length + 3) & ~3
        wanted = [i for i, (_raw, number, _at, _n) in enumerate(order) if number in _DEST_FIELDS]
        run = order[:wanted[-1] + 1] if wanted else []
        heads, values = "=", "="
        expected: list[int] = []
        index = dict.fromkeys(_DEST_FIELDS, -1)
        count = 0
        for raw, number, _at, length in run:
            padded = (length + 3) & ~3
            heads += f"HH{padded}x"
            expected += (length + 4, raw)
            fmt = f"{length}s" if number == DEST_ADDR else _DEST_FORMATS.get(number, "")
            size = struct.calcsize("=" + fmt) if fmt else 0
            if not fmt or size > length or index[number] >= 0:
                values += f"{4 + padded}x"
                continue
            values += f"4x{fmt}{padded - size}x"
            index[number] = count
            count += 1
        self.heads = struct.Struct(heads)
        self.values = struct.Struct(values)
        self.expected = tuple(expected)
        self.size = self.heads.size
        self.index = tuple(index[number] for number in _DEST_FIELDS)
        #: every attribute kpd reads is in the run (else one might follow it: such replies are parsed)
        self.complete = min(self.index) >= 0


class DestReader:
    """Reads the real servers of a dump from the kernel's NEW_DEST replies. The first reply's layout is
    learnt; the next ones with the same attribute headers (all of a kernel's, usually) are read with two
    ``struct`` unpacks, the others attribute by attribute. Gives what :func:`decode_dest` gives."""

    def __init__(self) -> None:
        self._layout: _DestLayout | None = None

    def read(self, buf: bytes | bytearray | memoryview, offset: int, length: int, af: int) -> Dest | None:
        """The real server in the reply at ``offset`` (None when it has none); ``af``: the service's."""
        start = offset + HEADER.size + GENL.size
        top_length, top_type = NLA.unpack_from(buf, start)
        if top_type & NLA_TYPE_MASK != ATTR_DEST or start + top_length > offset + length or top_length < 4:
            found = nested(buf, offset, length, ATTR_DEST)
            return None if found is None else decode_dest(buf, found, af)
        start += 4
        end = start + top_length - 4
        layout = self._layout
        if (layout is None or end - start < layout.size
                or layout.heads.unpack_from(buf, start) != layout.expected):
            layout = self._layout = _DestLayout(buf, start, end)
        if not layout.complete:
            return decode_dest(buf, attrs(buf, start, end), af)
        v = (*layout.values.unpack_from(buf, start), 0)  # an absent attribute's index (-1) reads the 0
        i_addr, i_af, i_port, i_fwd, i_weight, i_u, i_l, i_tun_type, i_tun_port, i_tun_flags = layout.index
        if i_af >= 0:
            af = v[i_af]
        addr = v[i_addr]
        fwd = v[i_fwd] & 0x7
        return Dest(
            address=IPv6Address(addr[:16]) if af == socket.AF_INET6 else IPv4Address(addr[:4]),
            port=socket.ntohs(v[i_port]),
            forward=_FORWARDS[fwd] if fwd in _FORWARDS else Forward(fwd),
            weight=v[i_weight],
            u_threshold=v[i_u],
            l_threshold=v[i_l],
            tun_type=v[i_tun_type],
            tun_port=socket.ntohs(v[i_tun_port]),
            tun_flags=v[i_tun_flags],
        )


_FORWARDS = {int(f) & 0x7: f for f in Forward}
