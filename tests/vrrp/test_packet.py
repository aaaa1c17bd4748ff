"""The VRRP packet codec against real captures, golden vectors, hand-made edge cases and properties.

The corpus lives outside the repository (``/work/shared/corpus`` next to the checkout); when it is missing
these tests fail rather than skip.
"""

from __future__ import annotations

import functools
import json
import pickle
import re
import struct
from collections import Counter
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_FRELAY,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Frame,
    IpPacket,
    ip_packets,
    parse_pcap,
    read_pcap,
    vrrp_packets,
)

from keepalived_py.vrrp.packet import (
    ADVERTISEMENT,
    AUTH_NONE,
    AUTH_SIMPLE,
    ChecksumForm,
    Decoded,
    DecodeReason,
    PacketError,
    VrrpPacket,
    checksum,
    decode,
    encode,
    parse_ipv4,
)

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
PCAPS = CORPUS / "vrrp-pcaps"
GOLDEN = PCAPS / "golden_vectors.json"
MAIN_CAPTURE = PCAPS / "vrrp.pcap"
OOBR_CAPTURE = PCAPS / "vrrp-vrrp_print-oobr.pcap"
OOBR2_CAPTURE = PCAPS / "vrrp-vrrp_print-oobr-2.pcap"
#: Stands in for parameters that come from the corpus when it is missing, so that the tests fail (not skip).
MISSING = "corpus-missing"

V4_GROUP = IPv4Address("224.0.0.18")
V6_GROUP = IPv6Address("ff02::12")
V4_SRC = IPv4Address("192.0.2.1")
V6_SRC = IPv6Address("fe80::1")


def _require(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"VRRP test corpus missing: {path} (the corpus is expected at {CORPUS})")
    return path


# --- independent reference computations ---------------------------------------------------------------------


def _pseudo_header(src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address, length: int) -> bytes:
    """RFC 768-style IPv4 / RFC 8200 section 8.1 IPv6 pseudo-header for protocol 112, written out again."""
    if src.version == 4:
        return src.packed + dst.packed + bytes([0, 112]) + struct.pack("!H", length)
    return src.packed + dst.packed + struct.pack("!I", length) + bytes([0, 0, 0, 112])


def _with_checksum(body: bytes, src: Any, dst: Any, *, pseudo: bool) -> bytes:
    """``body`` with its checksum field recomputed, over the pseudo-header too if ``pseudo``."""
    zeroed = body[:6] + b"\x00\x00" + body[8:]
    prefix = _pseudo_header(src, dst, len(body)) if pseudo else b""
    return zeroed[:6] + checksum(prefix + zeroed).to_bytes(2, "big") + zeroed[8:]


def _patched(body: bytes, offset: int, new: bytes, src: Any, dst: Any, *, pseudo: bool) -> bytes:
    """``body`` with ``new`` written at ``offset`` and a checksum that still verifies."""
    return _with_checksum(body[:offset] + new + body[offset + len(new) :], src, dst, pseudo=pseudo)


def _reason(payload: bytes, src: Any, dst: Any) -> DecodeReason:
    with pytest.raises(PacketError) as caught:
        decode(payload, src=src, dst=dst)
    assert caught.value.detail, "every rejection explains itself"
    return caught.value.reason


def _v2(**changes: Any) -> VrrpPacket:
    fields: dict[str, Any] = {
        "version": 2,
        "type": ADVERTISEMENT,
        "vrid": 51,
        "priority": 100,
        "max_adver_int_cs": 100,
        "addresses": (IPv4Address("192.0.2.100"),),
        "auth_type": AUTH_SIMPLE,
        "auth_data": b"secret",
    }
    return VrrpPacket(**(fields | changes))


def _v3(**changes: Any) -> VrrpPacket:
    fields: dict[str, Any] = {
        "version": 3,
        "type": ADVERTISEMENT,
        "vrid": 51,
        "priority": 100,
        "max_adver_int_cs": 100,
        "addresses": (IPv4Address("192.0.2.100"),),
    }
    return VrrpPacket(**(fields | changes))


def _v3_ipv6(**changes: Any) -> VrrpPacket:
    return _v3(**({"addresses": (IPv6Address("fe80::100"), IPv6Address("2001:db8::100"))} | changes))


# --- golden vectors -----------------------------------------------------------------------------------------


@functools.cache
def _golden() -> dict[str, Any]:
    return json.loads(_require(GOLDEN).read_text())


def _vector_names(*, quirk: bool, having: str | None = None) -> list[str]:
    """Vector names for parametrizing (read at collection time); only those with the key ``having``."""
    if not GOLDEN.is_file():
        return [MISSING]
    vectors = {name: v for name, v in json.loads(GOLDEN.read_text()).items() if not name.startswith("_")}
    return [
        name
        for name, vector in vectors.items()
        if name.endswith("_QUIRK") == quirk and (having is None or having in vector)
    ]


def _vector_endpoints(vector: dict[str, Any], payload: bytes) -> tuple[Any, Any]:
    """The vector's IP source and destination.

    The vectors taken from vrrp.pcap omit ``ip_dst`` when it is the VRRP group (checked against the capture
    by test_tcpdump_vectors_are_the_payloads_of_the_frames_named_in_source); scapy_default_v2 has no IP
    header at all, so it gets scapy's ``IP()`` default 127.0.0.1, which a VRRPv2 checksum does not cover.
    """
    if "ip_src" in vector:
        src = ip_address(vector["ip_src"])
    else:
        assert payload[0] >> 4 == 2, "only a VRRPv2 checksum can be checked without the IP header"
        src = IPv4Address("127.0.0.1")
    group = V4_GROUP if src.version == 4 else V6_GROUP
    dst = ip_address(vector["ip_dst"]) if "ip_dst" in vector else (group if "ip_src" in vector else src)
    return src, dst


