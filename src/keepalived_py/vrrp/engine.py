"""The VRRP daemon: state machines wired to sockets, addresses, announcements and notifications.

One asyncio loop runs every instance. The loop's clock (``loop.time()``, monotonic) is the state machines'
clock. Inbound adverts are decoded, matched to an instance by interface and VRID, checked
(:mod:`keepalived_py.vrrp.receive`) and handed to the machine; each machine's actions are then carried out
in order. Sending an advert is a non-blocking send done at once; address programming runs on a worker
thread and announcements are paced by the loop, so the advert path never waits on either, nor on scripts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
import select
import socket
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import TypeVar, overload

from keepalived_py.config.model import (
    Config,
    GlobalDefs,
    NotifyScript,
    Route,
    Rule,
    VirtualAddress,
    VrrpInstance,
    without_locations,
)
from keepalived_py.events import EventBuffer
from keepalived_py.notify import (
    CheckedScripts,
    FifoScripts,
    NotifyFifo,
    NotifyQueue,
    fifo_line_group,
    fifo_line_instance,
    notify_args,
    open_fifos,
)
from keepalived_py.smtp_alert import Mailer, MailSettings
from keepalived_py.vrrp import fsm
from keepalived_py.vrrp.fsm import Action, Params, State, Vrrp
from keepalived_py.vrrp.lvs_sync import LvsSync
from keepalived_py.vrrp.net import (
    AddressManager,
    AddressSpec,
    Announcer,
    LinkMonitor,
    Scheduled,
    VrrpSocket,
    primary_address,
)
from keepalived_py.vrrp.net.firewall import DEFAULT_TABLE, NftError, VrrpFirewall
from keepalived_py.vrrp.net.routes import Deleted, RouteManager, RouteMonitor, matches
from keepalived_py.vrrp.net.sockets import Prepared
from keepalived_py.vrrp.net.vmac import Vmac, VmacManager, virtual_mac
from keepalived_py.vrrp.packet import (
    AUTH_NONE,
    AUTH_SIMPLE,
    PacketError,
    VrrpPacket,
    decode,
    encode,
)
from keepalived_py.vrrp.process_watcher import ProcessWatcher
from keepalived_py.vrrp.receive import Expect, check, checksum_counter, password_field
from keepalived_py.vrrp.status import InstanceStatus
from keepalived_py.vrrp.sync import SyncGroup
from keepalived_py.vrrp.timer import DeadlineTimer
from keepalived_py.vrrp.track import FileWatcher, ScriptScheduler, Trackers, unusable_scripts

log = logging.getLogger("kpd.vrrp")
_T = TypeVar("_T")

IPAddress = IPv4Address | IPv6Address
#: Notify scripts that run longer are killed (keepalived lets them run; kpd bounds them).
NOTIFY_TIMEOUT = 30.0
#: At shutdown keepalived gives notify_stop scripts this long.
STOP_NOTIFY_TIMEOUT = 1.0
#: Drops of one reason on one instance are logged at most this often (the counters keep every one).
DROP_LOG_INTERVAL = 10.0
#: Address changes up to this many are made on the loop (rtnetlink answers in microseconds); more go to the
#: address worker so that a large set never blocks the loop.
INLINE_ADDRESS_CHANGES = 16
#: dynamic_interfaces: how often an instance waiting for its interface (or for an address on it) retries.
INTERFACE_RETRY = 1.0
#: at stop, queued SMTP alerts (the "Stopping" ones) get this long to go out
MAIL_GRACE = 3.0
#: keepalived's SMTP alert texts (vrrp_notify.c): state -> (subject, body). Its "Stopping" mails are queued
#: as the process exits and never leave it (seen beside keepalived 2.2.7): kpd sends none at stop either.
INSTANCE_MAIL = {
    "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    "BACKUP": ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "DELETED": ("Deleted", "=> VRRP Deleted at reload <="),
}
GROUP_MAIL = {
    "MASTER": ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    "BACKUP": ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    "FAULT": ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
}


def address_spec(vip: VirtualAddress, default_dev: str) -> AddressSpec:
    """The address programming of one ``virtual_ipaddress`` line."""
    return AddressSpec(
        address=vip.address,
        dev=vip.dev or default_dev,
        label=vip.label,
        scope=vip.scope,
        brd=vip.brd,  # type: ignore[arg-type]
        peer=vip.peer,
        nodad=not vip.dad,
        noprefixroute=vip.noprefixroute,
        preferred_lft=vip.preferred_lft,
    )


def instance_params(inst: VrrpInstance, gd: GlobalDefs, local: IPAddress) -> Params:
    """The state machine's parameters: the instance's settings resolved against global_defs."""
    version = 3 if inst.family == 6 else (inst.version or gd.vrrp_version)
    advert_int = inst.advert_int
    if version == 2:
        advert_int = float(max(1, round(advert_int + 0.4999)))
    else:
        advert_int = min(max(0.01, round(advert_int, 2)), 40.95)
    strict = inst.strict_mode if inst.strict_mode is not None else gd.vrrp_strict
    garp_delay = _first(inst.garp_master_delay, gd.vrrp_garp_master_delay)
    garp_repeat = _first(inst.garp_master_repeat, gd.vrrp_garp_master_repeat)
    # vrrp_strict: the initial state follows the priority (check-config reports a mismatch)
    start_as_master = inst.state == "MASTER" and not (strict and inst.priority != 255)
    return Params(
        name=inst.name,
        version=version,
        advert_int=advert_int,
        priority=inst.priority,
        local_address=local,
        start_as_master=start_as_master,
        # keepalived clears both with an initial state MASTER (check-config says so)
        nopreempt=inst.nopreempt and not start_as_master,
        preempt_delay=0.0 if (inst.nopreempt or strict or start_as_master) else inst.preempt_delay,
        lower_prio_no_advert=_first(inst.lower_prio_no_advert, gd.vrrp_lower_prio_no_advert),
        higher_prio_send_advert=_first(inst.higher_prio_send_advert, gd.vrrp_higher_prio_send_advert),
        garp_master_delay=garp_delay,
        garp_master_repeat=1 if gd.vrrp_min_garp else garp_repeat,
        garp_master_refresh=_first(inst.garp_master_refresh, gd.vrrp_garp_master_refresh),
        garp_master_refresh_repeat=_first(
            inst.garp_master_refresh_repeat, gd.vrrp_garp_master_refresh_repeat
        ),
        garp_lower_prio_delay=_first(inst.garp_lower_prio_delay, gd.vrrp_garp_lower_prio_delay, garp_delay),
        garp_lower_prio_repeat=_first(
            inst.garp_lower_prio_repeat, gd.vrrp_garp_lower_prio_repeat, garp_repeat
        ),
    )


def _identity(inst: VrrpInstance) -> object:
    """What makes an instance the virtual router it is: a change here restarts it on reload."""
    return without_locations((
        inst.interface, inst.virtual_router_id, inst.family, inst.version, inst.unicast_src_ip,
        inst.unicast_peer, inst.mcast_src_ip, inst.authentication, inst.unicast_ttl, inst.v3_checksum_as_v2,
        inst.use_vmac, inst.vmac_xmit_base,
    ))


def vmac_of(inst: VrrpInstance, gd: GlobalDefs) -> Vmac | None:
    """The VMAC ``use_vmac`` asks for (None without it), with keepalived's corrections: unicast needs
    vmac_xmit_base (set), strict mode refuses it (cleared)."""
    use = inst.use_vmac
    if use is None:
        return None
    strict = inst.strict_mode if inst.strict_mode is not None else gd.vrrp_strict
    xmit_base = (inst.vmac_xmit_base or bool(inst.unicast_peer)) and not strict
    base = inst.interface or gd.default_interface or ""
    return Vmac(use.ifname, base, vmac_address(inst, inst.family), inst.family, sends_adverts=not xmit_base)


def vmac_address(inst: VrrpInstance, family: int) -> str:
    """The MAC of the instance's VMACs for ``family``: the one use_vmac gives (five octets: the VRID is the
    sixth), else the virtual router MAC."""
    use = inst.use_vmac
    if use is None or use.mac is None:
        return virtual_mac(inst.virtual_router_id, family)
    return f"{use.mac}:{inst.virtual_router_id:02x}" if use.mac_uses_vrid else use.mac


def accept_mode(cfg: VrrpInstance, gd: GlobalDefs) -> bool:
    """Whether a MASTER takes traffic to its addresses: keepalived's accept mode is on unless strict mode
    (vrrp_strict / strict_mode, where accept is refused) or no_accept; the address owner always does."""
    if cfg.priority == 255:
        return True
    strict = cfg.strict_mode if cfg.strict_mode is not None else gd.vrrp_strict
    if strict:
        return False
    return cfg.accept if cfg.accept is not None else True


def _routing(cfg: VrrpInstance) -> tuple[Route | Rule, ...]:
    return (*cfg.virtual_routes, *cfg.virtual_rules)


def _changed(old: Sequence[_T], new: Sequence[_T]) -> tuple[list[_T], list[_T]]:
    """What a reload adds and drops of a list of items (compared without their locations)."""
    before = {without_locations(x): x for x in old}
    after = {without_locations(x): x for x in new}
    return [x for k, x in after.items() if k not in before], [x for k, x in before.items() if k not in after]


@overload
def _first(a: _T | None, b: _T, /) -> _T: ...
@overload
def _first(a: _T | None, b: _T | None, c: _T, /) -> _T: ...
@overload
def _first(a: _T | None, b: _T | None, c: _T | None, d: _T, /) -> _T: ...
def _first(*values: _T | None) -> _T | None:
    """The first value set: an instance's own setting, else the global default (typed never None)."""
    for v in values:
        if v is not None:
            return v
    return None


