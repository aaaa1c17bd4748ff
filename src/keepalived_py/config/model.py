"""The typed configuration model: frozen, picklable dataclasses.

Attribute names are keepalived's keyword names (``virtual_router_id``, ``advert_int``, ``lb_kind`` ...), so
the model reads like the configuration file. Durations are float seconds. Every record keeps the
:class:`Location` of the block it came from, for diagnostics raised later (e.g. by the daemons).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network

from keepalived_py.config.diagnostics import Location

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

NOWHERE = Location("<default>", 0)


# --- global_defs --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotifyFifo:
    """A FIFO keepalived writes state lines to, with the optional script that reads it."""

    path: str
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class ScriptUser:
    user: str
    group: str | None = None


@dataclass(frozen=True)
class NotifyScript:
    """A notify-style script keyword (``notify*``, ``quorum_up``/``_down``, ``notify_up``/``_down``, the FIFO
    scripts): the command line, and the user and group named after it (``notify_master "/bin/x arg" nobody
    nogroup``), which keepalived runs it as; None: global_defs' ``script_user`` or the default."""

    argv: tuple[str, ...]
    user: ScriptUser | None = None


@dataclass(frozen=True)
class NotifyDeleted:
    """``notify_deleted [script]``: an instance removed by a reload notifies DELETED (and runs ``script``)."""

    script: NotifyScript | None = None


@dataclass(frozen=True)
class LvsSyncDaemon:
    """``lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]``: the
    kernel's IPVS connection-synchronisation daemon, MASTER while the instance is."""

    interface: str
    instance: str
    #: None: the instance's VRID
    syncid: int | None = None
    maxlen: int = 0
    port: int = 0
    ttl: int = 0
    group: IPv4Address | IPv6Address | None = None


@dataclass(frozen=True)
class GlobalDefs:
    router_id: str | None = None
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None
    smtp_server: tuple[IPAddress, int | None] | None = None
    smtp_helo_name: str | None = None
    smtp_connect_timeout: float = 30.0
    smtp_alert: bool | None = None
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    no_email_faults: bool = False
    no_checker_emails: bool = False
    script_user: ScriptUser | None = None
    enable_script_security: bool = False
    vrrp_version: int = 2
    vrrp_mcast_group4: IPv4Address = IPv4Address("224.0.0.18")
    vrrp_mcast_group6: IPv6Address = IPv6Address("ff02::12")
    vrrp_garp_master_delay: float = 5.0
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: float = 0.0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_lower_prio_delay: float | None = None
    vrrp_garp_lower_prio_repeat: int | None = None
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    vrrp_garp_extra_if: GarpExtraIf | None = None
    #: how the children are scheduled (keepalived's process.c): nice, SCHED_RR, CPUs, mlockall, RLIMIT_RTTIME
    vrrp_priority: int = 0
    vrrp_rt_priority: int = 0
    vrrp_cpu_affinity: tuple[int, ...] = ()
    vrrp_no_swap: bool = False
    vrrp_rlimit_rttime: int | None = None
    checker_priority: int = 0
    checker_rt_priority: int = 0
    checker_cpu_affinity: tuple[int, ...] = ()
    checker_no_swap: bool = False
    checker_rlimit_rttime: int | None = None
    max_auto_priority: int = 0
    min_auto_priority_delay: float = 1.0
    #: keepalived's text dumps (SIGUSR1, SIGUSR2)
    state_dump_file: str = "/tmp/keepalived.data"
    stats_dump_file: str = "/tmp/keepalived.stats"
    vrrp_lower_prio_no_advert: bool = False
    vrrp_higher_prio_send_advert: bool = False
    vrrp_strict: bool = False
    process_names: bool = False
    process_name: str | None = None
    vrrp_process_name: str | None = None
    checker_process_name: str | None = None
    #: the ``nftables`` keyword's table (None: not given; keepalived's default table is then used when a
    #: filter is needed)
    nftables: str | None = None
    nftables_priority: int = -1
    nftables_counters: bool = False
    nftables_ifindex: bool = False
    vrrp_skip_check_adv_addr: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_startup_delay: float = 0.0
    vrrp_min_garp: bool = False
    lvs_flush: bool = False
    checker_log_all_failures: bool = False
    #: (tcp, tcpfin, udp) seconds; 0: left as it is
    lvs_timeouts: tuple[int, int, int] | None = None
    lvs_sync_daemon: LvsSyncDaemon | None = None
    lvs_flush_on_stop: str = "NONE"
    notify_fifo: NotifyFifo | None = None
    notify_fifo_script: NotifyScript | None = None
    vrrp_notify_fifo: NotifyFifo | None = None
    vrrp_notify_priority_changes: bool = False
    vrrp_notify_fifo_script: NotifyScript | None = None
    lvs_notify_fifo: NotifyFifo | None = None
    lvs_notify_fifo_script: NotifyScript | None = None
    child_wait_time: float = 5.0
    default_interface: str | None = None
    dynamic_interfaces: bool = False
    #: kpd: a child silent for this long is hung and restarted (children heartbeat every timeout / 6);
    #: None: derived from the smallest Master_Down_Interval (control.lifecycle.derive_hung_timeout)
    kpd_child_hung_timeout: float | None = None
    #: kpd: (address, port) of the Prometheus endpoint; None: off
    kpd_metrics_listen: tuple[str, int] | None = None


