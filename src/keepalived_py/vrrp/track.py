"""Trackers for VRRP instances: ``vrrp_script``, ``track_interface``, ``track_file`` and ``track_process``.

The pure part (:class:`ScriptTracker`, :class:`InstanceTracking`, :class:`Trackers`) holds the state of every
tracked object and computes, per instance, the effective priority and whether a tracker holds it in FAULT.
The asyncio shells (:class:`ScriptScheduler`, :class:`FileWatcher`) run the scripts and watch the files and
feed :class:`Trackers`; interface state arrives from a link monitor elsewhere, through
:meth:`Trackers.set_link`.

keepalived's rules (``vrrp/vrrp_track.c``, ``vrrp/vrrp_scheduler.c``, ``vrrp/vrrp.c``,
``trackers/track_file.c``), as verified against its source (v2.2.7, and v2.3.4 where noted):

* **Script results.** Exit status 0 is success; any other status, death by a signal, a timeout (the whole
  process group is killed after ``timeout`` seconds, default ``interval``) or a script that cannot be started
  is a failure (keepalived counts a timed-out script that exits 0 on SIGTERM as a success; we do not).
  A script is KO after ``fall`` consecutive failures and OK after ``rise`` consecutive
  successes.  keepalived keeps one counter per script, 0..rise+fall-1, OK while it is >= rise.
* **The first result decides.** A script starts in an "init" state (no result yet); its first result makes
  it OK or KO at once, whatever ``rise``/``fall`` are ("one success is enough").  While a weight-0 script has
  no result the instance is held in FAULT, silently (keepalived's ``num_script_init``: the instance is put in
  FAULT at startup without notifications); a weighted script in the init state adjusts nothing.
* **init_fail** starts the script KO (counter 0): ``rise`` successes are needed to make it OK.  NB: keepalived
  2.2.7-2.3.x loses ``init_fail`` for every *tracked* script (``alloc_track_script()`` resets the script's
  init state when an instance or sync group tracks it); we implement the documented behaviour instead.
* **Scripts run** at a fixed cadence: the first run at start-up, then every ``interval``; a run still going
  at the next tick makes that tick skip (keepalived >= 2.3.0; 2.2.7 forgot the ``return``).  Who they run
  as and whether they may run at all is :mod:`keepalived_py.script_security`'s rule (the one check-config
  and every other script kind use); a script it refuses is dropped from tracking (:func:`unusable_scripts`).
* **Weights** (track_script / track_interface, with ``m`` = -1 for ``reverse``, else 1): weight 0 puts the
  instance in FAULT while the script is KO / the interface is down (``reverse``: while OK / up).  A positive
  weight adds ``weight * m`` while OK / up; a negative weight adds ``weight * m`` while KO / down.  So
  ``reverse`` negates the adjustment; it does not move it to the other state.
* **Files** hold a number read like ``strtol(buf, NULL, 0)`` from the first 127 bytes: leading blanks, a
  sign, ``0x`` hex and leading-``0`` octal are understood and trailing garbage is ignored; an empty,
  missing or unreadable file or one with no digits reads 0; a number outside [-2^31, 2^31] is logged and
  ignored (the previous value stays).  Weight 0: a non-zero value (``reverse``: a zero value) means FAULT.
  Otherwise the contribution is ``value * weight * m`` capped at 253, and a product <= -254 means FAULT.
* **init_file [VALUE] [overwrite]** writes VALUE (default 0) and a newline when the file does not exist, or
  with ``overwrite`` over an existing regular file (not on a reload), atomically (temporary file + rename,
  mode 0666 less the umask), for every ``track_file`` whether tracked or not.
* **The instance's own interface** is tracked with weight 0 (down means FAULT) unless ``dont_track_primary``;
  ``track_interface`` naming the instance's own interface is ignored.
* **Sync groups.** The group's track_script / track_interface / track_file entries apply to every member.
  In a group without ``sync_group_tracking_weight`` (or the deprecated ``global_tracking``) a member's own
  weighted track_script entries are dropped and its track_file entries of weight 1 (the default) become
  weight 0 and other weighted ones are dropped; its weighted track_interface entries keep their weight
  (keepalived logs that it ignores them but has already registered them).  If any member is the address
  owner, the group's entries lose their weight.  An object tracked both by the instance and by its group
  counts once: with the group's weight unless the instance's entry is unweighted.
* **Address owner** (priority 255): weighted entries are ignored (its priority never moves), except that, as
  for sync group members, its track_file entries of weight 1 become weight 0; weight-0 entries still put it
  in FAULT.
* **Processes** (``vrrp_track_process``, :mod:`keepalived_py.vrrp.track_process`) are up while their count
  is a quorum; weights work as for scripts (default weight 0: no quorum means FAULT), and sync group members
  and the address owner drop weighted ones as they drop weighted scripts.
* **Effective priority** = base + sum of contributions, kept within 1..254 (``fsm.clamp_priority``).

Only scripts and files some instance tracks are run / read (keepalived removes the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keepalived_py.config.model import (
    Config,
    GlobalDefs,
    Tracked,
    TrackFile,
    TrackProcess,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
)
from keepalived_py.script_runner import run_script
from keepalived_py.script_security import ScriptDecision, ScriptPolicy
from keepalived_py.track_file import initialise_track_file, parse_track_file_value, read_raw, read_track_file
from keepalived_py.vrrp.fsm import PRIORITY_OWNER, clamp_priority

__all__ = [
    "FileWatcher",
    "InstanceTracking",
    "ScriptScheduler",
    "ScriptState",
    "ScriptStats",
    "ScriptTracker",
    "TrackEntry",
    "TrackKind",
    "Trackers",
    "file_contribution",
    "initialise_track_file",
    "parse_track_file_value",
    "read_track_file",
    "script_decision",
    "unusable_scripts",
]

logger = logging.getLogger(__name__)

#: A file contribution at or below this puts the instance in FAULT; contributions are capped at the other.
_FILE_FAULT = -254
_FILE_MAX = 253

OnChange = Callable[[set[str]], None]


# --- scripts: the rise/fall counter ------------------------------------------------------------------------


class ScriptState(enum.StrEnum):
    """A tracked script's state: no result yet, succeeding, failing."""

    INIT = "INIT"
    OK = "OK"
    KO = "KO"