def _recorded(vector: dict[str, Any]) -> dict[str, Any]:
    """The vector's recorded fields, converted to what the codec reports."""
    recorded = dict(vector.get("fields", {}))
    if "checksum" in vector:
        recorded["checksum"] = vector["checksum"]
    converters = {
        "checksum": lambda text: int(text, 16),
        "addrs": lambda texts: [ip_address(text) for text in texts],
        "auth_data": lambda text: text.encode("ascii"),
    }
    return {key: converters.get(key, lambda value: value)(value) for key, value in recorded.items()}


def _observed(decoded: Decoded) -> dict[str, Any]:
    packet = decoded.packet
    return {
        "version": packet.version,
        "type": packet.type,
        "vrid": packet.vrid,
        "prio": packet.priority,
        "count": len(packet.addresses),
        "auth_type": packet.auth_type,
        "adver_int_s": packet.adver_int,
        "max_adver_int_cs": packet.max_adver_int_cs,
        "checksum": decoded.checksum,
        "addrs": list(packet.addresses),
        "auth_data": packet.auth_data,
    }


def test_every_golden_vector_is_either_a_positive_vector_or_a_documented_quirk() -> None:
    vectors = {name: vector for name, vector in _golden().items() if not name.startswith("_")}
    for name, vector in vectors.items():
        if name.endswith("_QUIRK"):
            assert "vrrp_hex" not in vector and "do not use as a positive vector" in vector["note"]
        else:
            assert "vrrp_hex" in vector, f"{name} has no bytes to test"
    assert set(_vector_names(quirk=False)) | set(_vector_names(quirk=True)) == set(vectors)


@pytest.mark.parametrize("name", _vector_names(quirk=False))
def test_golden_vector_decodes_to_its_recorded_fields_and_reencodes_byte_for_byte(name: str) -> None:
    vector = _golden()[name]
    payload = bytes.fromhex(vector["vrrp_hex"])
    src, dst = _vector_endpoints(vector, payload)

    decoded = decode(payload, src=src, dst=dst)

    recorded, observed = _recorded(vector), _observed(decoded)
    assert recorded.keys() <= observed.keys(), "a recorded field this test does not know"
    assert {key: observed[key] for key in recorded} == recorded
    assert decoded.checksum == int.from_bytes(payload[6:8], "big")
    expected_form = ChecksumForm.V2 if decoded.packet.version == 2 else ChecksumForm.V3_PSEUDO_HEADER
    assert decoded.checksum_form is expected_form
    assert encode(decoded.packet, src=src, dst=dst) == payload


@pytest.mark.parametrize("name", _vector_names(quirk=False))
def test_golden_vector_checksum_verifies_in_its_rule_and_no_other_form(name: str) -> None:
    """v2: plain over the message, auth data included; v3: pseudo-header, "plain checksum does NOT verify"."""
    vector = _golden()[name]
    payload = bytes.fromhex(vector["vrrp_hex"])
    src, dst = _vector_endpoints(vector, payload)
    if payload[0] >> 4 == 2:
        assert checksum(payload) == 0
        if any(payload[-8:]):
            assert checksum(payload[:-8]) != 0, "the auth data is covered"
    else:
        assert checksum(_pseudo_header(src, dst, len(payload)) + payload) == 0
        assert checksum(payload) != 0


@pytest.mark.parametrize("name", _vector_names(quirk=False, having="eth_src"))
def test_golden_vector_virtual_mac_source_matches_its_vrid(name: str) -> None:
    vector = _golden()[name]
    payload = bytes.fromhex(vector["vrrp_hex"])
    family_byte = 1 if ip_address(vector["ip_src"]).version == 4 else 2
    assert vector["eth_src"] == f"00:00:5e:00:{family_byte:02x}:{payload[1]:02x}"


def test_tcpdump_vectors_are_the_payloads_of_the_frames_named_in_source() -> None:
    golden = _golden()
    named = re.search(r"\(frames ([\d,]+)\)", golden["_source"])
    assert named is not None, "_source no longer names the capture's frames"
    numbers = [int(n) for n in named.group(1).split(",")]
    frames = {frame.number: ip for frame, ip in vrrp_packets(_require(MAIN_CAPTURE))}
    from_capture = [vector for vector in golden.values() if isinstance(vector, dict) and "eth_src" in vector]
    assert len(from_capture) == len(numbers)
    for number, vector in zip(numbers, from_capture, strict=True):
        ip = frames[number]
        assert ip.payload.hex() == vector["vrrp_hex"], f"frame {number}"
        assert ip.src == ip_address(vector["ip_src"])
        assert ip.dst == ip_address(vector.get("ip_dst", str(V4_GROUP if ip.version == 4 else V6_GROUP)))
        assert ip.ttl == vector.get("ttl", vector.get("hlim", 255))


def test_scapy_default_ipv6_vrrpv3_quirk_is_rejected_for_its_missing_address_not_its_checksum() -> None:
    """The QUIRK vector: scapy's ``IPv6()/VRRPv3()`` claims one address but sends none (8 bytes).

    The vector keeps only the checksum. Rebuilt from scapy's defaults (``::1 > ::1``, version 3, type 1,
    VRID 1, priority 100, ipcount 1, adv 100 cs, no address), the recorded checksum verifies with the IPv6
    pseudo-header, so the message is well checksummed yet malformed: it must be dropped for its length.
    """
    vector = _golden()["scapy_default_ipv6_v3_QUIRK"]
    src = dst = IPv6Address("::1")
    payload = (
        bytes([0x31, 1, 100, 1]) + (100).to_bytes(2, "big") + int(vector["checksum"], 16).to_bytes(2, "big")
    )
    assert checksum(_pseudo_header(src, dst, len(payload)) + payload) == 0

    with pytest.raises(PacketError) as caught:
        decode(payload, src=src, dst=dst)

    assert caught.value.reason is DecodeReason.LENGTH
    assert "8 bytes" in caught.value.detail and "make 24" in caught.value.detail


