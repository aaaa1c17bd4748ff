"""Cross-reference and consistency checks over the whole model, as keepalived's start-up checks do.

Each check reports at the location of the keyword involved. Severity follows keepalived: what keepalived
repairs or ignores and runs anyway is an ERROR (exit 5); what cannot run is FATAL (exit 4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from ipaddress import IPv6Address
from typing import TypeVar

from keepalived_py.config.build import Origins
from keepalived_py.config.diagnostics import DiagnosticSink, Location
from keepalived_py.config.keywords.vrrp import AUTH_PASS_MAX
from keepalived_py.config.model import (
    BfdCheck,
    Config,
    FileCheck,
    HttpCheck,
    MiscCheck,
    NotifyScript,
    ScriptUser,
    Tracked,
    VirtualServer,
    VrrpInstance,
    VrrpSyncGroup,
)

#: A record with tracked entries (a vrrp_instance or a vrrp_sync_group).
R = TypeVar("R", VrrpInstance, VrrpSyncGroup)
#: "track_script"/"track_file" -> the name defined -> (its block's reading order, where it is)
Definitions = dict[str, dict[str, tuple[int, Location]]]

#: RFC 9568: the Max Adver Int field is 12 bits of centiseconds.
V3_MAX_ADVERT_INT = 40.95
#: vrrp_strict: keepalived refuses more addresses than fit an RFC-sized advert.
STRICT_MAX_VIPS = 20


class Validator:
    def __init__(self, config: Config, origins: Origins, sink: DiagnosticSink):
        self.config = config
        self.origins = origins
        self.sink = sink

    def loc(self, record: object, attr: str | None = None) -> Location:
        return self.origins.loc(record, attr)

    def run(self) -> None:
        #: instances keepalived would drop (reported; left out of the configuration that runs)
        self.dropped: set[int] = set()
        self._track_processes()
        self._garp_groups()
        self._unique_names()
        self._tracked_in_reading_order()
        for inst in self.config.vrrp_instances:
            self._instance(inst)
        self._vrids()
        self._drop_instances()
        self._sync_groups()
        self._virtual_servers()
        self._lvs_sync_daemon()

    def _lvs_sync_daemon(self) -> None:
        """keepalived's: the instance must exist (else the setting is cleared); the sync id defaults to its
        VRID."""
        gd = self.config.global_defs
        syncd = gd.lvs_sync_daemon
        if syncd is None:
            return
        inst = next((i for i in self.config.vrrp_instances if i.name == syncd.instance), None)
        if inst is None:
            self.sink.error(
                f"Unable to find vrrp instance {syncd.instance} for lvs_syncd - clearing lvs_syncd config",
                self.loc(gd, "lvs_sync_daemon"),
            )
            fixed = None
        elif syncd.syncid is None:
            fixed = dataclasses.replace(syncd, syncid=inst.virtual_router_id)
        else:
            return
        new_gd = dataclasses.replace(gd, lvs_sync_daemon=fixed)
        block = self.origins.block(gd)
        if block is not None:
            self.origins.remember(new_gd, block)
        self.config = dataclasses.replace(self.config, global_defs=new_gd)

    def _garp_groups(self) -> None:
        """keepalived's checks of garp_group: one without a delay is removed; an interface already in a group
        stays in the first."""
        kept = []
        seen: set[str] = set()
        for number, group in enumerate(self.config.garp_groups, 1):
            if group.garp_interval is None and group.gna_interval is None:
                where = self.loc(group)
                self.sink.error(f"garp group {number} does not have any delay set - removing", where)
                continue
            names = [*([group.interface] if group.interface else []), *group.interfaces]
            for name in names:
                if name in seen:
                    self.sink.error(f"garp_group already specified for {name} - ignoring", self.loc(group))
            interface = group.interface if group.interface not in seen else None
            interfaces = tuple(dict.fromkeys(n for n in group.interfaces if n not in seen))
            seen.update(names)
            kept.append(dataclasses.replace(group, interface=interface, interfaces=interfaces))
        self.config = dataclasses.replace(self.config, garp_groups=tuple(kept))

    def _track_processes(self) -> None:
        """keepalived's checks of vrrp_track_process: a block without ``process`` is dropped; a quorum
        above quorum_max is ignored (the default 1 stays)."""
        kept = []
        for tp in self.config.track_processes:
            if not tp.process:
                self.sink.error(f"track process '{tp.name}' process name not specified", self.loc(tp))
                continue
            if tp.quorum_max is not None and tp.quorum > tp.quorum_max:
                self.sink.error(
                    f"track process '{tp.name}': quorum {tp.quorum} is greater than quorum_max "
                    f"{tp.quorum_max} - ignoring the quorum",
                    self.loc(tp, "quorum"),
                )
                tp = dataclasses.replace(tp, quorum=min(1, tp.quorum_max))
            kept.append(tp)
        self.config = dataclasses.replace(self.config, track_processes=tuple(kept))

    def _drop(self, inst: VrrpInstance, message: str, loc: Location) -> None:
        self.sink.error(f"{message}; this vrrp_instance is ignored", loc)
        self.dropped.add(id(inst))

    def _refuse(self, inst: VrrpInstance, message: str, loc: Location) -> None:
        """Like :meth:`_drop`, but the configuration cannot run as written (exit 4): running without the
        instance would not be what the configuration asks for either."""
        self.sink.fatal(f"{message}; this vrrp_instance will not run", loc)
        self.dropped.add(id(inst))

    def _drop_instances(self) -> None:
        if not self.dropped:
            return
        kept = tuple(i for i in self.config.vrrp_instances if id(i) not in self.dropped)
        names = {i.name for i in kept}
        groups = tuple(
            dataclasses.replace(g, group=tuple(m for m in g.group if m in names))
            if any(m not in names for m in g.group)
            else g
            for g in self.config.vrrp_sync_groups
        )
        for old, new in zip(self.config.vrrp_sync_groups, groups, strict=True):
            block = self.origins.block(old)
            if new is not old and block is not None:
                self.origins.remember(new, block)
        self.config = dataclasses.replace(self.config, vrrp_instances=kept, vrrp_sync_groups=groups)

    # --- names ------------------------------------------------------------------------------------------

    def _unique_names(self) -> None:
        cfg = self.config
        for what, records in (
            ("vrrp_instance", cfg.vrrp_instances),
            ("vrrp_script", cfg.vrrp_scripts),
            ("track_file", cfg.track_files),
            ("vrrp_sync_group", cfg.vrrp_sync_groups),
            ("virtual_server_group", cfg.virtual_server_groups),
        ):
            seen: dict[str, object] = {}
            for rec in records:
                name = rec.name
                if name in seen:
                    first = self.loc(seen[name])
                    message = f"{what} '{name}' is defined twice (first at {first})"
                    if isinstance(rec, VrrpInstance):
                        self._drop(rec, message, self.loc(rec))
                    else:
                        self.sink.error(f"{message}; the second is ignored", self.loc(rec))
                else:
                    seen[name] = rec

    # --- VRRP -------------------------------------------------------------------------------------------

    def _instance(self, inst: VrrpInstance) -> None:
        gd = self.config.global_defs
        name = inst.name
        if inst.interface is None and gd.default_interface is None:
            self._drop(
                inst, f"vrrp_instance {name}: no interface (and no global default_interface)", self.loc(inst)
            )
        if inst.virtual_router_id == 0:
            self._drop(inst, f"vrrp_instance {name}: the virtual router id must be set", self.loc(inst))
        version = 3 if inst.family == 6 and inst.version is None else (inst.version or gd.vrrp_version)
        if not inst.virtual_ipaddress:
            if version == 3:
                self._drop(
                    inst, f"vrrp_instance {name}: No VIP specified; at least one is required", self.loc(inst)
                )
            else:
                self.sink.error(
                    f"vrrp_instance {name}: No VIP specified; at least one is sensible", self.loc(inst)
                )
        families = {vip.address.version for vip in inst.virtual_ipaddress}
        if len(families) > 1:
            for vip in inst.virtual_ipaddress[1:]:
                if vip.address.version != inst.virtual_ipaddress[0].address.version:
                    self.sink.error(
                        f"vrrp_instance {name}: address family of {vip.address} differs from the "
                        "instance's first virtual address; it is ignored",
                        vip.location,
                    )
        if inst.family == 6 and version == 2:
            self.sink.error(
                f"vrrp_instance {name}: VRRPv2 does not support IPv6; version 3 is used",
                self.loc(inst, "version" if inst.version else None),
            )
        if version == 2 and not float(inst.advert_int).is_integer():
            self.sink.error(
                f"vrrp_instance {name}: VRRPv2 advert_int must be whole seconds; "
                f"{inst.advert_int} is rounded up",
                self.loc(inst, "advert_int"),
            )
        if version == 3 and inst.advert_int > V3_MAX_ADVERT_INT:
            self.sink.error(
                f"vrrp_instance {name}: VRRPv3 advert_int is at most {V3_MAX_ADVERT_INT}; "
                f"{inst.advert_int} is reduced",
                self.loc(inst, "advert_int"),
            )
        if inst.priority == 255 and inst.state == "BACKUP" and self._has("state", inst):
            self.sink.error(
                f"vrrp_instance {name}: priority 255 (address owner) with state BACKUP; "
                "the instance starts as MASTER",
                self.loc(inst, "state"),
            )
        strict = inst.strict_mode if inst.strict_mode is not None else gd.vrrp_strict
        if inst.state == "MASTER" and not (strict and inst.priority != 255):
            # keepalived keeps the initial state and drops what cannot work with it
            if inst.nopreempt:
                self.sink.error(
                    f"vrrp_instance {name}: nopreempt will not work with initial state MASTER; it is cleared",
                    self.loc(inst, "nopreempt"),
                )
            if inst.preempt_delay:
                self.sink.error(
                    f"vrrp_instance {name}: preempt_delay will not work with initial state MASTER; "
                    "it is cleared",
                    self.loc(inst, "preempt_delay"),
                )
        auth = inst.authentication
        if auth is not None:
            where = self.loc(inst, "authentication")
            block = self.origins.block(inst)
            auth_block = block.values.get("authentication") if block is not None else None
            pass_loc = auth_block.loc_of("auth_pass") if auth_block is not None else where
            if version == 3:
                self.sink.error(
                    f"vrrp_instance {name}: authentication is not part of VRRPv3; it is ignored", where
                )
            elif auth.auth_type == "AH":
                # Never run it unauthenticated: that would silently downgrade its security.
                type_loc = auth_block.loc_of("auth_type") if auth_block is not None else where
                self._refuse(inst, f"vrrp_instance {name}: auth_type AH is not implemented by kpd", type_loc)
            elif len(auth.auth_pass) > AUTH_PASS_MAX:
                self.sink.error(
                    f"vrrp_instance {name}: auth_pass is longer than {AUTH_PASS_MAX} characters; "
                    "only the first 8 are used",
                    pass_loc,
                )
            elif not auth.auth_pass:
                self.sink.error(f"vrrp_instance {name}: auth_type PASS without auth_pass", where)
        if strict:
            self._strict(inst, version)
        self._vmac(inst, strict)
        src = inst.unicast_src_ip
        for peer in inst.unicast_peer:
            if src is not None and peer.address.version != src.version:
                self.sink.error(
                    f"vrrp_instance {name}: unicast peer {peer.address} and unicast_src_ip {src} "
                    "are of different families",
                    self.loc(inst, "unicast_peer"),
                )
        scripts = {s.name for s in self.config.vrrp_scripts}
        files = {f.name for f in self.config.track_files}
        for tracked in inst.track_script:
            if tracked.name not in scripts:
                self.sink.error(
                    f"vrrp_instance {name}: track_script '{tracked.name}' is not a vrrp_script; "
                    "it is ignored",
                    tracked.location,
                )
        for tracked in inst.track_file:
            if tracked.name not in files:
                self.sink.error(
                    f"vrrp_instance {name}: track_file '{tracked.name}' is not a track_file; it is ignored",
                    tracked.location,
                )
        processes = {p.name for p in self.config.track_processes}
        for tracked in inst.track_process:
            if tracked.name not in processes:
                self.sink.error(
                    f"({name}) track process {tracked.name} not found, ignoring...", tracked.location
                )

    def _tracked_in_reading_order(self) -> None:
        """keepalived looks a tracked vrrp_script or track_file up when it reads the ``track_script`` /
        ``track_file`` line: one defined further down is "not found" and the entry ignored. Do the same, and
        say where the definition is and how to fix it."""
        cfg = self.config
        defined: Definitions = {"track_script": {}, "track_file": {}, "track_process": {}}
        kinds = (
            ("track_script", cfg.vrrp_scripts),
            ("track_file", cfg.track_files),
            ("track_process", cfg.track_processes),
        )
        for attr, records in kinds:
            for rec in records:
                block = self.origins.block(rec)
                if block is not None and rec.name not in defined[attr]:
                    defined[attr][rec.name] = (block.order, block.loc)
        instances = tuple(self._in_reading_order(i, defined, "vrrp_instance") for i in cfg.vrrp_instances)
        groups = tuple(self._in_reading_order(g, defined, "vrrp_sync_group") for g in cfg.vrrp_sync_groups)
        self.config = dataclasses.replace(cfg, vrrp_instances=instances, vrrp_sync_groups=groups)

    def _in_reading_order(self, record: R, defined: Definitions, what: str) -> R:
        block = self.origins.block(record)
        if block is None:
            return record
        changes: dict[str, tuple[Tracked, ...]] = {}
        kinds = (
            ("track_script", "vrrp_script"),
            ("track_file", "track_file"),
            ("track_process", "vrrp_track_process"),
        )
        for attr, kind in kinds:
            kept: list[Tracked] = []
            for tracked in getattr(record, attr):
                found = defined[attr].get(tracked.name)
                if found is not None and found[0] > block.order:
                    self.sink.error(
                        f"({record.name}) {attr.replace('_', ' ')} {tracked.name} not found, ignoring: "
                        f"keepalived reads {kind} {tracked.name} (at {found[1]}) only after this {what}; "
                        "define it above",
                        tracked.location,
                    )
                else:
                    kept.append(tracked)
            if len(kept) != len(getattr(record, attr)):
                changes[attr] = tuple(kept)
        if not changes:
            return record
        fixed = dataclasses.replace(record, **changes)  # type: ignore[arg-type]
        self.origins.remember(fixed, block)
        return fixed

    def _has(self, attr: str, record: object) -> bool:
        block = self.origins.block(record)
        return block is not None and attr in block.values

    def _vmac(self, inst: VrrpInstance, strict: bool) -> None:
        """keepalived's checks of use_vmac / vmac_xmit_base (what it resets is reset at run time too)."""
        name = inst.name
        if inst.use_vmac is None:
            if inst.vmac_xmit_base:
                self.sink.error(
                    f"({name}) vmac_xmit_base is only valid with a vmac; it is ignored",
                    self.loc(inst, "vmac_xmit_base"),
                )
            return
        if inst.unicast_peer and not inst.vmac_xmit_base and not strict:
            self.sink.error(
                f"({name}) unicast with use_vmac requires vmac_xmit_base - setting",
                self.loc(inst, "use_vmac"),
            )
        if strict and inst.vmac_xmit_base:
            self.sink.error(
                f"({name}) xmit_base is incompatible with strict mode - resetting",
                self.loc(inst, "vmac_xmit_base"),
            )
        ifname = inst.use_vmac.ifname
        if ifname is not None:
            for other in self.config.vrrp_instances:
                if other is inst:
                    break
                if other.use_vmac is not None and other.use_vmac.ifname == ifname:
                    self.sink.error(
                        f"({name}) VRRP instance {other.name} is already using {ifname} - ignoring name",
                        self.loc(inst, "use_vmac"),
                    )
                    break

    def _strict(self, inst: VrrpInstance, version: int) -> None:
        name = inst.name
        if inst.state == "MASTER" and inst.priority != 255 and self._has("state", inst):
            self.sink.error(
                f"vrrp_instance {name}: with vrrp_strict, state MASTER must match being address "
                "owner (priority 255); the instance starts as BACKUP",
                self.loc(inst, "state"),
            )
        if inst.unicast_peer:
            self.sink.error(
                f"vrrp_instance {name}: unicast peers are not allowed with vrrp_strict",
                self.loc(inst, "unicast_peer"),
            )
        if inst.authentication is not None:
            self.sink.error(
                f"vrrp_instance {name}: authentication is not allowed with vrrp_strict",
                self.loc(inst, "authentication"),
            )
        if len(inst.virtual_ipaddress) > STRICT_MAX_VIPS:
            self.sink.error(
                f"vrrp_instance {name}: vrrp_strict allows at most {STRICT_MAX_VIPS} virtual addresses",
                self.loc(inst, "virtual_ipaddress"),
            )
        if inst.accept:
            self.sink.error(
                f"vrrp_instance {name}: accept mode is not allowed with vrrp_strict unless the "
                "instance owns its addresses",
                self.loc(inst, "accept"),
            )

    def _vrids(self) -> None:
        default_if = self.config.global_defs.default_interface
        seen: dict[tuple[str | None, int, int, bool], VrrpInstance] = {}
        for inst in self.config.vrrp_instances:
            if not inst.virtual_router_id:
                continue
            key = (inst.interface or default_if, inst.family, inst.virtual_router_id, bool(inst.unicast_peer))
            other = seen.get(key)
            if other is not None and not inst.unicast_peer:
                self._drop(
                    inst,
                    f"vrrp_instance {inst.name}: virtual_router_id {inst.virtual_router_id} is "
                    f"already used by {other.name} on interface {key[0]} (at "
                    f"{self.loc(other, 'virtual_router_id')})",
                    self.loc(inst, "virtual_router_id"),
                )
            else:
                seen[key] = inst

    def _sync_groups(self) -> None:
        instances = {i.name for i in self.config.vrrp_instances}
        member_of: dict[str, str] = {}
        for group in self.config.vrrp_sync_groups:
            block = self.origins.block(group)
            locs = block.item_locs("group") if block else []
            if not group.group:
                self.sink.error(
                    f"vrrp_sync_group {group.name} has no members; it is ignored", self.loc(group)
                )
            elif len(group.group) == 1:
                self.sink.error(
                    f"vrrp_sync_group {group.name} has only 1 virtual router(s) - this probably isn't what "
                    "you want",
                    self.loc(group),
                )
            for i, member in enumerate(group.group):
                where = locs[i] if i < len(locs) else self.loc(group)
                if member not in instances:
                    self.sink.error(
                        f"vrrp_sync_group {group.name}: '{member}' is not a vrrp_instance; it is ignored",
                        where,
                    )
                elif member in member_of:
                    self.sink.error(
                        f"vrrp_instance {member} is already in vrrp_sync_group {member_of[member]}", where
                    )
                else:
                    member_of[member] = group.name

    # --- LVS --------------------------------------------------------------------------------------------

    def _virtual_servers(self) -> None:
        """keepalived's checks of virtual servers, with its repairs (the model is updated in place)."""
        groups = {g.name: g for g in self.config.virtual_server_groups}
        seen: dict[tuple[object, ...], VirtualServer] = {}
        kept: list[VirtualServer] = []
        for vs in self.config.virtual_servers:
            key = (vs.address, vs.port, vs.fwmark, vs.group, vs.protocol)
            if key in seen:
                self.sink.error(
                    f"virtual_server {vs.key} ({vs.protocol}) is defined twice (first at "
                    f"{self.loc(seen[key])}); the second is ignored",
                    self.loc(vs),
                )
                continue
            seen[key] = vs
            group = groups.get(vs.group) if vs.group is not None else None
            if vs.group is not None and group is None:
                self.sink.error(
                    f"virtual server group {vs.group} specified but not configured - ignoring virtual server",
                    self.loc(vs),
                )
                continue
            if not vs.real_servers:
                self.sink.error(f"virtual server {vs.key} has no real servers - ignoring", self.loc(vs))
                continue
            if vs.port == 0 and vs.persistence_timeout is None:
                self.sink.error(
                    f"virtual server {vs.key}: zero port only valid for persistent services - setting "
                    "persistence_timeout 360",
                    self.loc(vs),
                )
                fix_port: dict[str, object] = {"persistence_timeout": 360}
            else:
                fix_port = {}
            fwmark_only = vs.fwmark is not None or (
                group is not None and all(m.fwmark is not None for m in group.members)
            )
            fix: dict[str, object] = dict(fix_port)
            if vs.ha_suspend and (vs.fwmark is not None or (group and any(m.fwmark for m in group.members))):
                self.sink.error(
                    f"virtual server {vs.key}: cannot use ha_suspend with fwmarks - clearing ha_suspend",
                    self.loc(vs, "ha_suspend"),
                )
                fix["ha_suspend"] = False
            if not fwmark_only and not self._has("protocol", vs):
                self.sink.error(f"virtual server {vs.key}: no protocol set - defaulting to UDP", self.loc(vs))
            if fwmark_only and self._has("protocol", vs):
                self.sink.error(
                    f"virtual server {vs.key}: protocol specified for fwmark - protocol will be ignored",
                    self.loc(vs, "protocol"),
                )
            if vs.ops and vs.protocol != "UDP":
                self.sink.error(
                    f"virtual server {vs.key}: one packet scheduling requires UDP - resetting",
                    self.loc(vs, "ops"),
                )
                fix["ops"] = False
            flags = tuple(
                f for f in vs.sched_flags if not f.startswith(("sh-", "mh-")) or vs.lb_algo == f[:2]
            )
            for dropped in (f for f in vs.sched_flags if f not in flags):
                self.sink.error(
                    f"virtual server {vs.key}: {dropped} only applies to the {dropped[:2]} scheduler - "
                    "ignoring",
                    self.loc(vs, f"_{dropped}"),
                )
            if flags != vs.sched_flags:
                fix["sched_flags"] = flags
            family = {"inet": 4, "inet6": 6}.get(vs.ip_family or "")
            if family is not None and vs.address is not None and vs.address.version != family:
                self.sink.error(
                    f"virtual server {vs.key}: ip_family {vs.ip_family} conflicts with the server's family",
                    self.loc(vs, "ip_family"),
                )
                fix["ip_family"] = None
            if not self._has("lb_algo", vs):
                self.sink.error(
                    f"virtual server {vs.key}: no scheduler set, setting default 'wlc'", self.loc(vs)
                )
            if not self._has("lb_kind", vs) and any(rs.lvs_method is None for rs in vs.real_servers):
                self.sink.error(
                    f"virtual server {vs.key}: no forwarding method set, setting default NAT", self.loc(vs)
                )
            rs_kept = []
            rs_seen: set[tuple[object, object]] = set()
            for rs in vs.real_servers:
                rkey = (rs.address, rs.port)
                if rkey in rs_seen:
                    self.sink.error(
                        f"virtual server {vs.key}: real server {rs.address} {rs.port or ''} is "
                        "duplicated - removing second rs",
                        self.loc(rs),
                    )
                    continue
                rs_seen.add(rkey)
                if (
                    vs.address is not None
                    and rs.address.version != vs.address.version
                    and vs.lb_kind != "TUN"
                ):
                    self.sink.error(
                        f"virtual server {vs.key}: real server {rs.address} is of another address "
                        "family (only TUN forwarding mixes families)",
                        self.loc(rs),
                    )
                checks = tuple(check for check in rs.checks if self._check(vs, check, rs.address))
                if len(checks) != len(rs.checks):
                    fixed_rs = dataclasses.replace(rs, checks=checks)
                    block = self.origins.block(rs)
                    if block is not None:
                        self.origins.remember(fixed_rs, block)
                    rs = fixed_rs
                rs_kept.append(rs)
            if len(rs_kept) != len(vs.real_servers) or any(
                a is not b for a, b in zip(rs_kept, vs.real_servers, strict=False)
            ):
                fix["real_servers"] = tuple(rs_kept)
            kept.append(dataclasses.replace(vs, **fix) if fix else vs)  # type: ignore[arg-type]
        if len(kept) != len(self.config.virtual_servers) or any(
            a is not b for a, b in zip(kept, self.config.virtual_servers, strict=False)
        ):
            for old, new in zip(self.config.virtual_servers, kept, strict=False):
                block = self.origins.block(old)
                if block is not None and new is not old:
                    self.origins.remember(new, block)
            self.config = dataclasses.replace(self.config, virtual_servers=tuple(kept))

    def _check(self, vs: VirtualServer, check: object, rs_address: object) -> bool:
        """Report what is wrong with a checker; False when it is dropped (as keepalived drops it)."""
        if isinstance(check, FileCheck):
            return self._file_check(vs, check)
        if hasattr(check, "bind_if") and not isinstance(check, MiscCheck | BfdCheck):
            target = getattr(check, "connect_ip", None) or rs_address
            if isinstance(target, IPv6Address) and target.is_link_local and not check.bind_if:
                self.sink.error(
                    f"Checker link local address {target} requires a bind_if; the checker is ignored",
                    self.loc(check),
                )
                return False
        if isinstance(check, HttpCheck):
            if not check.url:
                self.sink.error(
                    f"virtual_server {vs.key}: {check.kind} has no url block; the checker is ignored",
                    self.loc(check),
                )
            for url in check.url:
                if not url.path:
                    self.sink.error(
                        f"virtual_server {vs.key}: url block without a path; it is ignored", self.loc(url)
                    )
        elif isinstance(check, MiscCheck) and not check.misc_path:
            self.sink.error(
                f"virtual_server {vs.key}: MISC_CHECK has no misc_path; the checker is ignored",
                self.loc(check),
            )
        return True

    def _file_check(self, vs: VirtualServer, check: FileCheck) -> bool:
        """keepalived looks the track_file up when it reads the FILE_CHECK's track_file line."""
        if check.track_file is None:
            self.sink.error(f"virtual_server {vs.key}: FILE_CHECK has no track_file specified - ignoring",
                            self.loc(check))
            return False
        where = self.loc(check, "track_file")
        tf = next((f for f in self.config.track_files if f.name == check.track_file), None)
        if tf is None:
            self.sink.error(f"track_file {check.track_file} not found; the FILE_CHECK is ignored", where)
            return False
        mine, theirs = self.origins.block(check), self.origins.block(tf)
        if mine is not None and theirs is not None and theirs.order > mine.order:
            self.sink.error(
                f"track_file {check.track_file} not found; the FILE_CHECK is ignored: keepalived reads "
                f"track_file {tf.name} (at {theirs.loc}) only after this FILE_CHECK; define it above",
                where,
            )
            return False
        return True

    # --- scripts ----------------------------------------------------------------------------------------

    def scripts(self) -> Iterator[tuple[str, tuple[str, ...], Location, ScriptUser | None]]:
        """Every script the configuration would run: (what it is, its argv, where it is configured, the
        user it names itself, if any: its ``user`` keyword, or the USER [GROUP] after a notify script)."""
        cfg = self.config
        gd = cfg.global_defs

        Found = tuple[str, tuple[str, ...], Location, ScriptUser | None]

        def notify(record: object, attrs: tuple[str, ...], of: str = "") -> Iterator[Found]:
            """The scripts among *attrs* of *record*, each named "ATTR of OF"; *of* is a format of the
            record, used only for a script found (formatting every server's address would cost)."""
            for attr in attrs:
                script: NotifyScript | None = getattr(record, attr, None)
                if script is not None:
                    what = f"{attr} of {of.format(record)}" if of else attr
                    yield what, script.argv, self.loc(record, attr), script.user

        yield from notify(gd, ("notify_fifo_script", "vrrp_notify_fifo_script", "lvs_notify_fifo_script"))
        for script in cfg.vrrp_scripts:
            if script.script:
                yield f"vrrp_script {script.name}", script.script, self.loc(script, "script"), script.user
        notify_attrs = (
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
            "notify",
            "notify_master_rx_lower_pri",
        )
        records: tuple[VrrpInstance | VrrpSyncGroup, ...] = (*cfg.vrrp_instances, *cfg.vrrp_sync_groups)
        for rec in records:
            yield from notify(rec, notify_attrs, "{0.name}")
        for vs in cfg.virtual_servers:
            yield from notify(vs, ("quorum_up", "quorum_down"), "virtual_server {0.key}")
            for rs in vs.real_servers:
                yield from notify(rs, ("notify_up", "notify_down"), "real_server {0.address}")
                for check in rs.checks:
                    if isinstance(check, MiscCheck) and check.misc_path:
                        yield (
                            f"MISC_CHECK of real_server {rs.address}",
                            check.misc_path,
                            self.loc(check, "misc_path"),
                            check.user,
                        )


def validate(config: Config, origins: Origins, sink: DiagnosticSink) -> Config:
    """Report every inconsistency; return the configuration with keepalived's repairs applied."""
    validator = Validator(config, origins, sink)
    validator.run()
    root = origins.block(config)
    if root is not None and validator.config is not config:
        origins.remember(validator.config, root)  # the top-level keywords stay locatable
    return validator.config