@dataclass
class ScriptTracker:
    """keepalived's rise/fall counter for one ``vrrp_script``.

    ``counter`` runs from 0 to ``rise + fall - 1``; the script is OK while it is at least ``rise``.  A
    success below ``rise - 1`` counts up; reaching ``rise`` jumps to the top (so ``fall`` failures are needed
    to go KO again).  A failure above ``rise`` counts down; reaching ``rise - 1`` or below drops to 0 (so
    ``rise`` successes are needed to go OK again).  Until the first result the state is INIT and the counter
    is ``rise - 1``, so the first result decides; with ``init_fail`` the script starts KO at 0.

    ``holds_instances`` is False for a script that appeared at a reload: its INIT state then neither holds
    instances in FAULT nor adjusts anything (keepalived's ``SCRIPT_INIT_STATE_INIT_RELOAD``).
    """

    name: str
    rise: int = 1
    fall: int = 1
    init_fail: bool = False
    holds_instances: bool = True
    counter: int = field(init=False)
    #: True until the first result (keepalived's init state).
    pending: bool = field(init=False)
    #: The last result: True success, False failure, None none yet.
    last_success: bool | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rise < 1 or self.fall < 1:
            raise ValueError(f"script {self.name}: rise and fall must be at least 1")
        if self.init_fail:
            self.counter = 0
            self.pending = False
        else:
            self.counter = self.rise - 1
            self.pending = True

    @property
    def state(self) -> ScriptState:
        if self.pending:
            return ScriptState.INIT
        return ScriptState.OK if self.counter >= self.rise else ScriptState.KO

    @property
    def top(self) -> int:
        """The counter's maximum, ``rise + fall - 1``."""
        return self.rise + self.fall - 1

    def result(self, success: bool) -> bool:
        """Count one run's result; True when the state changed (INIT counts as a state)."""
        before = self.state
        self.last_success = success
        if success:
            if self.counter < self.rise - 1:
                self.counter += 1
            else:
                self.counter = self.top
        elif self.counter > self.rise:
            self.counter -= 1
        else:
            self.counter = 0
        self.pending = False
        return self.state is not before

    def carry_over(self, old: ScriptTracker) -> None:
        """Take over the state of the same script from before a reload (keepalived ``clear_diff_script``).

        A result keeps its meaning with the new ``rise``/``fall``: as far below ``rise`` (or above it) as it
        was, within the counter's range.  A script that had no result yet stays waiting for its first.
        """
        if old.pending:
            self.counter = self.rise - 1
            self.pending = True
            self.holds_instances = old.holds_instances
            return
        if old.counter < old.rise:
            self.counter = 0 if old.counter == 0 else max(0, self.rise - (old.rise - old.counter))
        elif old.counter == old.top:
            self.counter = self.top
        else:
            self.counter = min(self.top, self.rise + (old.counter - old.rise))
        self.pending = False
        self.last_success = old.last_success


