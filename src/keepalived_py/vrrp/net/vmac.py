"""keepalived's VMAC (``use_vmac``): a private-mode macvlan interface carrying the VRRP virtual MAC.

What keepalived 2.2.7 does (``vrrp_vmac.c``, ``vrrp_if_config.c``; seen in a namespace with ``ip -d link``
and ``/proc/sys``), and :class:`VmacManager` does the same:

* the interface is a macvlan in mode ``private`` on the instance's interface, with the MAC
  00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6), or the configured one; it is created at start
  whatever the VRRP state (a BACKUP has it too, without addresses), brought up, and deleted at stop;
* its name is the configured one, else the existing macvlan on the interface with that MAC (a previous run's:
  reused, so a restarted child keeps its MASTER's addresses), else the first free of ``vrrp.VRID``,
  ``vrrp1.VRID``, ``vrrp2.VRID``... (IPv6 tries ``vrrp6.VRID`` second);
* IPv6 address generation is off on it (``addr_gen_mode`` none: no EUI-64 link-local from the virtual MAC,
  RFC 5798 7.4); an IPv4 VMAC has IPv6 disabled altogether; an IPv6 one that sends adverts gets the base
  interface's link-local address (no DAD, preferred lifetime 0) as the adverts' source;
* IPv4 sysctls: on the VMAC ``arp_ignore`` 1, ``accept_local`` 1, ``rp_filter`` 0, ``promote_secondaries`` 1;
  on the base interface ``arp_ignore`` 1 and ``arp_filter`` 1 while a VMAC uses it. keepalived's man page says
  the base's values are restored at stop; 2.2.7 leaves them set (seen): kpd restores them. A non-zero
  ``all.rp_filter`` is moved onto each interface (the greater of the two) and cleared, and put back at stop.

The interface must be created before anything binds to it, so the engine calls :meth:`VmacManager.ensure`
when it creates the instance, and :meth:`VmacManager.remove` after the addresses are gone.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Interface

from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from keepalived_py.vrrp.net.addresses import AddressManager, AddressSpec
from keepalived_py.vrrp.net.links import IFF_UP, NetlinkClient, NetlinkError, NetlinkMessage

log = logging.getLogger("kpd.vrrp")

#: RFC 5798 section 7.3: 00-00-5E-00-01-{VRID} (IPv4), 00-00-5E-00-02-{VRID} (IPv6)
VRRP_MAC_PREFIX = "00:00:5e:00"
MACVLAN_PRIVATE = "private"
#: the longest interface name (IFNAMSIZ - 1)
IFNAME_MAX = 15
#: keepalived's sysctls for an IPv4 VMAC, and for its base interface (restored once no VMAC uses it)
VMAC_SYSCTLS = {"arp_ignore": 1, "accept_local": 1, "rp_filter": 0, "promote_secondaries": 1}
BASE_SYSCTLS = {"arp_ignore": 1, "arp_filter": 1}
SYSCTL_ROOT = "/proc/sys/net"


def virtual_mac(vrid: int, family: int) -> str:
    """The RFC 5798 virtual router MAC of ``vrid`` (``family`` 4 or 6)."""
    return f"{VRRP_MAC_PREFIX}:{1 if family == 4 else 2:02x}:{vrid:02x}"


def vmac_name(vrid: int, family: int, free: Callable[[str], bool], prefix: str = "vrrp") -> str:
    """keepalived's ``create_vmac_name``: ``PREFIX.VRID``, then ``PREFIX1.VRID``, ``PREFIX2.VRID``...
    (IPv6: ``PREFIX6.VRID`` second, then 1, 2, ... skipping 6), the first that ``free`` accepts."""
    numbers: list[str] = [""]
    if family == 6:
        numbers += ["6", *(str(n) for n in range(1, 100) if n != 6)]
    else:
        numbers += [str(n) for n in range(1, 100)]
    for number in numbers:
        suffix = f"{number}.{vrid}"
        name = prefix[: IFNAME_MAX - len(suffix)] + suffix
        if free(name):
            return name
    raise OSError(errno.EEXIST, f"no free VMAC interface name for VRID {vrid}")


def link_local_of(mac: bytes) -> IPv6Address:
    """The EUI-64 link-local address of ``mac`` (keepalived's ``make_link_local_address``)."""
    eui = bytes([mac[0] ^ 0x02, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]])
    return IPv6Address(b"\xfe\x80" + bytes(6) + eui)


def sysctl_path(family: int, ifname: str, name: str) -> str:
    return os.path.join(SYSCTL_ROOT, "ipv4" if family == 4 else "ipv6", "conf", ifname, name)


