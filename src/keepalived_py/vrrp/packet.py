"""VRRP advertisement wire format: a pure codec, no sockets and no configuration.

Covers VRRPv2 (RFC 3768, including the simple-password auth type 1 that keepalived still speaks) and
VRRPv3 (RFC 9568, formerly RFC 5798) over IPv4, and VRRPv3 over IPv6. A message is, in order:

* byte 0: version (high nibble) and type (low nibble); bytes 1, 2, 3: VRID, priority, address count;
* bytes 4-5: v2 auth type and Adver Int (whole seconds, one byte each); v3 4 reserved bits and the 12-bit
  Max Adver Int in centiseconds;
* bytes 6-7: checksum;
* the addresses: count times 4 bytes (IPv4) or 16 bytes (IPv6);
* v2 only: 8 bytes of authentication data.

Checksums (RFC 1071 one's complement):

* v2: over the VRRP message, authentication data included;
* v3 over IPv6: over the IPv6 pseudo-header plus the message;
* v3 over IPv4: over the IPv4 pseudo-header plus the message by default, as keepalived, FRR and tcpdump do;
  over the message only (the v2 form) when keepalived's ``v3_checksum_as_v2`` option is set. On receive either
  form is accepted and :class:`Decoded` says which one verified, so the caller can count them.

:func:`decode` checks only what the wire format itself makes invalid and raises nothing but
:class:`PacketError`, whatever the bytes. Checks against configuration (TTL/hop limit, VRID, password,
advertisement interval, address list) belong to the receive path.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address

IPPROTO_VRRP = 112
#: The only VRRP packet type (both versions).
ADVERTISEMENT = 1
AUTH_NONE = 0
AUTH_SIMPLE = 1  # simple text password (RFC 2338; removed by RFC 3768 but still used by keepalived)
AUTH_AH = 2  # IP Authentication Header (RFC 2338)

#: Version/type, VRID, priority, count, auth type or interval, checksum: common to both versions.
HEADER_LEN = 8
#: VRRPv2 authentication data field, always present (zero-filled without authentication).
V2_AUTH_LEN = 8
#: VRRPv3 Max Adver Int is a 12-bit count of centiseconds; the top 4 bits of its 16-bit word are reserved.
V3_MAX_ADVER_INT_CS = 0x0FFF
#: VRRPv2 Adver Int is one byte of whole seconds.
V2_MAX_ADVER_INT_S = 0xFF
MAX_ADDRESSES = 0xFF
#: A CARP advertisement (OpenBSD/FreeBSD, also IP protocol 112): 8 header bytes, 8 counter bytes and a
#: 20-byte SHA1 HMAC; its fourth byte (VRRP's address count) is the auth length in 32-bit words, 7.
CARP_LEN = 36
CARP_AUTHLEN = 7

IPV4_MIN_HEADER_LEN = 20
_IPV4_MF = 0x2000
_IPV4_FRAGMENT_OFFSET = 0x1FFF


class DecodeReason(enum.StrEnum):
    """Why a received packet was dropped: machine readable, one per counter the caller may keep."""

    IP_HEADER = "ip_header"  # the IPv4 header is malformed or does not fit the received bytes
    TOO_SHORT = "too_short"  # fewer bytes than the fixed 8-byte VRRP header
    VERSION = "version"  # version is neither 2 nor 3
    TYPE = "type"  # not an ADVERTISEMENT
    CARP = "carp"  # a CARP advertisement (same IP protocol, looks like VRRPv2)
    ADDRESS_FAMILY = "address_family"  # VRRPv2 over IPv6, or source and destination of different families
    LENGTH = "length"  # the message length does not match the address count
    CHECKSUM = "checksum"  # the checksum verifies in no accepted form
    VRID = "vrid"  # VRID 0 (valid VRIDs are 1..255)
    ZERO_COUNT = "zero_count"  # a VRRPv3 advertisement without any address
    ZERO_INTERVAL = "zero_interval"  # an advertisement interval of zero


class PacketError(ValueError):
    """The codec's protocol error: :attr:`reason` to count, :attr:`detail` to log."""

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class ChecksumForm(enum.StrEnum):
    """Which checksum computation a packet carries (or verified with)."""

    V2 = "v2"  # VRRPv2: plain RFC 1071 over the message
    V3_PSEUDO_HEADER = "v3_pseudo_header"  # VRRPv3: IP pseudo-header plus message (the default)
    V3_PLAIN = "v3_plain"  # VRRPv3 over IPv4 with keepalived's v3_checksum_as_v2: message only