# --- VRRP ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VrrpScript:
    name: str
    script: tuple[str, ...]
    interval: float = 1.0
    timeout: float | None = None
    weight: int = 0
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: ScriptUser | None = None
    init_fail: bool = False
    location: Location = NOWHERE


@dataclass(frozen=True)
class GarpGroup:
    """``garp_group``: the spacing of gratuitous ARPs / NAs on one interface, or shared by several."""

    garp_interval: float | None = None
    gna_interval: float | None = None
    interface: str | None = None
    #: interfaces whose announcements are spaced as one (a switch's limit)
    interfaces: tuple[str, ...] = ()
    location: Location = NOWHERE


@dataclass(frozen=True)
class GarpExtraIf:
    """``garp_extra_if [all] SECONDS``: periodic gratuitous ARPs / NAs on the other interfaces of the VIPs."""

    interval: float
    #: also on interfaces that are not VMACs
    all: bool = False


@dataclass(frozen=True)
class TrackProcess:
    """``vrrp_track_process NAME``: how many processes of a name run moves the instances tracking it."""

    name: str
    #: the process name: /proc/PID/comm, or argv[0] with full_command
    process: str = ""
    #: the parameters after it (argv[1:]), compared as param_match says
    params: tuple[str, ...] = ()
    #: none (parameters not looked at), exact, partial (the first ones match), initial (the last may be
    #: longer)
    param_match: str = "none"
    full_command: bool = False
    weight: int = 0
    weight_reverse: bool = False
    quorum: int = 1
    #: None: no upper bound
    quorum_max: int | None = None
    fork_delay: float = 0.0
    terminate_delay: float = 0.0
    location: Location = NOWHERE


@dataclass(frozen=True)
class TrackFile:
    name: str
    file: str
    weight: int = 1
    weight_reverse: bool = False
    init_file: tuple[int, bool] | None = None  # (initial value, overwrite existing)
    location: Location = NOWHERE


@dataclass(frozen=True)
class VirtualAddress:
    """One virtual_ipaddress line: ``ADDR[/PREFIX] [brd X] [dev IF] [scope S] [label L] ...``."""

    address: IPInterface
    #: an address, or "+" / "-" (computed from the prefix / none), as `ip addr` takes them
    brd: IPv4Address | str | None = None
    dev: str | None = None
    scope: str | None = None
    label: str | None = None
    peer: IPInterface | None = None
    home: bool = False
    #: "-nodad": keep duplicate address detection (keepalived adds VIPs with IFA_F_NODAD otherwise)
    dad: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    no_track: bool = False
    track_group: str | None = None
    preferred_lft: int | None = None
    #: on a VMAC of its own interface (keepalived's per-address VMAC)
    use_vmac: bool = False
    location: Location = NOWHERE


@dataclass(frozen=True)
class Encap:
    """A route's (or nexthop's) lightweight tunnel encapsulation, ``encap ip|ip6|mpls|ila ...``."""

    type: str  # ip, ip6, mpls, ila
    id: int | None = None  # ip, ip6: the tunnel id
    dst: IPAddress | None = None
    src: IPAddress | None = None
    tos: int | None = None  # ip tos, ip6 tc
    ttl: int | None = None  # ip ttl, ip6 hoplimit
    flags: int | None = None
    labels: tuple[int, ...] = ()  # mpls: the label stack
    locator: int | None = None  # ila: the 64-bit locator (its four groups, big-endian)


