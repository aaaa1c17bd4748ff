"""Turns the reader's generic blocks into the typed model.

Values land in the dataclass attribute of the same name; only the few keywords whose value spreads over
several attributes (``weight N reverse``, ``authentication``, block headers) are handled by hand here.
"""

from __future__ import annotations

import dataclasses
import functools
from contextvars import ContextVar
from typing import Any, TypeVar

from keepalived_py.config.diagnostics import Location
from keepalived_py.config.model import (
    NOWHERE,
    Authentication,
    BfdCheck,
    Check,
    Config,
    DnsCheck,
    FileCheck,
    GarpGroup,
    GlobalDefs,
    HttpCheck,
    HttpUrl,
    MiscCheck,
    PingCheck,
    RealServer,
    SmtpCheck,
    SmtpHost,
    SslSettings,
    TcpCheck,
    TrackFile,
    TrackProcess,
    UdpCheck,
    VirtualServer,
    VirtualServerGroup,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
)
from keepalived_py.config.reader import Block

T = TypeVar("T")


@functools.cache
def _fields(cls: type[Any]) -> frozenset[str]:
    """The attributes of a model class that a block's values fill (never the reader's own ``_`` keys)."""
    return frozenset(f.name for f in dataclasses.fields(cls) if not f.name.startswith("_"))


class Origins:
    """Which block each model record came from, so later checks can point at a keyword's own location."""

    def __init__(self) -> None:
        self._blocks: dict[int, tuple[object, Block]] = {}

    def remember(self, record: object, block: Block) -> None:
        self._blocks[id(record)] = (record, block)  # the record is kept alive, so its id stays unique

    def block(self, record: object) -> Block | None:
        entry = self._blocks.get(id(record))
        return entry[1] if entry is not None else None

    def loc(self, record: object, attr: str | None = None) -> Location:
        block = self.block(record)
        if block is None:
            return getattr(record, "location", NOWHERE)
        return block.loc_of(attr) if attr else block.loc


_ORIGINS: ContextVar[Origins] = ContextVar("origins")


def _make(cls: type[T], block: Block, **extra: Any) -> T:
    """``cls`` from the block's values that name its attributes, plus ``extra``; the location comes along."""
    names = _fields(cls)  # type: ignore[arg-type]
    kwargs = {k: v for k, v in block.values.items() if k in names}
    if "location" in names:
        kwargs["location"] = block.loc
    kwargs.update(extra)
    record = cls(**kwargs)
    origins = _ORIGINS.get(None)
    if origins is not None:
        origins.remember(record, block)
    return record


def _blocks(block: Block | None, attr: str) -> tuple[Block, ...]:
    if block is None:
        return ()
    value = block.values.get(attr, ())
    return value if isinstance(value, tuple) else (value,)


def build_config(root: Block, sources: tuple[str, ...] = (), origins: Origins | None = None) -> Config:
    """The model of a configuration; ``origins`` (if given) learns the block of every record built."""
    token = _ORIGINS.set(origins if origins is not None else Origins())
    try:
        return _build(root, sources)
    finally:
        _ORIGINS.reset(token)


def _build(root: Block, sources: tuple[str, ...]) -> Config:
    gblock = root.values.get("global_defs")
    global_defs = _global_defs(gblock) if isinstance(gblock, Block) else GlobalDefs()
    config = Config(
        global_defs=global_defs,
        vrrp_scripts=tuple(_vrrp_script(b) for b in _blocks(root, "vrrp_scripts") if b.header),
        track_files=tuple(_track_file(b) for b in _blocks(root, "track_files") if b.header),
        track_processes=tuple(_track_process(b) for b in _blocks(root, "track_processes") if b.header),
        garp_groups=tuple(_make(GarpGroup, b) for b in _blocks(root, "garp_groups")),
        vrrp_instances=tuple(_instance(b) for b in _blocks(root, "vrrp_instances") if b.header),
        vrrp_sync_groups=tuple(
            _make(VrrpSyncGroup, b, name=b.header) for b in _blocks(root, "vrrp_sync_groups") if b.header
        ),
        virtual_server_groups=tuple(
            _make(VirtualServerGroup, b, name=b.header, members=b.values.get("items", ()))
            for b in _blocks(root, "virtual_server_groups")
            if b.header
        ),
        virtual_servers=tuple(_virtual_server(b) for b in _blocks(root, "virtual_servers") if b.header),
        sources=sources,
        net_namespace=root.values.get("net_namespace"),
        static_ipaddress=tuple(root.values.get("static_ipaddress", ())),
        static_routes=tuple(root.values.get("static_routes", ())),
        static_rules=tuple(root.values.get("static_rules", ())),
        instance_name=root.values.get("instance_name"),
        ssl=_make(SslSettings, ssl) if isinstance(ssl := root.values.get("ssl"), Block) else None,
    )
    origins = _ORIGINS.get(None)
    if origins is not None:
        origins.remember(config, root)  # where the top-level keywords are
    return config


def _vrrp_script(b: Block) -> VrrpScript:
    weight, reverse = b.values.get("weight", (0, False))
    return _make(
        VrrpScript, b, name=b.header, script=b.values.get("script", ()), weight=weight, weight_reverse=reverse
    )


def _track_file(b: Block) -> TrackFile:
    weight, reverse = b.values.get("weight", (1, False))
    return _make(
        TrackFile, b, name=b.header, file=b.values.get("file", ""), weight=weight, weight_reverse=reverse
    )


