"""A discrete-event harness for VRRP state machines: routers on a fake link driven by a fake clock.

Adverts a router sends reach every other router in the same partition after ``latency`` seconds. The clock
jumps from one deadline or delivery to the next, so a minute of protocol time takes microseconds.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from keepalived_py.vrrp.fsm import (
    Action,
    AddAddresses,
    Announce,
    Params,
    RemoveAddresses,
    SendAdvert,
    State,
    Transition,
    Vrrp,
)


@dataclass
class Router:
    name: str
    machine: Vrrp
    holds_vip: bool = False
    log: list[tuple[float, Action]] = field(default_factory=list)
    partition: int = 0
    sent: list[tuple[float, int]] = field(default_factory=list)  # (time, priority)
    announced: list[float] = field(default_factory=list)

    @property
    def state(self) -> State:
        return self.machine.state

    def transitions(self) -> list[tuple[float, State, State]]:
        return [(t, a.old, a.new) for t, a in self.log if isinstance(a, Transition)]


class Link:
    def __init__(self, latency: float = 0.0001):
        self.now = 0.0
        self.latency = latency
        self.routers: dict[str, Router] = {}
        self._queue: list[tuple[float, int, str, IPv4Address, int, float]] = []
        self._seq = itertools.count()
        #: invariant violations seen while running (a backup holding the VIP)
        self.violations: list[str] = []

    def add(self, name: str, priority: int, address: str, **kw: object) -> Router:
        params = Params(
            name=name,
            version=kw.pop("version", 3),
            advert_int=kw.pop("advert_int", 1.0),  # type: ignore[arg-type]
            priority=priority,
            local_address=IPv4Address(address),
            **kw,
        )  # type: ignore[arg-type]
        router = Router(name, Vrrp(params))
        self.routers[name] = router
        return router

    def start(self, *names: str, **kw: bool) -> None:
        for name in names or list(self.routers):
            r = self.routers[name]
            self._apply(r, r.machine.start(self.now, **kw))

    def _apply(self, r: Router, actions: list[Action]) -> None:
        for a in actions:
            r.log.append((self.now, a))
            if isinstance(a, SendAdvert):
                r.sent.append((self.now, a.priority))
                for other in self.routers.values():
                    if other is not r and other.partition == r.partition and other.state is not State.STOP:
                        heapq.heappush(
                            self._queue,
                            (
                                self.now + self.latency,
                                next(self._seq),
                                other.name,
                                r.machine.params.local_address,
                                a.priority,
                                r.machine.params.advert_int,
                            ),
                        )
            elif isinstance(a, AddAddresses):
                r.holds_vip = True
            elif isinstance(a, RemoveAddresses):
                r.holds_vip = False
            elif isinstance(a, Announce):
                r.announced.append(self.now)
        if r.holds_vip and r.state is not State.MASTER:
            self.violations.append(f"{r.name} holds the VIP in {r.state} at {self.now}")

    def _next_deadline(self) -> tuple[float, Router | None]:
        best: tuple[float, Router | None] = (float("inf"), None)
        for r in self.routers.values():
            d = r.machine.deadline
            if d is not None and d < best[0]:
                best = (d, r)
        return best

    def run_until(self, t_end: float) -> None:
        while True:
            t_timer, router = self._next_deadline()
            t_pkt = self._queue[0][0] if self._queue else float("inf")
            t = min(t_timer, t_pkt)
            if t > t_end:
                self.now = t_end
                return
            self.now = max(self.now, t)
            if t_pkt <= t_timer:
                _, _, dest, src, prio, adv = heapq.heappop(self._queue)
                r = self.routers[dest]
                if r.state is not State.STOP:
                    self._apply(r, r.machine.advert(self.now, src, prio, adv))
            else:
                assert router is not None
                self._apply(router, router.machine.tick(self.now))

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def call(self, name: str, method: str, *args: object, **kw: object) -> None:
        r = self.routers[name]
        self._apply(r, getattr(r.machine, method)(self.now, *args, **kw))

    def masters(self) -> list[str]:
        return sorted(n for n, r in self.routers.items() if r.state is State.MASTER)

    def vip_holders(self) -> list[str]:
        return sorted(n for n, r in self.routers.items() if r.holds_vip)
