"""Real- and virtual-server policy (pure): checker verdicts in; the desired IPVS table and notifications out.

* A real server is alive while every one of its checkers is up (one with no checker always is). Its weight
  is the configured one, moved by MISC_CHECK ``misc_dynamic`` results (keepalived: weight = exit code - 2)
  and by what its FILE_CHECKs add (never below 0: a live server of weight 0 stays in the table).
* A dead real server is removed from its services, or kept with weight 0 with ``inhibit_on_failure``.
* Quorum, as keepalived's ``update_quorum_state``: the sum of the weights of the live real servers against
  ``quorum`` with ``hysteresis`` (gained at ``quorum + hysteresis``, lost below ``quorum - hysteresis``).
  Losing it runs ``quorum_down`` and, when a ``sorry_server`` is configured, replaces the live real servers
  by the sorry server; gaining it runs ``quorum_up`` and puts them back. ``sorry_server_inhibit`` keeps the
  sorry server in the table with weight 0 while it is not needed.
* Every change of a real server or quorum state yields a :class:`Notification` (its scripts and the
  ``lvs_notify_fifo`` line in keepalived's format).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from keepalived_py.check.checker import Verdict
from keepalived_py.check.specs import (
    CheckerKey,
    DnsSpec,
    FileSpec,
    HttpSpec,
    MiscSpec,
    PingSpec,
    RealServerSpec,
    SmtpSpec,
    UdpSpec,
    VirtualServerSpec,
)
from keepalived_py.config.model import NotifyScript
from keepalived_py.histogram import Histogram
from keepalived_py.ipvs.state import Dest, DestKey, Entry, Forward, ServiceKey
from keepalived_py.notify import fifo_line_real_server, fifo_line_virtual_server


def check_mail_body(key: CheckerKey, v: Verdict) -> str:
    """keepalived's alert body for a checker's change, by kind of check."""
    probe = key.probe
    if isinstance(probe, MiscSpec):
        how = "succeeded" if v.up else "timed out" if "timed out" in v.reason.lower() else "failed"
        return f"=> MISC CHECK {how} on service <="
    if isinstance(probe, HttpSpec):
        return "=> CHECK succeed on service <=" if v.up else (
            "=> CHECK failed on service : HTTP request failed <="
        )
    if isinstance(probe, SmtpSpec):
        return "=> CHECK succeed on service <=" if v.up else f"=> CHECK failed on service : {v.reason} <="
    if isinstance(probe, UdpSpec):
        return f"=> UDP CHECK {'succeed' if v.up else 'failed'} on service <="
    if isinstance(probe, PingSpec):
        return f"=> ICMP CHECK {'succeed' if v.up else 'failed'} on service <="
    if isinstance(probe, DnsSpec):
        return f"=> DNS_CHECK: {'succeed' if v.up else 'failed'} on service <="
    return "=> TCP CHECK succeed on service <=" if v.up else "=> TCP CHECK failed on service <="


@dataclass(frozen=True)
class Notification:
    what: str  # "rs" or "vs"
    up: bool
    name: str
    scripts: tuple[NotifyScript, ...]
    fifo_line: str
    message: str


@dataclass
class RealServerState:
    spec: RealServerSpec
    #: checker index -> down reason, for the checkers that are down
    failed: dict[int, str] = field(default_factory=dict)
    #: checker index -> weight asked by a misc_dynamic checker
    dynamic: dict[int, int] = field(default_factory=dict)
    #: checker index -> what a FILE_CHECK adds to the weight
    offsets: dict[int, int] = field(default_factory=dict)
    alive: bool = True
    last_reason: str = ""
    #: wall-clock time (UNIX seconds) the server last went up or down; when it was set up, before that
    changed_at: float = field(default_factory=time.time)

    @property
    def weight(self) -> int:
        base = self.spec.dest.weight
        return max(0, base + sum(w - base for w in self.dynamic.values()) + sum(self.offsets.values()))


@dataclass
class VirtualServerState:
    spec: VirtualServerSpec
    real_servers: list[RealServerState]
    quorum_up: bool = True
    suspended: bool = False

    def live_weight(self) -> int:
        return sum(rs.weight for rs in self.real_servers if rs.alive)

    @property
    def sorry_active(self) -> bool:
        return self.spec.sorry_server is not None and not self.quorum_up


class Pool:
    """Every virtual server's state; feed it checker verdicts, read the desired table."""

    def __init__(self, specs: list[VirtualServerSpec]):
        #: SMTP alerts (subject without the router id, body) produced by the last calls: drained by the engine
        self.mails: list[tuple[str, str]] = []
        self.virtual_servers: list[VirtualServerState] = []
        #: checker key -> the (real server, checker index) pairs that reference it
        self.references: dict[CheckerKey, list[tuple[VirtualServerState, RealServerState, int]]] = {}
        for vspec in specs:
            vs = VirtualServerState(vspec, [])
            for rspec in vspec.real_servers:
                rs = RealServerState(rspec)
                for i, key in enumerate(rspec.checkers):
                    if key.alpha:
                        rs.failed[i] = "not checked yet (alpha)"
                    self.references.setdefault(key, []).append((vs, rs, i))
                rs.alive = not rs.failed
                vs.real_servers.append(rs)
            self.virtual_servers.append(vs)

    def start(self) -> list[Notification]:
        """The initial quorum evaluation (keepalived's init pass): every VS starts up or down, and says so."""
        return [note for vs in self.virtual_servers for note in self.start_one(vs)]

    def start_one(self, vs: VirtualServerState) -> list[Notification]:
        q, h = vs.spec.quorum, vs.spec.hysteresis
        weight = vs.live_weight()
        vs.quorum_up = weight > 0 and weight >= q + h
        word = "up" if vs.quorum_up else "down"
        if vs.quorum_up or vs.spec.sorry_server is not None:  # keepalived's init pass says only these
            self._vs_mail(vs, f"Starting with quorum {word} {q}+{h}={q + h} <= {weight}")
        return [self._vs_note(vs, f"Starting with quorum {word} {q}+{h}={q + h} vs {weight}")]

    @property
    def checker_keys(self) -> list[CheckerKey]:
        return list(self.references)

    def suspended(self, key: CheckerKey) -> bool:
        """True when every virtual server using this checker is suspended (ha_suspend)."""
        return all(vs.suspended for vs, _, _ in self.references.get(key, ()))

    def verdict(self, key: CheckerKey, v: Verdict) -> list[Notification]:
        """Apply a checker's new state to every real server referencing it."""
        return self.verdict_changes(key, v)[0]

    def verdict_changes(
        self, key: CheckerKey, v: Verdict
    ) -> tuple[list[Notification], list[VirtualServerState]]:
        """:meth:`verdict`, and the virtual servers whose table it changed: those where a real server's
        checker went up or down or its weight changed (a verdict that confirms what the pool had, such as
        each checker's first success at start, changes nothing and costs no sync of a virtual server)."""
        out: list[Notification] = []
        touched: list[VirtualServerState] = []
        for vs, rs, i in self.references.get(key, ()):
            if vs.suspended:
                continue
            checker_was_up = i not in rs.failed
            before = (checker_was_up, rs.dynamic.get(i), rs.offsets.get(i))
            if v.up:
                rs.failed.pop(i, None)
                if v.weight is not None:
                    rs.dynamic[i] = v.weight
                else:
                    rs.dynamic.pop(i, None)
                if v.offset:
                    rs.offsets[i] = v.offset
                else:
                    rs.offsets.pop(i, None)
            else:
                rs.failed[i] = v.reason or "check failed"
                rs.dynamic.pop(i, None)
                rs.offsets.pop(i, None)
                rs.last_reason = rs.failed[i]
            alive = not rs.failed
            mail = rs.spec.smtp_alert and (alive != rs.alive or rs.spec.mail_every_check)
            mail = mail and not isinstance(key.probe, FileSpec)  # keepalived mails no FILE_CHECK change
            if mail and checker_was_up != v.up:
                # keepalived mails each checker's change (check_tcp.c, check_http.c, check_misc.c)
                word = "UP" if alive else "DOWN"
                subject = f"Realserver {rs.spec.name} of virtual server {vs.spec.name} - {word}"
                self.mails.append((subject, check_mail_body(key, v)))
            if alive != rs.alive:
                rs.alive = alive
                rs.changed_at = time.time()
                what = "UP" if alive else "DOWN"
                why = "" if alive else f": {rs.last_reason}"
                out.append(Notification(
                    "rs", alive, rs.spec.name,
                    (rs.spec.notify_up,) if alive and rs.spec.notify_up else
                    (rs.spec.notify_down,) if not alive and rs.spec.notify_down else (),
                    fifo_line_real_server(rs.spec.name, vs.spec.name, alive),
                    f"{'Adding' if alive else 'Removing'} service {rs.spec.name} "
                    f"{'to' if alive else 'from'} VS {vs.spec.name} ({what}{why})",
                ))
            if (v.up, rs.dynamic.get(i), rs.offsets.get(i)) != before and vs not in touched:
                touched.append(vs)
        for vs in touched:
            out.extend(self.update_quorum(vs))
        return out, touched

    def update_quorum(self, vs: VirtualServerState) -> list[Notification]:
        weight = vs.live_weight()
        q, h = vs.spec.quorum, vs.spec.hysteresis
        threshold = q + (-h if vs.quorum_up else h)
        if not vs.quorum_up and weight >= threshold and weight > 0:
            vs.quorum_up = True
            self._vs_mail(vs, f"Gained quorum {q}+{h}={threshold} <= {weight}")
            return [self._vs_note(vs, f"Gained quorum {q}+{h}={threshold} <= {weight}")]
        if vs.quorum_up and (weight == 0 or weight < threshold):
            vs.quorum_up = False
            self._vs_mail(vs, f"Lost quorum {q}+{h}={threshold} <= {weight}")
            return [self._vs_note(vs, f"Lost quorum {q}-{h}={threshold} > {weight}")]
        return []

    def _vs_mail(self, vs: VirtualServerState, text: str) -> None:
        """keepalived's quorum alert (ipwrapper.c: one format for every case)."""
        if vs.spec.smtp_alert:
            word = "UP" if vs.quorum_up else "DOWN"
            self.mails.append((f"Virtualserver {vs.spec.name} - {word}", f"=> {text} <="))

    def _vs_note(self, vs: VirtualServerState, message: str) -> Notification:
        up = vs.quorum_up
        script = vs.spec.quorum_up if up else vs.spec.quorum_down
        return Notification("vs", up, vs.spec.name, (script,) if script else (),
                            fifo_line_virtual_server(vs.spec.name, up), f"{message} for VS {vs.spec.name}")

    def stop_notifications(self) -> list[Notification]:
        """omega: on shutdown, the quorum_down scripts and down notifications keepalived sends."""
        out: list[Notification] = []
        for vs in self.virtual_servers:
            if not vs.spec.omega:
                continue
            for rs in vs.real_servers:
                if rs.alive:
                    out.append(Notification("rs", False, rs.spec.name,
                                            (rs.spec.notify_down,) if rs.spec.notify_down else (),
                                            fifo_line_real_server(rs.spec.name, vs.spec.name, False),
                                            f"Shutting down: {rs.spec.name}"))
            out.append(Notification("vs", False, vs.spec.name,
                                    (vs.spec.quorum_down,) if vs.spec.quorum_down else (),
                                    fifo_line_virtual_server(vs.spec.name, False),
                                    f"Shutting down VS {vs.spec.name}"))
        return out

    # --- the table ----------------------------------------------------------------------------------------

    def desired(self) -> dict[ServiceKey, Entry]:
        table: dict[ServiceKey, Entry] = {}
        for vs in self.virtual_servers:
            table.update(self.entries(vs))
        return table

    def entries(self, vs: VirtualServerState) -> dict[ServiceKey, Entry]:
        """The IPVS entries of one virtual server (one per service of a group).

        As keepalived programs them, a DR or TUN real server's port is the service's (0 for a fwmark
        service): the kernel forwards to the port the client asked for.
        """
        dests = self.dests(vs)
        out: dict[ServiceKey, Entry] = {}
        for service in vs.spec.services:
            port = service.key.port
            out[service.key] = Entry.of(service, [
                d if d.forward is Forward.MASQ or d.port == port else replace(d, port=port)
                for d in dests.values()
            ])
        return out

    def dests(self, vs: VirtualServerState) -> dict[DestKey, Dest]:
        out: dict[DestKey, Dest] = {}
        sorry = vs.spec.sorry_server
        use_sorry = vs.sorry_active
        for rs in vs.real_servers:
            d = rs.spec.dest
            if rs.alive and not use_sorry:
                out[d.key] = replace(d, weight=rs.weight)
            elif rs.spec.inhibit:
                out[d.key] = replace(d, weight=0)
        if sorry is not None:
            if use_sorry:
                out[sorry.key] = sorry
            elif vs.spec.sorry_server_inhibit and sorry.key not in out:
                out[sorry.key] = replace(sorry, weight=0)
        return out

    def managed_keys(self) -> set[ServiceKey]:
        return {s.key for vs in self.virtual_servers for s in vs.spec.services}

    # --- reporting ----------------------------------------------------------------------------------------

    def status(self, checkers: dict[CheckerKey, object] | None = None) -> list[dict[str, Any]]:
        """One record per virtual server for ``kpd status``."""
        out = []
        for vs in self.virtual_servers:
            dests = self.dests(vs)
            rss = []
            for rs in vs.real_servers:
                d = dests.get(rs.spec.dest.key)
                last = []
                for key in rs.spec.checkers:
                    c = checkers.get(key) if checkers else None
                    durations = getattr(c, "durations", None)
                    last.append({
                        "check": key.describe(),
                        "type": key.type,
                        "up": getattr(c, "up", None),
                        "last_ok": getattr(c, "last_ok", None),
                        "last_reason": getattr(c, "last_reason", ""),
                        # since the child started: probes run, failed, and how long they took
                        "probes": getattr(c, "probes", 0),
                        "failures": getattr(c, "failures", 0),
                        "durations": durations.to_json() if isinstance(durations, Histogram) else None,
                    })
                rss.append({
                    "name": rs.spec.name,
                    "state": "UP" if rs.alive else "DOWN",
                    "weight": d.weight if d is not None else None,
                    "in_ipvs": d is not None,
                    "reason": "" if rs.alive else rs.last_reason,
                    "last_change": rs.changed_at,
                    "checks": last,
                })
            out.append({
                "name": vs.spec.name,
                "services": [str(s.key) for s in vs.spec.services],
                "quorum": "UP" if vs.quorum_up else "DOWN",
                "live_weight": vs.live_weight(),
                "sorry_server_active": vs.sorry_active,
                "suspended": vs.suspended,
                "real_servers": rss,
            })
        return out

    def counts(self) -> tuple[int, int]:
        """(live real servers, real servers)."""
        rss = [rs for vs in self.virtual_servers for rs in vs.real_servers]
        return sum(rs.alive for rs in rss), len(rss)

