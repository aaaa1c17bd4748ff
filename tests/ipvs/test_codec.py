"""The template-encoded IPVS requests are byte for byte pyroute2's encoding of the same request, and the dump
parser reads what pyroute2's decoding reads (no kernel needed)."""

from __future__ import annotations

import socket
import struct
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroute2.netlink.generic import ipvs

from keepalived_py.ipvs import codec
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

FAMILY = 0x1F  # a generic-netlink family id as the kernel assigns them

# --- the reference: requests built with pyroute2's message classes, as the driver did before ---------------


def ref_key_attrs(key: ServiceKey) -> list[tuple[str, Any]]:
    af = socket.AF_INET6 if key.family == 6 else socket.AF_INET
    if key.fwmark:
        return [("IPVS_SVC_ATTR_AF", af), ("IPVS_SVC_ATTR_FWMARK", key.fwmark)]
    return [("IPVS_SVC_ATTR_AF", af), ("IPVS_SVC_ATTR_PROTOCOL", PROTOCOLS[key.protocol]),
            ("IPVS_SVC_ATTR_ADDR", str(key.address)), ("IPVS_SVC_ATTR_PORT", key.port)]


def ref_service_attrs(svc: Service) -> list[tuple[str, Any]]:
    netmask = svc.netmask
    if isinstance(netmask, int):
        netmask = IPv4Address(struct.unpack("!I", struct.pack("=I", netmask))[0])
    attrs = [*ref_key_attrs(svc.key), ("IPVS_SVC_ATTR_SCHED_NAME", svc.scheduler),
             ("IPVS_SVC_ATTR_FLAGS", {"flags": svc.flags, "mask": codec.FLAGS_MASK}),
             ("IPVS_SVC_ATTR_TIMEOUT", svc.persistence_timeout or 0),
             ("IPVS_SVC_ATTR_NETMASK", str(netmask))]
    if svc.persistence_engine:
        attrs.append(("IPVS_SVC_ATTR_PE_NAME", svc.persistence_engine))
    return attrs


def ref_dest_attrs(dest: Dest, with_settings: bool = True) -> list[tuple[str, Any]]:
    af = socket.AF_INET6 if dest.address.version == 6 else socket.AF_INET
    attrs: list[tuple[str, Any]] = [("IPVS_DEST_ATTR_ADDR_FAMILY", af),
                                    ("IPVS_DEST_ATTR_ADDR", str(dest.address)),
                                    ("IPVS_DEST_ATTR_PORT", dest.port)]
    if with_settings:
        attrs += [("IPVS_DEST_ATTR_FWD_METHOD", int(dest.forward)), ("IPVS_DEST_ATTR_WEIGHT", dest.weight),
                  ("IPVS_DEST_ATTR_U_THRESH", dest.u_threshold),
                  ("IPVS_DEST_ATTR_L_THRESH", dest.l_threshold),
                  ("IPVS_DEST_ATTR_TUN_TYPE", dest.tun_type),
                  ("IPVS_DEST_ATTR_TUN_PORT", socket.htons(dest.tun_port)),
                  ("IPVS_DEST_ATTR_TUN_FLAGS", dest.tun_flags)]
    return attrs


def ref_encode(cmd: int, attrs: list[tuple[str, Any]], seq: int, flags: int) -> bytes:
    msg = ipvs.ipvsmsg()
    msg["cmd"] = cmd
    msg["version"] = ipvs.GENL_VERSION
    msg["attrs"] = attrs
    msg["header"]["type"] = FAMILY
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    return bytes(msg.data)


def ref_op(op: Op, seq: int) -> bytes:
    key = {"attrs": ref_key_attrs(op.service)}
    flags = codec.NLM_F_REQUEST | codec.NLM_F_ACK
    if op.kind in (OpKind.ADD_SERVICE, OpKind.SET_SERVICE):
        assert isinstance(op.item, Service)
        cmd = ipvs.IPVS_CMD_NEW_SERVICE if op.kind is OpKind.ADD_SERVICE else ipvs.IPVS_CMD_SET_SERVICE
        return ref_encode(cmd, [("IPVS_CMD_ATTR_SERVICE", {"attrs": ref_service_attrs(op.item)})], seq, flags)
    if op.kind is OpKind.DEL_SERVICE:
        return ref_encode(ipvs.IPVS_CMD_DEL_SERVICE, [("IPVS_CMD_ATTR_SERVICE", key)], seq, flags)
    if op.kind in (OpKind.ADD_DEST, OpKind.SET_DEST):
        assert isinstance(op.item, Dest)
        cmd = ipvs.IPVS_CMD_NEW_DEST if op.kind is OpKind.ADD_DEST else ipvs.IPVS_CMD_SET_DEST
        return ref_encode(cmd, [("IPVS_CMD_ATTR_SERVICE", key),
                                ("IPVS_CMD_ATTR_DEST", {"attrs": ref_dest_attrs(op.item)})], seq, flags)
    assert isinstance(op.item, DestKey)
    dest = Dest(op.item.address, op.item.port)
    return ref_encode(ipvs.IPVS_CMD_DEL_DEST, [
        ("IPVS_CMD_ATTR_SERVICE", key),
        ("IPVS_CMD_ATTR_DEST", {"attrs": ref_dest_attrs(dest, with_settings=False)})], seq, flags)


