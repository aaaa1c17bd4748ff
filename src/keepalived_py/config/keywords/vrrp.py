"""Keywords of ``vrrp_script``, ``track_file``, ``vrrp_instance`` and ``vrrp_sync_group``."""

from __future__ import annotations

from typing import Any

from keepalived_py.config.items import (
    AUTH_TYPE,
    GARP_EXTRA_IF,
    INIT_FILE,
    INTERFACE,
    NOTIFY_SCRIPT,
    ROUTE,
    RULE,
    SCRIPT,
    SCRIPT_USER,
    TRACK_INTERFACE,
    TRACK_NAME,
    UNICAST_PEER,
    VIP,
    WEIGHT_REVERSE,
    notify_script,
)
from keepalived_py.config.model import NotifyDeleted, UseVmac
from keepalived_py.config.schema import Keyword, Kind, Schema
from keepalived_py.config.values import (
    Address,
    Args,
    BadValue,
    Choice,
    Custom,
    Flag,
    Int,
    Seconds,
    ValueType,
    Word,
)

#: keepalived truncates longer simple passwords to the 8 bytes of the VRRPv2 auth data field.
AUTH_PASS_MAX = 8


def _auth_pass(args: Args) -> str:
    tok = args.one("a password")
    if not tok.text:
        raise BadValue("empty password", tok)
    return tok.text


def _advert_int(args: Args) -> float:
    # RFC 9568: 12-bit centiseconds (max 40.95 s); VRRPv2: whole seconds 1..255. The version is only known
    # once the whole instance is read, so the cross-checks finish the job.
    return Seconds(0.01, 255).check(args.one("seconds"))


def _notify_deleted(args: Args) -> NotifyDeleted:
    """``notify_deleted`` alone, or with the script run for DELETED."""
    return NotifyDeleted(notify_script(args) if args.tokens else None)


#: RFC 5798's virtual router MAC prefixes, which a configured VMAC address may not use
_RFC_MAC_PREFIXES = ("00:00:5e:00:01", "00:00:5e:00:02")
_IFNAME_MAX = 15


def _use_vmac(args: Args) -> UseVmac:
    """keepalived's ``vrrp_vmac_handler``: up to two words, an interface name and a MAC (the one with
    colons); five octets mean "the VRID is the sixth". What keepalived ignores is reported and ignored."""
    name: str | None = None
    mac: str | None = None
    uses_vrid = False
    for tok in args.tokens[:2]:
        text = tok.text
        if ":" in text:
            five = text.count(":") == 5 and text.endswith(":")  # "00:11:22:33:44:" as five octets
            octets = text.rstrip(":").split(":") if five else text.split(":")
            valid = len(octets) in (5, 6) and all(1 <= len(o) <= 2 for o in octets)
            try:
                values = [int(o, 16) for o in octets] if valid else []
            except ValueError:
                values = []
            if mac is not None:
                args.error("VMAC interface address already specified", tok)
            elif not values:
                args.error(f"VMAC invalid MAC address {text[:40]} - ignored", tok)
            elif values[0] & 1:
                args.error(f"VMAC MAC address is multicast {text[:40]} - ignoring", tok)
            elif ":".join(f"{v:02x}" for v in values[:5]) in _RFC_MAC_PREFIXES:
                args.error(
                    f"VMAC MAC address not allowed to be RFC5798 address ({text[:40]}) - ignoring", tok
                )
            else:
                mac = ":".join(f"{v:02x}" for v in values)
                uses_vrid = len(values) == 5
        elif name is not None:
            args.error("VMAC interface name already specified", tok)
        elif len(text) > _IFNAME_MAX or text in (".", "..") or any(c in text for c in "/:") or text.isspace():
            args.error(f"VMAC interface name '{text[:40]}' too long or invalid characters - ignoring", tok)
        else:
            name = text
    for tok in args.tokens[2:]:
        args.error(f"unexpected extra argument '{tok.text[:40]}' (use_vmac takes a name and a MAC)", tok)
    return UseVmac(name, mac, uses_vrid)