def read_sysctl(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def write_sysctl(path: str, value: int) -> None:
    try:
        with open(path, "w") as f:
            f.write(f"{value}\n")
    except OSError as err:
        log.warning("cannot set %s to %d: %s", path, value, err)


@dataclass(frozen=True)
class Vmac:
    """One VMAC to have: its name (None: pick one), the base interface, the MAC, the instance's family and
    whether adverts go out on it (IPv6: it then gets the base's link-local address)."""

    name: str | None
    base: str
    mac: str
    family: int
    sends_adverts: bool = True


@dataclass(frozen=True)
class _Macvlan:
    name: str
    ifindex: int
    link: int | None
    mac: str
    mode: str | None
    kind: str | None


def _macvlan(msg: NetlinkMessage) -> _Macvlan:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    mode = data.get_attr("IFLA_MACVLAN_MODE") if data is not None and kind == "macvlan" else None
    return _Macvlan(
        name=msg.get_attr("IFLA_IFNAME") or "",
        ifindex=int(msg["index"]),
        link=msg.get_attr("IFLA_LINK"),
        mac=(msg.get_attr("IFLA_ADDRESS") or "").lower(),
        mode=mode,
        kind=kind,
    )


class VmacManager(NetlinkClient):
    """Creates, adopts and deletes VMAC interfaces and keeps keepalived's sysctls for them."""

    def __init__(self, addresses: AddressManager | None = None) -> None:
        super().__init__()
        self._addresses = addresses if addresses is not None else AddressManager(netlink=self._rtnl)
        #: an AddressManager lent by the caller is the caller's to close
        self._owns_addresses = addresses is None
        #: base interface -> (VMACs using it, its sysctl values before the first)
        self._bases: dict[str, tuple[set[str], dict[str, int | None]]] = {}
        self._rp_filter: dict[str, int | None] | None = None
        #: name -> what it was made for
        self.made: dict[str, Vmac] = {}

    def _links(self) -> list[_Macvlan]:
        return [_macvlan(m) for m in self._rtnl.dump(ifinfmsg(), RTM_GETLINK)]

    def resolve_name(self, vmac: Vmac, vrid: int, taken: set[str]) -> str:
        """The interface name ``vmac`` gets (see the module text); ``taken``: other instances' VMACs."""
        links = self._links()
        base = self._resolve(vmac.base)
        if vmac.name is not None:
            found = next((x for x in links if x.name == vmac.name), None)
            if found is None or found.kind == "macvlan":
                return vmac.name
            log.error("VMAC interface %s exists and is not a macvlan; using a name of our own", vmac.name)
        for x in links:
            ours = x.kind == "macvlan" and x.link == base and x.mac == vmac.mac and x.mode == MACVLAN_PRIVATE
            if ours and x.name not in taken:
                return x.name  # a previous run's: adopted
        names = {x.name for x in links} | taken
        return vmac_name(vrid, vmac.family, lambda n: n not in names)

    def ensure(self, vmac: Vmac, name: str) -> int:
        """Create (or adopt, or correct) VMAC ``name`` for ``vmac``, up, with keepalived's settings; its
        ifindex. OSError when it cannot be made (the base is missing, the name is not a macvlan)."""
        base = self._resolve(vmac.base)
        if base is None:
            raise OSError(errno.ENODEV, f"interface {vmac.base} does not exist")
        found = next((x for x in self._links() if x.name == name), None)
        if found is not None and found.kind != "macvlan":
            raise OSError(errno.EEXIST, f"VMAC {name} conflicts with an existing interface (not a macvlan)")
        if found is not None and found.link != base:
            log.info("removing old VMAC interface %s (on another interface)", name)
            self._delete(found.ifindex)
            found = None
        if found is None:
            request = self._message(vmac, name=name, base=base)
            self._rtnl.request(request, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)
            log.info("created VMAC interface %s on %s (%s)", name, vmac.base, vmac.mac)
        elif found.mac != vmac.mac or found.mode != MACVLAN_PRIVATE:
            log.info("updating VMAC interface %s (wrong MAC or mode)", name)
            self._rtnl.request(self._message(vmac, index=found.ifindex), RTM_NEWLINK)
        ifindex = self._resolve(name)
        if ifindex is None:
            raise OSError(errno.ENODEV, f"VMAC {name} vanished as it was created")
        self.made[name] = vmac
        self._configure(vmac, name)
        up = ifinfmsg()
        up["index"] = ifindex
        up["flags"] = IFF_UP
        up["change"] = IFF_UP
        self._rtnl.request(up, RTM_NEWLINK)
        if vmac.family == 6 and vmac.sends_adverts:
            base_mac = next((x.mac for x in self._links() if x.name == vmac.base), "")
            own = self._base_link_local(base) or link_local_of(bytes.fromhex(base_mac.replace(":", "")))
            spec = AddressSpec(IPv6Interface(f"{own}/64"), name, nodad=True, preferred_lft=0)
            self._addresses.add([spec])
        return ifindex

    def _base_link_local(self, base: int) -> IPv6Address | None:
        for info in self._rtnl.addresses(base):
            addr = IPv6Address(info.address) if ":" in info.address else None
            if addr is not None and addr.is_link_local:
                return addr
        return None

    def _message(self, vmac: Vmac, *, name: str | None = None, base: int | None = None,
                 index: int | None = None) -> NetlinkMessage:
        msg = ifinfmsg()
        info = {"attrs": [("IFLA_INFO_KIND", "macvlan"),
                          ("IFLA_INFO_DATA", {"attrs": [("IFLA_MACVLAN_MODE", MACVLAN_PRIVATE)]})]}
        attrs: list[tuple[str, object]] = [("IFLA_LINKINFO", info), ("IFLA_ADDRESS", vmac.mac)]
        if index is not None:
            msg["index"] = index
        else:
            attrs = [("IFLA_IFNAME", name), ("IFLA_LINK", base), *attrs]
        msg["attrs"] = attrs
        return msg

    def _configure(self, vmac: Vmac, name: str) -> None:
        """keepalived's sysctls (IPv4) and IPv6 settings for a new or adopted VMAC."""
        write_sysctl(sysctl_path(6, name, "addr_gen_mode"), 1)  # IN6_ADDR_GEN_MODE_NONE
        if vmac.family != 4:
            return
        write_sysctl(sysctl_path(6, name, "disable_ipv6"), 1)
        self._clear_rp_filter()
        for key, value in VMAC_SYSCTLS.items():
            write_sysctl(sysctl_path(4, name, key), value)
        users, saved = self._bases.setdefault(vmac.base, (set(), {}))
        if not users:
            for key, value in BASE_SYSCTLS.items():
                path = sysctl_path(4, vmac.base, key)
                saved[key] = read_sysctl(path)
                write_sysctl(path, value)
        users.add(name)

    def _clear_rp_filter(self) -> None:
        """keepalived's ``clear_rp_filter``: a set ``all.rp_filter`` would drop what the VMAC receives; it is
        moved onto every interface (the greater value) and cleared."""
        if self._rp_filter is not None:
            return
        self._rp_filter = {}
        all_path = sysctl_path(4, "all", "rp_filter")
        value = read_sysctl(all_path)
        if not value:
            return
        for ifname in sorted(os.listdir(os.path.join(SYSCTL_ROOT, "ipv4", "conf"))):
            if ifname == "all":
                continue
            path = sysctl_path(4, ifname, "rp_filter")
            own = read_sysctl(path)
            self._rp_filter[ifname] = own
            if own is not None and own < value:
                write_sysctl(path, value)
        self._rp_filter["all"] = value
        write_sysctl(all_path, 0)

    def remove(self, name: str) -> None:
        """Delete VMAC ``name`` (absent already: nothing to do) and give its base back its sysctls."""
        vmac = self.made.pop(name, None)
        ifindex = self._resolve(name)
        if ifindex is not None:
            self._delete(ifindex)
            log.info("removed VMAC interface %s", name)
        if vmac is None or vmac.family != 4:
            return
        users, saved = self._bases.get(vmac.base, (set(), {}))
        users.discard(name)
        if not users and vmac.base in self._bases:
            del self._bases[vmac.base]
            for key, value in saved.items():
                if value is not None:
                    write_sysctl(sysctl_path(4, vmac.base, key), value)

    def _delete(self, ifindex: int) -> None:
        msg = ifinfmsg()
        msg["index"] = ifindex
        try:
            self._rtnl.request(msg, RTM_DELLINK)
        except NetlinkError as err:
            if err.errno != errno.ENODEV:
                raise

    def close(self) -> None:
        """Put back what :meth:`_clear_rp_filter` changed, then close (VMACs still made are left)."""
        if self._rp_filter:
            for ifname, value in self._rp_filter.items():
                if value is not None:
                    with contextlib.suppress(OSError):
                        write_sysctl(sysctl_path(4, ifname, "rp_filter"), value)
            self._rp_filter = None
        if self._owns_addresses:
            self._addresses.close()
        super().close()
