"""IPVS table state as plain values: what the kernel holds, or what kpd wants it to hold.

A :class:`Table` maps each virtual service's :class:`ServiceKey` to an :class:`Entry` (the service's
settings and its real servers). The reconciler diffs two tables; the driver dumps the kernel's table and
applies operations. Field names follow the kernel's IPVS netlink attributes where they have one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address


class Forward(enum.IntEnum):
    """IP_VS_CONN_F_FWD_MASK values: how a real server is reached (keepalived's lb_kind / lvs_method)."""

    MASQ = 0  # NAT
    LOCALNODE = 1
    TUNNEL = 2  # TUN
    DROUTE = 3  # DR
    BYPASS = 4

    @classmethod
    def from_lb_kind(cls, lb_kind: object) -> Forward:
        """keepalived's lb_kind/lvs_method word (NAT, DR, TUN) -> the kernel's forwarding method."""
        return {"NAT": cls.MASQ, "DR": cls.DROUTE, "TUN": cls.TUNNEL}[str(lb_kind).upper()]

    @property
    def ipvsadm(self) -> str:
        """How `ipvsadm -Ln` names it."""
        return {0: "Masq", 1: "Local", 2: "Tunnel", 3: "Route", 4: "Bypass"}[int(self)]


PROTOCOLS = {"TCP": 6, "UDP": 17, "SCTP": 132}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}

#: IP_VS_CONN_F_TUNNEL_TYPE_*: a tunnel real server's encapsulation
TUN_TYPES = {"ipip": 0, "gue": 1, "gre": 2}
TUN_TYPE_NAMES = {v: k for k, v in TUN_TYPES.items()}
#: IP_VS_TUNNEL_ENCAP_FLAG_*
TUN_FLAGS = {"nocsum": 0, "csum": 1, "remcsum": 2}
TUN_FLAG_NAMES = {v: k for k, v in TUN_FLAGS.items()}

#: IP_VS_SVC_F_* service flags kpd sets (the kernel adds IP_VS_SVC_F_HASHED itself)
SVC_F_PERSISTENT = 0x0001
SVC_F_ONEPACKET = 0x0004
#: IP_VS_SVC_F_SCHED1..3: scheduler flags (sh/mh: SCHED1 fallback, SCHED2 port)
SCHED_FLAG_BITS = {"flag-1": 0x0008, "flag-2": 0x0010, "flag-3": 0x0020, "sh-fallback": 0x0008,
                   "sh-port": 0x0010, "mh-fallback": 0x0008, "mh-port": 0x0010}
SVC_F_SCHED_MASK = 0x0038


@dataclass(frozen=True, order=True)
class ServiceKey:
    """What identifies a virtual service: address family plus (protocol, address, port) or a fwmark."""

    family: int  # 4 or 6
    protocol: str  # "TCP", "UDP", "SCTP"; "" for a fwmark service
    address: IPAddress | None
    port: int
    fwmark: int = 0

    @classmethod
    def for_address(cls, protocol: str, address: IPAddress, port: int) -> ServiceKey:
        return cls(address.version, protocol.upper(), address, port, 0)

    @classmethod
    def for_fwmark(cls, fwmark: int, family: int = 4) -> ServiceKey:
        return cls(family, "", None, 0, fwmark)

    def __str__(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark}" + (" IPv6" if self.family == 6 else "")
        host = f"[{self.address}]" if self.family == 6 else str(self.address)
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True)
class Service:
    """A virtual service's settings (everything but its real servers)."""

    key: ServiceKey
    scheduler: str = "wlc"
    #: seconds, or None when the service is not persistent
    persistence_timeout: int | None = None
    #: persistence_granularity: an IPv4 netmask, or an IPv6 prefix length; None is the kernel default
    #: (255.255.255.255 / 128)
    persistence_netmask: IPv4Address | int | None = None
    persistence_engine: str | None = None
    one_packet: bool = False  # ops
    #: IP_VS_SVC_F_SCHED1..3 bits
    sched_flags: int = 0

    @property
    def flags(self) -> int:
        flags = SVC_F_PERSISTENT if self.persistence_timeout is not None else 0
        return flags | (SVC_F_ONEPACKET if self.one_packet else 0) | self.sched_flags

    @property
    def netmask(self) -> IPv4Address | int:
        """The netmask as the kernel reports it (its default when unset)."""
        if self.persistence_netmask is not None:
            return self.persistence_netmask
        return IPv4Address("255.255.255.255") if self.key.family == 4 else 128


@dataclass(frozen=True, order=True)
class DestKey:
    address: IPAddress
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Dest:
    """A real server of a virtual service, as programmed in the kernel."""

    address: IPAddress
    port: int
    forward: Forward = Forward.MASQ
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    #: TUN only: IP_VS_CONN_F_TUNNEL_TYPE_* (0 IPIP, 1 GUE, 2 GRE), the GUE port, IP_VS_TUNNEL_ENCAP_FLAG_*
    tun_type: int = 0
    tun_port: int = 0
    tun_flags: int = 0

    @property
    def key(self) -> DestKey:
        return DestKey(self.address, self.port)


@dataclass(frozen=True)
class Entry:
    service: Service
    dests: Mapping[DestKey, Dest] = field(default_factory=dict)

    @classmethod
    def of(cls, service: Service, dests: list[Dest] | tuple[Dest, ...] = ()) -> Entry:
        return cls(service, {d.key: d for d in dests})


Table = Mapping[ServiceKey, Entry]