def _process(args: Args) -> tuple[str, tuple[str, ...]]:
    """``process NAME [PARAM ...]`` (a quoted word is one element)."""
    first = args.first("a process name")
    return first.text, tuple(t.text for t in args.tokens[1:])


def _param_match(args: Args) -> str:
    if not args.tokens:
        return "exact"
    tok = args.one("initial or partial")
    if tok.text not in ("initial", "partial"):
        raise BadValue(f"Invalid param_match type {tok.text[:40]} - ignoring", tok)
    return tok.text


NOTIFY_DOC = (
    "Script run, without a shell, when the {what}; the quoted command line, then the USER [GROUP] it runs as."
)


def declare(schema: Schema) -> None:
    schema.section(
        "vrrp_script", "vrrp_script", "A tracked script: its exit status moves tracking instances."
    )
    schema.section("track_file", "track_file", "A tracked file holding an integer.")
    schema.section(
        "vrrp_track_process", "vrrp_track_process", "Tracked processes: how many of them run."
    )
    schema.section(
        "vrrp_instance",
        "vrrp_instance",
        "One VRRP virtual router on one interface.",
        differs=(
            "a MASTER's advert may go out up to a tenth of advert_int early when kpd is awake for another "
            "instance's advert anyway, so that many instances' adverts share one wake-up; the schedule keeps "
            "its phase (every advert is still due one advert_int after the previous one's due time). "
            "keepalived sends each at its own timer",
            "virtual_routes / virtual_rules (and static_routes / static_rules): `inet` / `inet6` set the "
            "family and the next word is read; keepalived 2.2 skips the word after them (so `inet6 from "
            "PREFIX ...` loses its from and is refused)",
            "virtual_routes: `encap ip ... ttl N` sends the ttl (keepalived 2.2 reads it and never sends it)",
            "virtual_rules: `sport N` / `dport N`, a single port, is the range N-N (keepalived 2.2 reports "
            "it as an invalid range and installs the rule without it, matching every port)",
        ),
    )
    schema.section("authentication", "authentication", "VRRPv2 authentication of an instance.")
    schema.section("vrrp_sync_group", "vrrp_sync_group", "Instances that move between states together.")

    schema.add(
        "vrrp_script",
        Keyword(
            "script",
            "Command line to run (no shell); keepalived reads only the first word: quote it to pass "
            "arguments.",
            SCRIPT,
        ),
        Keyword("interval", "Seconds between runs.", Seconds(0.000001, 86400), default=1.0),
        Keyword(
            "timeout",
            "Seconds before a run counts as failed and is killed (default: interval).",
            Seconds(0.000001, 86400),
        ),
        Keyword(
            "weight",
            "Priority change while the script succeeds (>0) or fails (<0); 0: failure is FAULT. "
            "'reverse' inverts the sign's meaning.",
            WEIGHT_REVERSE,
            default=(0, False),
        ),
        Keyword("rise", "Consecutive successes needed to become OK.", Int(1, 2**31 - 1), default=1),
        Keyword("fall", "Consecutive failures needed to become KO.", Int(1, 2**31 - 1), default=1),
        Keyword("user", "User (and group) the script runs as.", SCRIPT_USER),
        Keyword("init_fail", "Start in the failed state until the first success.", Flag(), default=False),
    )
    schema.add(
        "track_file",
        Keyword("file", "Path of the file to watch.", Word(what="file path")),
        Keyword(
            "weight",
            "Multiplier of the file's value ('reverse' negates it).",
            WEIGHT_REVERSE,
            default=(1, False),
        ),
        Keyword("init_file", "Create the file with this value if absent ('overwrite': always).", INIT_FILE),
    )
    schema.add(
        "vrrp_track_process",
        Keyword(
            "process",
            "The process name (as /proc/PID/comm; with full_command argv[0]), then the parameters that must "
            "follow it (which imply full_command and param_match exact). An exact match, not a pattern.",
            Custom(_process, "NAME [PARAM ...]"),
        ),
        Keyword(
            "param_match",
            "How parameters compare: exact (alone: the process must have none), partial (the first ones "
            "match), initial (and the last may be longer).",
            Custom(_param_match, "[initial|partial]"),
        ),
        Keyword(
            "weight",
            "Priority change while the quorum holds (>0) or not (<0); 0: no quorum is FAULT. 'reverse' "
            "inverts the sign's meaning.",
            WEIGHT_REVERSE,
            default=(0, False),
        ),
        Keyword("quorum", "Fewest processes that count as up.", Int(1, 65535), default=1),
        Keyword("quorum_max", "Most processes that count as up (0: up while none runs).", Int(0, 65535)),
        Keyword("delay", "Sets fork_delay and terminate_delay.", Seconds(0.000001, 3600), default=0.0),
        Keyword(
            "fork_delay",
            "Seconds a quorum gained by a fork must last before it counts.",
            Seconds(0.000001, 3600),
        ),
        Keyword(
            "terminate_delay",
            "Seconds a quorum lost by an exit must last before it counts.",
            Seconds(0.000001, 3600),
        ),
        Keyword("full_command", "Match argv[0] (/proc/PID/cmdline) instead of the name.", Flag()),
    )
    schema.add(
        "authentication",
        Keyword(
            "auth_type",
            "PASS (simple password, VRRPv2 only) or AH (not implemented by kpd: an error, the instance "
            "does not run).",
            AUTH_TYPE,
        ),
        Keyword(
            "auth_pass",
            f"The password; only its first {AUTH_PASS_MAX} characters are used.",
            Custom(_auth_pass, "password"),
        ),
    )
    garp: dict[str, tuple[str, ValueType[Any]]] = dict(
        garp_master_delay=("Delay of the second gratuitous ARP burst (default: global).", Seconds(0, 86400)),
        garp_master_repeat=("Gratuitous ARPs per burst (default: global).", Int(1, 255)),
        garp_master_refresh=("Interval of periodic gratuitous ARPs (default: global).", Seconds(0, 86400)),
        garp_master_refresh_repeat=("Gratuitous ARPs per refresh (default: global).", Int(1, 255)),
        garp_lower_prio_delay=("Second burst delay after a lower-priority advert.", Seconds(0, 86400)),
        garp_lower_prio_repeat=("Gratuitous ARPs per burst after a lower-priority advert.", Int(1, 255)),
    )
    schema.add(
        "vrrp_instance",
        Keyword(
            "interface", "Interface the instance runs on (default: global default_interface).", INTERFACE
        ),
        Keyword(
            "virtual_router_id",
            "VRID shared by the routers of this virtual router.",
            Int(1, 255),
            drops_item=True,
            default=0,
        ),
        Keyword(
            "state",
            "Initial state; MASTER only starts as MASTER if it is the address owner.",
            Choice(("MASTER", "BACKUP")),
            default="BACKUP",
        ),
        Keyword("priority", "Election priority; 255 means address owner.", Int(1, 255), default=100),
        Keyword(
            "advert_int",
            "Advertisement interval (VRRPv3 allows centiseconds).",
            Custom(_advert_int, "seconds"),
            default=1.0,
        ),
        Keyword("version", "VRRP version of this instance (default: global vrrp_version).", Int(2, 3)),
        Keyword("authentication", "VRRPv2 authentication block.", kind=Kind.SECTION, child="authentication"),
        Keyword("unicast_src_ip", "Source address of unicast adverts.", Address()),
        Keyword("mcast_src_ip", "Source address of multicast adverts.", Address()),
        Keyword(
            "unicast_peer",
            "Peers to send adverts to by unicast instead of multicast.",
            UNICAST_PEER,
            kind=Kind.LIST,
        ),
        Keyword("unicast_ttl", "TTL of unicast adverts.", Int(1, 255)),
        Keyword("virtual_ipaddress", "The virtual addresses, one per line.", VIP, kind=Kind.LIST),
        Keyword(
            "virtual_ipaddress_excluded",
            "Virtual addresses managed but not sent in adverts.",
            VIP,
            kind=Kind.LIST,
        ),
        Keyword(
            "virtual_routes",
            "Routes added on becoming MASTER and removed on leaving it. A tracked one (it names its dev, no "
            "no_track) deleted behind kpd's back sends the MASTER to BACKUP for a Skew_Time, as keepalived. "
            "Every option of keepalived 2.2 but vrf (not implemented: a line using it is reported at its "
            "location and not installed).",
            ROUTE,
            kind=Kind.LIST,
        ),
        Keyword(
            "virtual_rules",
            "Policy routing rules added on becoming MASTER and removed on leaving it; a tracked one deleted "
            "behind kpd's back sends the MASTER to BACKUP for a Skew_Time, as keepalived.",
            RULE,
            kind=Kind.LIST,
        ),
        Keyword(
            "track_interface",
            "Interfaces whose link state moves the instance (weight) or faults it.",
            TRACK_INTERFACE,
            kind=Kind.LIST,
        ),
        Keyword(
            "track_script",
            "vrrp_scripts whose state moves the instance (weight) or faults it.",
            TRACK_NAME,
            kind=Kind.LIST,
        ),
        Keyword("track_file", "track_files whose value moves the instance.", TRACK_NAME, kind=Kind.LIST),
        Keyword(
            "track_process",
            "vrrp_track_processes whose quorum moves the instance (weight) or faults it.",
            TRACK_NAME,
            kind=Kind.LIST,
        ),
        Keyword(
            "dont_track_primary",
            "Ignore the link state of the instance's own interface.",
            Flag(),
            default=False,
        ),
        Keyword("nopreempt", "Do not take over from a lower-priority MASTER.", Flag(), default=False),
        Keyword("preempt", "Preempt a lower-priority MASTER (the default).", Flag(), field="_preempt"),
        Keyword(
            "preempt_delay",
            "Seconds to wait after start-up before preempting.",
            Seconds(0, 1000),
            default=0.0,
        ),
        *(Keyword(name, doc, vt) for name, (doc, vt) in garp.items()),
        Keyword("lower_prio_no_advert", "As vrrp_lower_prio_no_advert, for this instance.", Flag()),
        Keyword("higher_prio_send_advert", "As vrrp_higher_prio_send_advert, for this instance.", Flag()),
        Keyword("notify_master", NOTIFY_DOC.format(what="instance becomes MASTER"), NOTIFY_SCRIPT),
        Keyword("notify_backup", NOTIFY_DOC.format(what="instance becomes BACKUP"), NOTIFY_SCRIPT),
        Keyword("notify_fault", NOTIFY_DOC.format(what="instance enters FAULT"), NOTIFY_SCRIPT),
        Keyword("notify_stop", NOTIFY_DOC.format(what="instance stops"), NOTIFY_SCRIPT),
        Keyword(
            "notify_master_rx_lower_pri",
            NOTIFY_DOC.format(what="MASTER hears a lower priority"),
            NOTIFY_SCRIPT,
        ),
        Keyword(
            "notify", "Script run on every transition with: INSTANCE name STATE priority.", NOTIFY_SCRIPT
        ),
        Keyword(
            "notify_deleted",
            "When a reload removes the instance, notify DELETED (running this script, if given) instead of "
            "keepalived's default FAULT.",
            Custom(_notify_deleted, "[script [USER [GROUP]]]"),
        ),
        Keyword(
            "notify_priority_changes",
            "Write MASTER_PRIORITY / BACKUP_PRIORITY lines to the notify FIFOs when the effective priority "
            "changes (default: the sync group's, else vrrp_notify_priority_changes).",
            Flag(),
        ),
        Keyword(
            "smtp_alert",
            "Mail each transition (default: smtp_alert_vrrp, else smtp_alert, else off).",
            Flag(),
        ),
        Keyword("accept", "Accept packets to the VIPs while MASTER (default unless vrrp_strict).", Flag()),
        Keyword(
            "no_accept",
            "Drop packets to non-owned VIPs while MASTER.",
            Flag(),
            field="_no_accept",
        ),
        Keyword("strict_mode", "As vrrp_strict, for this instance.", Flag()),
        Keyword("skip_check_adv_addr", "As vrrp_skip_check_adv_addr, for this instance.", Flag()),
        Keyword("check_unicast_src", "As vrrp_check_unicast_src, for this instance.", Flag()),
        Keyword(
            "v3_checksum_as_v2",
            "VRRPv3 over IPv4: checksum without the pseudo-header (RFC 9568 text).",
            Flag(),
            default=False,
        ),
        Keyword(
            "use_vmac",
            "Run the instance on a VMAC: a private macvlan on its interface with the virtual router MAC "
            "(00:00:5e:00:01:VRID, IPv6 00:00:5e:00:02:VRID, or the MAC given; five octets: the VRID is the "
            "sixth) named NAME (default vrrp.VRID); the VIPs without a dev go on it, adverts and gratuitous "
            "ARPs leave from it. Created at start, deleted at stop; the base interface's arp_ignore and "
            "arp_filter, set while it is used, are restored at stop (keepalived 2.2.7 leaves them set).",
            Custom(_use_vmac, "[NAME] [MAC]"),
        ),
        Keyword(
            "use_vmac_addr",
            "Put every VIP on another interface than the instance's, or of the other address family, on a "
            "VMAC of its interface (as 'use_vmac' on a virtual_ipaddress line does for one).",
            Flag(),
            default=False,
        ),
        Keyword(
            "garp_extra_if",
            "As vrrp_garp_extra_if, for this instance.",
            GARP_EXTRA_IF,
            deprecated=("vmac_garp_intvl",),
        ),
        Keyword(
            "vmac_xmit_base",
            "With use_vmac, send and receive adverts on the base interface (the VIPs stay on the VMAC).",
            Flag(),
            default=False,
        ),
        Keyword("debug", "Debug level (accepted, informational).", Int(0, 4), default=0),
    )
    schema.add(
        "vrrp_sync_group",
        Keyword("group", "The member instances.", Word(what="instance name"), kind=Kind.WORDS),
        Keyword("notify_master", NOTIFY_DOC.format(what="group becomes MASTER"), NOTIFY_SCRIPT),
        Keyword("notify_backup", NOTIFY_DOC.format(what="group becomes BACKUP"), NOTIFY_SCRIPT),
        Keyword("notify_fault", NOTIFY_DOC.format(what="group enters FAULT"), NOTIFY_SCRIPT),
        Keyword("notify_stop", NOTIFY_DOC.format(what="group stops"), NOTIFY_SCRIPT),
        Keyword("notify", "Script run on every transition with: GROUP name STATE priority.", NOTIFY_SCRIPT),
        Keyword("notify_priority_changes", "As notify_priority_changes, for every member.", Flag()),
        Keyword(
            "smtp_alert",
            "Mail each group transition (default: smtp_alert_vrrp, else smtp_alert, else off).",
            Flag(),
        ),
        Keyword("track_script", "vrrp_scripts tracked by every member.", TRACK_NAME, kind=Kind.LIST),
        Keyword("track_interface", "Interfaces tracked by every member.", TRACK_INTERFACE, kind=Kind.LIST),
        Keyword("track_file", "track_files tracked by every member.", TRACK_NAME, kind=Kind.LIST),
        Keyword("track_process", "vrrp_track_processes tracked by every member.", TRACK_NAME, kind=Kind.LIST),
        Keyword(
            "global_tracking",
            "Members share the group's tracking (deprecated in keepalived).",
            Flag(),
            default=False,
        ),
        Keyword("sync_group_tracking_weight", "Allow weighted tracking in members.", Flag(), default=False),
    )