@dataclass(frozen=True, slots=True)
class VrrpPacket:
    """One advertisement, fields as named by the RFCs; the checksum is the codec's business.

    ``auth_data`` is the VRRPv2 authentication data without its trailing NUL padding: on the wire it is
    always 8 bytes, the password NUL-padded or truncated to 8 as keepalived does, and :func:`decode` strips
    the trailing NULs again so that decoding and re-encoding reproduces the bytes.
    """

    version: int
    type: int
    vrid: int
    priority: int
    max_adver_int_cs: int  # centiseconds whatever the version; v2 carries whole seconds on the wire
    addresses: tuple[IPAddress, ...]
    auth_type: int = AUTH_NONE  # v2 only
    auth_data: bytes = b""  # v2 only

    @property
    def adver_int(self) -> float:
        """The advertisement interval in seconds."""
        return self.max_adver_int_cs / 100


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded advertisement, the checksum it carried and the form that verified it."""

    packet: VrrpPacket
    checksum: int
    checksum_form: ChecksumForm


@dataclass(frozen=True, slots=True)
class IPv4Datagram:
    """The IPv4 header fields the VRRP receive path needs, and the payload cut at the total length."""

    src: IPv4Address
    dst: IPv4Address
    ttl: int
    protocol: int
    payload: bytes
    tos: int = 0
    ihl: int = 5  # header length in 32-bit words, as on the wire


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum: one's complement of the one's complement sum of 16-bit words.

    An odd trailing byte is padded with a zero byte. Over data that embeds a correct checksum the result is 0.
    """
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = sum(words)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    """The IPv4 (RFC 791/768 style) or IPv6 (RFC 8200 section 8.1) pseudo-header for ``length`` bytes."""
    if src.version == 4:
        return src.packed + dst.packed + struct.pack("!BBH", 0, IPPROTO_VRRP, length)
    return src.packed + dst.packed + struct.pack("!I3xB", length, IPPROTO_VRRP)


def _address_len(family: int) -> int:
    return 4 if family == 4 else 16


def expected_length(version: int, family: int, count: int) -> int:
    """Exact VRRP message length for ``count`` addresses: v2 ``8 + 4n + 8``, v3 ``8 + n * (4 or 16)``."""
    length = HEADER_LEN + count * _address_len(family)
    return length + V2_AUTH_LEN if version == 2 else length


def looks_like_carp(payload: bytes) -> bool:
    """Whether ``payload`` is a CARP advertisement rather than VRRP.

    CARP shares IP protocol 112 and its first byte (version 2, type 1) reads as VRRPv2. A CARP advertisement
    is exactly 36 bytes, has its auth length 7 where VRRP has the address count, and its checksum is plain
    RFC 1071 over those 36 bytes. A VRRPv2 message with 7 addresses is 44 bytes, so no VRRP packet
    qualifies; a CARP-shaped message whose checksum fails is left to the ordinary length check.
    """
    return (
        len(payload) == CARP_LEN
        and payload[0] == 0x21
        and payload[3] == CARP_AUTHLEN
        and checksum(payload) == 0
    )