@dataclass(frozen=True)
class Nexthop:
    """One ``nexthop`` of a multipath route."""

    via: IPAddress | None = None
    dev: str | None = None
    weight: int | None = None  # 1..256, as written (the kernel's hops is weight - 1)
    onlink: bool = False
    realms: int | None = None
    encap: Encap | None = None


@dataclass(frozen=True)
class Route:
    """A ``virtual_routes`` line as keepalived reads it (:mod:`keepalived_py.config.routing`)."""

    family: int  # 4 or 6
    dst: IPv4Network | IPv6Network
    type: str = "unicast"  # unicast, blackhole, unreachable, prohibit, throw
    via: IPAddress | None = None
    src: IPAddress | None = None  # the preferred source (``src``)
    dev: str | None = None
    table: int = 254
    metric: int | None = None
    protocol: int = 18  # keepalived's own unless another is given
    scope: int | None = None  # None: universe
    onlink: bool = False
    #: ``from``: the source prefix of an IPv6 source-specific route
    from_prefix: IPv4Network | IPv6Network | None = None
    tos: int | None = None
    realms: int | None = None
    expires: int | None = None  # IPv6, seconds
    pref: int | None = None  # IPv6 router preference
    ttl_propagate: int | None = None
    #: RTA_METRICS: (RTAX number, value) in the order keepalived sends them; ``lock`` its RTAX_LOCK bits
    metrics: tuple[tuple[int, int | str], ...] = ()
    lock: int = 0
    encap: Encap | None = None
    nexthops: tuple[Nexthop, ...] = ()
    #: how the route is added: prepend (keepalived's default: NLM_F_CREATE), add (also NLM_F_EXCL), append
    mode: str = "prepend"
    #: keepalived watches a tracked route (it names its interface, no ``no_track``)
    track: bool = False
    location: Location = NOWHERE


@dataclass(frozen=True)
class Rule:
    """A ``virtual_rules`` line as keepalived reads it (:mod:`keepalived_py.config.routing`)."""

    family: int
    action: str  # table, goto, nop, blackhole, unreachable, prohibit
    priority: int
    src: IPv4Network | IPv6Network | None = None  # from
    dst: IPv4Network | IPv6Network | None = None  # to
    table: int | None = None
    goto: int | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    invert: bool = False
    protocol: int | None = None
    tos: int = 0
    realms: int | None = None
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    tunnel_id: int | None = None
    uidrange: tuple[int, int] | None = None
    l3mdev: bool = False
    ip_proto: int | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    track: bool = False
    location: Location = NOWHERE


@dataclass(frozen=True)
class UnicastPeer:
    address: IPAddress
    min_ttl: int | None = None
    max_ttl: int | None = None


@dataclass(frozen=True)
class Tracked:
    """A track_script / track_interface / track_file entry with its optional weight override."""

    name: str
    weight: int | None = None
    weight_reverse: bool = False
    location: Location = NOWHERE


@dataclass(frozen=True)
class Authentication:
    auth_type: str  # "PASS" or "AH"
    auth_pass: str = ""


@dataclass(frozen=True)
class UseVmac:
    """``use_vmac [NAME] [MAC]``: the instance's VMAC interface (macvlan with the virtual router MAC)."""

    ifname: str | None = None  # None: keepalived's vrrp.VRID (the first free name)
    mac: str | None = None  # None: 00:00:5e:00:01:VRID (IPv6: 00:00:5e:00:02:VRID)
    #: five octets were given: the VRID is the sixth
    mac_uses_vrid: bool = False


