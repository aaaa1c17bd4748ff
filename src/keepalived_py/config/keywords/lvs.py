"""Keywords of ``virtual_server_group``, ``virtual_server``, ``real_server`` and the checkers."""

from __future__ import annotations

from keepalived_py.config.items import (
    DIGEST,
    DNS_NAME,
    DNS_TYPES,
    FILE_CHECK_WEIGHT,
    GRANULARITY,
    GROUP_MEMBER,
    HEX_PAYLOAD,
    HTTP_PROTOCOL,
    INTERFACE,
    NOTIFY_SCRIPT,
    REAL_SERVER_ADDRESS,
    REGEX,
    REGEX_OPTIONS,
    REGEX_STACK,
    REQUIRE_REPLY,
    SCRIPT,
    SCRIPT_USER,
    SERVICE_ADDRESS,
    STATUS_CODES,
    URL_PATH,
)
from keepalived_py.config.model import LvsMethod
from keepalived_py.config.schema import Keyword, Kind, Schema
from keepalived_py.config.values import (
    PORT,
    Address,
    AddressPort,
    Args,
    BadValue,
    Choice,
    Custom,
    Flag,
    Int,
    Seconds,
    Word,
)

SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "mh", "sed", "nq", "fo", "ovf", "twos")
_METHOD = Choice(
    ("NAT", "DR", "TUN"),
    aliases=(("masq", "NAT"), ("masquerade", "NAT"), ("route", "DR"), ("direct", "DR"), ("tunnel", "TUN")),
)


def _lvs_method(args: Args) -> LvsMethod:
    """keepalived's ``svr_forwarding_handler``: the method, then (for any method) tunnel options; a bad
    option is an error, the method is still taken and the tunnel settings are left as they were (a real
    server's: its service's)."""
    method = _METHOD.check(args.first("NAT, DR or TUN"))
    tun_type, port, csum = "ipip", 0, "nocsum"
    rest = list(args.tokens[1:])
    while rest:
        tok = rest.pop(0)
        if tok.text in ("type", "port") and not rest:
            args.error(f"missing {'tunnel type' if tok.text == 'type' else 'port'} after '{tok.text}'", tok)
            return LvsMethod(method, tun_type="")
        if tok.text == "type":
            value = rest.pop(0)
            if value.text not in ("ipip", "gue", "gre"):
                args.error(f"unknown tunnel type '{value.text[:40]}' (ipip, gue or gre)", value)
                return LvsMethod(method, tun_type="")
            tun_type = value.text
        elif tok.text == "port":
            value = rest.pop(0)
            try:
                port = Int(1, 65535).check(value)
            except BadValue as err:
                args.error(f"invalid gue tunnel port: {err.message}", value)
                return LvsMethod(method, tun_type="")
        elif tok.text in ("nocsum", "csum", "remcsum"):
            csum = tok.text
        else:
            args.error(f"invalid tunnel option '{tok.text[:40]}'", tok)
            return LvsMethod(method, tun_type="")
    last = args.tokens[-1]
    if (tun_type == "gue") != (port != 0):
        args.error("gue tunnels require port, otherwise cannot have port", last)
    elif tun_type == "ipip" and csum != "nocsum":
        args.error("ipip tunnels do not support checksum option", last)
    elif tun_type == "gre" and csum == "remcsum":
        args.error("gre tunnels do not support remote checksum option", last)
    else:
        return LvsMethod(method, tun_type, port, csum)
    return LvsMethod(method, tun_type="")


LB_KIND = Custom(_lvs_method, "NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]")
DELAY = Seconds(0.000001, 86400 * 365)
#: warmup and delay_before_retry may be 0 (keepalived's read_timer with a minimum of 0)
DELAY_OR_ZERO = Seconds(0, 86400 * 365)
TIMEOUT = Seconds(0.000001, 86400)
RETRY = Int(0, 2**31 - 1)


