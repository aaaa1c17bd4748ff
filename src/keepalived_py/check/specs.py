"""From the configuration to what the checkers child runs: effective options, probe identities, IPVS settings.

Options are inherited as keepalived inherits them: checker, then real server, then virtual server, then
the checker type's default (retry 1, or 0 for MISC_CHECK, 3 for DNS_CHECK; delay_before_retry 1 s, or 3 s
for HTTP_GET and SSL_GET, the delay_loop for DNS_CHECK; connect_timeout 5 s; warmup the checker's
delay_loop; misc_timeout the virtual server's delay_loop). A FILE_CHECK takes its track_file's weight and
reverse unless it gives its own, and is never alpha.

Probes are values (:class:`TcpSpec`, :class:`HttpSpec`, :class:`MiscSpec`, :class:`SmtpSpec`,
:class:`UdpSpec`, :class:`PingSpec`, :class:`DnsSpec`, :class:`FileSpec`), so identical probes referenced by
several virtual servers compare equal and run once per round (:class:`CheckerKey`). A real server's
forwarding method carries its tunnel (type, GUE port, checksum flags) into its :class:`Dest`.

A MISC_CHECK script is judged by :mod:`keepalived_py.script_security` (the rule check-config applies): one it
refuses is left out, as keepalived removes the checker; one it allows runs as the program and user decided
there.
"""

from __future__ import annotations

import functools
import logging
import operator
from dataclasses import dataclass
from ipaddress import IPv4Address

from keepalived_py.check.body_regex import BodyRegex
from keepalived_py.check.checker import Timing
from keepalived_py.check.http_probe import HttpTarget, TlsClient
from keepalived_py.check.probe_socket import NO_SOURCE, Source
from keepalived_py.config.model import (
    BfdCheck,
    Check,
    Config,
    DnsCheck,
    FileCheck,
    GlobalDefs,
    HttpCheck,
    LvsMethod,
    MiscCheck,
    NotifyScript,
    PingCheck,
    RealServer,
    SmtpCheck,
    SslSettings,
    TrackFile,
    UdpCheck,
    VirtualServer,
)
from keepalived_py.ipvs.state import (
    SCHED_FLAG_BITS,
    TUN_FLAGS,
    TUN_TYPES,
    Dest,
    Forward,
    IPAddress,
    Service,
    ServiceKey,
)
from keepalived_py.script_security import ScriptPolicy

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class TcpSpec:
    host: str
    port: int
    source: Source = NO_SOURCE
    timeout: float = DEFAULT_CONNECT_TIMEOUT

    def describe(self) -> str:
        return f"TCP_CHECK {_hostport(self.host, self.port)}"


@dataclass(frozen=True)
class HttpSpec:
    """HTTP_GET / SSL_GET: every url must pass, in order (one per run: :class:`~.checker.UrlChecker`)."""

    urls: tuple[HttpTarget, ...]
    ssl: bool = False
    #: keepalived's fast_recovery: a recovering checker fetches its urls back to back
    fast_recovery: bool = False

    def describe(self) -> str:
        first = self.urls[0] if self.urls else None
        where = _hostport(first.host, first.port) if first else "?"
        return f"{'SSL_GET' if self.ssl else 'HTTP_GET'} {where}"


@dataclass(frozen=True)
class MiscSpec:
    argv: tuple[str, ...]
    timeout: float
    dynamic: bool = False
    user: str | None = None
    group: str | None = None

    def describe(self) -> str:
        return f"MISC_CHECK {' '.join(self.argv)}"


@dataclass(frozen=True)
class FailedSpec:
    """A checker kpd cannot run (BFD_CHECK: no BFD process): always failed, never up."""

    what: str
    reason: str

    def describe(self) -> str:
        return self.what


#: keepalived's default HELO name (check_smtp.h)
DEFAULT_HELO_NAME = "smtpchecker.keepalived.org"


@dataclass(frozen=True)
class SmtpSpec:
    host: str
    port: int
    helo_name: str = DEFAULT_HELO_NAME
    source: Source = NO_SOURCE
    timeout: float = DEFAULT_CONNECT_TIMEOUT

    def describe(self) -> str:
        return f"SMTP_CHECK {_hostport(self.host, self.port)}"