@dataclass(frozen=True)
class VrrpInstance:
    name: str
    interface: str | None = None
    virtual_router_id: int = 0
    state: str = "BACKUP"
    priority: int = 100
    advert_int: float = 1.0
    version: int | None = None  # None: global vrrp_version
    authentication: Authentication | None = None
    unicast_src_ip: IPAddress | None = None
    mcast_src_ip: IPAddress | None = None
    unicast_peer: tuple[UnicastPeer, ...] = ()
    unicast_ttl: int | None = None
    virtual_ipaddress: tuple[VirtualAddress, ...] = ()
    virtual_ipaddress_excluded: tuple[VirtualAddress, ...] = ()
    virtual_routes: tuple[Route, ...] = ()
    virtual_rules: tuple[Rule, ...] = ()
    track_interface: tuple[Tracked, ...] = ()
    track_script: tuple[Tracked, ...] = ()
    track_file: tuple[Tracked, ...] = ()
    track_process: tuple[Tracked, ...] = ()
    dont_track_primary: bool = False
    nopreempt: bool = False
    preempt_delay: float = 0.0
    garp_master_delay: float | None = None
    garp_master_repeat: int | None = None
    garp_master_refresh: float | None = None
    garp_master_refresh_repeat: int | None = None
    garp_lower_prio_delay: float | None = None
    garp_lower_prio_repeat: int | None = None
    lower_prio_no_advert: bool | None = None
    higher_prio_send_advert: bool | None = None
    notify_master: NotifyScript | None = None
    notify_backup: NotifyScript | None = None
    notify_fault: NotifyScript | None = None
    notify_stop: NotifyScript | None = None
    notify_master_rx_lower_pri: NotifyScript | None = None
    notify: NotifyScript | None = None
    notify_deleted: NotifyDeleted | None = None
    notify_priority_changes: bool | None = None
    smtp_alert: bool | None = None
    accept: bool | None = None  # None: keepalived's default (accept unless vrrp_strict)
    strict_mode: bool | None = None
    skip_check_adv_addr: bool | None = None
    check_unicast_src: bool | None = None
    v3_checksum_as_v2: bool = False
    use_vmac: UseVmac | None = None
    use_vmac_addr: bool = False
    vmac_xmit_base: bool = False
    garp_extra_if: GarpExtraIf | None = None
    debug: int = 0
    location: Location = NOWHERE

    @property
    def family(self) -> int:
        """4 or 6: the address family of the VIPs (keepalived requires one family per instance)."""
        for vip in self.virtual_ipaddress:
            return vip.address.version
        return 4


@dataclass(frozen=True)
class VrrpSyncGroup:
    name: str
    group: tuple[str, ...] = ()
    notify_master: NotifyScript | None = None
    notify_backup: NotifyScript | None = None
    notify_fault: NotifyScript | None = None
    notify_stop: NotifyScript | None = None
    notify: NotifyScript | None = None
    notify_priority_changes: bool | None = None
    smtp_alert: bool | None = None
    track_script: tuple[Tracked, ...] = ()
    track_interface: tuple[Tracked, ...] = ()
    track_file: tuple[Tracked, ...] = ()
    track_process: tuple[Tracked, ...] = ()
    global_tracking: bool = False
    sync_group_tracking_weight: bool = False
    location: Location = NOWHERE


# --- LVS ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SslSettings:
    """The top-level ``SSL`` block: SSL_GET's client certificate (keepalived verifies no server
    certificate: ``ca`` is loaded and no more)."""

    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    location: Location = NOWHERE


@dataclass(frozen=True)
class LvsMethod:
    """A forwarding method as ``lb_kind`` / ``lvs_method`` give it: NAT, DR, or TUN with its tunnel
    (``type ipip|gue|gre [port N] [nocsum|csum|remcsum]``)."""

    method: str = "NAT"
    #: "" when the line's tunnel options were refused: the settings stay as they were
    tun_type: str = "ipip"
    #: the GUE tunnel's UDP port (0 for the other types)
    tun_port: int = 0
    tun_flags: str = "nocsum"

    def __str__(self) -> str:
        return self.method

    def tunnel_over(self, base: LvsMethod) -> LvsMethod:
        """This method with ``base``'s tunnel settings when its own were refused."""
        if self.tun_type:
            return self
        return LvsMethod(self.method, base.tun_type or "ipip", base.tun_port, base.tun_flags)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):  # lb_kind == "TUN"
            return self.method == other
        if isinstance(other, LvsMethod):
            return (self.method, self.tun_type, self.tun_port, self.tun_flags) == (
                other.method, other.tun_type, other.tun_port, other.tun_flags)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.method, self.tun_type, self.tun_port, self.tun_flags))



@dataclass(frozen=True)
class HttpUrl:
    path: str
    digest: str | None = None
    status_code: tuple[tuple[int, int], ...] = ()  # inclusive ranges; empty: 200-299
    virtualhost: str | None = None
    regex: str | None = None
    regex_no_match: bool = False
    regex_options: tuple[str, ...] = ()
    regex_min_offset: int = 0
    regex_max_offset: int | None = None
    regex_stack: tuple[int, int] | None = None
    tls_compliant: bool = False
    location: Location = NOWHERE


