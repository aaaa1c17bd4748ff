"""Virtual addresses on interfaces, over rtnetlink: add, remove, query, clean up after a crash.

keepalived behaviour mirrored (``vrrp_ipaddress.c``, ``vrrp.c``):

* IPv4: ``IFA_LOCAL`` (and ``IFA_ADDRESS``: the peer for a point-to-point address, else the address
  itself), ``IFA_BROADCAST`` when a broadcast address is configured (``brd +`` / ``brd -`` computed from the
  prefix as keepalived does, for prefixes up to /30), ``IFA_LABEL``, the scope in ``ifa_scope``.
* IPv6: added with ``IFA_F_NODAD`` unless the configuration says ``-nodad`` (keepalived's reasoning: the
  address is usable at once, and a transient split brain cannot leave it ``dadfailed`` for ever), so
  :attr:`AddressSpec.nodad` defaults to True. ``IFA_F_NOPREFIXROUTE`` on request. ``preferred_lft``: when
  not configured, 0 for a /128 (the address is *deprecated*, so it is never picked as a source address, e.g.
  by health checks) and forever otherwise; anything but forever goes into ``IFA_CACHEINFO`` with an infinite
  valid lifetime. IPv6 addresses have no label, scope or broadcast.
* Adding an address that is already there (``EEXIST``) and removing one that is not (``EADDRNOTAVAIL``,
  ``ENOENT``, or the interface is gone) are not errors: both operations are idempotent.
* Residual VIPs (``remove_residual_vips`` / ``vrrp_restore_interfaces_startup``): on a start (not a
  reload) keepalived deletes every configured VIP and eVIP it finds on an interface that already existed,
  because a crashed previous run may have left them and they must not be used as the source address of
  adverts. Deletion matches address *and* prefix length on the configured device, as the kernel's
  ``RTM_DELADDR`` does for keepalived's request; :meth:`AddressManager.remove_residual` does the same and
  :func:`primary_address` takes ``exclude`` to skip VIPs when picking the advert source.

Everything takes plain :class:`AddressSpec` values, never configuration objects.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address, ip_interface
from typing import Literal

from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_NEWADDR
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFA_F_SECONDARY, ifaddrmsg

from keepalived_py.vrrp.net.links import AddressInfo, NetlinkClient, NetlinkError, RtNetlink

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

#: ``INFINITY_LIFE_TIME``: the lifetime ``forever``.
FOREVER = 0xFFFFFFFF
#: ``/etc/iproute2/rt_scopes`` names keepalived accepts.
SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
RT_SCOPE_LINK = 253

_ABSENT_ON_DELETE = frozenset({errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV, errno.ESRCH})


def _scope_number(scope: int | str | None) -> int:
    if scope is None:
        return 0
    if isinstance(scope, int):
        number = scope
    elif scope.isdigit():
        number = int(scope)
    elif scope in SCOPES:
        number = SCOPES[scope]
    else:
        raise ValueError(f"unknown scope {scope!r}: one of {', '.join(SCOPES)} or 0..255")
    if not 0 <= number <= 255:
        raise ValueError(f"scope {number} out of range 0..255")
    return number


def broadcast_for(
    address: IPv4Interface, mode: Literal["+", "-"], peer: IPv4Address | None = None
) -> IPv4Address:
    """keepalived's ``brd +`` (all host bits set) or ``brd -`` (all clear) for ``address``, prefix <= 30.

    With a peer, the peer address supplies the network bits, as in keepalived.
    """
    if address.network.prefixlen > 30:
        raise ValueError(f"prefix length {address.network.prefixlen} too long for a broadcast address")
    base = int(peer if peer is not None else address.ip)
    host_mask = 0xFFFFFFFF >> address.network.prefixlen
    return IPv4Address(base | host_mask if mode == "+" else base & ~host_mask & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class AddressSpec:
    """One virtual address to put on (or take off) an interface.

    ``address`` carries the prefix length (``192.0.2.10/24``; keepalived's default is /32 or /128). With a
    ``peer`` (point-to-point), the prefix length comes from the peer, as keepalived does. ``brd`` is an
    address, or ``"+"`` / ``"-"`` to compute it. ``scope`` is a number or an ``rt_scopes`` name.
    ``nodad`` defaults to True because keepalived adds IPv6 VIPs with ``IFA_F_NODAD`` unless ``-nodad`` is
    configured (so ``-nodad`` maps to ``nodad=False``). ``preferred_lft`` None means keepalived's default
    (0 for an IPv6 /128, forever otherwise); :data:`FOREVER` means forever.
    """

    address: IPInterface
    dev: str
    label: str | None = None
    scope: int | str | None = None
    brd: IPv4Address | Literal["+", "-"] | None = None
    peer: IPInterface | IPAddress | None = None
    nodad: bool = True
    noprefixroute: bool = False
    preferred_lft: int | None = None
    #: Extra ``IFA_F_*`` flags (e.g. ``IFA_F_HOMEADDRESS``) for the rare options not modelled above.
    extra_flags: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.address, IPv4Interface | IPv6Interface):
            object.__setattr__(self, "address", ip_interface(self.address))
        if self.peer is not None and not isinstance(self.peer, IPv4Interface | IPv6Interface):
            object.__setattr__(self, "peer", ip_interface(self.peer))
        if isinstance(self.brd, str) and self.brd not in ("+", "-"):
            object.__setattr__(self, "brd", IPv4Address(self.brd))
        if self.peer is not None and self.peer.version != self.address.version:
            raise ValueError(f"peer {self.peer} and address {self.address} differ in family")
        if self.address.version == 6:
            for name in ("label", "scope", "brd"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} does not apply to the IPv6 address {self.address}")
        if self.label is not None and not 0 < len(self.label) < 16:
            raise ValueError(f"label {self.label!r} must be 1..15 characters")
        _scope_number(self.scope)
        if self.preferred_lft is not None and not 0 <= self.preferred_lft <= FOREVER:
            raise ValueError(f"preferred_lft {self.preferred_lft} out of range")

    @property
    def ip(self) -> IPAddress:
        """The address without its prefix."""
        return self.address.ip

    @property
    def family(self) -> int:
        """``AF_INET`` or ``AF_INET6``."""
        return socket.AF_INET if self.address.version == 4 else socket.AF_INET6

    @property
    def prefixlen(self) -> int:
        """The prefix length put on the interface: the peer's when there is a peer (keepalived's rule)."""
        if isinstance(self.peer, IPv4Interface | IPv6Interface):
            return self.peer.network.prefixlen
        return self.address.network.prefixlen

    @property
    def peer_ip(self) -> IPAddress | None:
        """The point-to-point peer address, if any."""
        return self.peer.ip if isinstance(self.peer, IPv4Interface | IPv6Interface) else None

    @property
    def broadcast(self) -> IPv4Address | None:
        """The broadcast address to set, resolving ``+`` / ``-`` (None without one or with a peer)."""
        if self.brd is None or self.peer is not None or self.address.version != 4:
            return None
        if isinstance(self.brd, IPv4Address):
            return self.brd
        peer = self.peer_ip if isinstance(self.peer_ip, IPv4Address) else None
        return broadcast_for(IPv4Interface(f"{self.ip}/{self.prefixlen}"), self.brd, peer)

    @property
    def effective_preferred_lft(self) -> int:
        """The preferred lifetime keepalived would set (IPv6 only)."""
        if self.preferred_lft is not None:
            return self.preferred_lft
        return 0 if self.address.version == 6 and self.prefixlen == 128 else FOREVER

    @property
    def ifa_flags(self) -> int:
        """The ``IFA_FLAGS`` sent when adding."""
        flags = self.extra_flags
        if self.address.version == 6 and self.nodad:
            flags |= IFA_F_NODAD
        if self.noprefixroute:
            flags |= IFA_F_NOPREFIXROUTE
        return flags

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefixlen} dev {self.dev}" + (f" label {self.label}" if self.label else "")


def newaddr_message(spec: AddressSpec, ifindex: int) -> ifaddrmsg:
    """The ``RTM_NEWADDR`` body keepalived's ``netlink_ipaddress`` would send for ``spec`` (pure)."""
    msg = _base_message(spec, ifindex)
    msg["scope"] = _scope_number(spec.scope)
    attrs: list[tuple[str, object]] = [("IFA_LOCAL", str(spec.ip))]
    attrs.append(("IFA_ADDRESS", str(spec.peer_ip if spec.peer_ip is not None else spec.ip)))
    if spec.broadcast is not None:
        attrs.append(("IFA_BROADCAST", str(spec.broadcast)))
    if spec.label:
        attrs.append(("IFA_LABEL", spec.label))
    if spec.ifa_flags:
        attrs.append(("IFA_FLAGS", spec.ifa_flags))
    if spec.address.version == 6 and spec.effective_preferred_lft != FOREVER:
        cacheinfo = {
            "ifa_preferred": spec.effective_preferred_lft,
            "ifa_valid": FOREVER,
            "cstamp": 0,
            "tstamp": 0,
        }
        attrs.append(("IFA_CACHEINFO", cacheinfo))
    msg["attrs"] = attrs
    return msg