@dataclass(frozen=True)
class UdpSpec:
    host: str
    port: int
    payload: bytes | None = None
    #: None: no reply needed; else (pattern, care mask): b"" accepts any reply
    require_reply: tuple[bytes, bytes] | None = None
    min_reply_length: int = 0
    max_reply_length: int = 255
    source: Source = NO_SOURCE
    timeout: float = DEFAULT_CONNECT_TIMEOUT

    def describe(self) -> str:
        return f"UDP_CHECK {_hostport(self.host, self.port)}"


@dataclass(frozen=True)
class PingSpec:
    host: str
    timeout: float = DEFAULT_CONNECT_TIMEOUT

    def describe(self) -> str:
        return f"PING_CHECK {self.host}"


@dataclass(frozen=True)
class DnsSpec:
    host: str
    port: int
    type: str = "SOA"
    name: str = ""
    source: Source = NO_SOURCE
    timeout: float = DEFAULT_CONNECT_TIMEOUT

    def describe(self) -> str:
        return f"DNS_CHECK {_hostport(self.host, self.port)} {self.name or '.'} {self.type}"


@dataclass(frozen=True)
class FileSpec:
    """FILE_CHECK: not probed on a schedule; the file is watched (:mod:`keepalived_py.check.file_check`)."""

    track_file: str
    path: str
    weight: int
    reverse: bool

    def describe(self) -> str:
        return f"FILE_CHECK {self.track_file} ({self.path})"


ProbeSpec = TcpSpec | HttpSpec | MiscSpec | FailedSpec | SmtpSpec | UdpSpec | PingSpec | DnsSpec | FileSpec


@dataclass(frozen=True)
class CheckerKey:
    """A probe with its schedule: the unit that runs once per round however often it is referenced."""

    probe: ProbeSpec
    timing: Timing
    alpha: bool
    #: log every failed attempt (log_all_failures, checker_log_all_failures)
    log_all_failures: bool = False

    def __post_init__(self) -> None:
        # Hashed once: every dict and set of the engine is keyed by it, many times per probe, and a frozen
        # dataclass hashes its fields (and theirs) again each time.
        object.__setattr__(self, "_hash", hash((self.probe, self.timing, self.alpha, self.log_all_failures)))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined, no-any-return]

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        del state["_hash"]  # a string's hash differs in another process
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def describe(self) -> str:
        return self.probe.describe()

    @property
    def type(self) -> str:
        """The checker's keyword: TCP_CHECK, HTTP_GET, MISC_CHECK, ..."""
        return self.probe.describe().split(" ", 1)[0]


@dataclass(frozen=True)
class RealServerSpec:
    name: str  # keepalived's format: [10.0.0.2]:tcp:80
    dest: Dest  # as programmed while alive
    inhibit: bool
    alpha: bool
    checkers: tuple[CheckerKey, ...]
    notify_up: NotifyScript | None = None
    notify_down: NotifyScript | None = None
    #: SMTP alerts for its checkers' state changes (keepalived's default for a real server: on)
    smtp_alert: bool = False
    #: ... for every checker change (False with no_checker_emails: only when the server changes state)
    mail_every_check: bool = True