@dataclass(frozen=True)
class CheckCommon:
    """Options every checker shares; None means 'inherit from the real/virtual server or the default'."""

    connect_ip: IPAddress | None = None
    connect_port: int | None = None
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    delay_loop: float | None = None
    alpha: bool | None = None
    fwmark: int | None = None
    log_all_failures: bool | None = None
    location: Location = NOWHERE


@dataclass(frozen=True)
class TcpCheck(CheckCommon):
    kind: str = "TCP_CHECK"


@dataclass(frozen=True)
class HttpCheck(CheckCommon):
    kind: str = "HTTP_GET"  # or "SSL_GET"
    url: tuple[HttpUrl, ...] = ()
    virtualhost: str | None = None
    http_protocol: str = "1.0"
    enable_sni: bool = False
    tls_compliant: bool = False
    fast_recovery: bool = False

    @property
    def ssl(self) -> bool:
        return self.kind == "SSL_GET"


@dataclass(frozen=True)
class MiscCheck(CheckCommon):
    kind: str = "MISC_CHECK"
    misc_path: tuple[str, ...] = ()
    misc_timeout: float | None = None
    misc_dynamic: bool = False
    user: ScriptUser | None = None


@dataclass(frozen=True)
class BfdCheck(CheckCommon):
    """``BFD_CHECK``: the state of a BFD session of keepalived's BFD process -- which kpd does not have: such
    a checker always counts as failed."""

    kind: str = "BFD_CHECK"
    name: str | None = None


@dataclass(frozen=True)
class SmtpHost(CheckCommon):
    """A deprecated ``host`` block of an SMTP_CHECK: one more SMTP checker of the real server."""


@dataclass(frozen=True)
class SmtpCheck(CheckCommon):
    """``SMTP_CHECK``: banner 220, ``HELO helo_name`` answered 250, ``QUIT``."""

    kind: str = "SMTP_CHECK"
    helo_name: str | None = None
    host: tuple[SmtpHost, ...] = ()
    #: the SMTP_CHECK itself set a connection option (else its first host replaces its own target)
    own_connection: bool = False


@dataclass(frozen=True)
class UdpCheck(CheckCommon):
    """``UDP_CHECK``: a datagram to the server; an ICMP unreachable (with require_reply, silence) fails."""

    kind: str = "UDP_CHECK"
    payload: bytes | None = None
    #: None: no reply required; else the pattern the reply must match (b"" and no mask: any reply)
    require_reply: tuple[bytes, bytes] | None = None  # (pattern, mask of the wildcard nibbles)
    min_reply_length: int = 0
    max_reply_length: int = 255


@dataclass(frozen=True)
class PingCheck(CheckCommon):
    """``PING_CHECK``: an ICMP (ICMPv6) echo answered in time."""

    kind: str = "PING_CHECK"


@dataclass(frozen=True)
class DnsCheck(CheckCommon):
    """``DNS_CHECK``: a query for ``name``/``type`` answered with RCODE 0."""

    kind: str = "DNS_CHECK"
    type: str = "SOA"
    name: str = ""


@dataclass(frozen=True)
class FileCheck(CheckCommon):
    """``FILE_CHECK``: a root track_file's value moves the real server's weight (or takes it down)."""

    kind: str = "FILE_CHECK"
    track_file: str | None = None
    #: (weight, reverse); None: the track_file's own
    weight: tuple[int, bool] | None = None


Check = TcpCheck | HttpCheck | MiscCheck | BfdCheck | SmtpCheck | UdpCheck | PingCheck | DnsCheck | FileCheck


@dataclass(frozen=True)
class RealServer:
    address: IPAddress
    port: int | None
    weight: int = 1
    inhibit_on_failure: bool | None = None
    notify_up: NotifyScript | None = None
    notify_down: NotifyScript | None = None
    uthreshold: int = 0
    lthreshold: int = 0
    lvs_method: LvsMethod | None = None  # None: the virtual server's
    alpha: bool | None = None
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    delay_loop: float | None = None
    virtualhost: str | None = None
    smtp_alert: bool | None = None
    checks: tuple[Check, ...] = ()
    location: Location = NOWHERE