# --- strategies --------------------------------------------------------------------------------------------

ipv4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 2**32 - 1)
names = st.sampled_from(["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo",
                         "ovf", "twos", ""])


@st.composite
def service_keys(draw: st.DrawFn) -> ServiceKey:
    family = draw(st.sampled_from([4, 6]))
    if draw(st.booleans()):
        return ServiceKey.for_fwmark(draw(st.integers(1, 2**32 - 1)), family)
    address = draw(ipv6 if family == 6 else ipv4)
    return ServiceKey.for_address(draw(st.sampled_from(sorted(PROTOCOLS))), address, draw(u16))


@st.composite
def services(draw: st.DrawFn) -> Service:
    key = draw(service_keys())
    persistent = draw(st.booleans())
    if key.family == 6:
        netmask: IPv4Address | int | None = draw(st.none() | st.integers(0, 128))
    else:
        prefixes = st.integers(0, 32).map(lambda n: IPv4Address((2**32 - 1) ^ (2**(32 - n) - 1)))
        netmask = draw(st.none() | prefixes)
    return Service(key, draw(names), persistence_timeout=draw(u32) if persistent else None,
                   persistence_netmask=netmask, persistence_engine=draw(st.sampled_from([None, "sip"])),
                   one_packet=draw(st.booleans()), sched_flags=draw(st.integers(0, 7)) << 3)


@st.composite
def dests(draw: st.DrawFn) -> Dest:
    address = draw(ipv4 | ipv6)
    return Dest(address, draw(u16), draw(st.sampled_from(list(Forward))), draw(u32), draw(u32), draw(u32),
                draw(st.integers(0, 255)), draw(u16), draw(u16))


@st.composite
def ops(draw: st.DrawFn) -> Op:
    kind = draw(st.sampled_from(list(OpKind)))
    if kind in (OpKind.ADD_SERVICE, OpKind.SET_SERVICE):
        svc = draw(services())
        return Op(kind, svc.key, svc)
    key = draw(service_keys())
    if kind is OpKind.DEL_SERVICE:
        return Op(kind, key)
    dest = draw(dests())
    return Op(kind, key, dest.key if kind is OpKind.DEL_DEST else dest)


# --- requests ----------------------------------------------------------------------------------------------

V4 = ServiceKey.for_address("TCP", ip_address("10.0.0.1"), 80)
V6 = ServiceKey.for_address("UDP", ip_address("2001:db8::1"), 53)
FWM = ServiceKey.for_fwmark(7)
FWM6 = ServiceKey.for_fwmark(9, 6)
EXAMPLES = [
    Op(OpKind.ADD_SERVICE, V4, Service(V4, "rr", 300, IPv4Address("255.255.255.0"))),
    Op(OpKind.SET_SERVICE, V4, Service(V4, "wlc")),
    Op(OpKind.ADD_SERVICE, V6, Service(V6, "lc", 60, 64, "sip", one_packet=True, sched_flags=0x18)),
    Op(OpKind.ADD_SERVICE, FWM, Service(FWM, "sh", sched_flags=0x08)),
    Op(OpKind.ADD_SERVICE, FWM6, Service(FWM6, "mh")),
    Op(OpKind.DEL_SERVICE, V4),
    Op(OpKind.DEL_SERVICE, FWM6),
    Op(OpKind.ADD_DEST, V4, Dest(ip_address("10.0.1.1"), 8080, Forward.MASQ, 3, 100, 10)),
    Op(OpKind.ADD_DEST, V4, Dest(ip_address("10.0.1.3"), 80, Forward.TUNNEL, 0, tun_type=1, tun_port=6080,
                                 tun_flags=1)),
    Op(OpKind.SET_DEST, V6, Dest(ip_address("2001:db8::10"), 8443, Forward.DROUTE, 4)),
    Op(OpKind.ADD_DEST, FWM, Dest(ip_address("10.0.1.5"), 0, Forward.DROUTE, 5)),
    Op(OpKind.DEL_DEST, V4, DestKey(ip_address("10.0.1.1"), 8080)),
    Op(OpKind.DEL_DEST, V6, DestKey(ip_address("2001:db8::10"), 8443)),
]