@dataclass(frozen=True)
class VirtualServerSpec:
    name: str  # keepalived's format: [192.0.2.1]:tcp:80, FWM 7, [group]:0
    services: tuple[Service, ...]  # one per ServiceKey (several for a virtual_server_group)
    real_servers: tuple[RealServerSpec, ...]
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: NotifyScript | None = None
    quorum_down: NotifyScript | None = None
    sorry_server: Dest | None = None
    sorry_server_inhibit: bool = False
    ha_suspend: bool = False
    #: the addresses that must be local for the checks to run when ha_suspend is set
    suspend_addresses: tuple[str, ...] = ()
    omega: bool = False
    #: SMTP alerts for quorum changes (keepalived's default for a virtual server: off)
    smtp_alert: bool = False


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def service_keys(vs: VirtualServer, config: Config) -> list[ServiceKey]:
    """The IPVS services a virtual server stands for (a group expands to its members)."""
    if vs.group is not None:
        keys: list[ServiceKey] = []
        group = next((g for g in config.virtual_server_groups if g.name == vs.group), None)
        if group is None:
            return []
        family = _family(vs)
        for member in group.members:
            if member.fwmark is not None:
                keys.append(ServiceKey.for_fwmark(member.fwmark, family))
            else:
                keys.extend(
                    ServiceKey.for_address(vs.protocol, addr, member.port or 0) for addr in member.addresses()
                )
        return keys
    if vs.fwmark is not None:
        return [ServiceKey.for_fwmark(vs.fwmark, _family(vs))]
    assert vs.address is not None
    return [ServiceKey.for_address(vs.protocol, vs.address, vs.port or 0)]


def _family(vs: VirtualServer) -> int:
    if vs.address is not None:
        return vs.address.version
    if vs.ip_family is not None:
        return 6 if vs.ip_family == "inet6" else 4
    return vs.real_servers[0].address.version if vs.real_servers else 4


def service_settings(vs: VirtualServer, key: ServiceKey) -> Service:
    granularity = vs.persistence_granularity
    # an IPv4 netmask for an IPv4 service, a prefix length for an IPv6 one (else the kernel's default)
    mask: IPv4Address | int | None = None
    if key.family == 4 and isinstance(granularity, IPv4Address):
        mask = None if granularity == IPv4Address("255.255.255.255") else granularity
    elif key.family == 6 and isinstance(granularity, int):
        mask = None if granularity == 128 else granularity
    return Service(
        key=key,
        scheduler=vs.lb_algo,
        persistence_timeout=vs.persistence_timeout,
        persistence_netmask=mask,
        persistence_engine=vs.persistence_engine,
        one_packet=vs.ops,
        sched_flags=functools.reduce(operator.or_, (SCHED_FLAG_BITS[f] for f in vs.sched_flags), 0),
    )


def real_server_name(address: object, port: int | None, protocol: str) -> str:
    from keepalived_py.notify import format_real_server

    return format_real_server(str(address), port or 0, protocol)


def virtual_server_name(vs: VirtualServer) -> str:
    from keepalived_py.notify import format_virtual_server

    if vs.group is not None:
        return format_virtual_server(group=vs.group, port=vs.port or 0)
    if vs.fwmark is not None:
        return format_virtual_server(fwmark=vs.fwmark)
    return format_virtual_server(address=str(vs.address), port=vs.port or 0, protocol=vs.protocol)


def build(config: Config) -> list[VirtualServerSpec]:
    """Every virtual server of the configuration, resolved."""
    policy = ScriptPolicy.of(config.global_defs)
    gd = config.global_defs
    out: list[VirtualServerSpec] = []
    for vs in config.virtual_servers:
        keys = service_keys(vs, config)
        if not keys:
            continue
        services = tuple(service_settings(vs, k) for k in keys)
        files = {tf.name: tf for tf in config.track_files}
        rss = tuple(
            _real_server(vs, rs, policy, config.global_defs, files, config.ssl) for rs in vs.real_servers
        )
        sorry = None
        if vs.sorry_server is not None:
            addr, port = vs.sorry_server
            method = (vs.sorry_server_lvs_method or vs.lb_kind).tunnel_over(vs.lb_kind)
            sorry = _dest(addr, port if port is not None else (vs.port or 0), method, 1)
        suspend = tuple(str(k.address) for k in keys if k.address is not None)
        out.append(
            VirtualServerSpec(
                name=virtual_server_name(vs),
                services=services,
                real_servers=rss,
                quorum=vs.quorum,
                hysteresis=vs.hysteresis,
                quorum_up=vs.quorum_up,
                quorum_down=vs.quorum_down,
                sorry_server=sorry,
                sorry_server_inhibit=vs.sorry_server_inhibit,
                ha_suspend=vs.ha_suspend,
                suspend_addresses=suspend,
                omega=vs.omega,
                smtp_alert=_alert(vs.smtp_alert, gd.smtp_alert_checker, gd.smtp_alert, default=False),
            )
        )
    return out


