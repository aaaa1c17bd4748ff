"""Cross-node checks: the configurations of every node of a cluster (a director pair, or N nodes) together.

Pure: each node comes as its loaded model plus the :class:`Origins` of its records, and every diagnostic
is located in that node's own file. Where nodes disagree, the value most nodes give is taken as the
intended one (on a tie, the one of the node named first) and each node that says otherwise is reported,
naming a node that gives the intended value and where it says so.

VRRP instances are matched across nodes as keepalived matches adverts to instances: by VRID and address
family (an IPv4 and an IPv6 router may share a VRID). Interface names are local to each host, so they are
compared only to tell apart instances one node runs with the same VRID on several interfaces.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

from keepalived_py.config.build import Origins
from keepalived_py.config.diagnostics import Diagnostic, Location, Severity
from keepalived_py.config.model import NOWHERE, Config, IPAddress, RealServer, VirtualServer, VrrpInstance

#: keepalived's log lines for adverts whose address list differs from the receiver's virtual_ipaddress.
LOG_ADDRESS_COUNT = "unexpected ip number count"
LOG_ADDRESS_MISSING = "address not present in MASTER advert"
#: Highest priority: the address owner.
OWNER_PRIORITY = 255


@dataclass(frozen=True)
class Node:
    """One node's loaded configuration, named as the user knows it (config id, vars file, or path)."""

    name: str
    config: Config
    origins: Origins


@dataclass(frozen=True)
class Said:
    """What one node says about one thing (``value``, shown as ``shown``), and where it says it."""

    node: Node
    value: Hashable
    shown: str
    loc: Location


def where(loc: Location) -> str:
    """``FILE:LINE``, how another node's line is named in a message."""
    return f"{loc.file}:{loc.line}"


def effective_version(inst: VrrpInstance, config: Config) -> int:
    """The VRRP version an instance runs (as validation reads it: IPv6 instances default to version 3)."""
    if inst.family == 6 and inst.version is None:
        return 3
    return inst.version or config.global_defs.vrrp_version


def intended(said: Sequence[Said]) -> Said:
    """The first node giving the value most nodes give (on a tie, the value of the node named first)."""
    counts = Counter(s.value for s in said)
    top = max(counts.values())
    return next(s for s in said if counts[s.value] == top)


def disagreeing(said: Sequence[Said]) -> Iterator[tuple[Said, Said]]:
    """(each node whose value is not the intended one, the node giving the intended one)."""
    if len(said) < 2:
        return
    ref = intended(said)
    for s in said:
        if s.value != ref.value:
            yield s, ref