def test_v2_advert_without_addresses_is_accepted_but_v3_without_addresses_is_zero_count() -> None:
    """RFC 9568 makes one address the minimum; RFC 3768 sets none and keepalived sends such v2 adverts
    for an instance without VIPs (scapy_default_v2 is one: a valid encoding, the receive path judges it)."""
    v2 = bytes.fromhex("2101640000017afd0000000000000000")  # scapy_default_v2
    assert decode(v2, src=V4_SRC, dst=V4_GROUP).packet.addresses == ()

    v3 = _with_checksum(bytes.fromhex("3101640000640000"), V4_SRC, V4_GROUP, pseudo=True)
    assert _reason(v3, V4_SRC, V4_GROUP) is DecodeReason.ZERO_COUNT


# --- captures -----------------------------------------------------------------------------------------------


@functools.cache
def _main_capture() -> dict[int, IpPacket]:
    return {frame.number: ip for frame, ip in vrrp_packets(_require(MAIN_CAPTURE))}


def _main_capture_numbers() -> list[int | str]:
    if not MAIN_CAPTURE.is_file():
        return [MISSING]
    return [frame.number for frame, _ in vrrp_packets(MAIN_CAPTURE)]


def test_capture_holds_only_vrrp_adverts_in_the_expected_mix_of_versions_families_and_forms() -> None:
    assert len(read_pcap(_require(MAIN_CAPTURE))) == len(_main_capture()) == 165
    mix = Counter(
        (decoded.packet.version, ip.version, decoded.checksum_form)
        for ip in _main_capture().values()
        for decoded in [decode(ip.payload, src=ip.src, dst=ip.dst)]
    )
    assert mix == {
        (2, 4, ChecksumForm.V2): 68,
        (3, 4, ChecksumForm.V3_PSEUDO_HEADER): 33,
        (3, 6, ChecksumForm.V3_PSEUDO_HEADER): 64,
    }


@pytest.mark.parametrize("number", _main_capture_numbers())
def test_capture_frame_decodes_and_reencodes_byte_for_byte(number: int) -> None:
    ip = _main_capture()[number]
    assert not ip.truncated and ip.ttl == 255
    if ip.version == 4:
        datagram = parse_ipv4(ip.datagram)  # the Ethernet padding after the datagram is cut off
        assert (datagram.src, datagram.dst, datagram.ttl, datagram.protocol) == (ip.src, ip.dst, 255, 112)
        assert datagram.payload == ip.payload

    decoded = decode(ip.payload, src=ip.src, dst=ip.dst)

    assert decoded.checksum == int.from_bytes(ip.payload[6:8], "big")
    assert encode(decoded.packet, src=ip.src, dst=ip.dst) == ip.payload