@pytest.mark.parametrize("op", EXAMPLES, ids=str)
def test_every_kind_of_operation_is_encoded_as_pyroute2_encodes_it(op):
    assert codec.op_request(op, FAMILY, 42) == ref_op(op, 42)


@settings(max_examples=400, deadline=None)
@given(ops(), st.integers(0, 2**32 - 1))
def test_any_operation_is_encoded_as_pyroute2_encodes_it(op, seq):
    assert codec.op_request(op, FAMILY, seq).hex() == ref_op(op, seq).hex()


@settings(max_examples=100, deadline=None)
@given(service_keys())
def test_a_dest_dump_request_is_pyroute2s(key):
    ref = ref_encode(ipvs.IPVS_CMD_GET_DEST, [("IPVS_CMD_ATTR_SERVICE", {"attrs": ref_key_attrs(key)})], 5,
                     codec.NLM_F_REQUEST | codec.NLM_F_DUMP)
    assert codec.dest_dump_request(key, FAMILY, 5) == ref


def test_a_value_out_of_range_is_refused_as_by_pyroute2():
    op = Op(OpKind.ADD_DEST, V4, Dest(ip_address("10.0.1.1"), 80, Forward.MASQ, 2**32))
    with pytest.raises(struct.error):
        ref_op(op, 1)
    with pytest.raises(struct.error):
        codec.op_request(op, FAMILY, 1)


# --- replies -----------------------------------------------------------------------------------------------


def ref_decode_service(nla: Any) -> Service:
    """The driver's decoding through pyroute2 before the codec."""
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
    return Service(key=key, scheduler=nla.get_attr("IPVS_SVC_ATTR_SCHED_NAME") or "",
                   persistence_timeout=nla.get_attr("IPVS_SVC_ATTR_TIMEOUT") if persistent else None,
                   persistence_netmask=None if netmask == default_mask else netmask,
                   persistence_engine=nla.get_attr("IPVS_SVC_ATTR_PE_NAME") or None,
                   one_packet=bool(flags & SVC_F_ONEPACKET), sched_flags=flags & SVC_F_SCHED_MASK)


def ref_decode_dest(nla: Any) -> Dest:
    return Dest(address=ip_address(nla.get_attr("IPVS_DEST_ATTR_ADDR")),
                port=nla.get_attr("IPVS_DEST_ATTR_PORT") or 0,
                forward=Forward((nla.get_attr("IPVS_DEST_ATTR_FWD_METHOD") or 0) & 0x7),
                weight=nla.get_attr("IPVS_DEST_ATTR_WEIGHT") or 0,
                u_threshold=nla.get_attr("IPVS_DEST_ATTR_U_THRESH") or 0,
                l_threshold=nla.get_attr("IPVS_DEST_ATTR_L_THRESH") or 0,
                tun_type=nla.get_attr("IPVS_DEST_ATTR_TUN_TYPE") or 0,
                tun_port=socket.ntohs(nla.get_attr("IPVS_DEST_ATTR_TUN_PORT") or 0),
                tun_flags=nla.get_attr("IPVS_DEST_ATTR_TUN_FLAGS") or 0)


def _nla(number: int, data: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(data), number) + data
    return raw + b"\0" * (-len(raw) % 4)


def _stats(number: int, fmt: str) -> bytes:
    return _nla(number, b"".join(_nla(i, struct.pack(fmt, i * 1000)) for i in range(1, 11)))


