"""The status record of one VRRP instance: what ``kpd status`` shows of it (docs/status.md).

The engine (:class:`~keepalived_py.vrrp.engine.VrrpEngine`) keeps one :class:`InstanceStatus` per instance
and updates it in place: transitions, adverts, drops, tracking. An instance that cannot run on this host
gets one too, held in FAULT with the error in ``last_reason``. In the ``kpd-vrrp`` child,
:mod:`keepalived_py.vrrp.daemon` serves the engine through
:class:`~keepalived_py.child_process.ChildRuntime`, which writes the :meth:`InstanceStatus.to_json` records
to ``<runtime dir>/vrrp-status.json`` (``runtime_paths.VRRP_STATUS``) at start, after each reload, at stop
and after the transitions the engine reports (``VrrpEngine.on_transition``): what changes between
transitions (counters, drops, priority, tracking) is in the file as of the last write. The parent reads
that file to answer ``kpd status`` and reports the instances UNKNOWN while the child is not healthy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from keepalived_py.vrrp.fsm import Counters


@dataclass
class InstanceStatus:
    """One instance's status; :meth:`to_json` is its record in the status file (fields only ever added)."""

    name: str
    interface: str | None
    vrid: int
    version: int
    state: str = "INIT"
    base_priority: int = 0
    effective_priority: int = 0
    master_address: str | None = None
    vips: list[str] = field(default_factory=list)
    #: wall-clock time (UNIX seconds) of the last transition, and why it happened
    last_transition: float | None = None
    last_reason: str | None = None
    #: the state machine's own ``Counters`` (adverts sent/received, MASTER gained/released, priority 0
    #: sent/received); a running instance shares the machine's object, so they are always current
    counters: Counters = field(default_factory=Counters)
    #: adverts dropped, by reason; accepted adverts, by checksum form
    drops: Counter[str] = field(default_factory=Counter)
    checksums: Counter[str] = field(default_factory=Counter)
    #: human-readable reasons the priority or FAULT state differ from the configuration
    tracking: list[str] = field(default_factory=list)
    #: transitions since the child started, by (new state, reason code: ``fsm.Reason`` name in lower case)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: every tracked object with its state and weight (``InstanceTracking.states``), as of the last write
    trackers: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "interface": self.interface,
            "vrid": self.vrid,
            "version": self.version,
            "state": self.state,
            "base_priority": self.base_priority,
            "effective_priority": self.effective_priority,
            "master_address": self.master_address,
            "vips": list(self.vips),
            "last_transition": self.last_transition,
            "last_reason": self.last_reason,
            "counters": vars(self.counters).copy(),  # flat ints: what dataclasses.asdict gives, 10x cheaper
            "drops": dict(sorted(self.drops.items())),
            "checksums": dict(sorted(self.checksums.items())),
            "tracking": list(self.tracking),
            "transitions": [{"to": to, "reason": reason, "count": n}
                            for (to, reason), n in sorted(self.transitions.items())],
            "trackers": list(self.trackers),
        }