def _track_process(b: Block) -> TrackProcess:
    """keepalived's reading: parameters after the name, or param_match, mean full-command matching with
    parameters compared (exactly unless param_match says otherwise); quorum_max 0 means quorum 0."""
    process, params = b.values.get("process", ("", ()))
    match = b.values.get("param_match")
    weight, reverse = b.values.get("weight", (0, False))
    delay = b.values.get("delay", 0.0)
    quorum_max = b.values.get("quorum_max")
    quorum = 0 if quorum_max == 0 else b.values.get("quorum", 1)
    return _make(
        TrackProcess,
        b,
        name=b.header,
        process=process,
        params=params,
        param_match=match or ("exact" if params else "none"),
        full_command=bool(b.values.get("full_command") or params or match),
        weight=weight,
        weight_reverse=reverse,
        quorum=quorum,
        fork_delay=b.values.get("fork_delay", delay),
        terminate_delay=b.values.get("terminate_delay", delay),
    )


def _instance(b: Block) -> VrrpInstance:
    extra: dict[str, Any] = {"name": b.header}
    auth = b.values.get("authentication")
    if isinstance(auth, Block) and "auth_type" in auth.values:
        extra["authentication"] = Authentication(auth.values["auth_type"], auth.values.get("auth_pass", ""))
    else:
        extra["authentication"] = None
    # Each pair sets one flag both ways; as in keepalived, the later of the two lines wins.
    if b.values.get("_no_accept") and not _later(b, "accept", "_no_accept"):
        extra["accept"] = False
    if b.values.get("_preempt") and _later(b, "_preempt", "nopreempt"):
        extra["nopreempt"] = False
    return _make(VrrpInstance, b, **extra)


def _global_defs(b: Block) -> GlobalDefs:
    extra: dict[str, Any] = {}
    if b.values.get("_vrrp_iptables"):
        # keepalived built with nftables and without iptables: the nftables filter in its default table
        # (a later nftables is "already specified - ignoring") at the default priority unless a later
        # nftables_priority moves it
        extra["nftables"] = "keepalived"
        if not _later(b, "nftables_priority", "_vrrp_iptables"):
            extra["nftables_priority"] = -1
    return _make(GlobalDefs, b, **extra)


def _later(b: Block, attr: str, other: str) -> bool:
    """``attr`` was given after ``other`` in block ``b`` (False when either is missing)."""
    if attr not in b.where or other not in b.where:
        return False
    mine, theirs = b.where[attr].loc, b.where[other].loc
    return (mine.line, mine.col) > (theirs.line, theirs.col) if mine.file == theirs.file else False


def _virtual_server(b: Block) -> VirtualServer:
    kind, ident, port = b.header
    extra: dict[str, Any] = {
        "ip": {"address": ident, "port": port},
        "fwmark": {"fwmark": ident},
        "group": {"group": ident},
    }[kind]
    extra["real_servers"] = tuple(_real_server(rb) for rb in _blocks(b, "real_servers") if rb.header)
    extra["sched_flags"] = tuple(flag for flag in SCHED_FLAGS if b.values.get(f"_{flag}"))
    if b.values.get("persistence_granularity") is not None and b.values.get("persistence_timeout") is None:
        extra["persistence_timeout"] = 360  # keepalived's pgr_handler
    return _make(VirtualServer, b, **extra)


def _real_server(b: Block) -> RealServer:
    address, port = b.header
    checks = tuple(check for cb in _blocks(b, "checks") for check in _checks(cb))
    return _make(RealServer, b, address=address, port=port, checks=checks)


#: the scheduler flag keywords of a virtual server
SCHED_FLAGS = ("flag-1", "flag-2", "flag-3", "sh-fallback", "sh-port", "mh-fallback", "mh-port")
#: keywords that give a checker a connection of its own (keepalived's SMTP_CHECK test for "co set")
_CONNECTION = ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark", "connect_timeout")
#: what a host block sets for the whole SMTP_CHECK (keepalived's CHECKER_GET_CURRENT: the parent)
_SMTP_SHARED = ("retry", "delay_before_retry", "delay_loop", "warmup", "alpha")


def _checks(b: Block) -> tuple[Check, ...]:
    """The checker(s) of one checker block: one, but for an SMTP_CHECK with deprecated host blocks."""
    if b.section != "SMTP_CHECK":
        return (_check(b),)
    hosts = _blocks(b, "host")
    shared = {k: hb.values[k] for hb in hosts for k in _SMTP_SHARED if k in hb.values}
    parent = _make(SmtpCheck, b, host=tuple(_make(SmtpHost, hb) for hb in hosts),
                   own_connection=any(k in b.values for k in _CONNECTION), **shared)
    if not hosts:
        return (parent,)
    checks: list[Check] = [parent] if parent.own_connection else []
    for host in parent.host:
        connection = {k: getattr(host, k) for k in _CONNECTION if k != "bind_if" and hasattr(host, k)}
        checks.append(dataclasses.replace(parent, host=(), own_connection=True, location=host.location,
                                          **connection))
    return tuple(checks)


#: the checkers whose block holds all they are (HTTP_GET/SSL_GET have url blocks, SMTP_CHECK host blocks)
_SIMPLE_CHECKS: dict[str, type[Check]] = {
    "TCP_CHECK": TcpCheck, "MISC_CHECK": MiscCheck, "BFD_CHECK": BfdCheck, "UDP_CHECK": UdpCheck,
    "PING_CHECK": PingCheck, "DNS_CHECK": DnsCheck, "FILE_CHECK": FileCheck,
}


def _check(b: Block) -> Check:
    simple = _SIMPLE_CHECKS.get(b.section)
    if simple is not None:
        return _make(simple, b)
    urls = tuple(_make(HttpUrl, ub, path=ub.values.get("path", "")) for ub in _blocks(b, "url"))
    return _make(HttpCheck, b, kind=b.keyword, url=urls)