def kernel_service_reply(svc: Service) -> bytes:
    """NEW_SERVICE as the kernel's ip_vs_genl_fill_service writes it (16-byte addresses, statistics)."""
    key = svc.key
    af = socket.AF_INET6 if key.family == 6 else socket.AF_INET
    out = _nla(codec.SVC_AF, struct.pack("=H", af))
    if key.fwmark:
        out += _nla(codec.SVC_FWMARK, struct.pack("=I", key.fwmark))
    else:
        assert key.address is not None
        out += _nla(codec.SVC_PROTOCOL, struct.pack("=H", PROTOCOLS[key.protocol]))
        out += _nla(codec.SVC_ADDR, key.address.packed.ljust(16, b"\0"))
        out += _nla(codec.SVC_PORT, struct.pack("!H", key.port))
    out += _nla(codec.SVC_SCHED_NAME, svc.scheduler.encode() + b"\0")
    if svc.persistence_engine:
        out += _nla(codec.SVC_PE_NAME, svc.persistence_engine.encode() + b"\0")
    netmask = svc.netmask
    out += _nla(codec.SVC_FLAGS, struct.pack("=II", svc.flags | 0x0002, 0xFFFFFFFF))
    out += _nla(codec.SVC_TIMEOUT, struct.pack("=I", svc.persistence_timeout or 0))
    out += _nla(codec.SVC_NETMASK, struct.pack("=I", netmask) if isinstance(netmask, int) else netmask.packed)
    out += _stats(10, "=I") + _stats(12, "=Q")
    return _reply(codec.CMD_NEW_SERVICE, _nla(codec.ATTR_SERVICE, out))


def kernel_dest_reply(dest: Dest) -> bytes:
    """NEW_DEST as the kernel's ip_vs_genl_fill_dest writes it."""
    af = socket.AF_INET6 if dest.address.version == 6 else socket.AF_INET
    out = (_nla(codec.DEST_ADDR, dest.address.packed.ljust(16, b"\0"))
           + _nla(codec.DEST_PORT, struct.pack("!H", dest.port))
           + _nla(codec.DEST_FWD_METHOD, struct.pack("=I", int(dest.forward)))
           + _nla(codec.DEST_WEIGHT, struct.pack("=I", dest.weight))
           + _nla(codec.DEST_TUN_TYPE, struct.pack("=B", dest.tun_type))
           + _nla(codec.DEST_TUN_PORT, struct.pack("!H", dest.tun_port))
           + _nla(codec.DEST_TUN_FLAGS, struct.pack("=H", dest.tun_flags))
           + _nla(codec.DEST_U_THRESH, struct.pack("=I", dest.u_threshold))
           + _nla(codec.DEST_L_THRESH, struct.pack("=I", dest.l_threshold))
           + b"".join(_nla(n, struct.pack("=I", 7)) for n in (7, 8, 9))
           + _nla(codec.DEST_ADDR_FAMILY, struct.pack("=H", af))
           + _stats(10, "=I") + _stats(12, "=Q"))
    return _reply(codec.CMD_NEW_DEST, _nla(codec.ATTR_DEST, out))


def _reply(cmd: int, attrs: bytes) -> bytes:
    return codec.message(FAMILY, 2, 9, cmd, attrs)  # NLM_F_MULTI


def pyroute2_decoded(data: bytes, name: str) -> Any:
    msg = ipvs.ipvsmsg(data)
    msg.decode()
    return msg.get_attr(name)


@settings(max_examples=300, deadline=None)
@given(services())
def test_a_dumped_service_is_read_as_pyroute2_reads_it(svc):
    data = kernel_service_reply(svc)
    found = codec.nested(data, 0, len(data), codec.ATTR_SERVICE)
    assert found is not None
    ours = codec.decode_service(data, found)
    assert ours == ref_decode_service(pyroute2_decoded(data, "IPVS_CMD_ATTR_SERVICE"))
    if svc.persistence_timeout is not None:  # without persistence the timeout and netmask are not read back
        assert ours.netmask == svc.netmask  # the default netmask reads back as None
        assert replace(ours, persistence_netmask=svc.persistence_netmask) == svc


@settings(max_examples=50, deadline=None)
@given(services())
def test_a_dumped_services_counters_are_read_as_pyroute2_reads_them(svc):
    """The 64-bit counters (stats64), as pyroute2 decodes them; none without statistics."""
    data = kernel_service_reply(svc)
    found = codec.nested(data, 0, len(data), codec.ATTR_SERVICE)
    assert found is not None
    theirs = pyroute2_decoded(data, "IPVS_CMD_ATTR_SERVICE").get_attr("IPVS_SVC_ATTR_STATS64")
    expected = {"connections": theirs.get_attr("IPVS_STATS_ATTR_CONNS"),
                "packets_in": theirs.get_attr("IPVS_STATS_ATTR_INPKTS"),
                "packets_out": theirs.get_attr("IPVS_STATS_ATTR_OUTPKTS"),
                "bytes_in": theirs.get_attr("IPVS_STATS_ATTR_INBYTES"),
                "bytes_out": theirs.get_attr("IPVS_STATS_ATTR_OUTBYTES")}
    assert codec.decode_service_stats(data, found) == expected == {
        "connections": 1000, "packets_in": 2000, "packets_out": 3000, "bytes_in": 4000, "bytes_out": 5000}
    del found[codec.SVC_STATS]
    del found[codec.SVC_STATS64]
    assert codec.decode_service_stats(data, found) == {}


