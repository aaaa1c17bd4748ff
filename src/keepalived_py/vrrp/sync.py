"""vrrp_sync_group: instances that change state together, sans I/O.

A :class:`SyncGroup` wraps the state machines of its members. Every event for a member goes through
:meth:`SyncGroup.run`, which then moves the other members: one member becoming MASTER takes the others to
MASTER, one falling back to BACKUP takes them to BACKUP, and while any member is in FAULT the whole group is
in FAULT (no member may become MASTER).

A member whose down timer expires becomes MASTER only when the group is already MASTER or every other
member wants MASTER too (its own down timer expired and it has accepted no advert since): keepalived's
``vrrp_sync_can_goto_master()``, which prefers BACKUP to thrashing. Adverts lost on one member's link only
therefore change nothing; a dead master is taken over when the last member's timer expires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from keepalived_py.vrrp.fsm import Action, Reason, State, Transition, Vrrp


@dataclass
class SyncGroup:
    name: str
    members: list[Vrrp]
    #: The group state last announced to its notify scripts (so each group transition notifies once).
    notified_state: State | None = None

    def __post_init__(self) -> None:
        self.attach()

    def attach(self) -> None:
        """Make every member ask this group before becoming MASTER."""
        for m in self.members:
            m.sync_gate = self.lets_become_master

    def lets_become_master(self, member: Vrrp) -> bool:
        """keepalived's ``vrrp_sync_can_goto_master()``: the group is MASTER, or all the others want it."""
        if self.state is State.MASTER:
            return True
        return all(m.wants_master for m in self.members if m is not member)

    @property
    def state(self) -> State:
        states = {m.state for m in self.members}
        for s in (State.FAULT, State.MASTER, State.BACKUP, State.STOP):
            if s in states:
                return s
        return State.INIT

    def run(self, member: Vrrp, now: float, event: Callable[[], list[Action]]) -> dict[str, list[Action]]:
        """Apply ``event`` to ``member``, then propagate; the actions of every member touched, by name."""
        out: dict[str, list[Action]] = {member.params.name: event()}
        self._propagate(now, out)
        return out

    def _propagate(self, now: float, out: dict[str, list[Action]]) -> None:
        # Repeat until stable: forcing one member can move another (bounded by the member count).
        for _ in range(len(self.members) + 1):
            changed = False
            any_fault = any(m.faulted for m in self.members)
            for m in self.members:
                if m.group_faulted != (any_fault and not m.faulted):
                    acts = m.set_group_fault(now, any_fault and not m.faulted)
                    changed |= bool(acts)
                    out.setdefault(m.params.name, []).extend(acts)
            if any_fault:
                if not changed:
                    return
                continue
            moved = [
                t
                for acts in out.values()
                for t in acts
                if isinstance(t, Transition) and t.reason is not Reason.SYNC_GROUP
            ]
            target = moved[-1].new if moved else None
            for m in self.members:
                forced: list[Action] = []
                if target is State.MASTER and m.state is State.BACKUP:
                    forced = m.force_master(now)
                elif target is State.BACKUP and m.state is State.MASTER:
                    forced = m.force_backup(now)
                if forced:
                    changed = True
                    out.setdefault(m.params.name, []).extend(forced)
            if not changed:
                return
