"""The VRRP state machine of one virtual router (RFC 9568 / RFC 3768 with keepalived's behaviour), sans I/O.

Events go in as method calls carrying the current time (``now``, float seconds from any monotonic clock);
each returns the list of :class:`Action` objects the I/O shell must carry out, in order. The machine never
reads a clock or touches a socket: the shell asks :attr:`Vrrp.deadline` when to call :meth:`Vrrp.tick` next.

keepalived behaviours kept here (its code is the reference where the RFC leaves room):

- ``state MASTER`` below priority 255 starts as BACKUP and waits a whole Master_Down_Interval, like any
  backup (keepalived ``vrrp_init_state()``); the address owner (255) goes MASTER at once. In a sync group
  that is not MASTER, such a member waits one advert interval plus the minimal skew instead.
- ``wants_master`` is keepalived's ``wantstate``: the state the instance would take if it were not in a
  sync group. A member of a sync group becomes MASTER only when its group lets it (:attr:`Vrrp.sync_gate`:
  keepalived's ``vrrp_sync_can_goto_master()``, every other member wants MASTER too); otherwise its down
  timer is re-armed and it stays BACKUP, still wanting MASTER until it accepts an advert.
- A BACKUP resets its down timer only for adverts it accepts (priority >= its own, ``nopreempt``, or inside
  ``preempt_delay``); ignored adverts leave the running timer alone.
- A MASTER answers a lower-priority advert with an advert at once (unless ``lower_prio_no_advert``), and a
  priority-0 advert likewise; with ``higher_prio_send_advert`` it sends one more advert before yielding.
- Skew_Time: VRRPv3 ``(256 - priority) * Master_Adver_Interval / 256``; VRRPv2 ``(256 - priority) / 256`` s.
- Becoming MASTER: advert first, then the addresses, then the gratuitous ARP/NA burst; a second burst after
  ``garp_master_delay``, and every ``garp_master_refresh`` while MASTER.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address

PRIORITY_OWNER = 255
PRIORITY_STOP = 0
#: A MASTER's advert may go out up to this share of its advertisement interval early when the engine is
#: awake anyway (for another instance's advert), so that the adverts of many instances share wake-ups.
#: Early is harmless: each advert restarts its backups' Master_Down timers, and the schedule keeps its
#: phase (the next advert is due one interval after this one's deadline).
ADVERT_EARLY_SHARE = 0.1


class State(enum.StrEnum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOP = "STOP"


class Reason(enum.StrEnum):
    """Why a transition happened (shown in status and logs)."""

    STARTUP = "startup"
    ADDRESS_OWNER = "address owner"
    MASTER_DOWN = "master down timer expired"
    PRIORITY_ZERO = "master sent priority 0"
    HIGHER_PRIORITY = "advert with higher priority"
    EQUAL_PRIORITY_HIGHER_ADDRESS = "advert with equal priority from a higher address"
    FAULT = "fault"
    FAULT_CLEARED = "fault cleared"
    SYNC_GROUP = "sync group"
    ROUTE_DELETED = "a tracked virtual route or rule was deleted"
    SHUTDOWN = "shutdown"
    RESUMED = "resumed after restart"


# --- actions ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendAdvert:
    priority: int


@dataclass(frozen=True, slots=True)
class AddAddresses:
    """Install the virtual addresses (and routes/rules)."""


@dataclass(frozen=True, slots=True)
class RemoveAddresses:
    """Remove the virtual addresses (and routes/rules)."""


@dataclass(frozen=True, slots=True)
class Announce:
    """Send ``repeat`` gratuitous ARPs / unsolicited neighbour advertisements for every address."""

    repeat: int


@dataclass(frozen=True, slots=True)
class Transition:
    old: State
    new: State
    reason: Reason
    priority: int


@dataclass(frozen=True, slots=True)
class LowerPriorityHeard:
    """A MASTER heard a lower-priority advert (keepalived's notify_master_rx_lower_pri)."""

    source: IPAddress
    priority: int


Action = SendAdvert | AddAddresses | RemoveAddresses | Announce | Transition | LowerPriorityHeard


# --- parameters ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """What the state machine needs of an instance's configuration (already resolved against global_defs)."""

    name: str
    version: int
    advert_int: float
    priority: int
    local_address: IPAddress
    start_as_master: bool = False
    nopreempt: bool = False
    preempt_delay: float = 0.0
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    garp_master_delay: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh: float = 0.0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_delay: float = 5.0
    garp_lower_prio_repeat: int = 0
    #: keepalived's down_timer_adverts: Master_Down_Interval = this many intervals + Skew_Time.
    down_timer_adverts: int = 3

    @property
    def is_owner(self) -> bool:
        return self.priority == PRIORITY_OWNER


def skew_time(version: int, priority: int, master_adver_int: float) -> float:
    """RFC Skew_Time in seconds for a router of ``priority``."""
    if version == 3:
        return (256 - priority) * master_adver_int / 256
    return (256 - priority) / 256


def master_down_interval(version: int, priority: int, master_adver_int: float, adverts: int = 3) -> float:
    return adverts * master_adver_int + skew_time(version, priority, master_adver_int)


def clamp_priority(base: int, weights: int) -> int:
    """Effective priority: base plus tracker weights, kept within 1..254; the owner's 255 never moves."""
    if base == PRIORITY_OWNER:
        return PRIORITY_OWNER
    return max(1, min(254, base + weights))


# --- the machine --------------------------------------------------------------------------------------------


@dataclass
class Counters:
    adverts_sent: int = 0
    adverts_received: int = 0
    became_master: int = 0
    released_master: int = 0
    priority_zero_sent: int = 0
    priority_zero_received: int = 0


@dataclass
class Vrrp:
    params: Params
    state: State = State.INIT
    #: Effective priority (base plus tracker weights); set with :meth:`set_priority`.
    priority: int = 0
    #: Master_Adver_Interval: our advert_int, or (VRRPv3 backup) the master's.
    master_adver_int: float = 0.0
    master_address: IPAddress | None = None
    master_priority: int | None = None
    #: False while a sync group forbids this member to become MASTER.
    master_allowed: bool = True
    #: True while a tracker or the link holds the instance in FAULT.
    faulted: bool = False
    #: True while another member of its sync group is in FAULT.
    group_faulted: bool = False
    #: keepalived's ``wantstate == MASTER``: the down timer expired (or ``state MASTER``/owner at start) and
    #: no advert has been accepted since; what a sync group asks of its members.
    wants_master: bool = False
    #: vrrp_startup_delay: no down timer counts before this time (keepalived's vrrp_delayed_start_time)
    hold_until: float = 0.0
    #: Set by a sync group: whether this member may become MASTER now (None: not in a sync group).
    sync_gate: Callable[[Vrrp], bool] | None = field(default=None, repr=False, compare=False)
    last_transition: float | None = None
    last_reason: Reason | None = None
    counters: Counters = field(default_factory=Counters)
    _down_at: float | None = None
    _advert_at: float | None = None
    _garp_at: float | None = None
    _refresh_at: float | None = None
    _lower_garp_at: float | None = None
    _preempt_at: float | None = None
    #: Why the down timer runs short (priority 0 heard), for the transition's reason.
    _down_reason: Reason = Reason.MASTER_DOWN
    _started: float = 0.0

    def __post_init__(self) -> None:
        if not self.priority:
            self.priority = self.params.priority
        if not self.master_adver_int:
            self.master_adver_int = self.params.advert_int
        self.wants_master = self.params.start_as_master or self.params.is_owner

    def _after(self, now: float) -> float:
        """When a BACKUP's down timer starts counting: now, or the end of vrrp_startup_delay."""
        return max(now, self.hold_until)

    def may_become_master(self) -> bool:
        """Neither a fault in its sync group nor the group's other members stop it becoming MASTER."""
        return self.master_allowed and (self.sync_gate is None or self.sync_gate(self))

    # --- timers -----------------------------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        """When :meth:`tick` must next be called (None: no timer running)."""
        times = [
            t
            for t in (self._down_at, self._advert_at, self._garp_at, self._refresh_at, self._lower_garp_at)
            if t is not None
        ]
        return min(times) if times else None

    @property
    def deadline_early(self) -> float:
        """How long before :attr:`deadline` a :meth:`tick` may already act on it: a MASTER's advert
        (:data:`ADVERT_EARLY_SHARE` of its interval) when that is the earliest deadline, else 0."""
        if self.state is State.MASTER and self._advert_at is not None and self._advert_at == self.deadline:
            return self._advert_early()
        return 0.0

    def _advert_early(self) -> float:
        return ADVERT_EARLY_SHARE * self.params.advert_int

    @property
    def skew_time(self) -> float:
        return skew_time(self.params.version, self.priority, self.master_adver_int)

    @property
    def master_down_interval(self) -> float:
        return master_down_interval(
            self.params.version, self.priority, self.master_adver_int, self.params.down_timer_adverts
        )

    def _min_skew(self) -> float:
        return skew_time(self.params.version, 255, self.master_adver_int)

    # --- events -----------------------------------------------------------------------------------------

    def start(self, now: float, *, resume_master: bool = False, held: bool = False) -> list[Action]:
        """Leave INIT. ``resume_master``: a restarted child that was MASTER resumes at once (no flap).
        ``held``: the start waited for tracked scripts' first results, and (as keepalived's
        ``try_up_instance()``) only the address owner still wants MASTER."""
        self._started = now
        out: list[Action] = []
        if held:
            self.wants_master = self.params.is_owner
        if self.in_fault:
            self._enter(out, now, State.FAULT, Reason.FAULT)
            return out
        if resume_master and self.master_allowed:
            self.master_adver_int = self.params.advert_int
            self.wants_master = True
            self._send(out, self.priority)
            out.append(AddAddresses())  # already there: a no-op that re-asserts them, nothing removed
            self._enter(out, now, State.MASTER, Reason.RESUMED)
            self._advert_at = now + self.params.advert_int
            self._arm_refresh(now)
            return out
        if self.params.is_owner and self.may_become_master() and now >= self.hold_until:
            self._become_master(out, now, Reason.ADDRESS_OWNER)
            return out
        self.master_adver_int = self.params.advert_int
        self._enter(out, now, State.BACKUP, Reason.STARTUP)
        if self.params.is_owner and now < self.hold_until:
            self._down_at = self.hold_until  # vrrp_startup_delay: the owner takes over when it ends
            return out
        if self.sync_gate is not None and self.wants_master:
            self._down_at = self._after(now) + self.params.advert_int + self._min_skew()
        else:
            self._down_at = self._after(now) + self.master_down_interval
        return out

    def tick(self, now: float) -> list[Action]:
        """Run every timer due at ``now``."""
        out: list[Action] = []
        if self.state is State.BACKUP and self._down_at is not None and now >= self._down_at:
            self._down_at = None
            self.wants_master = True
            if self.may_become_master():
                self._become_master(out, now, self._down_reason)
            else:
                self._down_at = now + self.master_down_interval
        if self.state is State.MASTER:
            if self._advert_at is not None and now >= self._advert_at - self._advert_early():
                self._send(out, self.priority)
                # From the deadline, not from now: a late wake-up must not push every later advert back.
                nxt = self._advert_at + self.params.advert_int
                self._advert_at = nxt if nxt > now else now + self.params.advert_int
            if self._garp_at is not None and now >= self._garp_at:
                self._garp_at = None
                out.append(Announce(self.params.garp_master_repeat))
            if self._lower_garp_at is not None and now >= self._lower_garp_at:
                self._lower_garp_at = None
                out.append(Announce(self.params.garp_lower_prio_repeat))
            if self._refresh_at is not None and now >= self._refresh_at:
                out.append(Announce(self.params.garp_master_refresh_repeat))
                self._refresh_at = now + self.params.garp_master_refresh
        return out

    def advert(self, now: float, source: IPAddress, priority: int, adver_int: float) -> list[Action]:
        """A validated advertisement for this VRID arrived (``adver_int`` in seconds, as carried)."""
        out: list[Action] = []
        self.counters.adverts_received += 1
        if priority == PRIORITY_STOP:
            self.counters.priority_zero_received += 1
        if self.state is State.BACKUP:
            self._backup_rx(out, now, source, priority, adver_int)
        elif self.state is State.MASTER:
            self._master_rx(out, now, source, priority, adver_int)
        return out

    def set_priority(self, now: float, priority: int) -> list[Action]:
        """The effective priority changed (tracker weights)."""
        out: list[Action] = []
        if priority == self.priority:
            return out
        self.priority = priority
        if self.state is State.MASTER:
            # Tell the backups at once so a now-higher backup can preempt.
            self._send(out, self.priority)
            self._advert_at = now + self.params.advert_int
        return out

    def set_fault(self, now: float, faulted: bool) -> list[Action]:
        """A weight-0 tracker failed (or the interface went down), or every such fault cleared."""
        was = self.in_fault
        self.faulted = faulted
        return self._fault_changed(now, was)

    def set_group_fault(self, now: float, faulted: bool) -> list[Action]:
        """Another member of the sync group entered FAULT, or none is in FAULT any more."""
        was = self.in_fault
        self.group_faulted = faulted
        self.master_allowed = not faulted
        return self._fault_changed(now, was)

    @property
    def in_fault(self) -> bool:
        return self.faulted or self.group_faulted

    def _fault_changed(self, now: float, was: bool) -> list[Action]:
        out: list[Action] = []
        if self.in_fault == was:
            return out
        if self.in_fault:
            if self.state is State.MASTER:
                self._leave_master(out, now, State.FAULT, Reason.FAULT, send_zero=True)
            elif self.state is not State.INIT and self.state is not State.STOP:
                self._enter(out, now, State.FAULT, Reason.FAULT)
                self._down_at = None
                self.wants_master = False
        elif self.state is State.FAULT:
            self.master_adver_int = self.params.advert_int
            self.wants_master = self.params.is_owner
            if self.params.is_owner and self.may_become_master():
                self._become_master(out, now, Reason.FAULT_CLEARED)
            else:
                self._enter(out, now, State.BACKUP, Reason.FAULT_CLEARED)
                self._preempt_at = None
                self._down_at = self._after(now) + self.master_down_interval
        return out

    def stop(self, now: float, *, release: bool = True) -> list[Action]:
        """Shut down: a MASTER sends priority 0 and (``release``) removes its addresses."""
        out: list[Action] = []
        if self.state is State.MASTER:
            self._send(out, PRIORITY_STOP)
            self.counters.priority_zero_sent += 1
            if release:
                out.append(RemoveAddresses())
        self._clear_timers()
        self._enter(out, now, State.STOP, Reason.SHUTDOWN)
        return out

    def routing_lost(self, now: float) -> list[Action]:
        """A tracked virtual route or rule of this MASTER was deleted behind its back (keepalived's
        ``set_vrrp_backup()``): priority 0, addresses (and routes) released, BACKUP with a down timer of
        Skew_Time, so it comes back -- adding them again -- unless a peer takes over first."""
        out: list[Action] = []
        if self.state is State.MASTER:
            self._leave_master(out, now, State.BACKUP, Reason.ROUTE_DELETED, send_zero=True)
            self.quick_return(now)
        return out

    def quick_return(self, now: float) -> None:
        """A BACKUP's down timer set to Skew_Time (a quick transition back to MASTER)."""
        if self.state is State.BACKUP:
            self._down_at = now + self.skew_time

    # --- sync groups ------------------------------------------------------------------------------------

    def force_master(self, now: float) -> list[Action]:
        """A sync group moves this member to MASTER with the others."""
        out: list[Action] = []
        if self.state is State.BACKUP and not self.in_fault:
            self.wants_master = True
            self._become_master(out, now, Reason.SYNC_GROUP)
        return out

    def force_backup(self, now: float) -> list[Action]:
        """A sync group moves this member to BACKUP with the others."""
        out: list[Action] = []
        if self.state is State.MASTER:
            self._leave_master(out, now, State.BACKUP, Reason.SYNC_GROUP, send_zero=False)
        return out

    # --- internals --------------------------------------------------------------------------------------

    def _backup_rx(
        self, out: list[Action], now: float, source: IPAddress, priority: int, adver_int: float
    ) -> None:
        p = self.params
        if priority == PRIORITY_STOP:
            self._down_at = self._after(now) + self.skew_time
            self._down_reason = Reason.PRIORITY_ZERO
            return
        in_preempt_delay = p.preempt_delay > 0 and (self._preempt_at is None or self._preempt_at > now)
        if p.nopreempt or priority >= self.priority or in_preempt_delay:
            if p.version == 3:
                self.master_adver_int = adver_int
            self._down_at = self._after(now) + self.master_down_interval
            self.master_address = source
            self.master_priority = priority
            self._down_reason = Reason.MASTER_DOWN
            # Held in BACKUP by its sync group after its timer expired, it wanted MASTER; not any more.
            self.wants_master = False
            if p.preempt_delay > 0:
                if priority >= self.priority:
                    self._preempt_at = None
                elif self._preempt_at is None:
                    self._preempt_at = now + p.preempt_delay
        else:
            # A lower priority master and we may preempt: ignore it; the running down timer decides.
            self.master_address = source
            self.master_priority = priority

    def _master_rx(
        self, out: list[Action], now: float, source: IPAddress, priority: int, adver_int: float
    ) -> None:
        p = self.params
        cmp = _compare(source, p.local_address)
        higher = priority > self.priority or (priority == self.priority and cmp > 0)
        if priority == PRIORITY_STOP or (p.higher_prio_send_advert and higher):
            self._send(out, self.priority)
            if priority == PRIORITY_STOP:
                return
        if priority == self.priority and cmp != 0 and self.priority == PRIORITY_OWNER:
            # Two address owners: keepalived lowers itself to 254 and re-elects.
            self.priority = PRIORITY_OWNER - 1
            higher = cmp > 0
        if not higher:
            if cmp == 0 and priority == self.priority:
                return  # our own advert looped back
            if not p.lower_prio_no_advert:
                self._send(out, self.priority)
                self._advert_at = now + p.advert_int
            if p.garp_lower_prio_repeat:
                out.append(Announce(p.garp_lower_prio_repeat))
                if p.garp_lower_prio_delay:
                    self._lower_garp_at = now + p.garp_lower_prio_delay
            out.append(LowerPriorityHeard(source, priority))
            return
        if p.version == 3:
            self.master_adver_int = adver_int
        self.master_address = source
        self.master_priority = priority
        reason = Reason.HIGHER_PRIORITY if priority > self.priority else Reason.EQUAL_PRIORITY_HIGHER_ADDRESS
        self._leave_master(out, now, State.BACKUP, reason, send_zero=False)

    def _become_master(self, out: list[Action], now: float, reason: Reason) -> None:
        self._down_reason = Reason.MASTER_DOWN
        # Our own interval from now on (a v3 backup had adopted the old master's).
        self.master_adver_int = self.params.advert_int
        self._send(out, self.priority)
        out.append(AddAddresses())
        out.append(Announce(self.params.garp_master_repeat))
        self._down_at = None
        self._advert_at = now + self.params.advert_int
        self._garp_at = now + self.params.garp_master_delay if self.params.garp_master_delay > 0 else None
        self._arm_refresh(now)
        self.master_address = self.params.local_address
        self.master_priority = self.priority
        self.wants_master = True
        self.counters.became_master += 1
        self._enter(out, now, State.MASTER, reason)

    def _arm_refresh(self, now: float) -> None:
        refresh = self.params.garp_master_refresh
        self._refresh_at = now + refresh if refresh > 0 else None

    def _leave_master(
        self, out: list[Action], now: float, new: State, reason: Reason, *, send_zero: bool
    ) -> None:
        if send_zero:
            self._send(out, PRIORITY_STOP)
            self.counters.priority_zero_sent += 1
        out.append(RemoveAddresses())
        self._clear_timers()
        self.counters.released_master += 1
        self._preempt_at = None
        self.wants_master = False
        if new is State.BACKUP:
            self._down_at = now + self.master_down_interval
        else:
            self.master_adver_int = self.params.advert_int
        self._enter(out, now, new, reason)

    def _clear_timers(self) -> None:
        self._down_at = self._advert_at = self._garp_at = self._refresh_at = self._lower_garp_at = None

    def _send(self, out: list[Action], priority: int) -> None:
        self.counters.adverts_sent += 1
        out.append(SendAdvert(priority))

    def _enter(self, out: list[Action], now: float, new: State, reason: Reason) -> None:
        old = self.state
        self.state = new
        self.last_transition = now
        self.last_reason = reason
        if new is not State.MASTER and self.master_address == self.params.local_address:
            self.master_address = None
            self.master_priority = None
        out.append(Transition(old, new, reason, self.priority))


def _compare(a: IPAddress, b: IPAddress) -> int:
    """RFC tie-break: compare primary addresses as unsigned integers (different families never compare)."""
    if a.version != b.version:
        return 0
    return (int(a) > int(b)) - (int(a) < int(b))