def _shared_timing(what: str, retry_deprecated: tuple[str, ...] = ()) -> list[Keyword]:
    """Timing keywords a virtual server, a real server and a checker may all set (inner wins).

    ``retry_deprecated``: old spellings of ``retry`` keepalived still takes here (2.2 takes
    ``nb_get_retry`` in HTTP_GET/SSL_GET only; elsewhere it is an unknown keyword and retry keeps its
    default)."""
    return [
        Keyword("delay_loop", f"Seconds between checks (for this {what}).", DELAY),
        Keyword("connect_timeout", f"Seconds a probe may take (for this {what}; default 5).", TIMEOUT),
        Keyword(
            "retry",
            f"Extra attempts before a check fails (for this {what}).",
            RETRY,
            deprecated=retry_deprecated,
        ),
        Keyword(
            "delay_before_retry", f"Seconds between attempts (for this {what}; default 1).", DELAY_OR_ZERO
        ),
        Keyword(
            "warmup", f"Random delay up to this many seconds before the first check ({what}).", DELAY_OR_ZERO
        ),
    ]


def _checker_common(retry_deprecated: tuple[str, ...] = (), *, connection: bool = True) -> list[Keyword]:
    """A checker's keywords; ``connection``: those of checkers that connect (all but MISC_CHECK, as
    keepalived's ``install_checker_common_keywords``)."""
    timing = _shared_timing("checker", retry_deprecated)
    common = [
        Keyword("alpha", "Start this checker in the failed state.", Flag()),
        Keyword(
            "log_all_failures",
            "Log every failed attempt, not only the one that takes the checker down.",
            Flag(),
        ),
    ]
    if not connection:
        return [*common, *(kw for kw in timing if kw.name != "connect_timeout")]
    return [
        Keyword("connect_ip", "Address to probe instead of the real server's.", Address()),
        Keyword("connect_port", "Port to probe instead of the real server's.", PORT),
        Keyword("bindto", "Source address of probes.", Address()),
        Keyword("bind_port", "Source port of probes.", PORT),
        Keyword(
            "bind_if",
            "Interface probes leave by (SO_BINDTODEVICE; the scope of a link-local IPv6 connect_ip).",
            INTERFACE,
        ),
        Keyword("fwmark", "Firewall mark set on probe packets (SO_MARK).", Int(0, 2**32 - 1)),
        *common,
        *timing,
    ]