#: Fuzzer-found captures (tcpdump's vrrp_print out-of-bounds reads): per frame, what parse_ipv4 says about
#: the captured datagram (None: it parses) and what decode says about the VRRP bytes captured, each with a
#: fragment of the expected detail. The first is Frame Relay with a 28-byte IPv4 header (options); both
#: have snapshot lengths that cut every VRRP message below its 8-byte header.
_TRUNCATED_40 = (DecodeReason.IP_HEADER, "total length 40 exceeds the 34 bytes received")
_TRUNCATED_39 = (DecodeReason.IP_HEADER, "total length 39 exceeds the 27 bytes received")
_FRAGMENT = (DecodeReason.IP_HEADER, "fragment (more-fragments True, offset 0)")
_SIX_BYTES = (DecodeReason.TOO_SHORT, "6 bytes, shorter than the 8-byte VRRP header")
_SEVEN_BYTES = (DecodeReason.TOO_SHORT, "7 bytes, shorter than the 8-byte VRRP header")
MALFORMED_LINKTYPES = {OOBR_CAPTURE.name: LINKTYPE_FRELAY, OOBR2_CAPTURE.name: LINKTYPE_ETHERNET}
MALFORMED: dict[str, list[tuple[tuple[DecodeReason, str] | None, tuple[DecodeReason, str]]]] = {
    OOBR_CAPTURE.name: [(None, _SIX_BYTES), (_TRUNCATED_40, _SIX_BYTES), (_TRUNCATED_40, _SIX_BYTES)],
    OOBR2_CAPTURE.name: [(_TRUNCATED_39, _SEVEN_BYTES)] * 7
    + [(_FRAGMENT, _SEVEN_BYTES)]
    + [(_TRUNCATED_39, _SEVEN_BYTES)] * 2,
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_capture_has_the_expected_link_type_and_frames(name: str) -> None:
    frames = read_pcap(_require(PCAPS / name))
    assert {frame.linktype for frame in frames} == {MALFORMED_LINKTYPES[name]}
    assert [frame.number for frame, _ in ip_packets(frames, 112)] == list(range(1, len(MALFORMED[name]) + 1))


@pytest.mark.parametrize(
    ("name", "number"),
    [(name, n) for name, rows in sorted(MALFORMED.items()) for n in range(1, len(rows) + 1)],
)
def test_malformed_capture_frame_is_rejected_with_its_reason(name: str, number: int) -> None:
    ip_expected, (vrrp_reason, vrrp_detail) = MALFORMED[name][number - 1]
    frame, packet = vrrp_packets(_require(PCAPS / name))[number - 1]
    assert frame.number == number

    if ip_expected is None:
        assert parse_ipv4(packet.datagram).payload == packet.payload
    else:
        with pytest.raises(PacketError) as caught:
            parse_ipv4(packet.datagram)
        assert caught.value.reason is ip_expected[0]
        assert ip_expected[1] in caught.value.detail
    with pytest.raises(PacketError) as caught:
        decode(packet.payload, src=packet.src, dst=packet.dst)
    assert caught.value.reason is vrrp_reason
    assert vrrp_detail in caught.value.detail


# --- checksum forms -----------------------------------------------------------------------------------------


def test_checksum_is_rfc1071_including_its_worked_example_and_odd_lengths() -> None:
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D  # RFC 1071 section 3: sum ddf2
    assert checksum(b"\x01") == checksum(b"\x01\x00") == 0xFEFF
    assert checksum(b"") == 0xFFFF
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert checksum(data + (0x220D).to_bytes(2, "big")) == 0


def test_v2_checksum_is_plain_over_the_message_including_auth_data() -> None:
    wire = encode(_v2(), src=V4_SRC, dst=V4_GROUP)
    assert wire == _with_checksum(wire, V4_SRC, V4_GROUP, pseudo=False)
    assert decode(wire, src=V4_SRC, dst=V4_GROUP).checksum_form is ChecksumForm.V2


def test_v3_ipv4_checksum_uses_pseudo_header_by_default() -> None:
    wire = encode(_v3(), src=V4_SRC, dst=V4_GROUP)

    assert wire == _with_checksum(wire, V4_SRC, V4_GROUP, pseudo=True)
    assert checksum(wire) != 0
    assert decode(wire, src=V4_SRC, dst=V4_GROUP).checksum_form is ChecksumForm.V3_PSEUDO_HEADER


def test_v3_ipv4_with_v3_checksum_as_v2_is_plain_and_decodes_as_v3_plain() -> None:
    wire = encode(_v3(), src=V4_SRC, dst=V4_GROUP, v3_checksum_as_v2=True)

    assert wire == _with_checksum(wire, V4_SRC, V4_GROUP, pseudo=False)
    decoded = decode(wire, src=V4_SRC, dst=V4_GROUP)
    assert decoded.checksum_form is ChecksumForm.V3_PLAIN
    assert decoded.packet == _v3()


def test_v3_ipv4_reports_pseudo_header_when_both_forms_verify() -> None:
    """0.0.0.0 > 0.0.255.131 with 12 bytes: the pseudo-header sums to 0xffff, one's complement zero."""
    src, dst = IPv4Address("0.0.0.0"), IPv4Address("0.0.255.131")
    assert checksum(_pseudo_header(src, dst, 12)) == 0
    wire = encode(_v3(), src=src, dst=dst, v3_checksum_as_v2=True)
    assert wire == encode(_v3(), src=src, dst=dst)
    assert decode(wire, src=src, dst=dst).checksum_form is ChecksumForm.V3_PSEUDO_HEADER


def test_v3_ipv6_checksum_uses_pseudo_header_and_ignores_checksum_as_v2() -> None:
    wire = encode(_v3_ipv6(), src=V6_SRC, dst=V6_GROUP)
    assert wire == _with_checksum(wire, V6_SRC, V6_GROUP, pseudo=True)
    assert encode(_v3_ipv6(), src=V6_SRC, dst=V6_GROUP, v3_checksum_as_v2=True) == wire
    assert decode(wire, src=V6_SRC, dst=V6_GROUP).checksum_form is ChecksumForm.V3_PSEUDO_HEADER


def test_v3_ipv6_plain_checksum_is_rejected() -> None:
    plain = _with_checksum(encode(_v3_ipv6(), src=V6_SRC, dst=V6_GROUP), V6_SRC, V6_GROUP, pseudo=False)
    assert _reason(plain, V6_SRC, V6_GROUP) is DecodeReason.CHECKSUM


def test_v2_checksum_as_v2_flag_changes_nothing() -> None:
    assert encode(_v2(), src=V4_SRC, dst=V4_GROUP, v3_checksum_as_v2=True) == encode(
        _v2(), src=V4_SRC, dst=V4_GROUP
    )


def test_v3_ipv4_checksum_depends_on_the_destination_in_the_pseudo_header() -> None:
    """keepalived's old unicast form used the group as destination: decode against the group to accept it."""
    peer = IPv4Address("192.0.2.2")
    legacy_unicast = encode(_v3(), src=V4_SRC, dst=V4_GROUP)
    assert _reason(legacy_unicast, V4_SRC, peer) is DecodeReason.CHECKSUM
    assert decode(legacy_unicast, src=V4_SRC, dst=V4_GROUP).checksum_form is ChecksumForm.V3_PSEUDO_HEADER


def test_corrupted_checksum_is_rejected_with_both_expected_values_in_the_detail() -> None:
    wire = bytearray(encode(_v3(), src=V4_SRC, dst=V4_GROUP))
    wire[7] ^= 0x01
    with pytest.raises(PacketError) as caught:
        decode(bytes(wire), src=V4_SRC, dst=V4_GROUP)
    assert caught.value.reason is DecodeReason.CHECKSUM
    assert (
        "pseudo-header form expects" in caught.value.detail and "plain form would be" in caught.value.detail
    )


# --- decode rejections --------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 7])
def test_fewer_than_eight_bytes_are_too_short(length: int) -> None:
    wire = encode(_v3(), src=V4_SRC, dst=V4_GROUP)
    assert _reason(wire[:length], V4_SRC, V4_GROUP) is DecodeReason.TOO_SHORT


@pytest.mark.parametrize("version", [0, 1, 4, 15])
def test_versions_other_than_2_and_3_are_rejected(version: int) -> None:
    wire = encode(_v3(), src=V4_SRC, dst=V4_GROUP)
    bad = _patched(wire, 0, bytes([version << 4 | 1]), V4_SRC, V4_GROUP, pseudo=True)
    assert _reason(bad, V4_SRC, V4_GROUP) is DecodeReason.VERSION


@pytest.mark.parametrize("ptype", [0, 2, 15])
def test_types_other_than_advertisement_are_rejected(ptype: int) -> None:
    wire = encode(_v2(), src=V4_SRC, dst=V4_GROUP)
    bad = _patched(wire, 0, bytes([0x20 | ptype]), V4_SRC, V4_GROUP, pseudo=False)
    assert _reason(bad, V4_SRC, V4_GROUP) is DecodeReason.TYPE


def test_v2_over_ipv6_is_rejected_for_its_address_family() -> None:
    wire = encode(_v2(), src=V4_SRC, dst=V4_GROUP)
    assert _reason(wire, V6_SRC, V6_GROUP) is DecodeReason.ADDRESS_FAMILY


def test_source_and_destination_of_different_families_are_rejected() -> None:
    wire = encode(_v3(), src=V4_SRC, dst=V4_GROUP)
    assert _reason(wire, V4_SRC, V6_GROUP) is DecodeReason.ADDRESS_FAMILY


def test_endpoints_that_are_not_ipaddress_objects_are_a_type_error() -> None:
    with pytest.raises(TypeError):
        decode(encode(_v3(), src=V4_SRC, dst=V4_GROUP), src="192.0.2.1", dst=V4_GROUP)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("packet", "src", "dst", "pseudo"),
    [(_v2(), V4_SRC, V4_GROUP, False), (_v3(), V4_SRC, V4_GROUP, True), (_v3_ipv6(), V6_SRC, V6_GROUP, True)],
    ids=["v2", "v3-ipv4", "v3-ipv6"],
)
@pytest.mark.parametrize("delta", [-1, +1, +2, +4, +16])
def test_message_length_must_match_the_address_count_exactly(
    packet: VrrpPacket, src: Any, dst: Any, pseudo: bool, delta: int
) -> None:
    """Trailing bytes are rejected too: keepalived wants the exact length (see decode's docstring)."""
    wire = encode(packet, src=src, dst=dst)
    resized = wire[:delta] if delta < 0 else wire + bytes(delta)
    with pytest.raises(PacketError) as caught:
        decode(_with_checksum(resized, src, dst, pseudo=pseudo), src=src, dst=dst)
    assert caught.value.reason is DecodeReason.LENGTH
    assert ("too short" if delta < 0 else "too long") in caught.value.detail