@dataclass
class Instance:
    """One running VRRP instance: its machine, sockets and addresses."""

    config: VrrpInstance
    machine: Vrrp
    expect: Expect
    socket: VrrpSocket
    destinations: list[IPAddress]
    source: IPAddress
    vips: list[AddressSpec]
    excluded: list[AddressSpec]
    status: InstanceStatus
    sync: SyncGroup | None = None
    holds_addresses: bool = False
    #: the VMAC interface (use_vmac): where the VIPs without a dev go
    vmac: str | None = None
    #: the VMACs of its other addresses (use_vmac_addr, use_vmac on a VIP)
    addr_vmacs: set[str] = field(default_factory=set)
    drop_logged: dict[str, float] = field(default_factory=dict)
    #: announcement bursts under way (cancelled when the instance gives its addresses up)
    announcing: set[asyncio.Task[None]] = field(default_factory=set)
    #: the adverts last sent, ready to send again: (priority, expect, params, socket it was built for,
    #: the datagrams). Built again when the priority changes or a reload or rebind replaced ``expect``
    #: (rebuilt from the addresses, source and configuration), the parameters or the socket.
    adverts: tuple[int, Expect, Params, VrrpSocket, list[Prepared]] | None = None
    #: the last advert accepted: (``expect`` it was checked against, (payload, source, destination, TTL,
    #: master address then), (priority, advert interval, checksum counter)). An advert equal in all of
    #: these would be decoded and checked to the same verdict: it is accepted without doing it again.
    accepted: tuple[Expect, tuple[object, ...], tuple[int, float, str]] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def ifname(self) -> str:
        return self.socket.ifname or ""

    @property
    def address_dev(self) -> str:
        """Where the virtual addresses without a dev go: the VMAC, else the instance's interface."""
        return self.vmac or self.ifname