def _alert(*values: bool | None, default: bool) -> bool:
    """keepalived's smtp_alert resolution: the object's own, else smtp_alert_checker, else smtp_alert."""
    return next((v for v in values if v is not None), default)


def _real_server(
    vs: VirtualServer, rs: RealServer, policy: ScriptPolicy, gd: GlobalDefs, files: dict[str, TrackFile],
    ssl_block: SslSettings | None = None,
) -> RealServerSpec:
    method = (rs.lvs_method or vs.lb_kind).tunnel_over(vs.lb_kind)
    dest = _dest(rs.address, rs.port if rs.port is not None else (vs.port or 0), method, rs.weight,
                 rs.uthreshold, rs.lthreshold)
    alpha_rs = rs.alpha if rs.alpha is not None else vs.alpha
    log_all = gd.checker_log_all_failures
    checkers = tuple(
        checker
        for c in rs.checks
        if (checker := _checker(vs, rs, c, alpha_rs, policy, files, log_all, ssl_block)) is not None
    )
    inhibit = rs.inhibit_on_failure if rs.inhibit_on_failure is not None else vs.inhibit_on_failure
    return RealServerSpec(
        name=real_server_name(rs.address, dest.port, vs.protocol),
        dest=dest,
        inhibit=inhibit,
        alpha=alpha_rs,
        checkers=checkers,
        notify_up=rs.notify_up,
        notify_down=rs.notify_down,
        # on by default for real servers ("backwards compatibility", keepalived check_data.c)
        smtp_alert=_alert(rs.smtp_alert, gd.smtp_alert_checker, gd.smtp_alert, default=True),
        mail_every_check=not gd.no_checker_emails,
    )


def _dest(
    address: IPAddress, port: int, method: LvsMethod, weight: int, upper: int = 0, lower: int = 0
) -> Dest:
    """A real (or sorry) server as programmed, its tunnel with it (a tunnel's settings only for TUN)."""
    forward = Forward.from_lb_kind(method)
    if forward is not Forward.TUNNEL:
        return Dest(address, port, forward, weight, upper, lower)
    return Dest(address, port, forward, weight, upper, lower, TUN_TYPES[method.tun_type], method.tun_port,
                TUN_FLAGS[method.tun_flags])


def _first(*values: float | int | None) -> float | int | None:
    return next((v for v in values if v is not None), None)


#: a FILE_CHECK's file is read this often (keepalived watches it with inotify)
FILE_POLL = 0.2