def file_contribution(value: int, weight: int, reverse: bool) -> int | None:
    """A track_file's priority contribution for ``value``, or None when it puts the instance in FAULT."""
    if weight == 0:
        return None if (value != 0) != reverse else 0
    product = value * weight * (-1 if reverse else 1)
    if product <= _FILE_FAULT:
        return None
    return min(product, _FILE_MAX)


# --- what an instance tracks --------------------------------------------------------------------------------


class TrackKind(enum.StrEnum):
    SCRIPT = "script"
    INTERFACE = "interface"
    FILE = "file"
    PROCESS = "process"


@dataclass(frozen=True)
class TrackEntry:
    """One tracked object of an instance with its effective weight; ``origin`` says where it came from."""

    kind: TrackKind
    name: str
    weight: int
    reverse: bool = False
    origin: str = "instance"

    @property
    def multiplier(self) -> int:
        return -1 if self.reverse else 1

    def describe_weight(self) -> str:
        """``weight -20`` or, reversed, ``weight 20 reverse``."""
        return f"weight {self.weight}{' reverse' if self.reverse else ''}"


@dataclass(frozen=True)
class _Effect:
    contribution: int = 0
    fault: bool = False
    hold: bool = False
    reason: str | None = None


class InstanceTracking:
    """What one VRRP instance tracks, with effective weights, evaluated against the current states.

    Built by :class:`Trackers`; the state mappings are the registry's own, so the answers are always current.
    """

    def __init__(
        self,
        name: str,
        base_priority: int,
        entries: Iterable[TrackEntry],
        *,
        scripts: Mapping[str, ScriptTracker],
        links: Mapping[str, bool],
        files: Mapping[str, int],
        processes: Mapping[str, bool] | None = None,
        sync_group: str | None = None,
    ) -> None:
        self.name = name
        self.base_priority = base_priority
        self.entries: tuple[TrackEntry, ...] = tuple(entries)
        self.sync_group = sync_group
        self._scripts = scripts
        self._links = links
        self._files = files
        self._processes: Mapping[str, bool] = processes if processes is not None else {}

    @property
    def is_owner(self) -> bool:
        return self.base_priority == PRIORITY_OWNER

    def tracks(self, kind: TrackKind, name: str) -> bool:
        return any(e.kind is kind and e.name == name for e in self.entries)

    def _effect(self, e: TrackEntry) -> _Effect:
        if e.kind is TrackKind.FILE:
            value = self._files.get(e.name, 0)
            c = file_contribution(value, e.weight, e.reverse)
            if c is None:
                if e.weight == 0:
                    how = "fault, reverse" if e.reverse else "fault"
                else:
                    how = f"{e.describe_weight()}: {value * e.weight * e.multiplier}, fault"
                return _Effect(fault=True, reason=f"file {e.name} value {value} ({how})")
            if c:
                return _Effect(c, reason=f"file {e.name} value {value} ({e.describe_weight()}: {c:+d})")
            return _Effect()
        if e.kind is TrackKind.SCRIPT:
            tracker = self._scripts[e.name]
            if tracker.pending:
                if e.weight == 0 and tracker.holds_instances:
                    return _Effect(
                        hold=True, reason=f"script {e.name} has no result yet (held until it has)"
                    )
                return _Effect()
            good = tracker.state is ScriptState.OK
            label = f"script {e.name} {tracker.state}"
        elif e.kind is TrackKind.PROCESS:
            good = self._processes.get(e.name, False)
            label = f"process {e.name} quorum {'up' if good else 'down'}"
        else:
            good = self._links.get(e.name, True)
            label = f"interface {e.name} {'up' if good else 'down'}"
        if e.weight == 0:
            if good == e.reverse:
                return _Effect(fault=True, reason=f"{label} (fault{', reverse' if e.reverse else ''})")
            return _Effect()
        if good == (e.weight > 0):
            c = e.weight * e.multiplier
            suffix = f": {c:+d}" if e.reverse else ""
            return _Effect(c, reason=f"{label} ({e.describe_weight()}{suffix})")
        return _Effect()

    def _effects(self) -> list[_Effect]:
        effects = [self._effect(e) for e in self.entries]
        if self.is_owner:
            # keepalived drops the owner's weighted trackers: only faults matter.
            effects = [x if x.fault or x.hold else _Effect() for x in effects]
        return effects

    def weights(self) -> int:
        """The sum of the current contributions (before clamping)."""
        return sum(x.contribution for x in self._effects())

    def priority(self) -> int:
        """The effective priority: base plus contributions within 1..254; 255 never moves."""
        return clamp_priority(self.base_priority, self.weights())

    def fault(self) -> bool:
        """True while a weight-0 tracker fails, or a weight-0 script has not reported its first result."""
        return any(x.fault or x.hold for x in self._effects())

    def initialising(self) -> bool:
        """True while a weight-0 script has no result yet (keepalived holds the instance silently)."""
        return any(x.hold for x in self._effects())

    def failing(self) -> bool:
        """True while a weight-0 tracker really fails (a pending first result does not count)."""
        return any(x.fault for x in self._effects())

    def reasons(self) -> list[str]:
        """Human-readable lines for every tracker now moving the priority or holding the instance in FAULT."""
        return [x.reason for x in self._effects() if x.reason is not None]

    def states(self) -> list[dict[str, Any]]:
        """Every tracked object of the instance as the metrics show it: type, name, configured weight
        (``reverse`` as a negative multiplier is kept apart), whether it is up (a file: its value is not a
        fault; a script without a first result: None) and what it adds to the priority now."""
        out = []
        for e, x in zip(self.entries, self._effects(), strict=True):
            up: bool | None
            if e.kind is TrackKind.FILE:
                up = not x.fault
            elif e.kind is TrackKind.SCRIPT:
                tracker = self._scripts[e.name]
                up = None if tracker.pending else tracker.state is ScriptState.OK
            elif e.kind is TrackKind.PROCESS:
                up = self._processes.get(e.name, False)
            else:
                up = self._links.get(e.name, True)
            out.append({"type": e.kind.value, "name": e.name, "weight": e.weight, "reverse": e.reverse,
                        "up": up, "contribution": x.contribution, "fault": x.fault})
        return out

    def snapshot(self) -> tuple[int, bool]:
        """(priority, fault): what the state machine needs."""
        effects = self._effects()
        weights = sum(x.contribution for x in effects)
        return clamp_priority(self.base_priority, weights), any(x.fault or x.hold for x in effects)