def test_count_larger_than_the_message_is_a_length_error() -> None:
    wire = encode(_v3(), src=V4_SRC, dst=V4_GROUP)
    bad = _patched(wire, 3, bytes([255]), V4_SRC, V4_GROUP, pseudo=True)
    assert _reason(bad, V4_SRC, V4_GROUP) is DecodeReason.LENGTH


def test_vrid_zero_is_rejected() -> None:
    wire = encode(_v3(), src=V4_SRC, dst=V4_GROUP)
    assert (
        _reason(_patched(wire, 1, b"\x00", V4_SRC, V4_GROUP, pseudo=True), V4_SRC, V4_GROUP)
        is DecodeReason.VRID
    )


@pytest.mark.parametrize(
    ("packet", "offset", "field", "src", "dst", "pseudo"),
    [
        (_v3(), 4, b"\x00\x00", V4_SRC, V4_GROUP, True),
        (_v3(), 4, b"\xf0\x00", V4_SRC, V4_GROUP, True),  # reserved bits set, interval still 0
        (_v3_ipv6(), 4, b"\x00\x00", V6_SRC, V6_GROUP, True),
        (_v2(), 5, b"\x00", V4_SRC, V4_GROUP, False),
    ],
    ids=["v3-ipv4", "v3-reserved-bits", "v3-ipv6", "v2"],
)
def test_zero_advertisement_interval_is_rejected(
    packet: VrrpPacket, offset: int, field: bytes, src: Any, dst: Any, pseudo: bool
) -> None:
    bad = _patched(encode(packet, src=src, dst=dst), offset, field, src, dst, pseudo=pseudo)
    assert _reason(bad, src, dst) is DecodeReason.ZERO_INTERVAL


def test_v3_reserved_bits_are_ignored_on_receive() -> None:
    wire = _patched(encode(_v3(), src=V4_SRC, dst=V4_GROUP), 4, b"\xf0\x64", V4_SRC, V4_GROUP, pseudo=True)
    assert decode(wire, src=V4_SRC, dst=V4_GROUP).packet == _v3()


def test_checks_report_the_first_problem_in_wire_order() -> None:
    """A bad checksum is reported over a bad VRID; a bad length over a bad checksum."""
    wire = bytearray(encode(_v3(), src=V4_SRC, dst=V4_GROUP))
    wire[1] = 0
    assert _reason(bytes(wire), V4_SRC, V4_GROUP) is DecodeReason.CHECKSUM
    assert _reason(bytes(wire) + b"\x00", V4_SRC, V4_GROUP) is DecodeReason.LENGTH


def test_megabyte_payload_is_rejected_quickly_for_its_length() -> None:
    wire = encode(_v3(), src=V4_SRC, dst=V4_GROUP)
    assert _reason(wire + bytes(1 << 20), V4_SRC, V4_GROUP) is DecodeReason.LENGTH


def test_packet_error_is_a_value_error_that_names_its_reason_and_survives_pickling() -> None:
    error = PacketError(DecodeReason.LENGTH, "too long")
    assert isinstance(error, ValueError)
    assert str(error) == "length: too long"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.detail) == (DecodeReason.LENGTH, "too long")


# --- CARP ---------------------------------------------------------------------------------------------------


def _carp(*, vhid: int = 7, advskew: int = 100, demote: int = 0, advbase: int = 1) -> bytes:
    """A CARP advertisement: version 2, type 1, authlen 7, counter and SHA1 HMAC; checksum over 36 bytes."""
    header = bytes([0x21, vhid, advskew, 7, demote, advbase]) + b"\x00\x00"
    body = header + (0x0123456789ABCDEF).to_bytes(8, "big") + bytes(range(20))
    return body[:6] + checksum(body).to_bytes(2, "big") + body[8:]