def decode(payload: bytes, *, src: IPAddress, dst: IPAddress) -> Decoded:
    """Decode the VRRP message ``payload`` (the IP payload) received from ``src`` to ``dst``.

    The address family is the family of ``src``; ``dst`` must be of the same family and is needed for the
    VRRPv3 pseudo-header (to verify keepalived's old unicast form, which used the multicast group in the
    pseudo-header, decode again with ``dst`` set to the group). Raises :class:`PacketError` only.

    Length: the message must be exactly as long as its address count says; trailing bytes are rejected with
    ``LENGTH``. keepalived does the same (``vrrp_check_packet`` wants the received length equal to the
    expected length) except for Ethernet minimum-frame padding, which lies beyond the IP total length: the
    kernel strips it before a raw socket sees the datagram and :func:`parse_ipv4` cuts the payload at the
    total length, so it never reaches this function.

    Checks, in order: ``TOO_SHORT``, ``VERSION``, ``TYPE``, ``CARP``, ``ADDRESS_FAMILY``, ``LENGTH``,
    ``CHECKSUM``, ``VRID``, ``ZERO_COUNT`` (v3 only: RFC 9568 makes 1 the minimum, while RFC 3768 sets none
    and keepalived sends VRRPv2 adverts without addresses for an instance without VIPs), ``ZERO_INTERVAL``.
    The auth type is not checked (the receive path compares it with the configuration) and the reserved
    bits above the v3 interval are ignored, as RFC 9568 requires.
    """
    data = bytes(payload)
    _require_addresses(src, dst)
    if src.version != dst.version:
        raise PacketError(DecodeReason.ADDRESS_FAMILY, f"source {src} and destination {dst} differ in family")
    family = src.version
    if len(data) < HEADER_LEN:
        raise PacketError(
            DecodeReason.TOO_SHORT, f"{len(data)} bytes, shorter than the {HEADER_LEN}-byte VRRP header"
        )
    version, ptype = data[0] >> 4, data[0] & 0x0F
    if version not in (2, 3):
        raise PacketError(DecodeReason.VERSION, f"VRRP version {version}, expected 2 or 3")
    if ptype != ADVERTISEMENT:
        raise PacketError(DecodeReason.TYPE, f"packet type {ptype}, expected {ADVERTISEMENT} (ADVERTISEMENT)")
    if looks_like_carp(data):
        raise PacketError(DecodeReason.CARP, f"CARP advertisement (vhid {data[1]}, advskew {data[2]})")
    if version == 2 and family == 6:
        raise PacketError(DecodeReason.ADDRESS_FAMILY, "VRRPv2 is IPv4 only, received over IPv6")
    count = data[3]
    expected = expected_length(version, family, count)
    if len(data) != expected:
        relation = "short" if len(data) < expected else "long"
        raise PacketError(
            DecodeReason.LENGTH,
            f"VRRPv{version} message too {relation}: {len(data)} bytes, {count} IPv{family} "
            f"address(es) make {expected}",
        )
    form = _verify_checksum(data, version, src, dst)
    return Decoded(_fields(data, version, family), int.from_bytes(data[6:8], "big"), form)


def _require_addresses(src: object, dst: object) -> None:
    """A caller passing something other than ``ipaddress`` objects has a bug, not a bad packet."""
    for name, value in (("src", src), ("dst", dst)):
        if not isinstance(value, IPv4Address | IPv6Address):
            raise TypeError(f"{name} must be an IPv4Address or IPv6Address, not {type(value).__name__}")


def _verify_checksum(data: bytes, version: int, src: IPAddress, dst: IPAddress) -> ChecksumForm:
    """The checksum form that verifies ``data``; if both v3/IPv4 forms do, the pseudo-header one."""
    if version == 2:
        if checksum(data) == 0:
            return ChecksumForm.V2
        raise PacketError(DecodeReason.CHECKSUM, _checksum_detail(data, "plain", b""))
    pseudo = _pseudo_header(src, dst, len(data))
    if checksum(pseudo + data) == 0:
        return ChecksumForm.V3_PSEUDO_HEADER
    if src.version == 4 and checksum(data) == 0:
        return ChecksumForm.V3_PLAIN
    detail = _checksum_detail(data, "pseudo-header", pseudo)
    if src.version == 4:
        detail += f"; plain form would be {_expected_checksum(data, b''):#06x}"
    raise PacketError(DecodeReason.CHECKSUM, f"{detail} ({src} > {dst})")


