"""Keywords of the top level and of ``global_defs``."""

from __future__ import annotations

from keepalived_py.config.items import (
    GARP_EXTRA_IF,
    INTERFACE,
    LVS_SYNC_DAEMON,
    LVS_TIMEOUTS,
    NOTIFY_SCRIPT,
    ROUTE,
    RULE,
    SCRIPT_USER,
    VIP,
)
from keepalived_py.config.model import NotifyFifo
from keepalived_py.config.schema import ROOT, Keyword, Kind, Schema
from keepalived_py.config.values import (
    Address,
    AddressPort,
    Args,
    BadValue,
    Custom,
    Flag,
    Int,
    Seconds,
    Word,
)
from keepalived_py.listen_address import parse_listen_address


def _notify_fifo(args: Args) -> NotifyFifo:
    path = args.first("a FIFO path")
    if not path.text.startswith("/"):
        raise BadValue(f"'{path.text[:40]}' is not an absolute path", path)
    rest = args.tokens[1:]
    if len(rest) > 2:
        raise BadValue("unexpected extra argument (expected PATH [USER [GROUP]])", rest[2])
    return NotifyFifo(path.text, *(t.text for t in rest))


NOTIFY_FIFO = Custom(_notify_fifo, "PATH [USER [GROUP]]")
GARP_DELAY = Seconds(0, 86400)
GARP_REPEAT = Int(1, 255)


def _flush_on_stop(args: Args) -> str:
    if not args.tokens:
        return "ALL"
    tok = args.one("VS or ALL")
    text = tok.text.upper()
    if text not in ("VS", "ALL"):
        raise BadValue(f"'{tok.text[:40]}' is not VS or ALL", tok)
    return text


def _metrics_listen(args: Args) -> tuple[str, int]:
    tok = args.one("ADDR:PORT")
    try:
        return parse_listen_address(tok.text)
    except ValueError as err:
        raise BadValue(str(err), tok) from None


def _process_name(args: Args) -> str:
    """keepalived truncates a name to the kernel's 15 characters (TASK_COMM_LEN), and says so."""
    tok = args.one("a process name")
    if len(tok.text) > 15:
        args.error(f"Process name {tok.text[:40]} more than 15 characters, truncating", tok)
    return tok.text[:15]


PROCESS_NAME = Custom(_process_name, "name (at most 15 characters)")


def _max_auto_priority(args: Args) -> int:
    """keepalived: -1..99; without a value the highest realtime priority."""
    if not args.tokens:
        return 99
    return Int(-1, 99).check(args.one("a priority -1..99"))


def _auto_priority_delay(args: Args) -> float:
    """Microseconds 1..10000000, held as seconds."""
    return Int(1, 10_000_000).check(args.one("microseconds")) / 1_000_000


def _cpus(args: Args) -> tuple[int, ...]:
    if not args.tokens:
        raise BadValue(f"'{args.keyword.text}' needs CPU numbers", args.keyword)
    return tuple(sorted({Int(0, 4095).check(tok) for tok in args.tokens}))


def _scheduling(kind: str, child: str) -> list[Keyword]:
    return [
        Keyword(f"{kind}_priority", f"Nice value of the {child} child (-20..19).", Int(-20, 19), default=0),
        Keyword(
            f"{kind}_rt_priority",
            f"Run the {child} child with realtime scheduling (SCHED_RR) at this priority.",
            Int(1, 99),
            default=0,
        ),
        Keyword(f"{kind}_cpu_affinity", f"CPUs the {child} child may run on.", Custom(_cpus, "CPU [CPU ...]"),
                default=()),
        Keyword(f"{kind}_no_swap", f"Lock the {child} child in memory.", Flag(), default=False),
        Keyword(
            f"{kind}_rlimit_rttime",
            f"Microseconds of CPU the realtime {child} child may use without blocking (RLIMIT_RTTIME; "
            "the kernel kills it beyond). keepalived's default of 10000 applies to kpd only when given: a "
            "Python process can exceed it on an ordinary reload.",
            Int(2, 2**31 - 1),
            deprecated=(f"{kind}_rlimit_rtime",),
        ),
    ]


def _nftables(args: Args) -> str:
    if len(args.tokens) > 1:
        raise BadValue("unexpected extra argument (expected an optional table name)", args.tokens[1])
    return args.tokens[0].text if args.tokens else "keepalived"


