"""A tiny reader for classic libpcap files, for the VRRP codec tests only.

Reads both byte orders and both timestamp resolutions, and truncates records longer than the file's snapshot
length as libpcap does (fuzzed captures contain such records). Frames of the link types below are unwrapped
to their IPv4 or IPv6 datagram, whose header fields are parsed here independently of the codec under test:

* 0 NULL (BSD loopback), 1 Ethernet (with 802.1Q/802.1ad tags), 101/228/229 raw IP, 107 Frame Relay
  (RFC 2427 and Cisco encapsulations), 113 Linux cooked (SLL), 276 Linux cooked v2 (SLL2).

pcapng is not supported.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_FRELAY = 107
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
IPPROTO_VRRP = 112

#: Magic number (as the file's first four bytes) -> struct byte order, seconds per timestamp fraction unit.
_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_FILE_HEADER_LEN = 24
_RECORD_HEADER_LEN = 16
#: libpcap's largest snapshot length; files declaring 0 or more use it.
MAX_SNAPLEN = 262144
_VLAN_ETHERTYPES = frozenset({0x8100, 0x88A8, 0x9100})
_IPV6_EXTENSIONS = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_AF_INET6_VALUES = frozenset({10, 24, 28, 30})  # Linux, NetBSD/OpenBSD, FreeBSD, macOS


class PcapFormatError(ValueError):
    """The file is not a classic pcap file, or a record is cut short."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame, numbered from 1 as tcpdump and Wireshark do."""

    number: int
    timestamp: float
    linktype: int
    data: bytes  # what libpcap delivers: at most the snapshot length
    orig_len: int  # the frame's length on the wire


@dataclass(frozen=True, slots=True)
class IpPacket:
    """The IP header fields of a captured datagram and its upper-layer payload."""

    version: int
    src: IPv4Address | IPv6Address
    dst: IPv4Address | IPv6Address
    ttl: int  # IPv4 TTL or IPv6 hop limit
    protocol: int  # IPv4 protocol or IPv6 next header after the extension headers
    datagram: bytes  # the captured bytes from the IP header on (link-layer padding included)
    payload: bytes  # the upper-layer bytes, cut at the IP length, as far as captured
    truncated: bool  # the capture holds fewer bytes than the IP length announces


def parse_pcap(blob: bytes) -> Iterator[Frame]:
    """Yield the frames of a classic pcap file held in ``blob``."""
    magic = blob[:4]
    if magic not in _MAGICS:
        raise PcapFormatError(f"not a classic pcap file (magic {magic.hex()})")
    if len(blob) < _FILE_HEADER_LEN:
        raise PcapFormatError("pcap file header cut short")
    order, fraction = _MAGICS[magic]
    snaplen, linktype = struct.unpack_from(f"{order}II", blob, 16)
    linktype &= 0xFFFF  # the upper bits carry FCS information
    if not 0 < snaplen <= MAX_SNAPLEN:
        snaplen = MAX_SNAPLEN
    offset, number = _FILE_HEADER_LEN, 0
    while offset < len(blob):
        if offset + _RECORD_HEADER_LEN > len(blob):
            raise PcapFormatError(f"record header at offset {offset} cut short")
        seconds, fractions, caplen, orig_len = struct.unpack_from(f"{order}IIII", blob, offset)
        offset += _RECORD_HEADER_LEN
        if offset + caplen > len(blob):
            raise PcapFormatError(f"record at offset {offset} announces {caplen} bytes, file ends first")
        number += 1
        data = blob[offset : offset + min(caplen, snaplen)]
        yield Frame(number, seconds + fractions * fraction, linktype, data, orig_len)
        offset += caplen


def read_pcap(path: str | Path) -> list[Frame]:
    """All frames of the classic pcap file at ``path``."""
    return list(parse_pcap(Path(path).read_bytes()))


def ip_datagram(frame: Frame) -> bytes | None:
    """The bytes from the IP header on, or None when the frame does not carry IPv4 or IPv6."""
    data, link = frame.data, frame.linktype
    if link == LINKTYPE_ETHERNET:
        return _ethernet(data)
    if link == LINKTYPE_LINUX_SLL:
        return _by_ethertype(data, 14, 16)
    if link == LINKTYPE_LINUX_SLL2:
        return _by_ethertype(data, 0, 20)
    if link in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return data if data and data[0] >> 4 in (4, 6) else None
    if link == LINKTYPE_NULL:
        return _null(data)
    if link == LINKTYPE_FRELAY:
        return _frame_relay(data)
    return None


