"""keepalived's nftables rules for VRRP (``vrrp_strict`` / ``no_accept``, ``use_vmac``), through libnftables'
JSON.

What keepalived 2.2.7 installs (``vrrp_nftables.c``, seen with ``nft list ruleset``): while an instance
without accept mode is MASTER, its virtual addresses are elements of the set ``vips`` of table
``keepalived`` (family ``ip`` for IPv4, ``ip6`` for IPv6), and two base chains at priority filter - 1 drop
what is addressed to them (``in``, hook input: ``daddr @vips drop``) or sent from them (``out``, hook
output: ``saddr @vips drop``). The IPv6 table also lets neighbour discovery through (set
``neighbor-discovery``) and sends link-local traffic to the (empty) chains ``in_link_local`` /
``out_link_local``, where a link-local VIP (meaningful only with its interface) is dropped: set
``vips_link_local`` of (address, interface index) pairs -- ``vips_link_local_name`` of (address, interface
name) pairs for an instance with ``dont_track_primary`` and no ``nftables_ifindex`` -- with ``ip6 daddr .
iif @vips_link_local drop`` (``saddr . oif`` out). The table is created when the first address needs
it; leaving MASTER deletes the instance's elements. At stop kpd deletes its tables (keepalived 2.2.7 leaves
them, with empty sets).

VMACs (``vrrp_nftables.c``'s ``nft_add_vmac``): multicast listener reports a VMAC sends would teach the
switches the virtual MAC at a BACKUP's port, so they are sent out of the base interface instead: map
``vmac_map`` (VMAC -> base interface) and, in chain ``out``, ``ip protocol igmp meta oifkind "macvlan" dup to
ip daddr device oif map @vmac_map drop`` (IPv6: ``icmpv6 type mld2-listener-report``; and router
solicitations from a VMAC in set ``vmac_set`` are dropped).

The binding is libnftables itself (``libnftables.so.1``, the library ``nft`` and Debian's python3-nftables
use), driven with JSON commands: no ``nft`` text is parsed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import logging
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address
from typing import Any

__all__ = ["DEFAULT_TABLE", "NftError", "Nftables", "VrrpFirewall"]

logger = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address

#: NFT_CTX_OUTPUT_JSON
_OUTPUT_JSON = 1 << 4
#: keepalived's default chain priority (``nftables_priority``): filter (0) - 1
PRIORITY = -1
#: keepalived's table when ``nftables`` names none, or is not given at all (DEFAULT_NFTABLES_TABLE)
DEFAULT_TABLE = "keepalived"


class NftError(OSError):
    """libnftables refused a command (the message is its own)."""


class Nftables:
    """One libnftables context: :meth:`run` takes the ``nftables`` array of JSON commands."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as err:
            raise NftError(f"libnftables is not available: {err}") from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._ctx = lib.nft_ctx_new(0)
        if not self._ctx:
            raise NftError("cannot create a libnftables context")
        lib.nft_ctx_output_set_flags(self._ctx, _OUTPUT_JSON)
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)

    def run(self, commands: list[dict[str, Any]]) -> Any:
        """Run the commands (one transaction); the JSON output, if any; NftError on failure."""
        rc = self._lib.nft_run_cmd_from_buffer(self._ctx, json.dumps({"nftables": commands}).encode())
        out = self._lib.nft_ctx_get_output_buffer(self._ctx) or b""
        err = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
        if rc != 0:
            raise NftError(err.decode(errors="replace").strip() or f"nft command failed ({rc})")
        return json.loads(out) if out.strip() else None

    def close(self) -> None:
        if self._ctx:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None


def _match(protocol: str, field: str, right: Any) -> dict[str, Any]:
    left = {"payload": {"protocol": protocol, "field": field}}
    return {"match": {"op": "==", "left": left, "right": right}}


def _counted(expr: list[dict[str, Any]], counters: bool) -> list[dict[str, Any]]:
    """``nftables_counters``: a counter before the rule's verdict."""
    return [*expr[:-1], {"counter": None}, expr[-1]] if counters else expr