def declare(schema: Schema) -> None:
    schema.section("virtual_server", "virtual_server", "An IPVS virtual service and its real servers.")
    schema.section(
        "real_server",
        "real_server",
        "A real server of a virtual service, with its checkers.",
        differs=(
            "a checker's connect_timeout (and every probe's timeout) counts the time the network had: when "
            "the checker process's event loop is kept busy (thousands of checks on a starved CPU) the "
            "seconds it was late are added, up to 10 x the timeout, so a healthy server is never failed "
            "because its answer waited for kpd; the checks run late instead, with a warning and "
            "late_probes/max_lateness in the status (keepalived's timers count wall time)",
            "a check starts up to 20 ms after it is due: the checker process wakes on 20 ms slots and starts "
            "every check due in one slot together (keepalived wakes for each check's own timer)",
        ),
    )
    schema.section("TCP_CHECK", "TCP_CHECK", "Healthy when a TCP connection succeeds.")
    schema.section(
        "HTTP_GET",
        "HTTP_GET/SSL_GET",
        "Healthy when GETs of the urls answer as expected (one url per delay_loop, in turn).",
        differs=(
            "with fast_recovery, a url that failed before the checker's first complete round is fetched "
            "again after delay_before_retry (keepalived 2.2-2.4 fetch it again at once, in a loop as fast "
            "as the server refuses)",
        ),
    )
    schema.section(
        "url",
        "url",
        "One URL an HTTP_GET/SSL_GET fetches and what it must answer.",
        differs=(
            "regex is Python's re, not PCRE2: a pattern Python cannot compile is refused at its line, and "
            "the options without an equivalent (ungreedy, utf, ucp, dollar_endonly, ...) are reported",
            "regex looks at the first MiB of the body (keepalived streams the whole body through PCRE2)",
        ),
    )
    schema.section("MISC_CHECK", "MISC_CHECK", "Healthy when a script exits 0 (or sets a weight).")
    schema.section("BFD_CHECK", "BFD_CHECK", "Healthy while a BFD session is up (kpd: never).")
    schema.section(
        "SMTP_CHECK",
        "SMTP_CHECK",
        "Healthy when the server greets (220), answers HELO (250) and QUIT.",
        differs=(
            "the whole conversation is also bounded, at 4 x connect_timeout (keepalived bounds each wait "
            "only, so a server trickling bytes holds its check forever)",
            "a host block without connect_timeout inherits it as any checker does (keepalived 2.2.7 gives it "
            "0 s, which fails at once)",
        ),
    )
    schema.section("host", "SMTP_CHECK host", "Deprecated: one more SMTP checker of the real server.")
    schema.section(
        "UDP_CHECK", "UDP_CHECK", "Healthy unless a datagram draws an ICMP unreachable (or no reply)."
    )
    schema.section(
        "PING_CHECK",
        "PING_CHECK",
        "Healthy when an ICMP echo is answered in time.",
        differs=(
            "net.ipv4.ping_group_range is never rewritten (keepalived widens it to open ping sockets as "
            "root): where ping sockets are refused, kpd sends the echo on a raw socket",
        ),
    )
    schema.section(
        "DNS_CHECK",
        "DNS_CHECK",
        "Healthy when a DNS query is answered with RCODE 0.",
        differs=(
            "the reply must be a well-formed message answering the question asked (keepalived reads its "
            "header only): garbage after a valid header fails the check",
            "a name whose first label is one character (a.example.com) is accepted (keepalived 2.2.7 "
            "rejects it as having an empty label)",
        ),
    )
    schema.section(
        "FILE_CHECK",
        "FILE_CHECK",
        "A track_file's value moves the real server's weight.",
        differs=(
            "the file is read every 0.2 s and a value taken once two reads agree (keepalived reads it "
            "when its writer closes it, with inotify)",
            "at start, reverse with weight 0 is honoured and a server starting down comes back with its "
            "full weight (keepalived 2.2.7 slips on both until the file first changes)",
        ),
    )

    schema.section("SSL", "SSL", "SSL_GET's client certificate (no server certificate is verified).")
    schema.add(
        "SSL",
        Keyword("password", "Password of the private key.", Word()),
        Keyword("ca", "CA file (loaded; keepalived verifies no server certificate, nor does kpd).", Word()),
        Keyword("certificate", "Client certificate (chain) file, PEM.", Word()),
        Keyword("key", "Private key file, PEM.", Word()),
    )
    schema.add(
        "root",
        Keyword("SSL", "SSL_GET's client certificate.", kind=Kind.SECTION, child="SSL", field="ssl"),
        Keyword(
            "virtual_server_group",
            "Addresses (IP[-LAST] PORT) and fwmarks sharing one virtual server.",
            GROUP_MEMBER,
            kind=Kind.LIST,
            header=Word(what="group name"),
            field="virtual_server_groups",
        ),
        Keyword(
            "virtual_server",
            "An IPVS virtual service: IP PORT, fwmark N or group NAME.",
            kind=Kind.SECTION,
            child="virtual_server",
            header=SERVICE_ADDRESS,
            field="virtual_servers",
            drops_item=True,
        ),
    )
    schema.add(
        "virtual_server",
        Keyword(
            "protocol",
            "Transport protocol of the service (unset: UDP, reported as an error).",
            Choice(("TCP", "UDP", "SCTP")),
            default="UDP",
        ),
        Keyword(
            "lb_algo",
            "IPVS scheduler (unset: wlc, reported as an error).",
            Choice(SCHEDULERS, case_sensitive=True),
            default="wlc",
            aliases=("lvs_sched",),
        ),
        Keyword(
            "lb_kind",
            "Forwarding method: NAT, DR or TUN (unset: NAT, reported as an error).",
            LB_KIND,
            default=LvsMethod(),
            aliases=("lvs_method",),
        ),
        Keyword(
            "persistence_timeout",
            "Seconds a client sticks to one real server (given alone: 360).",
            Int(1, 2**31 - 1),
        ),
        Keyword(
            "persistence_granularity",
            "Clients grouped for persistence: an IPv4 netmask, or an IPv6 prefix length (sets "
            "persistence_timeout 360 if unset).",
            GRANULARITY,
        ),
        Keyword(
            "ip_family",
            "Address family of a fwmark service: inet or inet6.",
            Choice(("inet", "inet6"), case_sensitive=True),
        ),
        *(
            Keyword(flag, doc, Flag(), field=f"_{flag}")
            for flag, doc in (
                ("flag-1", "Scheduler flag 1 (IP_VS_SVC_F_SCHED1)."),
                ("flag-2", "Scheduler flag 2 (IP_VS_SVC_F_SCHED2)."),
                ("flag-3", "Scheduler flag 3 (IP_VS_SVC_F_SCHED3)."),
                ("sh-fallback", "sh scheduler: fall back to another server when the chosen one is down."),
                ("sh-port", "sh scheduler: hash the source port too."),
                ("mh-fallback", "mh scheduler: fall back to another server when the chosen one is down."),
                ("mh-port", "mh scheduler: hash the source port too."),
            )
        ),
        Keyword("persistence_engine", "IPVS persistence engine (e.g. sip).", Word()),
        *_shared_timing("virtual server"),
        Keyword("ha_suspend", "Suspend checks while the VIP is not on this host.", Flag(), default=False),
        Keyword("virtualhost", "Host header for HTTP_GET/SSL_GET of this service.", Word()),
        Keyword("alpha", "Start real servers as down until their first success.", Flag(), default=False),
        Keyword("omega", "Run quorum_down and notify_down on shutdown.", Flag(), default=False),
        Keyword("quorum", "Minimum total weight of live real servers.", Int(1, 2**31 - 1), default=1),
        Keyword("quorum_up", "Script run when the quorum is gained.", NOTIFY_SCRIPT),
        Keyword("quorum_down", "Script run when the quorum is lost.", NOTIFY_SCRIPT),
        Keyword(
            "hysteresis",
            "Weight margin around the quorum before changing state.",
            Int(0, 2**31 - 1),
            default=0,
        ),
        Keyword(
            "inhibit_on_failure",
            "Set a failed real server's weight to 0 instead of removing it.",
            Flag(),
            default=False,
        ),
        Keyword("sorry_server", "Server used when no real server is alive: IP [PORT].", AddressPort()),
        Keyword(
            "sorry_server_inhibit",
            "Keep the sorry server in IPVS with weight 0 while unused.",
            Flag(),
            default=False,
        ),
        Keyword("sorry_server_lvs_method", "Forwarding method of the sorry server.", LB_KIND),
        Keyword("ops", "One-packet scheduling (UDP).", Flag(), default=False),
        Keyword(
            "smtp_alert",
            "Mail quorum changes (default: smtp_alert_checker, else smtp_alert, else off).",
            Flag(),
        ),
        Keyword(
            "real_server",
            "A real server: IP [PORT].",
            kind=Kind.SECTION,
            child="real_server",
            header=REAL_SERVER_ADDRESS,
            field="real_servers",
            drops_item=True,
        ),
    )
    checkers = [
        Keyword(
            "TCP_CHECK",
            "TCP connect checker.",
            kind=Kind.SECTION,
            child="TCP_CHECK",
            field="checks",
            repeatable=True,
        ),
        Keyword(
            "HTTP_GET", "HTTP checker.", kind=Kind.SECTION, child="HTTP_GET", field="checks", repeatable=True
        ),
        Keyword(
            "SSL_GET", "HTTPS checker.", kind=Kind.SECTION, child="HTTP_GET", field="checks", repeatable=True
        ),
        Keyword(
            "MISC_CHECK",
            "Script checker.",
            kind=Kind.SECTION,
            child="MISC_CHECK",
            field="checks",
            repeatable=True,
        ),
        Keyword(
            "BFD_CHECK",
            "BFD session checker.",
            kind=Kind.SECTION,
            child="BFD_CHECK",
            field="checks",
            repeatable=True,
            partial="kpd has no BFD process: the checker always counts as failed, so the real server is out "
            "of the service (never taken for up)",
        ),
        Keyword(
            "SMTP_CHECK",
            "SMTP checker.",
            kind=Kind.SECTION,
            child="SMTP_CHECK",
            field="checks",
            repeatable=True,
        ),
        Keyword(
            "UDP_CHECK", "UDP checker.", kind=Kind.SECTION, child="UDP_CHECK", field="checks", repeatable=True
        ),
        Keyword(
            "PING_CHECK",
            "ICMP echo checker.",
            kind=Kind.SECTION,
            child="PING_CHECK",
            field="checks",
            repeatable=True,
        ),
        Keyword(
            "DNS_CHECK", "DNS checker.", kind=Kind.SECTION, child="DNS_CHECK", field="checks", repeatable=True
        ),
        Keyword(
            "FILE_CHECK",
            "track_file checker.",
            kind=Kind.SECTION,
            child="FILE_CHECK",
            field="checks",
            repeatable=True,
        ),
    ]
    schema.add(
        "real_server",
        Keyword("weight", "IPVS weight.", Int(0, 2**31 - 1), default=1),
        Keyword(
            "inhibit_on_failure", "Set the weight to 0 on failure instead of removing the server.", Flag()
        ),
        Keyword("notify_up", "Script run when the server comes up.", NOTIFY_SCRIPT),
        Keyword("notify_down", "Script run when the server goes down.", NOTIFY_SCRIPT),
        Keyword("uthreshold", "IPVS upper connection threshold (0: none).", Int(0, 2**31 - 1), default=0),
        Keyword("lthreshold", "IPVS lower connection threshold (0: none).", Int(0, 2**31 - 1), default=0),
        Keyword("lvs_method", "Forwarding method of this server (default: the service's).", LB_KIND),
        Keyword("alpha", "Start as down until the first success.", Flag()),
        Keyword("virtualhost", "Host header for this server's HTTP checks.", Word()),
        Keyword(
            "smtp_alert",
            "Mail each change of a checker (default: smtp_alert_checker, else smtp_alert, else on).",
            Flag(),
        ),
        *_shared_timing("real server"),
        *checkers,
    )
    schema.add("TCP_CHECK", *_checker_common())
    schema.add(
        "BFD_CHECK",
        Keyword("name", "The bfd_instance whose session is watched.", Word(what="BFD instance name")),
        Keyword("alpha", "Start as down until the first success.", Flag()),
    )
    schema.add(
        "SMTP_CHECK",
        *_checker_common(),
        Keyword("helo_name", "Name sent with HELO (default smtpchecker.keepalived.org).", Word()),
        Keyword(
            "host",
            "Deprecated: another server to check, with its own connection options (its timing keywords "
            "apply to the whole SMTP_CHECK, as in keepalived).",
            kind=Kind.SECTION,
            child="host",
            repeatable=True,
        ),
    )
    schema.add("host", *_checker_common())
    schema.add(
        "UDP_CHECK",
        *_checker_common(),
        Keyword("payload", "Datagram to send (default: 32 bytes of text).", HEX_PAYLOAD),
        Keyword(
            "require_reply", "A reply is required, matching this hex (x: any digit) if given.", REQUIRE_REPLY
        ),
        Keyword(
            "min_reply_length", "Shortest reply accepted (with a reply pattern).", Int(0, 65535), default=0
        ),
        Keyword(
            "max_reply_length", "Longest reply accepted (with a reply pattern).", Int(0, 65535), default=255
        ),
    )
    schema.add("PING_CHECK", *_checker_common())
    schema.add(
        "DNS_CHECK",
        *_checker_common(),
        Keyword("type", "Query type.", Choice(DNS_TYPES), default="SOA"),
        Keyword("name", "Name queried (default: the root).", DNS_NAME, default=""),
    )
    schema.add(
        "FILE_CHECK",
        Keyword("track_file", "The root track_file whose value is used.", Word(what="track_file name")),
        Keyword(
            "weight",
            "Multiplier of the value (default: the track_file's weight and reverse).",
            FILE_CHECK_WEIGHT,
        ),
    )
    schema.add(
        "HTTP_GET",
        *_checker_common(retry_deprecated=("nb_get_retry",)),
        Keyword("url", "A URL to fetch.", kind=Kind.SECTION, child="url", repeatable=True),
        Keyword("virtualhost", "Host header (default: the real server's or the service's).", Word()),
        Keyword(
            "http_protocol",
            "HTTP version of requests: 1.0, 1.0C (close) or 1.1.",
            HTTP_PROTOCOL,
            default="1.0",
        ),
        Keyword(
            "enable_sni",
            "SSL_GET: send SNI in the TLS handshake: the url's, the checker's or the virtual server's "
            "virtualhost (never the real server's, as keepalived).",
            Flag(),
            default=False,
        ),
        Keyword(
            "tls_compliant",
            "SSL_GET: end each connection with a TLS close_notify (keepalived 2.2.8; without it the "
            "connection is closed quietly, as keepalived's SSL_set_quiet_shutdown).",
            Flag(),
            default=False,
        ),
        Keyword(
            "fast_recovery",
            "Fetch the urls back to back while the checker has not completed a round, or once a failed "
            "url passes again (otherwise one url per delay_loop, as every round).",
            Flag(),
            default=False,
        ),
    )
    schema.add(
        "url",
        Keyword("path", "The path to GET.", URL_PATH),
        Keyword("digest", "Expected MD5 of the body (see `kpd genhash`).", DIGEST),
        Keyword("status_code", "Expected status codes or ranges (default 200-299).", STATUS_CODES),
        Keyword("virtualhost", "Host header for this URL.", Word()),
        Keyword("regex", "Regular expression the body must match (quoted).", REGEX),
        Keyword("regex_no_match", "The body must not match the regex.", Flag(), default=False),
        Keyword("tls_compliant", "SSL_GET: close this url's connections with a close_notify.", Flag(),
                default=False),
        Keyword("regex_options", "PCRE2 options of the regex (those Python's re has).", REGEX_OPTIONS),
        Keyword("regex_min_offset", "The match must start at or after this body offset.", Int(0, 2**31 - 1),
                default=0),
        Keyword("regex_max_offset", "The match must start at or before this body offset.",
                Int(0, 2**31 - 1)),
        Keyword(
            "regex_stack",
            "PCRE2 JIT stack sizes.",
            REGEX_STACK,
            partial="read and checked, no effect: Python's re (kpd's regex engine) has no JIT stack to size",
        ),
    )
    schema.add(
        "MISC_CHECK",
        *_checker_common(connection=False),
        Keyword("misc_path", "Script to run (no shell).", SCRIPT),
        Keyword("misc_timeout", "Seconds before the script is killed (default: delay_loop).", TIMEOUT),
        Keyword("misc_dynamic", "Exit code 2..255 sets the weight to code - 2.", Flag(), default=False),
        Keyword("user", "User (and group) the script runs as.", SCRIPT_USER),
    )