def test_without_stats64_the_32_bit_counters_are_read() -> None:
    """IPVS_SVC_ATTR_STATS as ip_vs_genl_fill_stats writes it: u32 counts, u64 byte counters."""
    stats = b"".join(_nla(n, struct.pack(fmt, v)) for n, fmt, v in (
        (1, "=I", 7), (2, "=I", 70), (3, "=I", 60), (4, "=Q", 2**33), (5, "=Q", 5000), (6, "=I", 1)))
    data = _reply(codec.CMD_NEW_SERVICE, _nla(codec.ATTR_SERVICE, _nla(codec.SVC_STATS, stats)))
    found = codec.nested(data, 0, len(data), codec.ATTR_SERVICE)
    assert found is not None
    assert codec.decode_service_stats(data, found) == {
        "connections": 7, "packets_in": 70, "packets_out": 60, "bytes_in": 2**33, "bytes_out": 5000}


@settings(max_examples=300, deadline=None)
@given(dests())
def test_a_dumped_real_server_is_read_as_pyroute2_reads_it(dest):
    data = kernel_dest_reply(dest)
    found = codec.nested(data, 0, len(data), codec.ATTR_DEST)
    assert found is not None
    ours = codec.decode_dest(data, found, socket.AF_INET)
    assert ours == ref_decode_dest(pyroute2_decoded(data, "IPVS_CMD_ATTR_DEST")) == dest


def test_messages_are_found_in_a_buffer_with_their_sequence_numbers():
    a = codec.message(FAMILY, 1, 7, codec.CMD_FLUSH)
    b = codec.op_request(EXAMPLES[0], FAMILY, 8)
    buf = bytearray(a + b + b"\0" * 64)
    assert [(k, s, o, n) for k, s, o, n in codec.iter_messages(buf, len(a) + len(b))] == [
        (FAMILY, 7, 0, len(a)), (FAMILY, 8, len(a), len(b))]


def _without(reply: bytes, number: int) -> bytes:
    """``reply`` (a NEW_DEST) without the real server's attribute ``number``."""
    start = codec.HEADER.size + codec.GENL.size + 4
    found = codec.attrs(reply, start, len(reply))
    inner = b"".join(_nla(n, bytes(reply[o:o + k])) for n, (o, k) in found.items() if n != number)
    return _reply(codec.CMD_NEW_DEST, _nla(codec.ATTR_DEST, inner))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(dests(), st.sampled_from([None, codec.DEST_TUN_PORT, codec.DEST_ADDR_FAMILY,
                                                     codec.DEST_WEIGHT])), min_size=1, max_size=8))
def test_the_fast_reader_reads_what_the_attribute_parser_reads_whatever_the_layouts_in_a_row(items):
    """Replies of varying layouts (families, a missing attribute) one after another through one reader."""
    reader = codec.DestReader()
    for dest, missing in items:
        data = kernel_dest_reply(dest)
        if missing is not None:
            data = _without(data, missing)
        for af in (socket.AF_INET, socket.AF_INET6):
            if missing == codec.DEST_ADDR_FAMILY and af != (socket.AF_INET6 if dest.address.version == 6
                                                             else socket.AF_INET):
                continue  # without ADDR_FAMILY the service's family is the real server's
            found = codec.nested(data, 0, len(data), codec.ATTR_DEST)
            assert found is not None
            assert reader.read(data, 0, len(data), af) == codec.decode_dest(data, found, af)
            assert reader.read(data, 0, len(data), af) == codec.decode_dest(data, found, af)


def test_the_fast_reader_reads_replies_side_by_side_in_one_buffer():
    replies = [kernel_dest_reply(Dest(ip_address(f"10.0.1.{i}"), 80 + i, Forward.DROUTE, i))
               for i in range(5)]
    buf = bytearray(b"".join(replies))
    reader = codec.DestReader()
    read = [reader.read(buf, offset, length, socket.AF_INET)
            for _k, _s, offset, length in codec.iter_messages(buf, len(buf))]
    assert read == [Dest(ip_address(f"10.0.1.{i}"), 80 + i, Forward.DROUTE, i) for i in range(5)]


def test_a_reply_without_a_real_server_reads_none():
    data = _reply(codec.CMD_NEW_DEST, _nla(codec.ATTR_SERVICE, b""))
    assert codec.DestReader().read(data, 0, len(data), socket.AF_INET) is None