def _expected_checksum(data: bytes, prefix: bytes) -> int:
    return checksum(prefix + data[:6] + b"\x00\x00" + data[8:])


def _checksum_detail(data: bytes, form: str, prefix: bytes) -> str:
    got = int.from_bytes(data[6:8], "big")
    expected = _expected_checksum(data, prefix)
    return f"VRRPv{data[0] >> 4} checksum {got:#06x}, {form} form expects {expected:#06x}"


def _fields(data: bytes, version: int, family: int) -> VrrpPacket:
    """Build the packet from a length- and checksum-checked message, rejecting invalid field values."""
    vrid, priority, count = data[1], data[2], data[3]
    if vrid == 0:
        raise PacketError(DecodeReason.VRID, "VRID 0, valid VRIDs are 1..255")
    if version == 3 and count == 0:
        raise PacketError(DecodeReason.ZERO_COUNT, f"VRRPv3 advertisement for VRID {vrid} carries no address")
    interval_cs = data[5] * 100 if version == 2 else int.from_bytes(data[4:6], "big") & V3_MAX_ADVER_INT_CS
    if interval_cs == 0:
        raise PacketError(DecodeReason.ZERO_INTERVAL, f"advertisement interval 0 for VRID {vrid}")
    size = _address_len(family)
    address_type = IPv4Address if family == 4 else IPv6Address
    end = HEADER_LEN + count * size
    addresses = tuple(address_type(data[at : at + size]) for at in range(HEADER_LEN, end, size))
    if version == 3:
        return VrrpPacket(3, ADVERTISEMENT, vrid, priority, interval_cs, addresses)
    auth_data = data[end:].rstrip(b"\0")
    return VrrpPacket(2, ADVERTISEMENT, vrid, priority, interval_cs, addresses, data[4], auth_data)