@pytest.mark.parametrize(("src", "dst"), [(V4_SRC, V4_GROUP), (V6_SRC, V6_GROUP)], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("demote", [0, 5])
def test_carp_advertisement_is_rejected_as_carp(src: Any, dst: Any, demote: int) -> None:
    with pytest.raises(PacketError) as caught:
        decode(_carp(demote=demote), src=src, dst=dst)
    assert caught.value.reason is DecodeReason.CARP
    assert "vhid 7, advskew 100" in caught.value.detail


def test_carp_shaped_frame_with_a_bad_checksum_is_a_length_error() -> None:
    corrupted = bytearray(_carp())
    corrupted[20] ^= 0xFF
    assert _reason(bytes(corrupted), V4_SRC, V4_GROUP) is DecodeReason.LENGTH


def test_no_vrrpv2_message_looks_like_carp() -> None:
    """Seven addresses make a 44-byte VRRPv2 message, never the 36 bytes of CARP."""
    seven = _v2(addresses=tuple(IPv4Address(f"192.0.2.{n}") for n in range(1, 8)))
    wire = encode(seven, src=V4_SRC, dst=V4_GROUP)
    assert (len(wire), wire[3]) == (44, 7)
    assert decode(wire, src=V4_SRC, dst=V4_GROUP).packet == seven


# --- encode -------------------------------------------------------------------------------------------------


def test_v2_password_is_nul_padded_to_eight_bytes_and_stripped_again_on_decode() -> None:
    wire = encode(_v2(auth_data=b"abc"), src=V4_SRC, dst=V4_GROUP)
    assert wire[-8:] == b"abc\x00\x00\x00\x00\x00"
    assert decode(wire, src=V4_SRC, dst=V4_GROUP).packet.auth_data == b"abc"


def test_v2_password_longer_than_eight_bytes_is_truncated_as_keepalived_does() -> None:
    wire = encode(_v2(auth_data=b"abcdefghijkl"), src=V4_SRC, dst=V4_GROUP)
    assert wire[-8:] == b"abcdefgh"
    assert decode(wire, src=V4_SRC, dst=V4_GROUP).packet.auth_data == b"abcdefgh"


def test_v2_without_authentication_sends_eight_zero_bytes() -> None:
    wire = encode(_v2(auth_type=AUTH_NONE, auth_data=b""), src=V4_SRC, dst=V4_GROUP)
    assert wire[-8:] == bytes(8)
    assert wire[4] == AUTH_NONE


def test_v2_interval_is_whole_seconds_on_the_wire_and_centiseconds_in_the_packet() -> None:
    wire = encode(_v2(max_adver_int_cs=2500), src=V4_SRC, dst=V4_GROUP)
    assert wire[5] == 25
    packet = decode(wire, src=V4_SRC, dst=V4_GROUP).packet
    assert (packet.max_adver_int_cs, packet.adver_int) == (2500, 25.0)


def test_v3_interval_is_twelve_bits_of_centiseconds() -> None:
    wire = encode(_v3(max_adver_int_cs=4095), src=V4_SRC, dst=V4_GROUP)
    assert wire[4:6] == b"\x0f\xff"
    assert decode(wire, src=V4_SRC, dst=V4_GROUP).packet.adver_int == 40.95


@pytest.mark.parametrize(
    ("packet", "src", "dst", "message"),
    [
        (_v2(max_adver_int_cs=150), V4_SRC, V4_GROUP, "not a multiple of 100"),
        (_v2(max_adver_int_cs=0), V4_SRC, V4_GROUP, "out of range 100..25500"),
        (_v2(max_adver_int_cs=25600), V4_SRC, V4_GROUP, "out of range 100..25500"),
        (_v2(), V6_SRC, V6_GROUP, "IPv4 only"),
        (_v2(auth_type=256), V4_SRC, V4_GROUP, "auth_type 256"),
        (_v3(max_adver_int_cs=0), V4_SRC, V4_GROUP, "out of range 1..4095"),
        (_v3(max_adver_int_cs=4096), V4_SRC, V4_GROUP, "out of range 1..4095"),
        (_v3(addresses=()), V4_SRC, V4_GROUP, "0 addresses, must be 1..255"),
        (_v3(auth_type=AUTH_SIMPLE), V4_SRC, V4_GROUP, "no authentication"),
        (_v3(auth_data=b"x"), V4_SRC, V4_GROUP, "no authentication"),
        (_v3(), V6_SRC, V6_GROUP, "not an IPv6 address"),
        (_v3_ipv6(), V4_SRC, V4_GROUP, "not an IPv4 address"),
        (_v3(), V4_SRC, V6_GROUP, "differ in address family"),
        (_v2(addresses=(IPv4Address("192.0.2.1"),) * 256), V4_SRC, V4_GROUP, "256 addresses"),
        (_v3(vrid=0), V4_SRC, V4_GROUP, "vrid 0 out of range 1..255"),
        (_v3(vrid=256), V4_SRC, V4_GROUP, "vrid 256"),
        (_v3(priority=256), V4_SRC, V4_GROUP, "priority 256"),
        (_v3(version=4), V4_SRC, V4_GROUP, "version 4"),
        (_v3(type=2), V4_SRC, V4_GROUP, "packet type 2"),
    ],
)
def test_encode_refuses_packets_that_cannot_go_on_the_wire(
    packet: VrrpPacket, src: Any, dst: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        encode(packet, src=src, dst=dst)


def test_v2_with_255_addresses_round_trips() -> None:
    many = _v2(addresses=tuple(IPv4Address(0x0A000000 + n) for n in range(255)))
    wire = encode(many, src=V4_SRC, dst=V4_GROUP)
    assert len(wire) == 8 + 255 * 4 + 8
    assert decode(wire, src=V4_SRC, dst=V4_GROUP).packet == many


# --- parse_ipv4 ---------------------------------------------------------------------------------------------


def _ipv4_header(
    payload: bytes, *, ihl: int = 5, total: int | None = None, flags: int = 0, ttl: int = 255
) -> bytes:
    options = bytes(4 * max(0, ihl - 5))
    length = 4 * ihl + len(payload) if total is None else total
    fixed = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0xC0, length, 1, flags, ttl, 112, 0, V4_SRC.packed, V4_GROUP.packed
    )
    return fixed + options + payload


def test_parse_ipv4_returns_the_header_fields_and_the_payload() -> None:
    wire = encode(_v3(), src=V4_SRC, dst=V4_GROUP)
    datagram = parse_ipv4(_ipv4_header(wire, ttl=254))
    assert (datagram.src, datagram.dst, datagram.ttl, datagram.protocol) == (V4_SRC, V4_GROUP, 254, 112)
    assert (datagram.tos, datagram.ihl, datagram.payload) == (0xC0, 5, wire)


def test_parse_ipv4_skips_options_and_cuts_padding_after_the_total_length() -> None:
    wire = encode(_v3(), src=V4_SRC, dst=V4_GROUP)
    datagram = parse_ipv4(_ipv4_header(wire, ihl=6) + bytes(10))
    assert (datagram.ihl, datagram.payload) == (6, wire)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "0 bytes, shorter than a 20-byte IPv4 header"),
        (b"\x45" + bytes(18), "19 bytes"),
        (b"\x65" + bytes(39), "IP version 6, expected 4"),
        (_ipv4_header(b"", ihl=4)[:20], "IHL 4"),
        (_ipv4_header(b"", ihl=15)[:40], "IHL 15 (60 bytes) exceeds the 40 bytes received"),
        (_ipv4_header(bytes(8), total=19), "total length 19 is shorter than the 20-byte header"),
        (_ipv4_header(bytes(8), total=29), "total length 29 exceeds the 28 bytes received"),
        (_ipv4_header(bytes(8), flags=0x2000), "more-fragments True, offset 0"),
        (_ipv4_header(bytes(8), flags=0x0002), "more-fragments False, offset 16"),
    ],
    ids=["empty", "short", "ipv6", "ihl-small", "ihl-large", "total-small", "truncated", "mf", "offset"],
)
def test_parse_ipv4_rejects_malformed_headers(raw: bytes, message: str) -> None:
    with pytest.raises(PacketError) as caught:
        parse_ipv4(raw)
    assert caught.value.reason is DecodeReason.IP_HEADER
    assert message in caught.value.detail