class CrossCheck:
    def __init__(self, nodes: Sequence[Node]):
        self.nodes = list(nodes)
        self.found: dict[str, list[Diagnostic]] = {n.name: [] for n in self.nodes}

    # --- reporting --------------------------------------------------------------------------------------

    def report(self, node: Node, message: str, loc: Location, other: Said | None = None) -> None:
        self._add(node, Severity.ERROR, message, loc, other)

    def note(self, node: Node, message: str, loc: Location) -> None:
        self._add(node, Severity.NOTE, message, loc, None)

    def _add(self, node: Node, severity: Severity, message: str, loc: Location, other: Said | None) -> None:
        notes: tuple[str, ...] = ()
        if other is not None and other.loc.text:
            notes = (f"{other.node.name}: {other.loc}: {other.loc.text.strip()}",)
        self.found[node.name].append(Diagnostic(severity, message, loc, notes))

    def mismatch(self, subject: str, what: str, said: Sequence[Said], consequence: str = "") -> None:
        """Report each node that disagrees on ``what``: ``SUBJECT: WHAT X here, Y on NODE (FILE:LINE)``."""
        tail = f"; {consequence}" if consequence else ""
        for s, ref in disagreeing(said):
            self.report(
                s.node,
                f"{subject}: {what} {s.shown} here, {ref.shown} on {ref.node.name} ({where(ref.loc)}){tail}",
                s.loc,
                ref,
            )

    def loc(
        self, node: Node, record: object, attr: str | None = None, fallback: Location | None = None
    ) -> Location:
        """Where ``attr`` of ``record`` is set in ``node``'s file (the record's own line when it is unset)."""
        loc = node.origins.loc(record, attr)
        if loc == NOWHERE and fallback is not None:
            return fallback
        return loc

    def is_set(self, node: Node, record: object, attr: str) -> bool:
        block = node.origins.block(record)
        return block is not None and attr in block.values

    def shown(self, node: Node, record: object, attr: str, value: object) -> str:
        return f"{value}" if self.is_set(node, record, attr) else f"{value} (default)"

    # --- the run ----------------------------------------------------------------------------------------

    def run(self) -> dict[str, list[Diagnostic]]:
        if len(self.nodes) >= 2:
            for members in self.routers():
                self.router(members)
            self.virtual_servers()
        return self.found

    # --- VRRP -------------------------------------------------------------------------------------------

    def routers(self) -> list[list[tuple[Node, VrrpInstance]]]:
        """The virtual routers: each node's instances grouped by (VRID, family), and by interface only where
        a node runs one VRID of a family on several interfaces."""
        by_key: dict[tuple[int, int], list[tuple[Node, VrrpInstance]]] = {}
        for node in self.nodes:
            for inst in node.config.vrrp_instances:
                by_key.setdefault((inst.virtual_router_id, inst.family), []).append((node, inst))
        routers = []
        for members in by_key.values():
            names = [node.name for node, _ in members]
            if len(names) == len(set(names)):
                routers.append(members)
                continue
            by_interface: dict[str | None, list[tuple[Node, VrrpInstance]]] = {}
            for node, inst in members:
                by_interface.setdefault(self.interface(node, inst), []).append((node, inst))
            routers.extend(by_interface.values())
        return routers

    @staticmethod
    def interface(node: Node, inst: VrrpInstance) -> str | None:
        return inst.interface or node.config.global_defs.default_interface

    def router(self, members: list[tuple[Node, VrrpInstance]]) -> None:
        if len(members) == 1:
            node, inst = members[0]
            family = "IPv6" if inst.family == 6 else "IPv4"
            self.report(
                node,
                f"{inst.name}: VRID {inst.virtual_router_id} ({family}) is on no other node; "
                "nothing backs it up",
                self.loc(node, inst, "virtual_router_id"),
            )
            return
        self.addresses(members)
        versions = [
            Said(
                n, effective_version(i, n.config), str(effective_version(i, n.config)), self.version_loc(n, i)
            )
            for n, i in members
        ]
        self.mismatch(
            self.subject(members), "VRRP version", versions, "adverts of the other version are dropped"
        )
        version = intended(versions).value
        interval_effect = (
            "VRRPv2 drops adverts of another interval ('advertisement interval mismatch')"
            if version == 2
            else "the nodes disagree on how long the master may stay silent"
        )
        self.mismatch(
            self.subject(members),
            "advert_int",
            [
                Said(
                    n,
                    i.advert_int,
                    self.shown(n, i, "advert_int", f"{i.advert_int:g}"),
                    self.loc(n, i, "advert_int"),
                )
                for n, i in members
            ],
            interval_effect,
        )
        if version == 2:
            self.authentication(members)
        self.casting(members)
        self.mastership(members)

    @staticmethod
    def subject(members: list[tuple[Node, VrrpInstance]]) -> str:
        return members[0][1].name

    def version_loc(self, node: Node, inst: VrrpInstance) -> Location:
        if inst.version is not None:
            return self.loc(node, inst, "version")
        gd = node.config.global_defs
        if self.is_set(node, gd, "vrrp_version"):
            return self.loc(node, gd, "vrrp_version")
        return self.loc(node, inst)

    def addresses(self, members: list[tuple[Node, VrrpInstance]]) -> None:
        """The virtual addresses every node puts in its adverts must be the same set: a BACKUP drops an advert
        with another count ('unexpected ip number count') or an address it lacks ('address not present in
        MASTER advert'), then takes the addresses over too."""
        said = [
            Said(
                n,
                frozenset(v.address.ip for v in i.virtual_ipaddress),
                "",
                self.loc(n, i, "virtual_ipaddress"),
            )
            for n, i in members
        ]
        for s, ref in disagreeing(said):
            node, inst = next((n, i) for n, i in members if n is s.node)
            mine: frozenset[IPAddress] = s.value  # type: ignore[assignment]
            theirs: frozenset[IPAddress] = ref.value  # type: ignore[assignment]
            extra = sorted(mine - theirs, key=_address_order)
            missing = sorted(theirs - mine, key=_address_order)
            parts = []
            if extra:
                parts.append(f"{_listed(extra)} here only")
            if missing:
                parts.append(f"{_listed(missing)} missing here")
            log = LOG_ADDRESS_COUNT if len(mine) != len(theirs) else LOG_ADDRESS_MISSING
            loc = next((v.location for v in inst.virtual_ipaddress if v.address.ip in extra), s.loc)
            if loc == NOWHERE:
                loc = self.loc(node, inst)
            self.report(
                node,
                f"{inst.name}: virtual_ipaddress differs from {ref.node.name} ({where(ref.loc)}): "
                f"{', '.join(parts)}; adverts are dropped (keepalived logs '{log}') and both nodes take "
                "the addresses",
                loc,
                ref,
            )
        # The same address with another prefix: not in the advert, but the subnet routes differ.
        every: set[IPAddress] = set()
        for s in said:
            every |= s.value  # type: ignore[arg-type]
        for addr in sorted(every, key=_address_order):
            prefixes = [
                Said(n, v.address.network.prefixlen, str(v.address), v.location)
                for n, i in members
                for v in i.virtual_ipaddress
                if v.address.ip == addr
            ]
            self.mismatch(self.subject(members), "virtual address", prefixes)

    def authentication(self, members: list[tuple[Node, VrrpInstance]]) -> None:
        """VRRPv2 only: the authentication type and the (first 8 characters of the) password must agree."""
        types = []
        for n, i in members:
            auth_type = i.authentication.auth_type if i.authentication else None
            types.append(Said(n, auth_type, auth_type or "none", self.loc(n, i, "authentication")))
        subject = self.subject(members)
        self.mismatch(subject, "auth_type", types, "adverts are dropped and both nodes become MASTER")
        passwords = [
            Said(n, i.authentication.auth_pass.encode("utf-8")[:8], "", self.auth_pass_loc(n, i))
            for n, i in members
            if i.authentication is not None and i.authentication.auth_type == "PASS"
        ]
        for s, ref in disagreeing(passwords):
            name = next(i.name for n, i in members if n is s.node)
            self.report(
                s.node,
                f"{name}: auth_pass differs from {ref.node.name}'s ({where(ref.loc)}); adverts are dropped "
                "and both nodes become MASTER (only the first 8 characters count)",
                s.loc,
            )

    def auth_pass_loc(self, node: Node, inst: VrrpInstance) -> Location:
        block = node.origins.block(inst)
        auth = block.values.get("authentication") if block is not None else None
        return auth.loc_of("auth_pass") if auth is not None else self.loc(node, inst, "authentication")

    def casting(self, members: list[tuple[Node, VrrpInstance]]) -> None:
        """Unicast or multicast (to which group) alike everywhere; each unicast node's ``unicast_peer`` lists
        the source address of every other node."""
        said = []
        for n, i in members:
            if i.unicast_peer:
                said.append(Said(n, "unicast", "unicast", self.peer_locs(n, i)[0]))
            else:
                gd = n.config.global_defs
                attr = "vrrp_mcast_group6" if i.family == 6 else "vrrp_mcast_group4"
                group = getattr(gd, attr)
                loc = self.loc(n, gd, attr) if self.is_set(n, gd, attr) else self.loc(n, i)
                said.append(Said(n, ("multicast", group), f"multicast to {group}", loc))
        subject = self.subject(members)
        self.mismatch(subject, "adverts sent", said, "the nodes do not hear each other")
        unicast = [(n, i) for n, i in members if i.unicast_peer]
        if len(unicast) < 2:
            return
        for node, inst in unicast:
            if inst.unicast_src_ip is None:
                self.note(
                    node,
                    f"{inst.name}: no unicast_src_ip here, so whether the other nodes' unicast_peer lists "
                    f"name this node is not checked (keepalived sends from {self.interface(node, inst)}'s "
                    "primary address, unknown offline)",
                    self.loc(node, inst),
                )
        for node, inst in unicast:
            peers = {p.address for p in inst.unicast_peer}
            for other, other_inst in unicast:
                src = other_inst.unicast_src_ip
                if other is node or src is None or src in peers:
                    continue
                src_loc = self.loc(other, other_inst, "unicast_src_ip")
                self.report(
                    node,
                    f"{inst.name}: unicast_peer does not list {other.name}'s unicast_src_ip {src} "
                    f"({where(src_loc)}); this node's adverts never reach {other.name}, which becomes "
                    "MASTER too",
                    self.peer_locs(node, inst)[0],
                    Said(other, src, str(src), src_loc),
                )

    def peer_locs(self, node: Node, inst: VrrpInstance) -> list[Location]:
        block = node.origins.block(inst)
        locs = block.item_locs("unicast_peer") if block is not None else []
        return locs or [self.loc(node, inst, "unicast_peer")]

    def mastership(self, members: list[tuple[Node, VrrpInstance]]) -> None:
        """Exactly one intended master: one ``state MASTER`` at most, one priority 255 at most, one highest
        priority (unless all the nodes sharing it are ``nopreempt``), and a MASTER that has it."""
        subject = self.subject(members)
        masters = [
            Said(n, True, "MASTER", self.loc(n, i, "state"))
            for n, i in members
            if i.state == "MASTER" and self.is_set(n, i, "state")
        ]
        for s in masters[1:]:
            first = masters[0]
            self.report(
                s.node,
                f"{subject}: state MASTER here and on {first.node.name} ({where(first.loc)}); only one node "
                "should start as MASTER",
                s.loc,
                first,
            )
        prio = [Said(n, i.priority, str(i.priority), self.loc(n, i, "priority")) for n, i in members]
        owners = [s for s in prio if s.value == OWNER_PRIORITY]
        for s in owners[1:]:
            self.report(
                s.node,
                f"{subject}: priority 255 (address owner) here and on {owners[0].node.name} "
                f"({where(owners[0].loc)}); only one node can own the addresses",
                s.loc,
                owners[0],
            )
        top = max(i.priority for _, i in members)
        tied = [(n, i) for n, i in members if i.priority == top]
        if len(tied) > 1 and top != OWNER_PRIORITY and not all(i.nopreempt for _, i in tied):
            first = next(s for s in prio if s.node is tied[0][0])
            for s in prio:
                if s.value == top and s is not first:
                    self.report(
                        s.node,
                        f"{subject}: priority {top} here and on {first.node.name} ({where(first.loc)}), the "
                        "highest: no single intended master (a tie goes to the higher primary address); "
                        "give one node a higher priority, or set nopreempt on all of them",
                        s.loc,
                        first,
                    )
        if len(masters) == 1 and len(tied) == 1:
            master = masters[0]
            master_inst = next(i for n, i in members if n is master.node)
            top_node, top_inst = tied[0]
            if top_node is not master.node and not top_inst.nopreempt:
                top_said = next(s for s in prio if s.node is top_node)
                self.report(
                    master.node,
                    f"{subject}: state MASTER here with priority {master_inst.priority}, but {top_node.name} "
                    f"has priority {top} ({where(top_said.loc)}) and takes the addresses over",
                    master.loc,
                    top_said,
                )

    # --- LVS --------------------------------------------------------------------------------------------

    def virtual_servers(self) -> None:
        """Every director (a node with a virtual_server) runs the same virtual and real servers."""
        directors = [n for n in self.nodes if n.config.virtual_servers]
        if not directors:
            return
        for node in self.nodes:
            if not node.config.virtual_servers:
                first = directors[0]
                self.note(
                    node,
                    f"no virtual_server here ({first.name} has {len(first.config.virtual_servers)}): "
                    "this node is not compared as a director",
                    Location(node.config.sources[0] if node.config.sources else node.name, 1),
                )
        if len(directors) < 2:
            return
        keys: dict[tuple[object, ...], None] = {}
        for node in directors:
            for vs in node.config.virtual_servers:
                keys.setdefault(_vs_key(vs), None)
        for key in keys:
            self.virtual_server(key, directors)

    def virtual_server(self, key: tuple[object, ...], directors: list[Node]) -> None:
        present: list[tuple[Node, VirtualServer]] = []
        said = []
        for node in directors:
            vs = next((v for v in node.config.virtual_servers if _vs_key(v) == key), None)
            if vs is not None:
                present.append((node, vs))
                said.append(Said(node, True, "", self.loc(node, vs)))
            else:
                said.append(Said(node, False, "", self.loc(node, node.config.virtual_servers[0])))
        name = _vs_name(present[0][1])
        for s, ref in disagreeing(said):
            if s.value:
                self.report(
                    s.node,
                    f"virtual_server {name} is here but not on {ref.node.name} ({where(ref.loc)}); the "
                    "service moves (or vanishes) when the addresses fail over",
                    s.loc,
                )
            else:
                self.report(
                    s.node,
                    f"virtual_server {name} is missing here; {ref.node.name} has it ({where(ref.loc)}), so "
                    "the service vanishes when the addresses fail over to this node",
                    s.loc,
                    ref,
                )
        if len(present) < 2:
            return
        subject = f"virtual_server {name}"
        for attr in ("lb_algo", "lb_kind", "persistence_timeout", "sorry_server"):
            self.mismatch(
                subject,
                attr,
                [
                    Said(
                        n,
                        getattr(v, attr),
                        self.shown(n, v, attr, _show(getattr(v, attr))),
                        self.loc(n, v, attr),
                    )
                    for n, v in present
                ],
            )
        if present[0][1].group is not None:
            self.mismatch(
                subject,
                "virtual_server_group",
                [self.group_said(n, v) for n, v in present],
            )
        self.real_servers(subject, present)

    def group_said(self, node: Node, vs: VirtualServer) -> Said:
        group = next((g for g in node.config.virtual_server_groups if g.name == vs.group), None)
        if group is None:
            return Said(node, None, "undefined", self.loc(node, vs))
        members = tuple(group.members)
        return Said(node, members, f"with {len(members)} entries", self.loc(node, group))

    def real_servers(self, subject: str, present: list[tuple[Node, VirtualServer]]) -> None:
        keys: dict[tuple[object, object], None] = {}
        for _, vs in present:
            for rs in vs.real_servers:
                keys.setdefault((rs.address, rs.port), None)
        for address, port in keys:
            shown = f"real_server {address} {port}" if port is not None else f"real_server {address}"
            found: list[tuple[Node, VirtualServer, RealServer]] = []
            said = []
            for node, vs in present:
                match = next((r for r in vs.real_servers if (r.address, r.port) == (address, port)), None)
                if match is not None:
                    found.append((node, vs, match))
                said.append(Said(node, match is not None, "", self.loc(node, match or vs)))
            for s, ref in disagreeing(said):
                if s.value:
                    message = f"{subject}: {shown} is here but not on {ref.node.name} ({where(ref.loc)})"
                else:
                    message = f"{subject}: {shown} is missing here; {ref.node.name} has it ({where(ref.loc)})"
                self.report(s.node, message, s.loc, None if s.value else ref)
            if len(found) < 2:
                continue
            rs_subject = f"{subject}: {shown}"
            self.mismatch(
                rs_subject,
                "weight",
                [
                    Said(n, r.weight, self.shown(n, r, "weight", r.weight), self.loc(n, r, "weight"))
                    for n, _, r in found
                ],
            )
            self.mismatch(
                rs_subject,
                "forwarding method",
                [
                    Said(n, m, str(m), self.method_loc(n, v, r))
                    for n, v, r in found
                    for m in [r.lvs_method or v.lb_kind]
                ],
            )
            self.mismatch(
                rs_subject,
                "checkers",
                [
                    Said(n, _checkers(r), " ".join(_checkers(r)) or "none", self.loc(n, r))
                    for n, _, r in found
                ],
            )

    def method_loc(self, node: Node, vs: VirtualServer, rs: RealServer) -> Location:
        if rs.lvs_method is not None:
            return self.loc(node, rs, "lvs_method")
        return self.loc(node, vs, "lb_kind")


def _vs_key(vs: VirtualServer) -> tuple[object, ...]:
    protocol = None if vs.fwmark is not None else vs.protocol
    return (vs.address, vs.port, vs.fwmark, vs.group, protocol)


def _vs_name(vs: VirtualServer) -> str:
    return vs.key if vs.fwmark is not None else f"{vs.key} {vs.protocol}"


def _checkers(rs: RealServer) -> tuple[str, ...]:
    return tuple(sorted(c.kind for c in rs.checks))


def _show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value if v is not None)
    return str(value)


def _address_order(address: IPAddress) -> tuple[int, int]:
    return (address.version, int(address))


def _listed(addresses: list[IPAddress]) -> str:
    return ", ".join(str(a) for a in addresses)


def cross_check(nodes: Sequence[Node]) -> dict[str, list[Diagnostic]]:
    """Every disagreement between the nodes, by node name (the names must be distinct)."""
    return CrossCheck(nodes).run()