def encode(packet: VrrpPacket, *, src: IPAddress, dst: IPAddress, v3_checksum_as_v2: bool = False) -> bytes:
    """The wire bytes of ``packet`` sent from ``src`` to ``dst``, checksum included.

    ``v3_checksum_as_v2`` (keepalived's option of that name) makes a VRRPv3-over-IPv4 checksum cover the
    message only; it has no effect on VRRPv2 or IPv6. Raises :class:`ValueError` for a packet that cannot
    be put on the wire or that :func:`decode` would reject, so ``decode(encode(p)).packet == p`` for any
    auth data of at most 8 bytes without trailing NULs (longer data is truncated to 8, as keepalived does).
    """
    _require_addresses(src, dst)
    if src.version != dst.version:
        raise ValueError(f"source {src} and destination {dst} differ in address family")
    family = src.version
    _check_encodable(packet, family)
    if packet.version == 2:
        second = bytes([packet.auth_type, packet.max_adver_int_cs // 100])
        trailer = packet.auth_data[:V2_AUTH_LEN].ljust(V2_AUTH_LEN, b"\0")
    else:
        second = packet.max_adver_int_cs.to_bytes(2, "big")
        trailer = b""
    first = bytes([packet.version << 4 | packet.type, packet.vrid, packet.priority, len(packet.addresses)])
    body = first + second + b"\x00\x00" + b"".join(a.packed for a in packet.addresses) + trailer
    plain = packet.version == 2 or (family == 4 and v3_checksum_as_v2)
    prefix = b"" if plain else _pseudo_header(src, dst, len(body))
    return body[:6] + checksum(prefix + body).to_bytes(2, "big") + body[8:]


def _check_encodable(packet: VrrpPacket, family: int) -> None:
    """Raise :class:`ValueError` unless ``packet`` can be encoded for ``family`` and decoded back."""
    if packet.version not in (2, 3):
        raise ValueError(f"VRRP version {packet.version}: only 2 and 3 exist")
    if packet.type != ADVERTISEMENT:
        raise ValueError(f"packet type {packet.type}: only ADVERTISEMENT ({ADVERTISEMENT}) exists")
    if packet.version == 2 and family != 4:
        raise ValueError("VRRPv2 runs over IPv4 only")
    _check_range("vrid", packet.vrid, 1, 255)
    _check_range("priority", packet.priority, 0, 255)
    _check_addresses(packet.addresses, family, minimum=1 if packet.version == 3 else 0)
    if packet.version == 2:
        if packet.max_adver_int_cs % 100:
            raise ValueError(
                f"VRRPv2 carries whole seconds: {packet.max_adver_int_cs} cs is not a multiple of 100 cs"
            )
        _check_range("VRRPv2 max_adver_int_cs", packet.max_adver_int_cs, 100, V2_MAX_ADVER_INT_S * 100)
        _check_range("auth_type", packet.auth_type, 0, 255)
    else:
        _check_range("VRRPv3 max_adver_int_cs", packet.max_adver_int_cs, 1, V3_MAX_ADVER_INT_CS)
        if packet.auth_type != AUTH_NONE or packet.auth_data:
            raise ValueError("VRRPv3 has no authentication: auth_type must be 0 and auth_data empty")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} {value} out of range {low}..{high}")


def _check_addresses(addresses: Sequence[IPAddress], family: int, *, minimum: int) -> None:
    if not minimum <= len(addresses) <= MAX_ADDRESSES:
        raise ValueError(f"{len(addresses)} addresses, must be {minimum}..{MAX_ADDRESSES}")
    for address in addresses:
        if not isinstance(address, IPv4Address | IPv6Address) or address.version != family:
            raise ValueError(f"address {address!r} is not an IPv{family} address")


def parse_ipv4(datagram: bytes) -> IPv4Datagram:
    """Split what a raw ``IPPROTO_VRRP`` IPv4 socket receives (IP header included) into header and payload.

    Validates the version, the header length and the total length against the received bytes, and rejects
    fragments (the kernel reassembles before raw delivery, so only captures contain them); bytes beyond the
    total length (link-layer padding in a capture) are ignored. The header checksum is not verified: the
    kernel has already dropped datagrams whose header checksum is wrong. Raises :class:`PacketError` with
    reason ``IP_HEADER`` only.
    """
    data = bytes(datagram)
    if len(data) < IPV4_MIN_HEADER_LEN:
        raise _ip_error(f"{len(data)} bytes, shorter than a {IPV4_MIN_HEADER_LEN}-byte IPv4 header")
    if data[0] >> 4 != 4:
        raise _ip_error(f"IP version {data[0] >> 4}, expected 4")
    ihl = data[0] & 0x0F
    header_len = ihl * 4
    if header_len < IPV4_MIN_HEADER_LEN:
        raise _ip_error(f"IHL {ihl} ({header_len} bytes), the minimum is 5 ({IPV4_MIN_HEADER_LEN} bytes)")
    if header_len > len(data):
        raise _ip_error(f"IHL {ihl} ({header_len} bytes) exceeds the {len(data)} bytes received")
    total = int.from_bytes(data[2:4], "big")
    if total < header_len:
        raise _ip_error(f"total length {total} is shorter than the {header_len}-byte header")
    if total > len(data):
        raise _ip_error(f"total length {total} exceeds the {len(data)} bytes received (truncated)")
    fragment = int.from_bytes(data[6:8], "big")
    if fragment & (_IPV4_MF | _IPV4_FRAGMENT_OFFSET):
        offset = (fragment & _IPV4_FRAGMENT_OFFSET) * 8
        raise _ip_error(f"fragment (more-fragments {bool(fragment & _IPV4_MF)}, offset {offset})")
    return IPv4Datagram(
        src=IPv4Address(data[12:16]),
        dst=IPv4Address(data[16:20]),
        ttl=data[8],
        protocol=data[9],
        payload=data[header_len:total],
        tos=data[1],
        ihl=ihl,
    )


def _ip_error(detail: str) -> PacketError:
    return PacketError(DecodeReason.IP_HEADER, detail)
