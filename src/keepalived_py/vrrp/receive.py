"""Receive-path checks of a VRRP advertisement against the instance it is for, sans I/O.

The codec (:mod:`keepalived_py.vrrp.packet`) has already checked the wire format; these checks are the ones
that need the instance's configuration, in keepalived's order (``vrrp_check_packet``): TTL/hop limit,
version, authentication, advertisement interval (VRRPv2), multicast vs unicast, and the address list.
Every drop has a :class:`DropReason`, so the caller can count drops by reason and log them rate-limited.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from keepalived_py.vrrp.packet import AUTH_NONE, AUTH_SIMPLE, ChecksumForm, Decoded

IPAddress = IPv4Address | IPv6Address
#: RFC: multicast adverts are sent, and must be received, with TTL / hop limit 255.
VRRP_TTL = 255


class DropReason(enum.StrEnum):
    TTL = "ttl"  # multicast TTL/hop limit other than 255, or a unicast TTL outside the peer's range
    VERSION = "version"  # not the instance's VRRP version
    AUTH_TYPE = "auth_type"  # VRRPv2 authentication type differs from ours
    AUTH_PASSWORD = "auth_password"  # simple password differs
    INTERVAL = "interval"  # VRRPv2 advertisement interval differs from ours
    CAST = "cast"  # multicast received where unicast expected, or the reverse
    ADDRESS_COUNT = "address_count"  # number of addresses differs from our virtual addresses
    ADDRESS_LIST = "address_list"  # an address in the advert is not one of ours
    UNICAST_SOURCE = "unicast_source"  # vrrp_check_unicast_src: the source is not a configured peer
    OWN = "own"  # our own advert looped back


@dataclass(frozen=True)
class Expect:
    """What an instance expects of the adverts for its VRID."""

    version: int
    advert_int: float
    addresses: frozenset[IPAddress]
    local_addresses: frozenset[IPAddress]
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""
    unicast: bool = False
    #: unicast peers with their accepted TTL range (None: any TTL)
    peers: tuple[tuple[IPAddress, int | None, int | None], ...] = ()
    check_unicast_src: bool = False
    skip_check_adv_addr: bool = False


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: DropReason | None = None
    detail: str = ""


ACCEPT = Verdict(True)


def _drop(reason: DropReason, detail: str) -> Verdict:
    return Verdict(False, reason, detail)


def password_field(password: str) -> bytes:
    """The 8-byte VRRPv2 authentication data keepalived sends for ``auth_pass`` (NUL padded, truncated)."""
    return password.encode("utf-8")[:8].ljust(8, b"\0")


def check(
    expect: Expect,
    decoded: Decoded,
    *,
    src: IPAddress,
    dst: IPAddress,
    ttl: int | None,
    current_master: IPAddress | None = None,
) -> Verdict:
    """Accept or drop an advert already decoded and matched to this instance by VRID and interface."""
    pkt = decoded.packet
    if src in expect.local_addresses:
        return _drop(DropReason.OWN, f"advert from our own address {src}")
    multicast = dst.is_multicast
    if not expect.unicast and ttl is not None and ttl != VRRP_TTL:
        return _drop(DropReason.TTL, f"invalid TTL/HL: received {ttl}, expected {VRRP_TTL}")
    if pkt.version != expect.version:
        return _drop(DropReason.VERSION, f"wrong version: received {pkt.version}, expected {expect.version}")
    if pkt.version == 2:
        if pkt.auth_type != expect.auth_type:
            detail = f"received auth type {pkt.auth_type}, expected {expect.auth_type}"
            return _drop(DropReason.AUTH_TYPE, detail)
        if expect.auth_type == AUTH_SIMPLE:
            received = pkt.auth_data.ljust(8, b"\0")[:8]
            if not hmac.compare_digest(received, expect.auth_data.ljust(8, b"\0")[:8]):
                return _drop(DropReason.AUTH_PASSWORD, "received an invalid password")
        if pkt.max_adver_int_cs != round(expect.advert_int * 100):
            return _drop(
                DropReason.INTERVAL,
                f"advert interval mismatch: mine {expect.advert_int:g} s, received {pkt.adver_int:g} s",
            )
    if multicast == expect.unicast:
        want, got = ("unicast", "multicast") if expect.unicast else ("multicast", "unicast")
        return _drop(DropReason.CAST, f"expected {want} advert but received {got}")
    if expect.unicast:
        peer = next((p for p in expect.peers if p[0] == src), None)
        if peer is None and expect.check_unicast_src:
            return _drop(DropReason.UNICAST_SOURCE, f"unicast advert from {src}, which is not a unicast_peer")
        if peer is not None and ttl is not None:
            _, min_ttl, max_ttl = peer
            if (min_ttl is not None and ttl < min_ttl) or (max_ttl is not None and ttl > max_ttl):
                return _drop(DropReason.TTL, f"TTL {ttl} from {src} outside {min_ttl}..{max_ttl}")
    check_addresses = not expect.skip_check_adv_addr or current_master != src
    if check_addresses and pkt.priority != 0:
        if len(pkt.addresses) != len(expect.addresses):
            return _drop(
                DropReason.ADDRESS_COUNT,
                f"expected {len(expect.addresses)} addresses but received {len(pkt.addresses)}",
            )
        unknown = [a for a in pkt.addresses if a not in expect.addresses]
        if unknown:
            return _drop(DropReason.ADDRESS_LIST, f"address {unknown[0]} is not one of this instance's VIPs")
    return ACCEPT


def checksum_counter(decoded: Decoded) -> str:
    """The name of the counter this advert's checksum form goes to."""
    return {
        ChecksumForm.V2: "checksum_v2",
        ChecksumForm.V3_PSEUDO_HEADER: "checksum_v3_pseudo_header",
        ChecksumForm.V3_PLAIN: "checksum_v3_plain",
    }[decoded.checksum_form]