def _table_commands(
    family: str, table: str, priority: int = PRIORITY, counters: bool = False
) -> list[dict[str, Any]]:
    """The table as keepalived lays it out (empty ``vips`` set)."""
    v6 = family == "ip6"
    base = {"family": family, "table": table}
    cmds: list[dict[str, Any]] = [
        {"add": {"table": {"family": family, "name": table}}},
        {"add": {"set": {**base, "name": "vips", "type": "ipv6_addr" if v6 else "ipv4_addr"}}},
    ]
    if v6:
        cmds.append(
            {
                "add": {
                    "set": {
                        **base,
                        "name": "neighbor-discovery",
                        "type": "icmpv6_type",
                        "flags": ["constant"],
                        "elem": ["nd-neighbor-solicit", "nd-neighbor-advert"],
                    }
                }
            }
        )
    proto = "ip6" if v6 else "ip"
    for chain, hook in (("out", "output"), ("in", "input")):
        spec = {**base, "name": chain, "type": "filter", "hook": hook, "prio": priority, "policy": "accept"}
        cmds.append({"add": {"chain": spec}})
    if v6:
        for chain in ("in_link_local", "out_link_local"):
            cmds.append({"add": {"chain": {**base, "name": chain}}})
    for chain, field in (("out", "saddr"), ("in", "daddr")):
        rules: list[list[dict[str, Any]]] = []
        if v6:
            link_local = {"prefix": {"addr": "fe80::", "len": 10}}
            rules.append([_match("icmpv6", "type", "@neighbor-discovery"), {"accept": None}])
            rules.append([_match("ip6", field, link_local), {"goto": {"target": f"{chain}_link_local"}}])
        rules.append([_match(proto, field, "@vips"), {"drop": None}])
        for expr in rules:
            cmds.append({"add": {"rule": {**base, "chain": chain, "expr": _counted(expr, counters)}}})
    return cmds


def _link_local_commands(table: str, name: str, counters: bool) -> list[dict[str, Any]]:
    """The set of link-local VIPs with their interface (index, or name for ``*_name``) and the rules of the
    link-local chains dropping them."""
    by_name = name.endswith("_name")
    base = {"family": "ip6", "table": table}
    key_type = ["ipv6_addr", "ifname" if by_name else "iface_index"]
    cmds: list[dict[str, Any]] = [{"add": {"set": {**base, "name": name, "type": key_type}}}]
    for chain, field, meta in (("in_link_local", "daddr", "iif"), ("out_link_local", "saddr", "oif")):
        key = f"{meta}name" if by_name else meta
        left = {"concat": [{"payload": {"protocol": "ip6", "field": field}}, {"meta": {"key": key}}]}
        match = {"match": {"op": "==", "left": left, "right": f"@{name}"}}
        expr: list[dict[str, Any]] = [match, {"drop": None}]
        cmds.append({"add": {"rule": {**base, "chain": chain, "expr": _counted(expr, counters)}}})
    return cmds


def _vmac_commands(
    family: str, table: str, priority: int = PRIORITY, counters: bool = False
) -> list[dict[str, Any]]:
    """The VMAC part of the table as keepalived lays it out (empty map and set)."""
    base = {"family": family, "table": table}
    v6 = family == "ip6"
    cmds: list[dict[str, Any]] = [
        {"add": {"table": {"family": family, "name": table}}},
        {"add": {"map": {**base, "name": "vmac_map", "type": "iface_index", "map": "iface_index"}}},
    ]
    if v6:
        cmds.append({"add": {"set": {**base, "name": "vmac_set", "type": "iface_index"}}})
    spec = {**base, "name": "out", "type": "filter", "hook": "output", "prio": priority, "policy": "accept"}
    cmds.append({"add": {"chain": spec}})
    macvlan = {"match": {"op": "==", "left": {"meta": {"key": "oifkind"}}, "right": "macvlan"}}
    dup = {
        "dup": {
            "addr": {"payload": {"protocol": "ip6" if v6 else "ip", "field": "daddr"}},
            "dev": {"map": {"key": {"meta": {"key": "oif"}}, "data": "@vmac_map"}},
        }
    }
    report = _match("icmpv6", "type", "mld2-listener-report") if v6 else _match("ip", "protocol", "igmp")
    rules = [[report, macvlan, dup, {"drop": None}]]
    if v6:
        from_vmac = {"match": {"op": "==", "left": {"meta": {"key": "oif"}}, "right": "@vmac_set"}}
        rules.append([_match("icmpv6", "type", "nd-router-solicit"), macvlan, from_vmac, {"drop": None}])
    cmds += [{"add": {"rule": {**base, "chain": "out", "expr": _counted(expr, counters)}}} for expr in rules]
    return cmds