class VrrpEngine:
    """Runs every vrrp_instance of a configuration until :meth:`stop`."""

    def __init__(
        self, config: Config, *, release_on_stop: bool = True, home_netns: int | None = None
    ) -> None:
        self.config = config
        #: a descriptor of the namespace kpd started in (process events are only had there)
        self.home_netns = home_netns
        self.release_on_stop = release_on_stop
        self.instances: dict[str, Instance] = {}
        #: instances that cannot run here (interface missing, no address): reported in FAULT
        self.unusable: dict[str, InstanceStatus] = {}
        self.groups: dict[str, SyncGroup] = {}
        self._sockets: dict[tuple[str, int, str], VrrpSocket] = {}
        self._by_socket: dict[int, dict[int, Instance]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._addr_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kpd-addr")
        #: lvs_sync_daemon: the IPVS sync daemon following its instance
        syncd = config.global_defs.lvs_sync_daemon
        self._lvs_sync: LvsSync | None = LvsSync(syncd) if syncd is not None else None
        #: address changes queued on the worker and not yet done, in order
        self._addr_jobs: list[concurrent.futures.Future[None]] = []
        self._addresses: AddressManager | None = None
        self._routes: RouteManager | None = None
        self._firewall: VrrpFirewall | None = None
        self._vmacs: VmacManager | None = None
        self._route_monitor: RouteMonitor | None = None
        self._announcer: Announcer | None = None
        self._notify = NotifyQueue(name="vrrp-notify")
        self._fifos: list[NotifyFifo] = []
        self.fifo_scripts = FifoScripts()
        self._mailer: Mailer | None = None
        #: the state each instance ("I name") and group ("G name") last mailed about (one mail per change)
        self._mailed: dict[str, str] = {}
        self._notify_scripts = CheckedScripts(self._notify)
        self._stopped = asyncio.Event()
        self._announce_tasks: set[asyncio.Task[None]] = set()
        self.trackers: Trackers | None = None
        #: Instances kept in INIT until their tracked scripts' first results (keepalived: silently)
        self._held: set[str] = set()
        #: Instances whose interface came back but cannot be used yet (dynamic_interfaces; kept in FAULT)
        self._lost: set[str] = set()
        self._interface_watch: asyncio.Task[None] | None = None
        #: Instances that could not start (their interface missing): FAULT notifications to send
        self._fault_at_start: list[VrrpInstance] = []
        self._timer: DeadlineTimer | None = None
        self._scripts: ScriptScheduler | None = None
        self._files: FileWatcher | None = None
        self._processes: ProcessWatcher | None = None
        self._links: LinkMonitor | None = None
        #: Called after every state transition with (instance name, new state) -- for the control plane.
        self.on_transition: Callable[[str, State], None] | None = None
        #: structured events (``kpd events``): every transition, with its reason
        self.events = EventBuffer()

    # --- lifecycle ----------------------------------------------------------------------------------------

    def open(self) -> None:
        """Create sockets and managers for every instance (in the calling thread's network namespace)."""
        gd = self.config.global_defs
        self._addresses = AddressManager()
        self._announcer = Announcer(garp_interval=gd.vrrp_garp_interval, gna_interval=gd.vrrp_gna_interval)
        self._garp_groups()
        self._fifos.extend(open_fifos((gd.notify_fifo, gd.vrrp_notify_fifo)))
        settings = MailSettings.of(gd)
        self._mailer = Mailer(settings) if settings is not None else None
        for name, reason in unusable_scripts(self.config).items():
            log.warning("vrrp_script %s is disabled: %s", name, reason)
        self._links = LinkMonitor()
        self.trackers = Trackers(self.config, disabled_scripts=unusable_scripts(self.config))
        for ifname in self.trackers.tracked_interfaces():
            up = self._links.state(ifname)
            self.trackers.set_link(ifname, bool(up))
        for inst_cfg in self.config.vrrp_instances:
            self._open_instance(inst_cfg)
        self._build_groups()

    def _open_instance(self, inst_cfg: VrrpInstance, *, quiet: bool = False) -> Instance | None:
        """Create an instance; one that cannot run here is recorded as unusable (held in FAULT).
        ``quiet``: a retry (dynamic_interfaces), logged only when it succeeds."""
        try:
            inst = self.instances[inst_cfg.name] = self._make_instance(inst_cfg)
            return inst
        except (OSError, ValueError) as err:
            # keepalived keeps running and holds such an instance in FAULT (no interface, no address)
            if not quiet:
                if self.config.global_defs.dynamic_interfaces:
                    self._fault_at_start.append(inst_cfg)  # notified as FAULT once running (keepalived)
                dynamic = self.config.global_defs.dynamic_interfaces
                how = "waiting for it (dynamic_interfaces)" if dynamic else "the instance stays in FAULT"
                log.error("(%s) cannot run: %s; %s", inst_cfg.name, err, how)
            self.unusable[inst_cfg.name] = InstanceStatus(
                name=inst_cfg.name,
                interface=inst_cfg.interface,
                vrid=inst_cfg.virtual_router_id,
                version=inst_cfg.version or self.config.global_defs.vrrp_version,
                state=State.FAULT.value,
                base_priority=inst_cfg.priority,
                effective_priority=inst_cfg.priority,
                vips=[str(v.address) for v in inst_cfg.virtual_ipaddress],
                last_reason=str(err),
            )
            return None

    def _build_groups(self) -> None:
        """(Re)build the sync groups; a group whose members did not change keeps its object."""
        old = self.groups
        self.groups = {}
        for inst in self.instances.values():
            inst.sync = None
            inst.machine.sync_gate = None
        for group in self.config.vrrp_sync_groups:
            members = [self.instances[m].machine for m in group.group if m in self.instances]
            if members:
                kept = old.get(group.name)
                same = kept is not None and [id(m) for m in kept.members] == [id(m) for m in members]
                sync = kept if same and kept is not None else SyncGroup(group.name, members)
                sync.attach()  # a kept group's members had their gate cleared above
                self.groups[group.name] = sync
                for m in group.group:
                    if m in self.instances:
                        self.instances[m].sync = sync

    def _make_instance(self, inst: VrrpInstance) -> Instance:
        gd = self.config.global_defs
        version = 3 if inst.family == 6 and inst.version is None else (inst.version or gd.vrrp_version)
        if inst.authentication is not None and inst.authentication.auth_type == "AH" and version == 2:
            # check-config refuses it too; never fall back to running it without authentication
            raise ValueError(f"vrrp_instance {inst.name}: auth_type AH is not implemented by kpd")
        ifname = inst.interface or gd.default_interface or ""
        unicast = bool(inst.unicast_peer)
        vmac = self._make_vmac(inst)
        sock, destinations, source = self._socket_for(inst, vmac)
        if vmac is not None:
            ifname = vmac
        params = instance_params(inst, gd, source)
        machine = Vrrp(params)
        if self.trackers is not None:
            tracking = self.trackers.instance(inst.name)
            machine.priority = tracking.priority()
            machine.faulted = tracking.fault()
        version = params.version
        vips, excluded, extra = self._address_specs(inst, vmac)
        expect = self._expect(inst, params, vips, source, unicast)
        status = InstanceStatus(
            name=inst.name,
            interface=ifname,
            vrid=inst.virtual_router_id,
            version=version,
            base_priority=inst.priority,
            effective_priority=inst.priority,
            vips=[str(v.address) for v in vips],
            counters=machine.counters,
        )
        instance = Instance(
            inst, machine, expect, sock, destinations, source, vips, excluded, status,
            vmac=vmac, addr_vmacs=extra,
        )
        demux = self._by_socket.setdefault(sock.fileno(), {})
        if inst.virtual_router_id in demux:
            raise OSError(
                f"vrrp_instance {inst.name}: VRID {inst.virtual_router_id} already used on {ifname}"
            )
        demux[inst.virtual_router_id] = instance
        return instance

    def _make_vmac(self, inst: VrrpInstance) -> str | None:
        """use_vmac: the instance's VMAC, made (or a previous run's adopted) now, before anything binds to it;
        its name (None without use_vmac). OSError when it cannot be made."""
        gd = self.config.global_defs
        vmac = vmac_of(inst, gd)
        if vmac is None:
            return None
        taken = {i.vmac for i in self.instances.values() if i.vmac is not None}
        if vmac.name in taken:
            vmac = dataclasses.replace(vmac, name=None)  # check-config: "already using ... - ignoring name"
        return self._ensure_vmac(inst, vmac, taken)

    def _ensure_vmac(self, inst: VrrpInstance, vmac: Vmac, taken: set[str]) -> str:
        """Make (or adopt) ``vmac``, with its nftables rules; its name."""
        if self._vmacs is None:
            self._vmacs = VmacManager(self._addresses)
        name = self._vmacs.resolve_name(vmac, inst.virtual_router_id, taken)
        if name not in self._vmacs.made:
            self._vmacs.ensure(vmac, name)
            try:
                self._firewall_for().add_vmac(name, vmac.base, vmac.family)
            except NftError as err:
                log.error("(%s) %s", inst.name, err)
        return name

    def _delete_vmac(self, owner: str, name: str) -> None:
        """Delete VMAC ``name`` and its nftables rules (``owner``: the instance, for the logs)."""
        if self._vmacs is None:
            return
        vmac = self._vmacs.made.get(name)
        if self._firewall is not None and vmac is not None:
            self._firewall.remove_vmac(name, vmac.base, vmac.family)
        try:
            self._vmacs.remove(name)
        except OSError as err:
            log.error("(%s) cannot remove VMAC interface %s: %s", owner, name, err)

    def _garp_groups(self) -> None:
        """keepalived's garp_group: per-interface spacing of announcements, or spacing shared by a group."""
        assert self._announcer is not None
        self._announcer.clear_groups()
        for group in self.config.garp_groups:
            names = [*([group.interface] if group.interface else []), *group.interfaces]
            for name in names:
                self._announcer.set_intervals(name, garp=group.garp_interval, gna=group.gna_interval)
            if group.interfaces:
                self._announcer.share_spacing(group.interfaces)

    def _extra_if(self, inst: Instance) -> None:
        """garp_extra_if (keepalived's vrrp_send_vmac_update): while MASTER, every interval one gratuitous
        ARP / NA on each interface of the VIPs that the adverts do not keep fresh in the switches. As in
        keepalived 2.2.7 it runs only when some VIP is on an interface other than the instance's (its VMAC,
        else its interface) -- a VMAC of ours, or with 'all' any -- and then sends on VMACs, with 'all' on
        every interface, and on the instance's own only when the adverts leave from the base interface."""
        gd = self.config.global_defs
        setting = inst.config.garp_extra_if or gd.vrrp_garp_extra_if
        if setting is None or not setting.interval or self._loop is None:
            return
        wanted = vmac_of(inst.config, gd)
        xmit_base = wanted is not None and not wanted.sends_adverts
        own = inst.vmac if inst.vmac is not None else (inst.config.interface or gd.default_interface)
        ours = set(self._vmacs.made) if self._vmacs is not None else set()
        specs = (*inst.vips, *inst.excluded)
        others = {spec.dev for spec in specs if spec.dev != own}
        if not (others & ours or (others and setting.all)):
            return
        targets: dict[str, AddressSpec] = {}
        for spec in specs:
            if spec.dev not in ours and not setting.all:
                continue
            if spec.dev == own and not xmit_base:
                continue  # the adverts keep it fresh
            targets.setdefault(spec.dev, spec)
        if not targets:
            return
        announcer = self._announcer
        assert announcer is not None
        interval = setting.interval

        def holding() -> bool:
            return inst.machine.state is State.MASTER and inst.holds_addresses

        async def refresh() -> None:
            while True:
                await asyncio.sleep(interval)
                for dev, spec in targets.items():
                    if not holding():
                        return
                    try:
                        plan = announcer.plan(dev, [spec.address], 1)
                        await announcer.send_scheduled(plan, proceed=holding)
                    except OSError as err:
                        log.warning("(%s) cannot announce %s on %s: %s", inst.name, spec.address, dev, err)

        task = self._loop.create_task(refresh())
        self._announce_tasks.add(task)
        inst.announcing.add(task)
        task.add_done_callback(self._announce_tasks.discard)
        task.add_done_callback(inst.announcing.discard)

    def _address_specs(
        self, cfg: VrrpInstance, vmac: str | None
    ) -> tuple[list[AddressSpec], list[AddressSpec], set[str]]:
        """The instance's VIPs and eVIPs with the interface each goes on (keepalived's rules): no dev, or the
        instance's interface, means its VMAC (same family) or interface; with ``use_vmac`` on the line, or
        ``use_vmac_addr`` for another interface or family, a VMAC of that interface (made now). Also the
        names of those VMACs."""
        gd = self.config.global_defs
        configured = cfg.interface or gd.default_interface or ""
        extra: set[str] = set()

        def place(v: VirtualAddress) -> AddressSpec:
            family = v.address.version
            if v.dev is None or v.dev == configured:
                if vmac is not None and family == cfg.family:
                    return dataclasses.replace(address_spec(v, vmac), dev=vmac)
                dev = configured
                needs = v.use_vmac or (cfg.use_vmac_addr and family != cfg.family)
            else:
                dev = v.dev
                needs = v.use_vmac or cfg.use_vmac_addr
            if needs:
                dev = self._addr_vmac(cfg, dev, family)
                extra.add(dev)
            return dataclasses.replace(address_spec(v, dev), dev=dev)

        vips = [place(v) for v in cfg.virtual_ipaddress if v.address.version == cfg.family]
        excluded = [place(v) for v in cfg.virtual_ipaddress_excluded]
        return vips, excluded, extra

    def _addr_vmac(self, cfg: VrrpInstance, base: str, family: int) -> str:
        """The VMAC of ``base`` for the addresses of ``family`` (shared by the instances of one VRID)."""
        taken = {i.vmac for i in self.instances.values() if i.vmac is not None}
        return self._ensure_vmac(cfg, Vmac(None, base, vmac_address(cfg, family), family), taken)

    def _release_addr_vmacs(
        self, inst: Instance, keep: Collection[str] = (), *, all_of_them: bool = False
    ) -> None:
        """Delete the address VMACs ``inst`` no longer uses and no other instance does (``all_of_them``: at
        stop, whoever uses them)."""
        for name in inst.addr_vmacs - set(keep):
            users = (other for other in self.instances.values() if other is not inst)
            if not all_of_them and any(name in other.addr_vmacs for other in users):
                continue
            self._delete_vmac(inst.name, name)

    def _firewall_for(self) -> VrrpFirewall:
        if self._firewall is None:
            gd = self.config.global_defs
            self._firewall = VrrpFirewall(
                gd.nftables or DEFAULT_TABLE, priority=gd.nftables_priority, counters=gd.nftables_counters
            )
        return self._firewall

    def _remove_vmac(self, inst: Instance) -> None:
        """Delete ``inst``'s VMAC (its addresses are gone or going with it)."""
        if inst.vmac is not None:
            self._delete_vmac(inst.name, inst.vmac)

    def _socket_for(
        self, inst: VrrpInstance, vmac: str | None = None
    ) -> tuple[VrrpSocket, list[IPAddress], IPAddress]:
        """The socket ``inst`` sends and receives on (shared by the instances of one interface, family and
        mode), its destinations and its source address; OSError when the interface cannot be used. With a
        VMAC that sends the adverts, the socket is on it, the source address still the interface's."""
        gd = self.config.global_defs
        base = inst.interface or gd.default_interface or ""
        wanted = vmac_of(inst, gd)
        ifname = vmac if vmac is not None and wanted is not None and wanted.sends_adverts else base
        family = socket.AF_INET6 if inst.family == 6 else socket.AF_INET
        unicast = bool(inst.unicast_peer)
        source = inst.unicast_src_ip if unicast else inst.mcast_src_ip
        if source is None:
            source = primary_address(base, family)
        if source is None:
            raise OSError(f"vrrp_instance {inst.name}: interface {base} has no IPv{inst.family} address")
        if unicast:
            key = (ifname, family, f"unicast {source}")
            sock = self._sockets.get(key) or VrrpSocket.unicast(ifname, family, source, ttl=inst.unicast_ttl)
            destinations: list[IPAddress] = [p.address for p in inst.unicast_peer]
        else:
            group = gd.vrrp_mcast_group4 if family == socket.AF_INET else gd.vrrp_mcast_group6
            key = (ifname, family, f"multicast {group}")
            sock = self._sockets.get(key) or VrrpSocket.multicast(ifname, family, group, src=source)
            destinations = [group]
        self._sockets[key] = sock
        return sock, destinations, source

    def _expect(
        self, inst: VrrpInstance, params: Params, vips: list[AddressSpec], source: IPAddress, unicast: bool
    ) -> Expect:
        """What an advert for this instance must look like (receive checks)."""
        gd = self.config.global_defs
        auth = inst.authentication
        use_pass = auth is not None and auth.auth_type == "PASS" and params.version == 2
        return Expect(
            version=params.version,
            advert_int=params.advert_int,
            addresses=frozenset(v.address.ip for v in vips),
            local_addresses=frozenset({source}),
            auth_type=AUTH_SIMPLE if use_pass else AUTH_NONE,
            auth_data=password_field(auth.auth_pass) if use_pass and auth else b"",
            unicast=unicast,
            peers=tuple((p.address, p.min_ttl, p.max_ttl) for p in inst.unicast_peer),
            check_unicast_src=_first(inst.check_unicast_src, gd.vrrp_check_unicast_src),
            skip_check_adv_addr=_first(inst.skip_check_adv_addr, gd.vrrp_skip_check_adv_addr),
        )

    async def run(self, *, resume_master: Iterable[str] = ()) -> None:
        """Start every instance and serve until :meth:`stop`; instances in ``resume_master`` resume MASTER."""
        self._loop = asyncio.get_running_loop()
        if not self.instances and not self.unusable:
            self.open()
        self._timer = DeadlineTimer(self._loop, self._on_timer)
        resume = set(resume_master)
        for fd in self._by_socket:
            self._loop.add_reader(fd, self._on_readable, fd)
        if self._links is not None:
            self._loop.add_reader(self._links.fileno(), self._on_link_events)
        self._watch_routing()
        if self.trackers is not None:
            self._scripts = ScriptScheduler(self.trackers, on_change=self._on_tracking)
            self._files = FileWatcher(self.trackers, on_change=self._on_tracking)
            self._files.start()  # reads the files now: the machines start with their values
            self._processes = self._process_watcher()
            self._processes.start()  # reads the process table now, then follows process events
            for name in self.instances:
                self._apply_tracking_now(name)
        for inst in self.instances.values():
            if inst.name not in resume:
                self._remove_residual(inst)
        self._static(self.config, add=True)
        now = self._loop.time()
        delay = self.config.global_defs.vrrp_startup_delay
        if delay > 0 and not resume:
            # keepalived's vrrp_startup_delay (at start, not at a reload or a child restart): no instance
            # takes over before it ends
            log.info("Delaying startup for %g seconds", delay)
            for inst in self.instances.values():
                inst.machine.hold_until = now + delay
        for inst in self.instances.values():
            was_master = inst.name in resume
            if was_master:
                inst.holds_addresses = True
            self._start_or_hold(inst, now, resume_master=was_master)
        if self._scripts is not None:
            self._scripts.start()
        gd = self.config.global_defs
        self.fifo_scripts.start(
            gd,
            self._fifos,
            (
                ("", gd.notify_fifo, gd.notify_fifo_script),
                ("vrrp", gd.vrrp_notify_fifo, gd.vrrp_notify_fifo_script),
            ),
        )
        for cfg in self._fault_at_start:
            self._notify_state(cfg, State.FAULT, cfg.priority)
        self._fault_at_start.clear()
        if self.config.global_defs.dynamic_interfaces:
            self._interface_watch = self._loop.create_task(self._watch_interfaces())
        await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    async def shutdown(self) -> None:
        """Priority 0 from every MASTER, addresses released (unless kept), stop scripts, sockets closed."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for inst in self.instances.values():
            actions = inst.machine.stop(now, release=self.release_on_stop)
            self._execute(inst, actions, stop=True)
        for task in list(self._announce_tasks):
            task.cancel()
        if self._lvs_sync is not None:
            self._lvs_sync.stop()
        self._static(self.config, add=False)  # keepalived removes them at every stop
        if self._firewall is not None and self.release_on_stop:
            self._firewall.close()  # kept, with the addresses, under --dont-release-vrrp
        if self._interface_watch is not None:
            self._interface_watch.cancel()
        if self._route_monitor is not None:
            loop.remove_reader(self._route_monitor.fileno())
            self._route_monitor.close()
        if self._scripts is not None:
            await self._scripts.stop()
        if self._processes is not None:
            await self._processes.stop()
        if self._files is not None:
            await self._files.stop()
        if self._links is not None:
            loop.remove_reader(self._links.fileno())
            self._links.close()
        await loop.run_in_executor(self._addr_pool, lambda: None)  # wait for queued address changes
        if self.release_on_stop:  # kept, with the addresses, under --dont-release-vrrp
            for inst in self.instances.values():
                self._remove_vmac(inst)
                self._release_addr_vmacs(inst, all_of_them=True)
        if self._vmacs is not None:
            self._vmacs.close()
        await self._notify.close()
        if self._mailer is not None:
            await self._mailer.close(timeout=MAIL_GRACE)
        for fd in self._by_socket:
            loop.remove_reader(fd)
        if self._timer is not None:
            self._timer.close()
        for sock in self._sockets.values():
            sock.close()
        for fifo in self._fifos:
            fifo.close()  # unlinked first: a reader script looping on reopen cannot reopen it
        await self.fifo_scripts.stop()
        if self._announcer is not None:
            self._announcer.close()
        if self._addresses is not None:
            self._addresses.close()
        if self._routes is not None:
            self._routes.close()
        self._addr_pool.shutdown(wait=True)

    # --- reload -------------------------------------------------------------------------------------------

    async def reload(self, config: Config) -> dict[str, str]:
        """Switch to ``config`` applying only the differences; what was done to each instance.

        * unchanged instances are not touched (no transition, no address change, no announcement);
        * "soft" changes (priority, advert_int, preemption, GARP settings, addresses, scripts, tracking)
          are applied to the running machine: a MASTER stays MASTER, its next adverts carry the new values,
          only added addresses are programmed and announced and only dropped ones removed;
        * added instances start as at start-up; removed ones stop as at shutdown (priority 0 from a
          MASTER, addresses released);
        * "hard" changes (interface, VRID, address family, version, unicast source or peers,
          authentication, multicast source) restart the instance: it is a different virtual router.
        """
        assert self._loop is not None and self._timer is not None
        old_config, self.config = self.config, config
        old = {i.name: without_locations(i) for i in old_config.vrrp_instances}
        new = {i.name: i for i in config.vrrp_instances}
        outcome: dict[str, str] = {}
        now = self._loop.time()
        for name in list(self.unusable):
            self.unusable.pop(name)
            if name in new:
                outcome[name] = "retried"
        vmacs_going = False
        for name, inst in list(self.instances.items()):
            cfg = new.get(name)
            if cfg is None or _identity(cfg) != _identity(inst.config):
                vmacs_going = vmacs_going or inst.vmac is not None or bool(inst.addr_vmacs)
            if cfg is None:
                self._close_instance(inst, now)
                outcome[name] = "removed"
            elif _identity(cfg) != _identity(inst.config):
                self._close_instance(inst, now)
                outcome[name] = "restarted"
        if vmacs_going:
            # their VMACs go after their addresses, on the address worker: gone before successors make theirs
            await self._loop.run_in_executor(self._addr_pool, lambda: None)
        self._static(old_config, add=False, only=config)  # static entries the new configuration drops
        self._static(config, add=True, only=old_config)  # and those it adds
        # trackers: rebuilt for the new configuration, handing over every script, file and link state
        if self._scripts is not None:
            await self._scripts.stop()
        if self._files is not None:
            await self._files.stop()
        if self._processes is not None:
            await self._processes.stop()
        self.trackers = Trackers(config, disabled_scripts=unusable_scripts(config), previous=self.trackers)
        if self._links is not None:
            for ifname in self.trackers.tracked_interfaces():
                if ifname not in self.trackers.links:
                    self.trackers.set_link(ifname, bool(self._links.state(ifname)))
        started: list[Instance] = []
        for name, cfg in new.items():
            running = self.instances.get(name)
            if running is None:
                created = self._open_instance(cfg)
                outcome.setdefault(name, "added")
                if created is not None:
                    started.append(created)
                    fd = created.socket.fileno()
                    if len(self._by_socket[fd]) == 1:
                        self._loop.add_reader(fd, self._on_readable, fd)
            elif without_locations(cfg) == old.get(name):
                outcome[name] = "unchanged"
            else:
                self._update_instance(running, cfg)
                outcome[name] = "updated"
        self._build_groups()
        self._garp_groups()
        self._reload_lvs_sync(config)
        self._scripts = ScriptScheduler(self.trackers, on_change=self._on_tracking)
        self._files = FileWatcher(self.trackers, on_change=self._on_tracking)
        self._files.start(reload=True)
        self._processes = self._process_watcher()
        self._processes.start()
        for name in self.instances:
            self._apply_tracking_now(name)
        for inst in started:
            self._remove_residual(inst)
            self._start_or_hold(inst, now)
        self._watch_routing()
        self._scripts.start()
        for name, what in sorted(outcome.items()):
            log.info("(%s) reload: %s", name, what)
        return outcome

    def _reload_lvs_sync(self, config: Config) -> None:
        """A changed lvs_sync_daemon: the old daemon stopped, the new one run for its instance's state."""
        new = config.global_defs.lvs_sync_daemon
        old = self._lvs_sync
        if (old.config if old is not None else None) == new:
            return
        if old is not None:
            old.stop()
        self._lvs_sync = LvsSync(new) if new is not None else None
        inst = self.instances.get(new.instance) if new is not None else None
        if self._lvs_sync is not None and inst is not None and inst.machine.state is not State.INIT:
            self._lvs_sync.follow(inst.machine.state is State.MASTER)

    def _close_instance(self, inst: Instance, now: float) -> None:
        """Remove an instance at a reload and forget it (its socket is closed when nobody else uses it), as
        keepalived's ``clear_diff_vrrp()``: a MASTER sends priority 0 and releases its addresses; the
        notifications say FAULT (keepalived's old way, its default) unless the instance was in FAULT
        already -- or DELETED, with its ``notify_deleted`` script, when that is set."""
        assert self._loop is not None and self._timer is not None
        was = inst.machine.state
        self._execute(inst, inst.machine.stop(now, release=True), stop=True, silent=True)
        cfg = inst.config
        if cfg.notify_deleted is not None:
            self._notify_state(cfg, "DELETED", inst.machine.priority, script=cfg.notify_deleted.script)
        elif was is not State.FAULT:
            self._notify_state(cfg, State.FAULT, inst.machine.priority)
        for task in list(inst.announcing):
            task.cancel()
        self._timer.set(inst.name, None)
        self._held.discard(inst.name)
        del self.instances[inst.name]
        self._release_socket(inst)
        if inst.vmac is not None or inst.addr_vmacs:
            # after its addresses: queued on the address worker behind their removal
            self._addr_jobs.append(self._addr_pool.submit(self._remove_vmac, inst))
            self._addr_jobs.append(self._addr_pool.submit(self._release_addr_vmacs, inst))

    def _release_socket(self, inst: Instance) -> None:
        """``inst`` no longer uses its socket: closed once no other instance does."""
        assert self._loop is not None
        fd = inst.socket.fileno()
        demux = self._by_socket.get(fd, {})
        if demux.get(inst.config.virtual_router_id) is inst:
            demux.pop(inst.config.virtual_router_id)
        if not demux:
            self._by_socket.pop(fd, None)
            if fd >= 0:
                self._loop.remove_reader(fd)
            for key, sock in list(self._sockets.items()):
                if sock is inst.socket:
                    del self._sockets[key]
            inst.socket.close()

    # --- dynamic_interfaces -------------------------------------------------------------------------------

    def _rebind(self, ifname: str, ifindex: int) -> bool:
        """Interface ``ifname`` is up as ``ifindex``: move the instances whose socket still belongs to an
        earlier interface of that name (deleted and created again) onto it. False when it cannot be used
        yet (no address): the instances stay in FAULT and it is tried again."""
        assert self._loop is not None
        stale = [
            i for i in self.instances.values() if i.socket.ifname == ifname and i.socket.ifindex != ifindex
        ]
        for inst in stale:
            self._release_socket(inst)
        moved = True
        for inst in stale:
            try:
                sock, destinations, source = self._socket_for(inst.config, inst.vmac)
            except OSError as err:
                log.warning("(%s) interface %s is back but cannot be used yet: %s", inst.name, ifname, err)
                self._lost.add(inst.name)
                moved = False
                continue
            self._lost.discard(inst.name)
            params = inst.machine.params
            if source != params.local_address:
                inst.machine.params = dataclasses.replace(params, local_address=source)
            inst.socket, inst.destinations, inst.source = sock, destinations, source
            inst.expect = self._expect(
                inst.config, inst.machine.params, inst.vips, source, bool(inst.config.unicast_peer)
            )
            demux = self._by_socket.setdefault(sock.fileno(), {})
            if not demux:
                self._loop.add_reader(sock.fileno(), self._on_readable, sock.fileno())
            demux[inst.config.virtual_router_id] = inst
            log.info("(%s) using interface %s again (index %d)", inst.name, ifname, ifindex)
        for inst in self.instances.values():
            if inst.name in self._lost and inst.socket.ifname == ifname:
                moved = False
        return moved

    def _restore_vmacs(self, base: str) -> None:
        """dynamic_interfaces: interface ``base`` is back; the kernel deleted its VMACs with it: make them
        again (their link events then move the instances' sockets onto them, as for any interface)."""
        if self._vmacs is None or self._links is None:
            return
        for inst in self.instances.values():
            if inst.vmac is None:
                continue
            vmac = self._vmacs.made.get(inst.vmac)
            if vmac is None or vmac.base != base or self._links.link(inst.vmac) is not None:
                continue
            try:
                self._vmacs.ensure(vmac, inst.vmac)
                self._firewall_for().add_vmac(inst.vmac, vmac.base, vmac.family)
            except (OSError, NftError) as err:
                log.error("(%s) cannot make VMAC %s again: %s", inst.name, inst.vmac, err)

    def _retry_unusable(self) -> None:
        """dynamic_interfaces: start the instances whose interface was missing, once it is there."""
        assert self._loop is not None
        started: list[Instance] = []
        assert self._links is not None
        gd = self.config.global_defs
        for cfg in self.config.vrrp_instances:
            if cfg.name not in self.unusable or cfg.name in self.instances:
                continue
            if not self._links.state(cfg.interface or gd.default_interface or ""):
                continue  # not there, or not up yet: the instance would only go FAULT again
            del self.unusable[cfg.name]
            inst = self._open_instance(cfg, quiet=True)  # back among the unusable when it fails again
            if inst is None:
                continue
            log.info("(%s) interface %s is there: starting the instance", cfg.name, inst.ifname)
            fd = inst.socket.fileno()
            if len(self._by_socket[fd]) == 1:
                self._loop.add_reader(fd, self._on_readable, fd)
            started.append(inst)
        if not started:
            return
        self._build_groups()
        assert self.trackers is not None and self._links is not None
        for ifname in self.trackers.tracked_interfaces():
            self.trackers.set_link(ifname, bool(self._links.state(ifname)))
        now = self._loop.time()
        for inst in started:
            self._apply_tracking_now(inst.name)
            self._remove_residual(inst)
            self._start_or_hold(inst, now)

    async def _watch_interfaces(self) -> None:
        """dynamic_interfaces: every second, retry what waits for an interface (missing at start, or back
        without an address yet); link events retry at once."""
        while True:
            await asyncio.sleep(INTERFACE_RETRY)
            self._retry_interfaces()

    def _retry_interfaces(self) -> None:
        assert self._links is not None and self.trackers is not None
        if self.unusable:
            self._retry_unusable()
        changed: set[str] = set()
        for ifname in {i.ifname for i in self.instances.values() if i.name in self._lost}:
            info = self._links.link(ifname)
            if info is not None and info.up and self._rebind(ifname, info.ifindex):
                changed |= self.trackers.set_link(ifname, True)
        self._on_tracking(changed)

    def _update_instance(self, inst: Instance, cfg: VrrpInstance) -> None:
        """Apply a soft change to a running instance."""
        gd = self.config.global_defs
        machine = inst.machine
        params = instance_params(cfg, gd, inst.source)
        old_advert_int = machine.params.advert_int
        machine.params = params
        if machine.state is not State.BACKUP and params.advert_int != old_advert_int:
            machine.master_adver_int = params.advert_int
        vips, excluded, extra = self._address_specs(cfg, inst.vmac)
        self._release_addr_vmacs(inst, keep=extra)
        inst.addr_vmacs = extra
        before = {str(v): v for v in (*inst.vips, *inst.excluded)}
        after = {str(v): v for v in (*vips, *excluded)}
        added = [v for k, v in after.items() if k not in before]
        dropped = [v for k, v in before.items() if k not in after]
        old = inst.config
        routing = [_changed(getattr(old, a), getattr(cfg, a)) for a in ("virtual_routes", "virtual_rules")]
        inst.config = cfg
        inst.vips, inst.excluded = vips, excluded
        inst.expect = self._expect(cfg, params, vips, inst.source, bool(cfg.unicast_peer))
        inst.status.base_priority = cfg.priority
        inst.status.vips = [str(v.address) for v in vips]
        if inst.holds_addresses and (added or dropped or any(a or d for a, d in routing)):
            (add_routes, drop_routes), (add_rules, drop_rules) = routing
            self._program_specs(inst, added, dropped, (add_routes, add_rules), (drop_routes, drop_rules))
            if added and machine.state is State.MASTER:
                self._announce(inst, params.garp_master_repeat, only=added)

    # --- events -------------------------------------------------------------------------------------------

    def _run_event(self, inst: Instance, event: Callable[[], list[Action]]) -> None:
        """Apply an event to an instance (through its sync group) and carry out the actions."""
        assert self._loop is not None
        if inst.sync is None:
            results = {inst.name: event()}
        else:
            results = inst.sync.run(inst.machine, self._loop.time(), event)
        for name, actions in results.items():
            target = self.instances[name]
            self._execute(target, actions)
            self._reschedule(target)
        if inst.sync is not None:
            self._group_notify(inst.sync, results)

    def _reschedule(self, inst: Instance) -> None:
        assert self._timer is not None
        # A BACKUP's only deadline is its Master_Down timer: it fires only on a takeover, precisely.
        machine = inst.machine
        self._timer.set(inst.name, machine.deadline, precise=machine.state is State.BACKUP,
                        early=machine.deadline_early)

    def _on_timer(self, name: Hashable) -> None:
        assert self._loop is not None
        inst = self.instances.get(str(name))
        if inst is None:
            return
        # A busy loop may run this timer before the reader of an advert that arrived in time: take what
        # waits in the instance's socket first (at its kernel arrival time), so a Master_Down timer never
        # fires past an advert that reset it.
        self._take_waiting(inst)
        now = self._loop.time()
        self._run_event(inst, lambda: inst.machine.tick(now))

    def _advert_waiting(self, inst: Instance) -> bool:
        """True when a packet waits to be read on ``inst``'s socket (a poll, nothing is consumed)."""
        try:
            ready, _, _ = select.select([inst.socket.fileno()], [], [], 0)
        except (OSError, ValueError):
            return True  # cannot tell: take the path that reads first
        return bool(ready)

    def _take_waiting(self, inst: Instance) -> None:
        """Process the packets waiting in ``inst``'s socket now, rather than when its reader runs."""
        fd = inst.socket.fileno()
        demux = self._by_socket.get(fd)
        if demux is not None and demux.get(inst.config.virtual_router_id) is inst:
            self._on_readable(fd)

    def _on_readable(self, fd: int) -> None:
        demux = self._by_socket.get(fd)
        if not demux:
            return
        sock = next(iter(demux.values())).socket
        for _ in range(64):  # bounded per wake-up so one flooded socket cannot starve the others
            try:
                received = sock.recv()
            except PacketError as err:  # a malformed IP header: consumed, counted, next packet
                any_instance = next(iter(demux.values()))
                any_instance.status.drops[err.reason.value] += 1
                continue
            except OSError as err:
                log.warning("receive error on %s: %s", sock.ifname, err)
                return
            if received is None:
                return
            arrived = None
            if received.timestamp is not None:
                # The kernel's arrival time on the loop's clock (never later than now, never older than 1 s)
                age = min(max(time.time() - received.timestamp, 0.0), 1.0)
                arrived = self._loop.time() - age if self._loop is not None else None
            self._on_packet(demux, received.payload, received.src, received.dst, received.ttl, arrived)

    def _on_packet(
        self,
        demux: dict[int, Instance],
        payload: bytes,
        src: IPAddress,
        dst: IPAddress,
        ttl: int | None,
        arrived: float | None = None,
    ) -> None:
        assert self._loop is not None
        vrid = payload[1] if len(payload) > 1 else 0
        inst = demux.get(vrid)
        if inst is not None:
            # the steady state: the master's advert of a second ago again, to the same verdict
            inputs = (payload, src, dst, ttl, inst.machine.master_address)
            last = inst.accepted
            if last is not None and last[0] is inst.expect and last[1] == inputs:
                priority, adver_int, counter = last[2]
                self._accept(inst, src, priority, adver_int, counter, arrived)
                return
        try:
            decoded = decode(payload, src=src, dst=dst)
        except PacketError as err:
            if inst is None:
                inst = next(iter(demux.values()))
            self._drop(inst, err.reason.value, err.detail, src)
            return
        if inst is None:
            return  # another router's VRID: not ours to judge
        verdict = check(
            inst.expect, decoded, src=src, dst=dst, ttl=ttl, current_master=inst.machine.master_address
        )
        if not verdict.ok:
            assert verdict.reason is not None
            self._drop(inst, verdict.reason.value, verdict.detail, src)
            return
        pkt = decoded.packet
        counter = checksum_counter(decoded)
        inst.accepted = (inst.expect, inputs, (pkt.priority, pkt.adver_int, counter))
        self._accept(inst, src, pkt.priority, pkt.adver_int, counter, arrived)

    def _accept(
        self, inst: Instance, src: IPAddress, priority: int, adver_int: float, counter: str,
        arrived: float | None,
    ) -> None:
        assert self._loop is not None
        inst.status.checksums[counter] += 1
        now = arrived if arrived is not None else self._loop.time()
        self._run_event(inst, lambda: inst.machine.advert(now, src, priority, adver_int))

    def _drop(self, inst: Instance, reason: str, detail: str, src: IPAddress) -> None:
        inst.status.drops[reason] += 1
        now = time.monotonic()
        if now - inst.drop_logged.get(reason, -DROP_LOG_INTERVAL) >= DROP_LOG_INTERVAL:
            inst.drop_logged[reason] = now
            log.info(
                "(%s) dropped advert from %s: %s (%d so far)",
                inst.name,
                src,
                detail,
                inst.status.drops[reason],
            )

    # --- tracking -----------------------------------------------------------------------------------------

    def _on_link_events(self) -> None:
        assert self._links is not None and self.trackers is not None
        dynamic = self.config.global_defs.dynamic_interfaces
        changed: set[str] = set()
        for event in self._links.poll():
            what = "deleted" if event.deleted else "up" if event.up else "down"
            log.info("interface %s is %s", event.ifname, what)
            if event.up and dynamic:
                self._restore_vmacs(event.ifname)
                if not self._rebind(event.ifname, event.ifindex):
                    continue  # its instances stay in FAULT until they can use it (retried)
            changed |= self.trackers.set_link(event.ifname, event.up)
        self._on_tracking(changed)
        if dynamic and self.unusable:
            self._retry_unusable()

    def _static(self, config: Config, *, add: bool, only: Config | None = None) -> None:
        """Install (``add``) or remove ``config``'s static_ipaddress, static_routes and static_rules, on the
        address worker, in order; ``only``: just what ``only`` does not have (a reload's difference).
        Installing is idempotent: a restarted child finds them in place and changes nothing."""
        gd = config.global_defs
        addresses = [address_spec(v, v.dev or gd.default_interface or "") for v in config.static_ipaddress]
        routes, rules = list(config.static_routes), list(config.static_rules)
        if only is not None:
            theirs: tuple[object, ...] = (*only.static_ipaddress, *only.static_routes, *only.static_rules)
            other = {without_locations(x) for x in theirs}
            keep = [v for v in config.static_ipaddress if without_locations(v) not in other]
            addresses = [address_spec(v, v.dev or gd.default_interface or "") for v in keep]
            routes = [r for r in routes if without_locations(r) not in other]
            rules = [r for r in rules if without_locations(r) not in other]
        addresses = [a for a in addresses if a.dev]
        if not (addresses or routes or rules):
            return
        assert self._addresses is not None
        manager = self._addresses
        if self._routes is None and (routes or rules):
            self._routes = RouteManager()
        route_manager = self._routes

        def work() -> None:
            failures: list[tuple[object, OSError]] = []
            try:
                if add:
                    manager.add(addresses)
                elif addresses:
                    manager.remove(addresses)
            except OSError as err:
                log.error("cannot %s static addresses: %s", "add" if add else "remove", err)
            if route_manager is not None:
                do = route_manager.add if add else route_manager.remove
                failures.extend(do(routes, rules))
            for item, problem in failures:
                log.error("static entry at %s: cannot %s it: %s", getattr(item, "location", "?"),
                          "add" if add else "remove", problem)

        self._addr_jobs.append(self._addr_pool.submit(work))

    def _reinstate_static(self, deleted: Deleted) -> bool:
        """keepalived's reinstate_static_route/rule: a tracked static entry deleted behind our back is added
        again -- when it watches such deletions at all, which (without track_group, not implemented) is when
        a tracked virtual route (for a route) or rule (for a rule) of the same family has it watch them."""
        statics: tuple[Route | Rule, ...] = (*self.config.static_routes, *self.config.static_rules)
        static = next((x for x in statics if x.track and matches(deleted, x)), None)
        if static is None:
            return False
        kind = Route if isinstance(static, Route) else Rule
        watched = any(
            isinstance(x, kind) and x.track and x.family == static.family
            for i in self.instances.values()
            for x in _routing(i.config)
        )
        if watched:
            log.warning("static entry at %s was deleted: adding it again", static.location)
            only = dataclasses.replace(
                self.config,
                static_ipaddress=(),
                static_routes=tuple(x for x in self.config.static_routes if x is static),
                static_rules=tuple(x for x in self.config.static_rules if x is static),
            )
            self._static(only, add=True)
        return True

    def _watch_routing(self) -> None:
        """Watch route and rule deletions once some instance tracks a virtual route or rule."""
        assert self._loop is not None
        tracked = any(x.track for i in self.instances.values() for x in _routing(i.config))
        if self._route_monitor is None and tracked:
            self._route_monitor = RouteMonitor()
            self._loop.add_reader(self._route_monitor.fileno(), self._on_routing_events)

    def _on_routing_events(self) -> None:
        """keepalived: a tracked virtual route or rule of a MASTER deleted behind its back sends the instance
        (and its sync group's MASTERs) to BACKUP for a quick return; deletions while not MASTER (ours, as
        we leave MASTER) are ignored."""
        assert self._route_monitor is not None and self._loop is not None
        for deleted in self._route_monitor.poll():
            if self._reinstate_static(deleted):
                continue
            for inst in list(self.instances.values()):
                if inst.machine.state is not State.MASTER:
                    continue
                lost = next((x for x in _routing(inst.config) if x.track and matches(deleted, x)), None)
                if lost is None:
                    continue
                what = "virtual_routes" if isinstance(lost, Route) else "virtual_rules"
                log.warning("(%s) %s entry at %s was deleted: leaving MASTER", inst.name, what, lost.location)
                now = self._loop.time()
                self._run_event(inst, functools.partial(inst.machine.routing_lost, now))
                for member in self._group_of(inst):
                    if member is not inst:
                        member.machine.quick_return(now)
                        self._reschedule(member)

    def _process_watcher(self) -> ProcessWatcher:
        assert self.trackers is not None
        return ProcessWatcher(self.trackers, on_change=self._on_tracking, home_netns=self.home_netns)

    def _on_tracking(self, names: Iterable[str]) -> None:
        if self._loop is None:
            return
        for name in names:
            if name in self.instances:
                self._apply_tracking_now(name)

    def _apply_tracking_now(self, name: str) -> None:
        """Hand an instance's tracked priority and fault state to its machine (once it has started)."""
        assert self.trackers is not None and self._loop is not None
        inst = self.instances[name]
        tracking = self.trackers.instance(name)
        inst.status.tracking = tracking.reasons()
        # A script with no first result yet holds an instance in INIT (see _start_or_hold), never in FAULT.
        priority, fault = tracking.priority(), tracking.failing()
        if inst.machine.state is State.INIT:
            inst.machine.priority = priority
            inst.machine.faulted = fault
            inst.status.effective_priority = priority
            if name in self._held:
                self._release_held(inst)
            return
        now = self._loop.time()
        if priority != inst.machine.priority:
            self._run_event(inst, lambda: inst.machine.set_priority(now, priority))
            self._priority_changed(inst)
        if fault != inst.machine.faulted:
            self._run_event(inst, lambda: inst.machine.set_fault(now, fault))

    def _start_or_hold(self, inst: Instance, now: float, *, resume_master: bool = False) -> None:
        """Start ``inst``, unless it (or a member of its sync group) tracks a weight-0 script that has no
        result yet: keepalived then holds the instance silently (no FAULT, no notification, no advert)
        until the first result, which starts it (BACKUP) or faults it (FAULT, notified). A restarted child
        resuming MASTER does not wait: its addresses and adverts carry on (no flap)."""
        if not resume_master and self._held_by_scripts(inst):
            self._held.add(inst.name)
            log.info("(%s) waiting for the first result of its tracked scripts", inst.name)
            self._sync_status(inst)
            return
        self._run_event(inst, functools.partial(inst.machine.start, now, resume_master=resume_master))

    def _group_of(self, inst: Instance) -> list[Instance]:
        if inst.sync is None:
            return [inst]
        return [i for i in self.instances.values() if i.sync is inst.sync]

    def _held_by_scripts(self, inst: Instance) -> bool:
        """keepalived's ``num_script_init`` (of the instance, or of any member of its sync group), unless a
        tracker really fails, which is a FAULT to notify at once."""
        if self.trackers is None:
            return False
        tracked = [self.trackers.instance(m.name) for m in self._group_of(inst)]
        return any(t.initialising() for t in tracked) and not any(t.failing() for t in tracked)

    def _release_held(self, inst: Instance) -> None:
        """The scripts holding ``inst`` (and its group) reported: start every held member."""
        if self._held_by_scripts(inst):
            return
        assert self._loop is not None
        now = self._loop.time()
        for member in self._group_of(inst):
            if member.name in self._held:
                self._held.discard(member.name)
                self._run_event(member, functools.partial(member.machine.start, now, held=True))

    def set_priority(self, name: str, priority: int) -> None:
        inst = self.instances[name]
        assert self._loop is not None
        now = self._loop.time()
        inst.status.effective_priority = priority
        changed = priority != inst.machine.priority
        self._run_event(inst, lambda: inst.machine.set_priority(now, priority))
        if changed:
            self._priority_changed(inst)

    def _priority_changed(self, inst: Instance) -> None:
        """``notify_priority_changes`` (the instance's, its sync group's, else the global one): a FIFO line
        MASTER_PRIORITY or BACKUP_PRIORITY with the new effective priority (keepalived writes only that)."""
        cfg = inst.config
        enabled = cfg.notify_priority_changes
        if enabled is None and inst.sync is not None:
            group = next((g for g in self.config.vrrp_sync_groups if g.name == inst.sync.name), None)
            enabled = group.notify_priority_changes if group is not None else None
        if enabled is None:
            enabled = self.config.global_defs.vrrp_notify_priority_changes
        if enabled:
            event = "MASTER_PRIORITY" if inst.machine.state is State.MASTER else "BACKUP_PRIORITY"
            for fifo in self._fifos:
                fifo.write_line(fifo_line_instance(cfg.name, event, inst.machine.priority))

    def set_fault(self, name: str, faulted: bool) -> None:
        inst = self.instances[name]
        assert self._loop is not None
        now = self._loop.time()
        self._run_event(inst, lambda: inst.machine.set_fault(now, faulted))

    # --- actions ------------------------------------------------------------------------------------------

    def _execute(
        self, inst: Instance, actions: list[Action], *, stop: bool = False, silent: bool = False
    ) -> None:
        """Carry out ``actions``; ``silent``: transitions run no notification (the caller sends its own)."""
        transitions: list[State] = []
        for action in actions:
            if isinstance(action, fsm.SendAdvert):
                self._send_advert(inst, action.priority)
            elif isinstance(action, fsm.AddAddresses):
                inst.holds_addresses = True
                self._program(inst, add=True)
                self._filter(inst, drop=True)
                self._extra_if(inst)
            elif isinstance(action, fsm.RemoveAddresses):
                for task in list(inst.announcing):
                    task.cancel()  # no announcement of addresses we no longer hold
                if inst.holds_addresses:
                    inst.holds_addresses = False
                    self._program(inst, add=False)
                    self._filter(inst, drop=False)
            elif isinstance(action, fsm.Announce):
                self._announce(inst, action.repeat)
            elif isinstance(action, fsm.Transition):
                self._transition(inst, action, stop=stop, silent=silent)
                transitions.append(action.new)
            elif isinstance(action, fsm.LowerPriorityHeard) and inst.config.notify_master_rx_lower_pri:
                self._run_script(inst.config.notify_master_rx_lower_pri)
        self._sync_status(inst)
        if self.on_transition is not None:
            for new in transitions:
                self.on_transition(inst.name, new)

    def _send_advert(self, inst: Instance, priority: int) -> None:
        p = inst.machine.params
        sent = inst.adverts
        if (sent is None or sent[0] != priority or sent[1] is not inst.expect or sent[2] is not p
                or sent[3] is not inst.socket):
            auth_type = inst.expect.auth_type
            pkt = VrrpPacket(
                version=p.version,
                type=1,
                vrid=inst.config.virtual_router_id,
                priority=priority,
                max_adver_int_cs=round(p.advert_int * 100),
                addresses=tuple(v.address.ip for v in inst.vips),
                auth_type=auth_type,
                auth_data=inst.expect.auth_data if auth_type == AUTH_SIMPLE else b"",
            )
            datagrams = [
                inst.socket.prepare(
                    encode(pkt, src=inst.source, dst=dst, v3_checksum_as_v2=inst.config.v3_checksum_as_v2),
                    dst,
                    src=inst.source,
                )
                for dst in inst.destinations
            ]
            sent = inst.adverts = (priority, inst.expect, p, inst.socket, datagrams)
        for datagram in sent[4]:
            try:
                inst.socket.send_prepared(datagram)
            except OSError as err:
                log.warning("(%s) cannot send advert to %s: %s", inst.name, datagram.address[0], err)
                inst.status.drops["send_error"] += 1

    def _filter(self, inst: Instance, *, drop: bool) -> None:
        """keepalived's vrrp_strict / no_accept filter: a MASTER without accept mode drops traffic to and from
        its addresses; leaving MASTER lets it through again. keepalived built with nftables installs it
        whether or not ``nftables`` is given (the keyword names the table)."""
        gd = self.config.global_defs
        if accept_mode(inst.config, gd):
            return
        addresses = [(v.address.ip, v.dev) for v in (*inst.vips, *inst.excluded)]
        # keepalived keys link-local VIPs by interface name when the instance does not track its interface
        # (it may be deleted and come back with another index) and nftables_ifindex does not say otherwise
        by_name = inst.config.dont_track_primary and not gd.nftables_ifindex
        try:
            if self._firewall is None and not drop:
                return
            firewall = self._firewall_for()
            (firewall.drop if drop else firewall.allow)(addresses, by_name=by_name)
        except NftError as err:
            log.error("(%s) nftables filter of vrrp_strict/no_accept: %s", inst.name, err)

    def _program(self, inst: Instance, *, add: bool) -> None:
        specs = [*inst.vips, *inst.excluded]
        routing = (inst.config.virtual_routes, inst.config.virtual_rules)
        none: tuple[tuple[Route, ...], tuple[Rule, ...]] = ((), ())
        if add:
            self._program_specs(inst, specs, [], routing, none)
        else:
            self._program_specs(inst, [], specs, none, routing)

    def _program_specs(
        self,
        inst: Instance,
        add: list[AddressSpec],
        remove: list[AddressSpec],
        add_routing: tuple[Sequence[Route], Sequence[Rule]] = ((), ()),
        remove_routing: tuple[Sequence[Route], Sequence[Rule]] = ((), ()),
    ) -> None:
        """Removes then adds addresses: inline when they are few and the address worker has nothing
        queued (a handful of rtnetlink requests, microseconds each: the new MASTER's gratuitous ARPs then
        follow its first advert without a thread hop), else in order on the worker, off the loop."""
        assert self._loop is not None and self._addresses is not None
        manager = self._addresses
        if self._routes is None and any(map(any, (*add_routing, *remove_routing))):
            self._routes = RouteManager()
        routes = self._routes

        Items = tuple[Sequence[Route], Sequence[Rule]]

        def routing(verb: str, items: Items) -> None:
            if routes is None or not (items[0] or items[1]):
                return
            do = routes.add if verb == "add" else routes.remove
            for item, err in do(*items):
                what = "virtual_routes" if isinstance(item, Route) else "virtual_rules"
                log.error("(%s) %s at %s: cannot %s it: %s", inst.name, what, item.location, verb, err)

        def work() -> None:
            routing("remove", remove_routing)  # first: a route may use a leaving address
            for specs, verb, do in ((remove, "remove", manager.remove), (add, "add", manager.add)):
                if not specs:
                    continue
                try:
                    do(specs)
                except OSError as err:
                    log.error("(%s) cannot %s virtual addresses: %s", inst.name, verb, err)
            routing("add", add_routing)  # last: a route may use a new address as its source

        changes = len(add) + len(remove) + sum(map(len, (*add_routing, *remove_routing)))
        if changes <= INLINE_ADDRESS_CHANGES and self._addresses_settled():
            work()
        else:
            self._addr_jobs.append(self._addr_pool.submit(work))

    def _addresses_settled(self) -> bool:
        """True when every address change asked for so far is done (nothing queued on the worker)."""
        self._addr_jobs = [job for job in self._addr_jobs if not job.done()]
        return not self._addr_jobs

    def _remove_residual(self, inst: Instance) -> None:
        assert self._addresses is not None
        try:
            removed = self._addresses.remove_residual([*inst.vips, *inst.excluded])
        except OSError as err:
            log.warning("(%s) cannot check for residual addresses: %s", inst.name, err)
            return
        for spec in removed:
            log.info("(%s) removed residual address %s left by a previous run", inst.name, spec)

    def _announce(self, inst: Instance, repeat: int, *, only: list[AddressSpec] | None = None) -> None:
        assert self._announcer is not None and self._loop is not None
        announcer = self._announcer
        by_dev: dict[str, list[AddressSpec]] = {}
        for spec in only if only is not None else (*inst.vips, *inst.excluded):
            by_dev.setdefault(spec.dev, []).append(spec)

        def holding() -> bool:
            return inst.machine.state is State.MASTER and inst.holds_addresses

        if self._addresses_settled() and not self._advert_waiting(inst):
            # The addresses are in place and no answer waits to be heard: what is due goes out now, in
            # the turn that made this MASTER, right after its first advert (as keepalived does).
            if not holding():
                return  # it gave the addresses up: announcing them would mislead the neighbours
            later: list[Scheduled] = []
            for dev, specs in by_dev.items():
                try:
                    later += announcer.announce(dev, [s.address for s in specs], repeat)
                except OSError as err:
                    log.warning("(%s) cannot announce addresses on %s: %s", inst.name, dev, err)
            if not later:
                return
            later.sort(key=lambda item: item.at)

            async def run() -> None:
                await announcer.send_scheduled(later, proceed=holding)
        else:

            async def run() -> None:
                if not self._addresses_settled():  # the worker is adding them: they must exist first
                    await asyncio.get_running_loop().run_in_executor(self._addr_pool, lambda: None)
                # An advert already waiting (a master answering ours) is heard before anything is
                # announced: a backup that must yield again sends no gratuitous ARP that would outlive
                # its mastership.
                self._take_waiting(inst)
                for dev, specs in by_dev.items():
                    if not holding():
                        return  # it gave the addresses up: announcing them would mislead the neighbours
                    try:
                        plan = announcer.plan(dev, [s.address for s in specs], repeat)
                        await announcer.send_scheduled(plan, proceed=holding)
                    except OSError as err:
                        log.warning("(%s) cannot announce addresses on %s: %s", inst.name, dev, err)

        task = self._loop.create_task(run())
        self._announce_tasks.add(task)
        inst.announcing.add(task)
        task.add_done_callback(self._announce_tasks.discard)
        task.add_done_callback(inst.announcing.discard)

    def _transition(self, inst: Instance, t: fsm.Transition, *, stop: bool, silent: bool = False) -> None:
        st = inst.status
        st.state = t.new.value
        st.last_transition = time.time()
        st.last_reason = t.reason.value
        st.transitions[t.new.value, t.reason.name.lower()] += 1
        log.info("(%s) Entering %s STATE (%s)", inst.name, t.new.value, t.reason.value)
        self.events.emit("vrrp_transition", instance=inst.name, vrid=inst.config.virtual_router_id,
                         **{"from": t.old.value}, to=t.new.value, reason=t.reason.name.lower(),
                         reason_text=t.reason.value, priority=t.priority)
        sync = self._lvs_sync
        if sync is not None and sync.config.instance == inst.name and t.new in (State.MASTER, State.BACKUP,
                                                                                 State.FAULT):
            sync.follow(t.new is State.MASTER)
        if t.new is not State.INIT and not silent:
            self._notify_state(inst.config, t.new, t.priority, stop=stop)

    def _notify_state(
        self,
        cfg: VrrpInstance,
        state: str,
        priority: int,
        *,
        stop: bool = False,
        script: NotifyScript | None = None,
    ) -> None:
        """An instance's notify scripts and FIFO line for entering ``state`` (``script``: the one to run
        instead of the state's own, for DELETED)."""
        own: dict[str, NotifyScript | None] = {
            State.MASTER: cfg.notify_master,
            State.BACKUP: cfg.notify_backup,
            State.FAULT: cfg.notify_fault,
            State.STOP: cfg.notify_stop,
        }
        script = script or own.get(state)
        timeout = STOP_NOTIFY_TIMEOUT if stop else NOTIFY_TIMEOUT
        # A sync group's members run their own scripts too (keepalived: each member's, then the group's).
        self._run_script(script, timeout=timeout)
        args = notify_args("INSTANCE", cfg.name, str(state), priority)
        self._run_script(cfg.notify, args, timeout=timeout)
        for fifo in self._fifos:
            fifo.write_line(fifo_line_instance(cfg.name, str(state), priority))
        gd = self.config.global_defs
        if _first(cfg.smtp_alert, gd.smtp_alert_vrrp, gd.smtp_alert, False):
            self._mail(f"I {cfg.name}", f"VRRP Instance {cfg.name}", str(state), INSTANCE_MAIL)

    def _group_notify(self, group: SyncGroup, results: dict[str, list[Action]]) -> None:
        if not any(isinstance(a, fsm.Transition) for acts in results.values() for a in acts):
            return
        state = group.state
        cfg = next((g for g in self.config.vrrp_sync_groups if g.name == group.name), None)
        if cfg is None or group.notified_state is state:
            return
        group.notified_state = state
        script = {
            State.MASTER: cfg.notify_master,
            State.BACKUP: cfg.notify_backup,
            State.FAULT: cfg.notify_fault,
            State.STOP: cfg.notify_stop,
        }.get(state)
        self._run_script(script)
        self._run_script(cfg.notify, notify_args("GROUP", cfg.name, state.value, 0))
        gd = self.config.global_defs
        if _first(cfg.smtp_alert, gd.smtp_alert_vrrp, gd.smtp_alert, False):
            self._mail(f"G {cfg.name}", f"VRRP Group {cfg.name}", state.value, GROUP_MAIL)
        for fifo in self._fifos:
            fifo.write_line(fifo_line_group(cfg.name, state.value))

    def _mail(self, key: str, what: str, state: str, texts: dict[str, tuple[str, str]]) -> None:
        """keepalived's SMTP alert for an instance or group entering ``state`` (once per change; none for
        FAULT with no_email_faults)."""
        if self._mailer is None or state not in texts or self._mailed.get(key) == state:
            return
        if state == State.FAULT and self.config.global_defs.no_email_faults:
            return
        self._mailed[key] = state
        subject, body = texts[state]
        self._mailer.send(f"{what} - {subject}", body)

    def _run_script(
        self, script: NotifyScript | None, extra: Sequence[str] = (), *, timeout: float = NOTIFY_TIMEOUT
    ) -> None:
        """Queue a notify script (with ``extra`` arguments), if the one script-security rule lets it run (as
        the user it names)."""
        if script is not None:
            argv = (*script.argv, *extra)
            self._notify_scripts.run(self.config.global_defs, argv, timeout=timeout, user=script.user)

    def _sync_status(self, inst: Instance) -> None:
        m = inst.machine
        st = inst.status
        st.state = m.state.value
        st.effective_priority = m.priority
        st.master_address = str(m.master_address) if m.master_address is not None else None

    def status(self, *, trackers: bool = False) -> list[InstanceStatus]:
        """Every instance's status (``trackers``: with each tracked object's state brought up to date)."""
        if trackers and self.trackers is not None:
            registry = self.trackers
            for name, inst in self.instances.items():
                tracking = registry.instances.get(name)
                if tracking is not None and tracking.entries:
                    inst.status.trackers = tracking.states()
        return [inst.status for inst in self.instances.values()] + list(self.unusable.values())