def _checker(
    vs: VirtualServer, rs: RealServer, c: Check, alpha_rs: bool, policy: ScriptPolicy,
    files: dict[str, TrackFile], log_all: bool = False, ssl_block: SslSettings | None = None,
) -> CheckerKey | None:
    """The checker of ``c``; None for a MISC_CHECK whose script may not run (keepalived removes that
    checker, ``check_misc_script_security()``), or a FILE_CHECK without its track_file."""
    if isinstance(c, FileCheck):
        tf = files.get(c.track_file or "")
        if tf is None:
            return None
        weight, reverse = c.weight if c.weight is not None else (tf.weight, tf.weight_reverse)
        # never alpha: the file's value is known at once
        return CheckerKey(FileSpec(tf.name, tf.file, weight, reverse),
                          Timing(FILE_POLL, 0, FILE_POLL, 0.0, FILE_POLL), False)
    is_misc = isinstance(c, MiscCheck)
    is_http = isinstance(c, HttpCheck)
    is_dns = isinstance(c, DnsCheck)
    delay_loop = float(_first(c.delay_loop, rs.delay_loop, vs.delay_loop) or vs.delay_loop)
    # keepalived's defaults by kind: retry 1 (MISC 0, DNS 3); delay_before_retry 1 s (HTTP 3 s, DNS the
    # delay_loop)
    retry = int(_first(c.retry, rs.retry, vs.retry, 0 if is_misc else 3 if is_dns else 1) or 0)
    dbr = float(_first(c.delay_before_retry, rs.delay_before_retry, vs.delay_before_retry,
                       3.0 if is_http else delay_loop if is_dns else 1.0) or 0.0)
    warmup = float(_first(c.warmup, rs.warmup, vs.warmup, delay_loop) or 0.0)
    timeout = float(_first(c.connect_timeout, rs.connect_timeout, vs.connect_timeout, DEFAULT_CONNECT_TIMEOUT)
                    or DEFAULT_CONNECT_TIMEOUT)
    alpha = c.alpha if c.alpha is not None else alpha_rs
    if isinstance(c, BfdCheck):
        alpha = True  # it never succeeds: the server must not count as up even before its first probe
    host = str(c.connect_ip if c.connect_ip is not None else rs.address)
    port = c.connect_port if c.connect_port is not None else (rs.port or 0)
    source = Source(
        str(c.bindto) if c.bindto is not None else None, c.bind_port, c.bind_if, c.fwmark or None
    )
    probe: ProbeSpec
    if isinstance(c, BfdCheck):
        probe = FailedSpec(f"BFD_CHECK {c.name or ''}".rstrip(), "BFD_CHECK: kpd has no BFD process")
    elif isinstance(c, MiscCheck):
        timeout = float(c.misc_timeout if c.misc_timeout else vs.delay_loop)
        decision = policy.decide(c.misc_path, c.user)
        if decision.refused is not None:
            log.warning("Disabling MISC_CHECK %s of real server %s: %s",
                        " ".join(c.misc_path) or "(empty)", rs.address, decision.refused)
            return None
        probe = MiscSpec(
            argv=decision.argv,
            timeout=timeout,
            dynamic=c.misc_dynamic,
            user=decision.user,
            group=decision.group,
        )
    elif isinstance(c, HttpCheck):
        tls = None
        if ssl_block is not None:
            tls = TlsClient(ssl_block.certificate, ssl_block.key, ssl_block.password, ssl_block.ca)
        vhost_default = c.virtualhost or rs.virtualhost or vs.virtualhost
        # keepalived's SNI skips the real server's virtualhost (its Host header does not)
        sni_default = c.virtualhost or vs.virtualhost
        targets = tuple(
            HttpTarget(
                host=host,
                port=port,
                path=u.path,
                virtualhost=u.virtualhost or vhost_default,
                ssl=c.ssl,
                sni=(u.virtualhost or sni_default) if (c.ssl and c.enable_sni) else None,
                tls_compliant=c.ssl and (c.tls_compliant or u.tls_compliant),
                http_protocol=c.http_protocol,
                source=source,
                timeout=timeout,
                status_codes=u.status_code,
                digest=u.digest,
                regex=BodyRegex(u.regex, u.regex_options, u.regex_no_match, u.regex_min_offset,
                                u.regex_max_offset) if u.regex is not None else None,
                tls=tls if c.ssl else None,
            )
            for u in c.url
        )
        probe = HttpSpec(targets, ssl=c.ssl, fast_recovery=c.fast_recovery)
    elif isinstance(c, SmtpCheck):
        probe = SmtpSpec(host, port, c.helo_name or DEFAULT_HELO_NAME, source, timeout)
    elif isinstance(c, UdpCheck):
        probe = UdpSpec(host, port, c.payload, c.require_reply, c.min_reply_length, c.max_reply_length,
                        source, timeout)
    elif isinstance(c, PingCheck):
        probe = PingSpec(host, timeout)
    elif isinstance(c, DnsCheck):
        probe = DnsSpec(host, port, c.type, c.name, source, timeout)
    else:
        probe = TcpSpec(host, port, source, timeout)
    # UDP, PING and DNS retry only while up; SMTP starts each round afresh (keepalived's epilogues)
    no_retry_down = isinstance(c, UdpCheck | PingCheck | DnsCheck)
    timing = Timing(delay_loop, retry, dbr, warmup, timeout, retry_when_down=not no_retry_down,
                    start_at_retry=not isinstance(c, SmtpCheck))
    return CheckerKey(probe, timing, alpha, bool(c.log_all_failures or log_all))