def test_parse_ipv4_accepts_the_dont_fragment_flag() -> None:
    assert parse_ipv4(_ipv4_header(b"x", flags=0x4000)).payload == b"x"


# --- properties ---------------------------------------------------------------------------------------------

ipv4s = st.ip_addresses(v=4)
ipv6s = st.ip_addresses(v=6)
endpoints = st.one_of(st.tuples(ipv4s, ipv4s), st.tuples(ipv6s, ipv6s))
vrids = st.integers(1, 255)
priorities = st.integers(0, 255)
passwords = st.binary(min_size=1, max_size=8).map(lambda data: data.rstrip(b"\x00")).filter(bool)
v2_auth = st.one_of(
    st.just((AUTH_NONE, b"")),
    st.tuples(st.just(AUTH_SIMPLE), passwords),
    st.tuples(st.integers(0, 255), st.binary(max_size=8).map(lambda data: data.rstrip(b"\x00"))),
)


@st.composite
def v2_packets(draw: st.DrawFn) -> VrrpPacket:
    auth_type, auth_data = draw(v2_auth)
    return VrrpPacket(
        version=2,
        type=ADVERTISEMENT,
        vrid=draw(vrids),
        priority=draw(priorities),
        max_adver_int_cs=draw(st.integers(1, 255)) * 100,
        addresses=tuple(draw(st.lists(ipv4s, max_size=12))),
        auth_type=auth_type,
        auth_data=auth_data,
    )


def v3_packets(addresses: st.SearchStrategy[Any]) -> st.SearchStrategy[VrrpPacket]:
    return st.builds(
        VrrpPacket,
        version=st.just(3),
        type=st.just(ADVERTISEMENT),
        vrid=vrids,
        priority=priorities,
        max_adver_int_cs=st.integers(1, 4095),
        addresses=st.lists(addresses, min_size=1, max_size=12).map(tuple),
    )


def _round_trip(packet: VrrpPacket, src: Any, dst: Any, *, as_v2: bool = False) -> Decoded:
    wire = encode(packet, src=src, dst=dst, v3_checksum_as_v2=as_v2)
    decoded = decode(wire, src=src, dst=dst)
    assert decoded.packet == packet
    assert decoded.checksum == int.from_bytes(wire[6:8], "big")
    assert encode(decoded.packet, src=src, dst=dst, v3_checksum_as_v2=as_v2) == wire
    return decoded


@given(v2_packets(), ipv4s, ipv4s)
def test_generated_v2_packets_with_and_without_auth_round_trip_exactly(
    packet: VrrpPacket, src: Any, dst: Any
) -> None:
    assert _round_trip(packet, src, dst).checksum_form is ChecksumForm.V2


@given(v3_packets(ipv4s), ipv4s, ipv4s, st.booleans())
def test_generated_v3_ipv4_packets_round_trip_exactly_in_either_checksum_form(
    packet: VrrpPacket, src: Any, dst: Any, as_v2: bool
) -> None:
    decoded = _round_trip(packet, src, dst, as_v2=as_v2)
    indistinct = checksum(_pseudo_header(src, dst, 8 + 4 * len(packet.addresses))) == 0
    plain = as_v2 and not indistinct
    assert decoded.checksum_form is (ChecksumForm.V3_PLAIN if plain else ChecksumForm.V3_PSEUDO_HEADER)


@given(v3_packets(ipv6s), ipv6s, ipv6s)
def test_generated_v3_ipv6_packets_round_trip_exactly(packet: VrrpPacket, src: Any, dst: Any) -> None:
    assert _round_trip(packet, src, dst).checksum_form is ChecksumForm.V3_PSEUDO_HEADER


def _decode_or_reason(data: bytes, src: Any, dst: Any) -> Decoded | DecodeReason:
    """Decode, turning a PacketError into its reason; any other exception fails the test."""
    try:
        return decode(data, src=src, dst=dst)
    except PacketError as error:
        assert isinstance(error.reason, DecodeReason) and error.detail
        return error.reason


@given(st.binary(max_size=600), endpoints)
def test_decode_of_arbitrary_bytes_raises_nothing_but_packet_error(
    data: bytes, ends: tuple[Any, Any]
) -> None:
    _decode_or_reason(data, *ends)


@given(st.sampled_from([0x21, 0x31, 0x22, 0x11]), st.binary(max_size=120), endpoints)
def test_decode_of_vrrp_looking_bytes_raises_nothing_but_packet_error(
    first: int, rest: bytes, ends: tuple[Any, Any]
) -> None:
    src, dst = ends
    data = bytes([first]) + rest
    _decode_or_reason(data, src, dst)
    if len(data) >= 8:  # also with a checksum that verifies, to get past the checksum check
        _decode_or_reason(_with_checksum(data, src, dst, pseudo=first >> 4 == 3), src, dst)