# --- the registry -------------------------------------------------------------------------------------------


def _merge(entries: dict[tuple[TrackKind, str], TrackEntry], new: TrackEntry, instance: str) -> None:
    """Add a sync group's entry: an existing weighted entry takes the group's weight, an unweighted stays."""
    key = (new.kind, new.name)
    old = entries.get(key)
    if old is None:
        entries[key] = new
        return
    logger.info(
        "(%s) track_%s %s is configured on the instance and its %s; remove it from the instance",
        instance,
        new.kind.value,
        new.name,
        new.origin,
    )
    if old.weight != 0:
        entries[key] = new


class Trackers:
    """The tracking state of a whole VRRP process: every tracked script, interface and file.

    The event methods return the names of the instances whose effective priority or fault state changed.
    Unknown names (a script or file nobody tracks, an interface nobody tracks) change nothing.

    Interfaces are assumed up until :meth:`set_link` (or ``links``) says otherwise; the link monitor should
    report every interface's state at start-up.  ``disabled_scripts`` are dropped from tracking as keepalived
    drops scripts that are not found or insecure (see :func:`unusable_scripts`).  ``previous``, the registry
    from before a reload, hands over script states, link states and file values; scripts new at the reload
    then adjust nothing until their first result.
    """

    def __init__(
        self,
        config: Config,
        *,
        disabled_scripts: Iterable[str] = (),
        links: Mapping[str, bool] | None = None,
        previous: Trackers | None = None,
    ) -> None:
        self.config = config
        disabled = set(disabled_scripts)
        self._script_cfg: dict[str, VrrpScript] = {}
        for s in config.vrrp_scripts:
            if s.name not in disabled:
                self._script_cfg.setdefault(s.name, s)
        self._file_cfg: dict[str, TrackFile] = {}
        for f in config.track_files:
            self._file_cfg.setdefault(f.name, f)
        self._process_cfg: dict[str, TrackProcess] = {}
        for p in config.track_processes:
            self._process_cfg.setdefault(p.name, p)
        #: whether each tracked process has its quorum (False until the process table is read)
        self.process_up: dict[str, bool] = {}
        self.scripts: dict[str, ScriptTracker] = {}
        self.links: dict[str, bool] = dict(previous.links) if previous is not None else {}
        self.links.update(links or {})
        self.file_values: dict[str, int] = {}
        self._instances: dict[str, InstanceTracking] = {}

        group_of: dict[str, str] = {}
        groups: dict[str, VrrpSyncGroup] = {}
        names = {inst.name for inst in config.vrrp_instances}
        for g in config.vrrp_sync_groups:
            groups.setdefault(g.name, g)
            for member in g.group:
                if member in names:
                    group_of.setdefault(member, g.name)
        members: dict[str, list[VrrpInstance]] = {}
        for inst in config.vrrp_instances:
            if inst.name in group_of:
                members.setdefault(group_of[inst.name], []).append(inst)

        for inst in config.vrrp_instances:
            if inst.name in self._instances:
                continue
            gname = group_of.get(inst.name)
            entries = self._instance_entries(inst, groups[gname] if gname else None)
            if gname is not None:
                group = groups[gname]
                has_owner = any(m.priority == PRIORITY_OWNER for m in members[gname])
                for e in self._group_entries(group.name, group.track_script, TrackKind.SCRIPT, has_owner):
                    _merge(entries, e, inst.name)
                for e in self._group_entries(
                    group.name, group.track_interface, TrackKind.INTERFACE, has_owner
                ):
                    _merge(entries, e, inst.name)
                for e in self._group_entries(group.name, group.track_file, TrackKind.FILE, has_owner):
                    _merge(entries, e, inst.name)
                for e in self._group_entries(group.name, group.track_process, TrackKind.PROCESS, has_owner):
                    _merge(entries, e, inst.name)
            self._instances[inst.name] = InstanceTracking(
                inst.name,
                inst.priority,
                entries.values(),
                scripts=self.scripts,
                links=self.links,
                files=self.file_values,
                processes=self.process_up,
                sync_group=gname,
            )

        for it in self._instances.values():
            for e in it.entries:
                if e.kind is TrackKind.SCRIPT and e.name not in self.scripts:
                    cfg = self._script_cfg[e.name]
                    tracker = ScriptTracker(
                        cfg.name,
                        max(1, cfg.rise),
                        max(1, cfg.fall),
                        cfg.init_fail,
                        holds_instances=previous is None,
                    )
                    old = previous.scripts.get(e.name) if previous is not None else None
                    if old is not None:
                        tracker.carry_over(old)
                    self.scripts[e.name] = tracker
                elif e.kind is TrackKind.FILE and e.name not in self.file_values:
                    self.file_values[e.name] = (
                        previous.file_values.get(e.name, 0) if previous is not None else 0
                    )
                elif e.kind is TrackKind.PROCESS and e.name not in self.process_up:
                    self.process_up[e.name] = (
                        previous.process_up.get(e.name, False) if previous is not None else False
                    )

    # --- building -------------------------------------------------------------------------------------

    def _weight(self, kind: TrackKind, tracked: Tracked) -> tuple[int, bool]:
        """The entry's weight and reverse flag: its own, else the script's / file's (interfaces: 0)."""
        if kind is TrackKind.SCRIPT:
            cfg_s = self._script_cfg[tracked.name]
            default, default_rev = cfg_s.weight, cfg_s.weight_reverse
        elif kind is TrackKind.FILE:
            cfg_f = self._file_cfg[tracked.name]
            default, default_rev = cfg_f.weight, cfg_f.weight_reverse
        elif kind is TrackKind.PROCESS:
            cfg_p = self._process_cfg[tracked.name]
            default, default_rev = cfg_p.weight, cfg_p.weight_reverse
        else:
            default, default_rev = 0, False
        if tracked.weight is None:
            return default, default_rev
        # "NAME weight N" keeps the script's / file's reverse flag (keepalived also accepts "noreverse").
        return tracked.weight, tracked.weight_reverse or default_rev

    def _known(self, kind: TrackKind, name: str, owner: str) -> bool:
        if kind is TrackKind.SCRIPT and name not in self._script_cfg:
            logger.warning("(%s) track script %s not found (or disabled), ignoring", owner, name)
            return False
        if kind is TrackKind.FILE and name not in self._file_cfg:
            logger.warning("(%s) track file %s not found, ignoring", owner, name)
            return False
        if kind is TrackKind.PROCESS and name not in self._process_cfg:
            logger.warning("(%s) track process %s not found, ignoring", owner, name)
            return False
        return True

    def _instance_entries(
        self, inst: VrrpInstance, group: VrrpSyncGroup | None
    ) -> dict[tuple[TrackKind, str], TrackEntry]:
        owner = inst.priority == PRIORITY_OWNER
        sync_no_weight = group is not None and not (group.sync_group_tracking_weight or group.global_tracking)
        own_if = inst.interface or self.config.global_defs.default_interface
        entries: dict[tuple[TrackKind, str], TrackEntry] = {}
        lists = (
            (TrackKind.INTERFACE, inst.track_interface),
            (TrackKind.SCRIPT, inst.track_script),
            (TrackKind.FILE, inst.track_file),
            (TrackKind.PROCESS, inst.track_process),
        )
        for kind, tracked_list in lists:
            for tracked in tracked_list:
                if not self._known(kind, tracked.name, inst.name):
                    continue
                key = (kind, tracked.name)
                if key in entries:
                    logger.warning(
                        "(%s) duplicate track_%s %s, ignoring", inst.name, kind.value, tracked.name
                    )
                    continue
                if kind is TrackKind.INTERFACE and tracked.name == own_if:
                    logger.warning(
                        "(%s) ignoring track_interface %s: it is the instance's own", inst.name, own_if
                    )
                    continue
                weight, reverse = self._weight(kind, tracked)
                if weight and (sync_no_weight or owner):
                    why = "its sync group" if sync_no_weight else "address owner"
                    if kind in (TrackKind.SCRIPT, TrackKind.PROCESS):
                        logger.warning(
                            "(%s) ignoring weighted track %s %s (%s)", inst.name, kind, tracked.name, why
                        )
                        continue
                    if kind is TrackKind.FILE:
                        if weight != 1:
                            logger.warning(
                                "(%s) ignoring weighted track file %s (%s)", inst.name, tracked.name, why
                            )
                            continue
                        logger.warning(
                            "(%s) track file %s: weight 1 ignored, using 0 (%s)", inst.name, tracked.name, why
                        )
                        weight = 0
                entries[key] = TrackEntry(kind, tracked.name, weight, reverse)
        if own_if and not inst.dont_track_primary:
            entries[(TrackKind.INTERFACE, own_if)] = TrackEntry(
                TrackKind.INTERFACE, own_if, 0, False, "own interface"
            )
        return entries

    def _group_entries(
        self, group: str, tracked_list: tuple[Tracked, ...], kind: TrackKind, has_owner: bool
    ) -> list[TrackEntry]:
        out: list[TrackEntry] = []
        seen: set[str] = set()
        for tracked in tracked_list:
            if not self._known(kind, tracked.name, group) or tracked.name in seen:
                continue
            seen.add(tracked.name)
            weight, reverse = self._weight(kind, tracked)
            if weight and has_owner:
                logger.warning(
                    "(%s) track_%s %s: weight cleared, a member is the address owner",
                    group,
                    kind,
                    tracked.name,
                )
                weight = 0
            out.append(TrackEntry(kind, tracked.name, weight, reverse, f"sync group {group}"))
        return out

    # --- queries --------------------------------------------------------------------------------------

    def instance(self, name: str) -> InstanceTracking:
        """The tracking of instance ``name`` (KeyError if there is no such instance)."""
        return self._instances[name]

    @property
    def instances(self) -> Mapping[str, InstanceTracking]:
        return self._instances

    def tracked_scripts(self) -> list[VrrpScript]:
        """The scripts some instance tracks (the only ones to run), in configuration order."""
        return [s for name, s in self._script_cfg.items() if name in self.scripts]

    def tracked_files(self) -> list[TrackFile]:
        """The track_files some instance tracks (the only ones to read), in configuration order."""
        return [f for name, f in self._file_cfg.items() if name in self.file_values]

    def tracked_processes(self) -> list[TrackProcess]:
        """The vrrp_track_processes some instance tracks (the only ones to count), in configuration order."""
        return [p for name, p in self._process_cfg.items() if name in self.process_up]

    def tracked_interfaces(self) -> set[str]:
        return {
            e.name for it in self._instances.values() for e in it.entries if e.kind is TrackKind.INTERFACE
        }

    def script_state(self, name: str) -> ScriptState | None:
        tracker = self.scripts.get(name)
        return tracker.state if tracker is not None else None

    # --- events ---------------------------------------------------------------------------------------

    def _dependents(self, kind: TrackKind, name: str) -> list[InstanceTracking]:
        return [it for it in self._instances.values() if it.tracks(kind, name)]

    def _apply(self, kind: TrackKind, name: str, change: Callable[[], bool]) -> set[str]:
        deps = self._dependents(kind, name)
        before = {it.name: it.snapshot() for it in deps}
        if not change():
            return set()
        return {it.name for it in deps if it.snapshot() != before[it.name]}

    def on_script_result(self, name: str, success: bool) -> set[str]:
        """One run of script ``name`` succeeded or failed."""
        tracker = self.scripts.get(name)
        if tracker is None:
            return set()
        before = tracker.state
        changed = self._apply(TrackKind.SCRIPT, name, lambda: tracker.result(success))
        if tracker.state is not before:
            logger.info(
                "VRRP_Script(%s) %s", name, "succeeded" if tracker.state is ScriptState.OK else "failed"
            )
        return changed

    def set_link(self, ifname: str, up: bool) -> set[str]:
        """Interface ``ifname`` went up or down (unknown interfaces are assumed up)."""

        def change() -> bool:
            old = self.links.get(ifname, True)
            self.links[ifname] = up
            return old != up

        return self._apply(TrackKind.INTERFACE, ifname, change)

    def set_process(self, name: str, up: bool) -> set[str]:
        """The tracked process ``name`` gained (``up``) or lost its quorum."""
        if name not in self.process_up:
            return set()

        def change() -> bool:
            old = self.process_up[name]
            self.process_up[name] = up
            return old != up

        return self._apply(TrackKind.PROCESS, name, change)

    def set_file_value(self, name: str, value: int) -> set[str]:
        """The track_file ``name`` now holds ``value``."""
        if name not in self.file_values:
            return set()

        def change() -> bool:
            old = self.file_values[name]
            self.file_values[name] = value
            return old != value

        return self._apply(TrackKind.FILE, name, change)


