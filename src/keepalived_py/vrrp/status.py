"""The status record of a VRRP instance, as the daemon reports it (and the control plane will expose it)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from keepalived_py.vrrp.fsm import Counters


@dataclass
class InstanceStatus:
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
    #: the state machine's own counters (adverts sent/received, master transitions, priority 0)
    counters: Counters = field(default_factory=Counters)
    drops: Counter[str] = field(default_factory=Counter)
    checksums: Counter[str] = field(default_factory=Counter)
    #: human-readable reasons the priority or FAULT state differ from the configuration
    tracking: list[str] = field(default_factory=list)

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
            "counters": dataclasses.asdict(self.counters),
            "drops": dict(sorted(self.drops.items())),
            "checksums": dict(sorted(self.checksums.items())),
            "tracking": list(self.tracking),
        }