@given(st.one_of(v2_packets(), v3_packets(ipv4s)), ipv4s, st.data())
def test_decode_of_mutated_valid_packets_raises_nothing_but_packet_error(
    packet: VrrpPacket, src: Any, data: st.DataObject
) -> None:
    wire = bytearray(encode(packet, src=src, dst=V4_GROUP))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        wire[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire) + 8))
    mutated = bytes(wire[:cut]) + bytes(max(0, cut - len(wire)))
    _decode_or_reason(mutated, src, V4_GROUP)
    if len(mutated) >= 8:
        _decode_or_reason(_with_checksum(mutated, src, V4_GROUP, pseudo=mutated[0] >> 4 == 3), src, V4_GROUP)


@given(st.binary(max_size=200))
def test_parse_ipv4_of_arbitrary_bytes_raises_nothing_but_packet_error(data: bytes) -> None:
    try:
        parse_ipv4(data)
    except PacketError as error:
        assert error.reason is DecodeReason.IP_HEADER


@given(st.integers(0, 15), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=80))
def test_parse_ipv4_of_ipv4_looking_bytes_raises_nothing_but_packet_error(
    ihl: int, total: int, flags: int, rest: bytes
) -> None:
    data = bytes([0x40 | ihl, 0]) + total.to_bytes(2, "big") + b"\x00\x01" + flags.to_bytes(2, "big") + rest
    try:
        datagram = parse_ipv4(data)
    except PacketError as error:
        assert error.reason is DecodeReason.IP_HEADER
    else:
        assert len(datagram.payload) == total - 4 * ihl


# --- the pcap helper itself ---------------------------------------------------------------------------------


def _pcap_bytes(
    frames: list[bytes], linktype: int, *, order: str = "<", nanoseconds: bool = False, snaplen: int = 65535
) -> bytes:
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = [struct.pack(f"{order}IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for index, data in enumerate(frames):
        out.append(struct.pack(f"{order}IIII", 1_000_000 + index, 500, len(data), len(data) + 4) + data)
    return b"".join(out)


def _reencapsulated(ip: IpPacket, linktype: int) -> bytes:
    """The datagram (padding cut) under another link-layer header."""
    datagram = ip.datagram[: _ip_length(ip)]
    ethertype = (0x0800 if ip.version == 4 else 0x86DD).to_bytes(2, "big")
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.pack("!HHH8s", 2, 1, 6, bytes(8)) + ethertype + datagram
    if linktype == LINKTYPE_LINUX_SLL2:
        return ethertype + struct.pack("!HIHBB8s", 0, 3, 1, 2, 6, bytes(8)) + datagram
    if linktype == LINKTYPE_NULL:
        return (2 if ip.version == 4 else 30).to_bytes(4, "little") + datagram
    if linktype == LINKTYPE_ETHERNET:  # with an 802.1Q tag
        return bytes(12) + b"\x81\x00\x00\x2a" + ethertype + datagram
    if linktype == LINKTYPE_FRELAY:  # RFC 2427: Q.922 address, UI, NLPID
        return b"\x18\x41\x03" + (b"\xcc" if ip.version == 4 else b"\x8e") + datagram
    return datagram


def _ip_length(ip: IpPacket) -> int:
    if ip.version == 4:
        return int.from_bytes(ip.datagram[2:4], "big")
    return 40 + int.from_bytes(ip.datagram[4:6], "big")


def _summary(pairs: list[tuple[Frame, IpPacket]]) -> list[tuple[Any, ...]]:
    return [(frame.number, ip.src, ip.dst, ip.ttl, ip.payload) for frame, ip in pairs]


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
@pytest.mark.parametrize("nanoseconds", [False, True], ids=["usec", "nsec"])
@pytest.mark.parametrize(
    "linktype",
    [
        LINKTYPE_ETHERNET,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_LINUX_SLL2,
        LINKTYPE_RAW,
        LINKTYPE_NULL,
        LINKTYPE_FRELAY,
    ],
    ids=["ethernet-vlan", "sll", "sll2", "raw", "null", "frelay"],
)
def test_pcap_reader_finds_the_same_vrrp_packets_in_every_format(
    order: str, nanoseconds: bool, linktype: int
) -> None:
    original = vrrp_packets(_require(MAIN_CAPTURE))
    blob = _pcap_bytes(
        [_reencapsulated(ip, linktype) for _, ip in original], linktype, order=order, nanoseconds=nanoseconds
    )

    frames = list(parse_pcap(blob))

    assert _summary(list(ip_packets(frames, 112))) == _summary(original)
    assert frames[0].timestamp == pytest.approx(1_000_000 + 500 * (1e-9 if nanoseconds else 1e-6))
    assert frames[0].orig_len == len(frames[0].data) + 4


def test_pcap_reader_cuts_records_at_the_snapshot_length_as_libpcap_does() -> None:
    blob = _pcap_bytes([bytes(range(50)), b"\x01\x02"], LINKTYPE_RAW, snaplen=10)
    assert [frame.data for frame in parse_pcap(blob)] == [bytes(range(10)), b"\x01\x02"]


def test_pcap_reader_marks_datagrams_the_capture_cut_short() -> None:
    _, ip = vrrp_packets(_require(MAIN_CAPTURE))[0]
    blob = _pcap_bytes([_reencapsulated(ip, LINKTYPE_RAW)], LINKTYPE_RAW, snaplen=30)
    [(_, cut)] = ip_packets(list(parse_pcap(blob)), 112)
    assert cut.truncated and cut.payload == ip.payload[:10]


def test_pcap_reader_rejects_other_file_formats() -> None:
    with pytest.raises(ValueError, match="not a classic pcap file"):
        list(parse_pcap(b"\x0a\x0d\x0d\x0a" + bytes(40)))  # pcapng