def deladdr_message(spec: AddressSpec, ifindex: int) -> ifaddrmsg:
    """The ``RTM_DELADDR`` body for ``spec``: matches address and prefix length (pure)."""
    msg = _base_message(spec, ifindex)
    msg["attrs"] = [
        ("IFA_LOCAL", str(spec.ip)),
        ("IFA_ADDRESS", str(spec.peer_ip if spec.peer_ip is not None else spec.ip)),
    ]
    return msg


def _base_message(spec: AddressSpec, ifindex: int) -> ifaddrmsg:
    msg = ifaddrmsg()
    msg["family"] = spec.family
    msg["prefixlen"] = spec.prefixlen
    msg["index"] = ifindex
    return msg


class AddressError(OSError):
    """Some addresses could not be changed; :attr:`failures` says which and why, :attr:`changed` what was."""

    def __init__(self, failures: list[tuple[AddressSpec, OSError]], changed: list[AddressSpec]) -> None:
        detail = "; ".join(f"{spec}: {exc.strerror or exc}" for spec, exc in failures)
        super().__init__(failures[0][1].errno, detail)
        self.failures = failures
        self.changed = changed


class AddressManager(NetlinkClient):
    """Adds and removes :class:`AddressSpec` addresses in one network namespace (that of its socket)."""

    def add(self, vips: Iterable[AddressSpec]) -> list[AddressSpec]:
        """Put every address on its interface; return those actually added (already present ones are not).

        Every address is attempted; failures (missing interface, permission, invalid) are raised together
        afterwards as one :class:`AddressError`.
        """
        changed: list[AddressSpec] = []
        failures: list[tuple[AddressSpec, OSError]] = []
        for spec in vips:
            ifindex = self._resolve(spec.dev)
            if ifindex is None:
                failures.append((spec, OSError(errno.ENODEV, f"no interface {spec.dev}")))
                continue
            try:
                self._rtnl.request(newaddr_message(spec, ifindex), RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)
            except NetlinkError as exc:
                if exc.errno != errno.EEXIST:
                    failures.append((spec, exc))
                continue
            changed.append(spec)
        if failures:
            raise AddressError(failures, changed)
        return changed

    def remove(self, vips: Iterable[AddressSpec]) -> list[AddressSpec]:
        """Take every address off its interface; return those actually removed.

        Absent addresses and vanished interfaces are not errors; other failures raise :class:`AddressError`
        once every address has been attempted.
        """
        changed: list[AddressSpec] = []
        failures: list[tuple[AddressSpec, OSError]] = []
        for spec in vips:
            ifindex = self._resolve(spec.dev)
            if ifindex is None:
                continue  # keepalived: the interface is gone, so is the address
            try:
                self._rtnl.request(deladdr_message(spec, ifindex), RTM_DELADDR)
            except NetlinkError as exc:
                if exc.errno not in _ABSENT_ON_DELETE:
                    failures.append((spec, exc))
                continue
            changed.append(spec)
        if failures:
            raise AddressError(failures, changed)
        return changed

    def present(self, vips: Iterable[AddressSpec]) -> list[AddressSpec]:
        """The addresses among ``vips`` that are on their interface (same address and prefix length)."""
        specs = list(vips)
        on_link = self._installed({spec.dev for spec in specs})
        return [spec for spec in specs if (spec.dev, spec.ip, spec.prefixlen) in on_link]

    def remove_residual(self, vips: Iterable[AddressSpec]) -> list[AddressSpec]:
        """Remove the configured VIPs a previous run left behind; return those found and removed.

        Call this once at startup (not on reload), before choosing advert source addresses, as keepalived
        does for interfaces that already existed when it started.
        """
        return self.remove(self.present(vips))

    def _installed(self, devs: set[str]) -> set[tuple[str, IPAddress, int]]:
        indexes = {dev: self._resolve(dev) for dev in devs}
        by_index = {index: dev for dev, index in indexes.items() if index is not None}
        found: set[tuple[str, IPAddress, int]] = set()
        for info in self._rtnl.addresses():
            dev = by_index.get(info.ifindex)
            if dev is not None:
                found.add((dev, ip_address(info.address), info.prefixlen))
        return found