def _vrrp_iptables(args: Args) -> bool:
    args.error(
        "iptables not supported, using nftables instead. Please replace 'vrrp_iptables' and 'vrrp_ipsets' "
        "with 'nftables' config option",
        args.keyword,
    )
    return True


def _dynamic_interfaces(args: Args) -> bool:
    """keepalived: on, whatever follows; ``allow_if_changes`` is its one option (it lets a macvlan change
    type, which kpd, without VMACs, never meets); another word is reported and dynamic interfaces are on."""
    if args.tokens and args.tokens[0].text != "allow_if_changes":
        args.error(
            f"unknown dynamic_interfaces option '{args.tokens[0].text[:40]}' (only allow_if_changes); "
            "dynamic interfaces are on",
            args.tokens[0],
        )
    return True


def declare(schema: Schema) -> None:
    schema.section(ROOT, "the top level", "Sections and keywords allowed outside any block.")
    schema.section(
        "global_defs",
        "global_defs",
        "Settings for the whole daemon.",
        differs=(
            "vrrp_iptables is taken as keepalived built with nftables and without iptables (Debian 12's "
            "2.2.7, kpd's reference) takes it: the nftables filter in table keepalived; keepalived built "
            "with iptables makes iptables chains (and, with vrrp_ipsets, ipsets) instead",
        ),
    )
    schema.section(
        "garp_group", "garp_group", "The spacing of gratuitous ARPs / NAs on interfaces (a switch's limits)."
    )
    schema.add(
        "garp_group",
        Keyword("garp_interval", "Pause between gratuitous ARPs.", Seconds(0, 2147.483647)),
        Keyword("gna_interval", "Pause between unsolicited NAs.", Seconds(0, 2147.483647)),
        Keyword("interface", "The interface the pauses apply to.", INTERFACE),
        Keyword(
            "interfaces",
            "Interfaces whose announcements are paced together (on the same switch).",
            INTERFACE,
            kind=Kind.LIST,
        ),
    )
    schema.add(
        ROOT,
        Keyword(
            "net_namespace",
            "Network namespace (``ip netns add NAME``) the whole daemon runs in; it must exist. The default "
            "runtime directory becomes /run/kpd/NAME. ``kpd start --namespace`` overrides it; a reload "
            "cannot change it.",
            Word(what="namespace name"),
        ),
        Keyword(
            "instance",
            "Name of this kpd instance, for several on one host: the default runtime directory becomes "
            "/run/kpd[/NAMESPACE]/NAME (keepalived names its pid files after it). A reload cannot change it.",
            Word(what="instance name"),
            field="instance_name",
        ),
        Keyword(
            "static_ipaddress",
            "Addresses installed at start and removed at stop, whatever the VRRP state (each names its dev).",
            VIP,
            kind=Kind.LIST,
        ),
        Keyword(
            "static_routes",
            "Routes installed at start and removed at stop, whatever the VRRP state (virtual_routes syntax). "
            "As keepalived, a deleted one is added again only while a tracked virtual route of its family "
            "has route deletions watched (track_group, which would too, is not implemented: a line using "
            "it, or vrf, is reported at its location and not installed).",
            ROUTE,
            kind=Kind.LIST,
        ),
        Keyword(
            "static_rules",
            "Rules installed at start and removed at stop, whatever the VRRP state (virtual_rules syntax); "
            "a deleted one is added again only while a tracked virtual rule of its family has them watched "
            "(track_group is not implemented: a line using it is reported and not installed).",
            RULE,
            kind=Kind.LIST,
        ),
        Keyword("global_defs", "Global settings.", kind=Kind.SECTION, child="global_defs"),
        Keyword(
            "garp_group",
            "Pauses between gratuitous ARPs / NAs on an interface or a group of interfaces (interfaces "
            "not named keep vrrp_garp_interval / vrrp_gna_interval).",
            kind=Kind.SECTION,
            child="garp_group",
            repeatable=True,
            field="garp_groups",
        ),
        Keyword(
            "vrrp_script",
            "A script whose result adjusts or faults VRRP instances tracking it.",
            kind=Kind.SECTION,
            child="vrrp_script",
            header=Word(what="script name"),
            field="vrrp_scripts",
            drops_item=True,
        ),
        Keyword(
            "track_file",
            "A file whose integer content, times a weight, adjusts tracking instances.",
            kind=Kind.SECTION,
            child="track_file",
            header=Word(what="track file name"),
            field="track_files",
            drops_item=True,
            aliases=("vrrp_track_file",),
        ),
        Keyword(
            "vrrp_track_process",
            "Processes whose number running (seen at once through the kernel's process events) adjusts or "
            "faults the instances tracking them.",
            kind=Kind.SECTION,
            child="vrrp_track_process",
            header=Word(what="track process name"),
            field="track_processes",
            drops_item=True,
        ),
        Keyword(
            "vrrp_instance",
            "A VRRP virtual router.",
            kind=Kind.SECTION,
            child="vrrp_instance",
            header=Word(what="instance name"),
            field="vrrp_instances",
            drops_item=True,
        ),
        Keyword(
            "vrrp_sync_group",
            "Instances that change state together.",
            kind=Kind.SECTION,
            child="vrrp_sync_group",
            header=Word(what="group name"),
            field="vrrp_sync_groups",
            drops_item=True,
        ),
    )
    schema.add(
        "global_defs",
        Keyword("router_id", "Name of this node in notifications (default: the host name).", Word()),
        Keyword(
            "notification_email",
            "Addresses that receive SMTP alerts.",
            Word(what="e-mail address"),
            kind=Kind.WORDS,
        ),
        Keyword("notification_email_from", "Sender address of SMTP alerts.", Word(what="e-mail address")),
        Keyword("smtp_server", "SMTP relay for alerts: ADDRESS [PORT] (port 25).", AddressPort()),
        Keyword("smtp_helo_name", "Name sent in SMTP HELO (default: the host name).", Word()),
        Keyword(
            "smtp_connect_timeout",
            "SMTP connection timeout.",
            Seconds(1, 3600, integer_only=True),
            default=30.0,
        ),
        Keyword("smtp_alert", "Send SMTP alerts for every kind of event.", Flag()),
        Keyword("smtp_alert_vrrp", "Send SMTP alerts for VRRP state changes.", Flag()),
        Keyword("smtp_alert_checker", "Send SMTP alerts for checker state changes.", Flag()),
        Keyword(
            "no_email_faults",
            "Send no SMTP alert when a VRRP instance or group enters FAULT.",
            Flag(),
            default=False,
        ),
        Keyword(
            "no_checker_emails",
            "Send a real server's SMTP alerts only when the server changes state, not for every checker.",
            Flag(),
            default=False,
        ),
        Keyword("script_user", "User (and group) scripts run as when they name none.", SCRIPT_USER),
        Keyword(
            "enable_script_security", "Refuse scripts a non-root user could change.", Flag(), default=False
        ),
        Keyword("vrrp_version", "Default VRRP version of instances.", Int(2, 3), default=2),
        Keyword("vrrp_mcast_group4", "IPv4 multicast group of adverts.", Address(4)),
        Keyword("vrrp_mcast_group6", "IPv6 multicast group of adverts.", Address(6)),
        Keyword(
            "vrrp_garp_master_delay",
            "Delay before the second burst of gratuitous ARPs after becoming MASTER.",
            GARP_DELAY,
            default=5.0,
        ),
        Keyword(
            "vrrp_garp_master_repeat",
            "Gratuitous ARPs sent per burst on becoming MASTER.",
            GARP_REPEAT,
            default=5,
        ),
        Keyword(
            "vrrp_garp_master_refresh",
            "Interval of periodic gratuitous ARPs while MASTER (0: off).",
            GARP_DELAY,
            default=0.0,
        ),
        Keyword(
            "vrrp_garp_master_refresh_repeat", "Gratuitous ARPs per periodic refresh.", GARP_REPEAT, default=1
        ),
        Keyword(
            "vrrp_garp_lower_prio_delay",
            "Delay of the second burst after a lower-priority advert.",
            GARP_DELAY,
        ),
        Keyword(
            "vrrp_garp_lower_prio_repeat",
            "Gratuitous ARPs per burst after a lower-priority advert.",
            GARP_REPEAT,
        ),
        Keyword(
            "vrrp_garp_interval",
            "Pause between gratuitous ARPs on one interface (unset: none). keepalived 2.2.7 then sends only "
            "the first two of a burst; kpd sends them all.",
            Seconds(0.000001, 4294.967295),
            default=0.0,
        ),
        Keyword(
            "vrrp_gna_interval",
            "Pause between unsolicited neighbour advertisements on one interface (unset: none).",
            Seconds(0.000001, 4294.967295),
            default=0.0,
        ),
        *_scheduling("vrrp", "VRRP"),
        *_scheduling("checker", "Checkers"),
        Keyword(
            "max_auto_priority",
            "A child that runs later than min_auto_priority_delay raises itself to realtime, one priority "
            "more at each further delay, up to this one (alone: 99; 0: never, the default).",
            Custom(_max_auto_priority, "[-1..99]"),
            default=0,
        ),
        Keyword(
            "state_dump_file",
            "Where SIGUSR1 writes keepalived's text dump of the configuration and state (beside kpd's JSON "
            "one in the runtime directory).",
            Word(what="file path"),
            default="/tmp/keepalived.data",
        ),
        Keyword(
            "stats_dump_file",
            "Where SIGUSR2 writes keepalived's text statistics (beside kpd's JSON ones), as of the VRRP "
            "child's last status write (at most a second old).",
            Word(what="file path"),
            default="/tmp/keepalived.stats",
        ),
        Keyword(
            "min_auto_priority_delay",
            "Microseconds late (kpd: its event loop's lag) that count for max_auto_priority (default 1 s).",
            Custom(_auto_priority_delay, "microseconds 1..10000000"),
            default=1.0,
            shown_default="1000000",
        ),
        Keyword(
            "vrrp_garp_extra_if",
            "While MASTER, a gratuitous ARP / NA every SECONDS on each VMAC of the VIPs that does not send "
            "the adverts ('all': on every other interface of the VIPs too); the default of garp_extra_if.",
            GARP_EXTRA_IF,
            deprecated=("vrrp_vmac_garp_intvl",),
        ),
        Keyword(
            "vrrp_min_garp",
            "Send one gratuitous ARP on becoming MASTER and no repeats.",
            Flag(),
            default=False,
        ),
        Keyword(
            "vrrp_lower_prio_no_advert",
            "A MASTER hearing a lower priority does not answer with an advert.",
            Flag(),
            default=False,
        ),
        Keyword(
            "vrrp_higher_prio_send_advert",
            "A MASTER hearing a higher priority sends one more advert before yielding.",
            Flag(),
            default=False,
        ),
        Keyword(
            "vrrp_iptables",
            "The packet filters of vrrp_strict / no_accept in iptables chains IN_CHAIN and OUT_CHAIN: as "
            "keepalived built with nftables and without iptables (Debian's), kpd reports 'iptables not "
            "supported, using nftables instead' and uses the nftables filter, table keepalived at the "
            "default priority (an nftables or nftables_priority before it is overridden).",
            Custom(_vrrp_iptables, "[IN_CHAIN [OUT_CHAIN]]"),
            field="_vrrp_iptables",
        ),
        Keyword(
            "nftables",
            "The nftables table of keepalived's packet filters (default keepalived), which are installed "
            "with or without this keyword whenever vrrp_strict, no_accept or use_vmac need them, as "
            "keepalived built with nftables does.",
            Custom(_nftables, "[TABLE]"),
        ),
        Keyword(
            "nftables_priority",
            "Priority of the filter chains (default -1: just before the default filter chains).",
            Int(-2**31, 2**31 - 1),
            default=-1,
        ),
        Keyword("nftables_counters", "Count what each filter rule matches.", Flag(), default=False),
        Keyword(
            "nftables_ifindex",
            "Key link-local VIPs by interface index even for instances with dont_track_primary (which "
            "otherwise use the interface name).",
            Flag(),
            default=False,
        ),
        Keyword(
            "process_names",
            "Name the children keepalived_vrrp and keepalived_lvs (ps, pgrep) instead of kpd-vrrp and "
            "kpd-checker.",
            Flag(),
            default=False,
        ),
        Keyword("process_name", "Name of the parent process (ps, pgrep).", PROCESS_NAME),
        Keyword("vrrp_process_name", "Name of the VRRP child.", PROCESS_NAME),
        Keyword(
            "checker_process_name", "Name of the Checkers child.", PROCESS_NAME, aliases=("lvs_process_name",)
        ),
        Keyword(
            "vrrp_strict",
            "Enforce RFC 3768/9568 strictly (no unicast, no auth with v3, ...); a MASTER does not accept "
            "traffic to its VIPs (keepalived's nftables filter, see nftables).",
            Flag(),
            default=False,
        ),
        Keyword(
            "vrrp_skip_check_adv_addr",
            "Do not check addresses in adverts from the current MASTER.",
            Flag(),
            default=False,
        ),
        Keyword(
            "vrrp_check_unicast_src",
            "Drop unicast adverts whose source is not a configured peer.",
            Flag(),
            default=False,
        ),
        Keyword(
            "vrrp_startup_delay",
            "At start (not at a reload or a child restart), no instance takes over before this many seconds: "
            "down timers count from its end, the address owner waits for it too.",
            Seconds(0, 3600),
            default=0.0,
        ),
        Keyword("lvs_flush", "Flush every IPVS rule at start-up.", Flag(), default=False),
        Keyword(
            "lvs_sync_daemon",
            "The kernel's IPVS connection-synchronisation daemon, MASTER while the VRRP instance is "
            "(id: the instance's VRID by default).",
            LVS_SYNC_DAEMON,
        ),
        Keyword(
            "lvs_timeouts",
            "IPVS connection timeouts (ipvsadm --set), set at start and on reload; 0: left as it is.",
            LVS_TIMEOUTS,
        ),
        Keyword(
            "checker_log_all_failures",
            "Log every failed attempt of every checker, not only the one that takes it down.",
            Flag(),
            default=False,
        ),
        Keyword(
            "lvs_flush_on_stop",
            "On stop remove IPVS rules: VS (only kpd's) or ALL (default when given).",
            Custom(_flush_on_stop, "[VS|ALL]"),
            default="NONE",
            aliases=("lvs_flush_onstop",),
        ),
        Keyword("notify_fifo", "FIFO receiving every state change line.", NOTIFY_FIFO),
        Keyword(
            "notify_fifo_script",
            "Script started, by each child that opens notify_fifo, with the FIFO's path as its last "
            "argument; it runs until stop.",
            NOTIFY_SCRIPT,
        ),
        Keyword("vrrp_notify_fifo", "FIFO receiving VRRP state change lines.", NOTIFY_FIFO),
        Keyword(
            "vrrp_notify_priority_changes",
            "Instances write MASTER_PRIORITY / BACKUP_PRIORITY lines to the notify FIFOs when their "
            "effective priority changes.",
            Flag(),
            default=False,
        ),
        Keyword(
            "vrrp_notify_fifo_script",
            "Script started to read vrrp_notify_fifo (its path as the last argument); it runs until stop.",
            NOTIFY_SCRIPT,
        ),
        Keyword("lvs_notify_fifo", "FIFO receiving checker state change lines.", NOTIFY_FIFO),
        Keyword(
            "lvs_notify_fifo_script",
            "Script started to read lvs_notify_fifo (its path as the last argument); it runs until stop.",
            NOTIFY_SCRIPT,
        ),
        Keyword(
            "child_wait_time",
            "Seconds to wait for children to exit on stop before killing them.",
            Seconds(0, 3600, integer_only=True),
            default=5.0,
        ),
        Keyword("default_interface", "Interface of instances that name none.", INTERFACE),
        Keyword(
            "dynamic_interfaces",
            "Allow interfaces that do not exist yet at start-up: such an instance is in FAULT until its "
            "interface appears (up, with an address), then starts; one whose interface is deleted goes FAULT "
            "and comes back when it is created again, without a reload.",
            Custom(_dynamic_interfaces, "[allow_if_changes]"),
            default=False,
        ),
        Keyword(
            "kpd_child_hung_timeout",
            "kpd: a child that has not heartbeated for this long is hung: it is killed (SIGKILL, so what it "
            "programmed in the kernel stays) and restarted at once. Default: derived so that detection plus "
            "respawn fit in the smallest Master_Down_Interval of the configuration (3 s without VRRP); "
            "`kpd status` shows the value in force.",
            Seconds(0.1, 3600),
        ),
        Keyword(
            "kpd_metrics_listen",
            "kpd: serve Prometheus metrics on this TCP address (`127.0.0.1:9650`, `[::1]:9650`) at "
            "`/metrics` (docs/metrics.md). Off by default; `kpd start --metrics-listen` overrides it.",
            Custom(_metrics_listen, "ADDR:PORT"),
        ),
    )