# --- script users and security ------------------------------------------------------------------------------


def script_decision(script: VrrpScript, global_defs: GlobalDefs) -> ScriptDecision:
    """Whether, what and as whom ``script`` runs, by the one script-security rule."""
    return ScriptPolicy.of(global_defs).decide(script.script, script.user)


def unusable_scripts(config: Config) -> dict[str, str]:
    """vrrp_scripts keepalived would disable, with the reason (missing, not executable, refused by script
    security).  Pass the names to :class:`Trackers` as ``disabled_scripts``; keepalived removes them from
    tracking.
    """
    policy = ScriptPolicy.of(config.global_defs)
    out: dict[str, str] = {}
    for script in config.vrrp_scripts:
        if not script.script:
            out[script.name] = "no script set"
            continue
        refused = policy.decide(script.script, script.user).refused
        if refused is not None:
            out[script.name] = refused
    return out


# --- the asyncio shells -------------------------------------------------------------------------------------


@dataclass
class ScriptStats:
    """Counters of one script's runs."""

    runs: int = 0
    successes: int = 0
    failures: int = 0
    timeouts: int = 0
    skipped_ticks: int = 0
    last_returncode: int | None = None
    last_description: str = ""


def _notify(callback: OnChange | None, changed: set[str]) -> None:
    if changed and callback is not None:
        try:
            callback(changed)
        except Exception:
            logger.exception("tracking change callback failed")