def _by_ethertype(data: bytes, type_at: int, header_len: int) -> bytes | None:
    if len(data) < header_len:
        return None
    ethertype = int.from_bytes(data[type_at : type_at + 2], "big")
    return data[header_len:] if ethertype in (ETHERTYPE_IPV4, ETHERTYPE_IPV6) else None


def _ethernet(data: bytes) -> bytes | None:
    type_at = 12
    while len(data) >= type_at + 2 and int.from_bytes(data[type_at : type_at + 2], "big") in _VLAN_ETHERTYPES:
        type_at += 4
    return _by_ethertype(data, type_at, type_at + 2)


def _null(data: bytes) -> bytes | None:
    """BSD loopback: a 4-byte address family in the capturing host's (unknown) byte order."""
    if len(data) < 4:
        return None
    families = {int.from_bytes(data[:4], "little"), int.from_bytes(data[:4], "big")}
    if 2 in families or families & _AF_INET6_VALUES:
        return data[4:]
    return None


def _frame_relay(data: bytes) -> bytes | None:
    """Q.922 address (its last byte has the EA bit set), then RFC 2427 or Cisco encapsulation."""
    address_len = next((i + 1 for i, byte in enumerate(data[:4]) if byte & 0x01), 0)
    if address_len < 2 or len(data) <= address_len:
        return None
    rest = data[address_len:]
    if rest[0] != 0x03:  # no UI control byte: Cisco style, an ethertype follows
        return _by_ethertype(rest, 0, 2)
    rest = rest[1:].lstrip(b"\x00")  # optional padding before the NLPID
    if rest[:1] in (b"\xcc", b"\x8e"):  # NLPID IPv4, IPv6
        return rest[1:]
    if rest[:4] == b"\x80\x00\x00\x00":  # SNAP with an ethertype (OUI 0)
        return _by_ethertype(rest, 4, 6)
    return None


def parse_ip(datagram: bytes) -> IpPacket | None:
    """Parse an IPv4 or IPv6 header, or None when the header itself is not fully captured."""
    if not datagram:
        return None
    if datagram[0] >> 4 == 4:
        return _ipv4(datagram)
    if datagram[0] >> 4 == 6:
        return _ipv6(datagram)
    return None


def _ipv4(datagram: bytes) -> IpPacket | None:
    header_len = (datagram[0] & 0x0F) * 4
    if header_len < 20 or len(datagram) < header_len:
        return None
    total = int.from_bytes(datagram[2:4], "big")
    return IpPacket(
        version=4,
        src=IPv4Address(datagram[12:16]),
        dst=IPv4Address(datagram[16:20]),
        ttl=datagram[8],
        protocol=datagram[9],
        datagram=datagram,
        payload=datagram[header_len:total],
        truncated=len(datagram) < total,
    )


def _ipv6(datagram: bytes) -> IpPacket | None:
    if len(datagram) < 40:
        return None
    end = 40 + int.from_bytes(datagram[4:6], "big")
    protocol, at = datagram[6], 40
    while protocol in _IPV6_EXTENSIONS and at + 2 <= min(end, len(datagram)):
        protocol, at = datagram[at], at + (datagram[at + 1] + 1) * 8
    return IpPacket(
        version=6,
        src=IPv6Address(datagram[8:24]),
        dst=IPv6Address(datagram[24:40]),
        ttl=datagram[7],
        protocol=protocol,
        datagram=datagram,
        payload=datagram[at:end],
        truncated=len(datagram) < end,
    )


def ip_packets(frames: list[Frame], protocol: int | None = None) -> Iterator[tuple[Frame, IpPacket]]:
    """The frames carrying an IP datagram (of ``protocol`` if given), with their parsed IP header."""
    for frame in frames:
        datagram = ip_datagram(frame)
        packet = parse_ip(datagram) if datagram is not None else None
        if packet is not None and (protocol is None or packet.protocol == protocol):
            yield frame, packet


def vrrp_packets(path: str | Path) -> list[tuple[Frame, IpPacket]]:
    """The frames of the capture at ``path`` that carry IP protocol 112 (VRRP, or CARP)."""
    return list(ip_packets(read_pcap(path), IPPROTO_VRRP))