class VrrpFirewall:
    """keepalived's VRRP tables: the addresses MASTER instances without accept mode must not receive or
    send (``vrrp_strict``/``no_accept``: :meth:`drop`, :meth:`allow`) and the VMACs whose listener reports
    leave by their base interface (:meth:`add_vmac`, :meth:`remove_vmac`). The tables are created on
    first use (a crashed run's are deleted first) and deleted by :meth:`close`."""

    def __init__(
        self,
        table: str = DEFAULT_TABLE,
        nft: Nftables | None = None,
        *,
        priority: int = PRIORITY,
        counters: bool = False,
    ) -> None:
        self.table = table
        self.priority = priority
        self.counters = counters
        self._nft = nft if nft is not None else Nftables()
        #: (family, set) made so far
        self._ready: set[tuple[str, str]] = set()
        self._vmac_ready: set[str] = set()
        # a crashed run may have left its tables: start from nothing (they are created again when needed)
        for family in ("ip", "ip6"):
            with contextlib.suppress(NftError):
                self._nft.run([{"delete": {"table": {"family": family, "name": table}}}])

    def add_vmac(self, vmac: str, base: str, family: int) -> None:
        """VMAC ``vmac`` (on ``base``) exists: its reports go out of ``base``."""
        nf = "ip6" if family == 6 else "ip"
        cmds = [] if nf in self._vmac_ready else _vmac_commands(nf, self.table, self.priority, self.counters)
        where = {"family": nf, "table": self.table}
        cmds.append({"add": {"element": {**where, "name": "vmac_map", "elem": [[vmac, base]]}}})
        if nf == "ip6":
            cmds.append({"add": {"element": {**where, "name": "vmac_set", "elem": [vmac]}}})
        try:
            self._nft.run(cmds)
        except NftError as err:
            raise NftError(f"nftables rules of VMAC {vmac}: {err}") from None
        self._vmac_ready.add(nf)

    def remove_vmac(self, vmac: str, base: str, family: int) -> None:
        """Forget VMAC ``vmac`` (call it while the interface still exists: elements are interface indexes)."""
        nf = "ip6" if family == 6 else "ip"
        if nf not in self._vmac_ready:
            return
        where = {"family": nf, "table": self.table}
        with contextlib.suppress(NftError):
            self._nft.run([{"delete": {"element": {**where, "name": "vmac_map", "elem": [[vmac, base]]}}}])
        if nf == "ip6":
            with contextlib.suppress(NftError):
                self._nft.run([{"delete": {"element": {**where, "name": "vmac_set", "elem": [vmac]}}}])

    def drop(self, addresses: Iterable[tuple[IPAddress, str]], *, by_name: bool = False) -> None:
        """Drop traffic to and from these (address, interface) pairs; ``by_name``: link-local ones keyed by
        interface name (keepalived with dont_track_primary), else by index."""
        self._elements("add", addresses, by_name)

    def allow(self, addresses: Iterable[tuple[IPAddress, str]], *, by_name: bool = False) -> None:
        self._elements("delete", addresses, by_name)

    def _elements(self, verb: str, addresses: Iterable[tuple[IPAddress, str]], by_name: bool) -> None:
        link_local = "vips_link_local_name" if by_name else "vips_link_local"
        by_set: dict[tuple[str, str], list[Any]] = {}
        for address, dev in addresses:
            if address.version == 6 and address.is_link_local:
                by_set.setdefault(("ip6", link_local), []).append({"concat": [str(address), dev]})
            else:
                by_set.setdefault(("ip6" if address.version == 6 else "ip", "vips"), []).append(str(address))
        for (family, name), elems in by_set.items():
            cmds: list[dict[str, Any]] = []
            if (family, name) not in self._ready:
                if verb == "delete":
                    continue  # never created: nothing to delete
                if family not in {f for f, _ in self._ready}:
                    cmds += _table_commands(family, self.table, self.priority, self.counters)
                if name != "vips":
                    cmds += _link_local_commands(self.table, name, self.counters)
            cmds.append({verb: {"element": self._set(family, name, elems)}})
            try:
                self._nft.run(cmds)
            except NftError as err:
                if verb == "delete":
                    # one may be gone already; delete them one at a time so the others still go
                    for elem in elems:
                        with contextlib.suppress(NftError):
                            self._nft.run([{"delete": {"element": self._set(family, name, [elem])}}])
                    continue
                raise NftError(f"nftables {verb} of {', '.join(map(str, elems))}: {err}") from None
            self._ready |= {(family, "vips"), (family, name)}

    def _set(self, family: str, name: str, elems: list[Any]) -> dict[str, Any]:
        return {"family": family, "table": self.table, "name": name, "elem": elems}

    def close(self) -> None:
        for family in sorted({f for f, _ in self._ready} | self._vmac_ready):
            try:
                self._nft.run([{"delete": {"table": {"family": family, "name": self.table}}}])
            except NftError as err:
                logger.warning("cannot delete nftables table %s %s: %s", family, self.table, err)
        self._ready.clear()
        self._vmac_ready.clear()
        self._nft.close()