@dataclass(frozen=True)
class VirtualServerGroupMember:
    """An address range (``10.0.0.1-10 80``) or ``fwmark N`` entry of a virtual_server_group."""

    first: IPAddress | None = None
    last: IPAddress | None = None
    port: int | None = None
    fwmark: int | None = None

    def addresses(self) -> list[IPAddress]:
        if self.first is None or self.last is None:
            return []
        start, end = int(self.first), int(self.last)
        return [type(self.first)(i) for i in range(start, end + 1)]


@dataclass(frozen=True)
class VirtualServerGroup:
    name: str
    members: tuple[VirtualServerGroupMember, ...] = ()
    location: Location = NOWHERE


@dataclass(frozen=True)
class VirtualServer:
    """``virtual_server IP PORT``, ``virtual_server fwmark N`` or ``virtual_server group NAME``."""

    address: IPAddress | None = None
    port: int | None = None
    fwmark: int | None = None
    group: str | None = None
    protocol: str = "UDP"  # keepalived's default when unset (with an error); irrelevant for fwmark
    lb_algo: str = "wlc"
    lb_kind: LvsMethod = LvsMethod()
    persistence_timeout: int | None = None
    #: an IPv4 netmask, or an IPv6 prefix length
    persistence_granularity: IPAddress | int | None = None
    persistence_engine: str | None = None
    #: "inet" or "inet6": the family of a fwmark service (else: its real servers')
    ip_family: str | None = None
    #: scheduler flags, keepalived's keyword names: flag-1..3, sh-port, sh-fallback, mh-port, mh-fallback
    sched_flags: tuple[str, ...] = ()
    delay_loop: float = 60.0
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    ha_suspend: bool = False
    virtualhost: str | None = None
    alpha: bool = False
    omega: bool = False
    quorum: int = 1
    quorum_up: NotifyScript | None = None
    quorum_down: NotifyScript | None = None
    hysteresis: int = 0
    inhibit_on_failure: bool = False
    sorry_server: tuple[IPAddress, int | None] | None = None
    sorry_server_inhibit: bool = False
    sorry_server_lvs_method: LvsMethod | None = None
    ops: bool = False
    smtp_alert: bool | None = None
    real_servers: tuple[RealServer, ...] = ()
    location: Location = NOWHERE

    @property
    def key(self) -> str:
        """How keepalived names the service in logs: ``[IP]:PORT``, ``FWM N`` or ``group NAME``."""
        if self.group is not None:
            return f"group {self.group}"
        if self.fwmark is not None:
            return f"FWM {self.fwmark}"
        host = (
            f"[{self.address}]"
            if self.address is not None and self.address.version == 6
            else str(self.address)
        )
        return f"{host}:{self.port}"


# --- the whole configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    vrrp_scripts: tuple[VrrpScript, ...] = ()
    track_files: tuple[TrackFile, ...] = ()
    track_processes: tuple[TrackProcess, ...] = ()
    garp_groups: tuple[GarpGroup, ...] = ()
    vrrp_instances: tuple[VrrpInstance, ...] = ()
    vrrp_sync_groups: tuple[VrrpSyncGroup, ...] = ()
    virtual_server_groups: tuple[VirtualServerGroup, ...] = ()
    virtual_servers: tuple[VirtualServer, ...] = ()
    #: The files read (top file first, then includes), for reload change detection.
    sources: tuple[str, ...] = ()
    #: The network namespace the daemon runs in (top-level ``net_namespace``), and its ``instance`` name.
    net_namespace: str | None = None
    instance_name: str | None = None
    static_ipaddress: tuple[VirtualAddress, ...] = ()
    static_routes: tuple[Route, ...] = ()
    static_rules: tuple[Rule, ...] = ()
    ssl: SslSettings | None = None

    @property
    def has_vrrp(self) -> bool:
        return bool(self.vrrp_instances)

    @property
    def has_checkers(self) -> bool:
        return bool(self.virtual_servers)

    def instance(self, name: str) -> VrrpInstance:
        for inst in self.vrrp_instances:
            if inst.name == name:
                return inst
        raise KeyError(name)


def without_locations(value: object) -> object:
    """``value`` with every ``location`` dropped, for comparing configurations across a reload (where an
    unchanged item may have moved to another line)."""
    if hasattr(value, "__dataclass_fields__"):
        return (type(value).__name__, tuple(
            (name, without_locations(getattr(value, name)))
            for name in value.__dataclass_fields__
            if name != "location"
        ))
    if isinstance(value, tuple | list):
        return tuple(without_locations(v) for v in value)
    return value