def primary_address(
    ifname: str,
    family: int,
    *,
    exclude: Iterable[IPAddress | IPInterface | AddressSpec] = (),
    netlink: RtNetlink | None = None,
) -> IPAddress | None:
    """The address keepalived uses as an interface's own: advert source and equal-priority tie-break.

    IPv4: the first primary (not ``IFA_F_SECONDARY``) address in the kernel's order, else the first
    secondary. IPv6: the first link-local address (keepalived only considers scope link). Addresses in
    ``exclude`` (the VIPs, as keepalived's ``remove_residual_vips`` drops them) are skipped. None when the
    interface has no such address or does not exist. Uses ``netlink`` or a fresh socket in the calling
    thread's namespace.
    """
    rtnl = netlink if netlink is not None else RtNetlink()
    try:
        ifindex = rtnl.ifindex(ifname)
        if ifindex is None:
            return None
        return select_primary(rtnl.addresses(ifindex, family), family, exclude=exclude)
    finally:
        if netlink is None:
            rtnl.close()


def select_primary(
    addresses: Sequence[AddressInfo],
    family: int,
    *,
    exclude: Iterable[IPAddress | IPInterface | AddressSpec] = (),
) -> IPAddress | None:
    """:func:`primary_address`'s choice among already dumped ``addresses`` of one interface (pure)."""
    skip = {_plain(item) for item in exclude}
    candidates = [a for a in addresses if a.family == family and ip_address(a.address) not in skip]
    if family == socket.AF_INET6:
        candidates = [a for a in candidates if a.scope == RT_SCOPE_LINK]
    else:
        candidates.sort(key=lambda a: bool(a.flags & IFA_F_SECONDARY))  # stable: kernel order otherwise
    return ip_address(candidates[0].address) if candidates else None


def _plain(item: IPAddress | IPInterface | AddressSpec) -> IPAddress:
    if isinstance(item, AddressSpec):
        return item.ip
    if isinstance(item, IPv4Interface | IPv6Interface):
        return item.ip
    return item