class ScriptScheduler:
    """Runs every tracked ``vrrp_script`` on its interval and feeds the results to :class:`Trackers`.

    Each script has its own task: it never runs twice at once (a tick that finds it still running is
    skipped), and a hanging script only delays itself: it is killed ``timeout`` seconds after it started
    (SIGTERM to its process group, SIGKILL ``kill_grace`` seconds later) and counts as a failure.
    ``on_change`` receives the names of the instances whose priority or fault state changed.
    """

    def __init__(
        self,
        trackers: Trackers,
        *,
        on_change: OnChange | None = None,
        kill_grace: float = 2.0,
    ) -> None:
        self.trackers = trackers
        self.on_change = on_change
        self.kill_grace = kill_grace
        self.stats: dict[str, ScriptStats] = {s.name: ScriptStats() for s in trackers.tracked_scripts()}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        """Start one task per tracked script (the first runs happen at once); needs a running loop."""
        loop = asyncio.get_running_loop()
        for script in self.trackers.tracked_scripts():
            if script.name not in self._tasks:
                self._tasks[script.name] = loop.create_task(
                    self._run(script), name=f"vrrp_script {script.name}"
                )

    async def stop(self) -> None:
        """Cancel every task; a script still running is killed with its process group."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, script: VrrpScript) -> None:
        loop = asyncio.get_running_loop()
        interval = script.interval if script.interval > 0 else 1.0
        timeout = script.timeout if script.timeout else interval
        decision = script_decision(script, self.trackers.config.global_defs)
        if decision.refused is not None:
            # Trackers should have dropped it (unusable_scripts); never run a refused script regardless.
            logger.warning("VRRP_Script(%s) is disabled: %s", script.name, decision.refused)
            return
        stats = self.stats.setdefault(script.name, ScriptStats())
        start = loop.time()
        tick = 0
        while True:
            try:
                await self._run_once(script, decision, timeout, stats)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("VRRP_Script(%s): unexpected error", script.name)
            # Fixed cadence from the start; ticks that came while the script ran are skipped.
            elapsed = loop.time() - start
            next_tick = max(tick + 1, int(elapsed // interval) + 1)
            stats.skipped_ticks += next_tick - tick - 1
            tick = next_tick
            await asyncio.sleep(max(0.0, start + tick * interval - loop.time()))

    async def _run_once(
        self, script: VrrpScript, decision: ScriptDecision, timeout: float, stats: ScriptStats
    ) -> None:
        result = await run_script(
            decision.argv,
            timeout=timeout,
            user=decision.user,
            group=decision.group,
            kill_grace=self.kill_grace,
            max_output=4096,
            purpose="vrrp_script",
        )
        stats.runs += 1
        stats.last_description = result.describe()
        success = result.ok
        if success:
            stats.successes += 1
        else:
            stats.failures += 1
            if result.timed_out:
                stats.timeouts += 1
        if result.error is not None and result.returncode is None and not result.timed_out:
            logger.warning("VRRP_Script(%s): %s", script.name, result.describe())
        elif result.returncode != stats.last_returncode and result.returncode is not None:
            logger.info("Script `%s` now returning %d", script.name, result.returncode)
        stats.last_returncode = result.returncode
        if result.timed_out:
            logger.info("VRRP_Script(%s) timed out: %s", script.name, result.describe())
        _notify(self.on_change, self.trackers.on_script_result(script.name, success))


@dataclass
class _Watched:
    file: TrackFile
    #: Contents at the last poll, and contents whose value was last applied (None: no such file).
    seen: bytes | None
    applied: bytes | None


class FileWatcher:
    """Watches every tracked ``track_file`` by polling and feeds the values to :class:`Trackers`.

    :meth:`start` applies ``init_file`` (for every track_file, as keepalived does at configuration time),
    reads every tracked file once, then polls each every ``poll_interval`` seconds.  A change is applied once
    the contents read the same on two consecutive polls, so a file caught half-written (truncated, not yet
    filled) is never taken for 0; keepalived, using inotify, reads when the writer closes the file.
    Latency: between one and two poll intervals (0.2-0.4 s by default) after the write.
    """

    def __init__(
        self,
        trackers: Trackers,
        *,
        on_change: OnChange | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.trackers = trackers
        self.on_change = on_change
        self.poll_interval = poll_interval
        self._watched: list[_Watched] = []
        self._task: asyncio.Task[None] | None = None

    def start(self, *, reload: bool = False) -> set[str]:
        """Initialise and read the files now, then poll them in a task; the instances changed by the read.

        Without a running event loop the files are initialised and read but not polled (call :meth:`poll`).
        """
        for tf in self.trackers.config.track_files:
            if initialise_track_file(tf, reload=reload):
                logger.info("track file %s: wrote its initial value to %s", tf.name, tf.file)
        changed: set[str] = set()
        self._watched = []
        for tf in self.trackers.tracked_files():
            raw = read_raw(tf.file)
            self._watched.append(_Watched(tf, raw, raw))
            changed |= self._apply(tf, raw)
        _notify(self.on_change, changed)
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            if self._task is None:
                self._task = loop.create_task(self._poll_forever(), name="track_file watcher")
        return changed

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def poll(self) -> set[str]:
        """Look at every file once; the instances whose priority or fault changed (also sent to on_change)."""
        changed: set[str] = set()
        for w in self._watched:
            raw = read_raw(w.file.file)
            if raw != w.seen:
                w.seen = raw  # changed since the last poll: wait until it settles
            elif raw != w.applied:
                w.applied = raw
                changed |= self._apply(w.file, raw)
        _notify(self.on_change, changed)
        return changed

    def _apply(self, tf: TrackFile, raw: bytes | None) -> set[str]:
        value = parse_track_file_value(raw) if raw else 0
        if value is None:
            logger.info("invalid number read from %s (track file %s), ignoring", tf.file, tf.name)
            return set()
        return self.trackers.set_file_value(tf.name, value)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                self.poll()
            except Exception:
                logger.exception("track file polling failed")
