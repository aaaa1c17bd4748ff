"""FILE_CHECK: a root ``track_file``'s value moves a real server's weight, or takes the server down.

keepalived's rule (``check_file.c``, ``track_file.c``, 2.2.7), with ``m`` = -1 for ``reverse``, else 1:

* weight 0: a non-zero value (``reverse``: a zero value) takes the server down; otherwise nothing changes;
* otherwise the server's weight is its configured weight plus ``value * weight * m`` (the sum over its
  FILE_CHECKs, and MISC_CHECK dynamic weights); a total of 0 or less leaves it in the service with IPVS
  weight 0 (quiesced, not down); only a product at or below -2^31 takes it down.

The value is read as the VRRP side reads a track_file (:mod:`keepalived_py.track_file`). keepalived reads
the file when its writer closes it (inotify); kpd reads it every ``FILE_POLL`` seconds and takes a new
value once two reads in a row agree, so a file caught half-written is never taken for 0. A FILE_CHECK
never sends an SMTP alert (keepalived does not); its real server's notify scripts and FIFO lines run.
Two keepalived 2.2.7 start-up slips are not reproduced: it ignores ``reverse`` for weight 0 until the
file first changes, and a server starting down with a non-zero weight comes back with weight about 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from keepalived_py.check.checker import Verdict
from keepalived_py.check.specs import CheckerKey, FileSpec
from keepalived_py.track_file import parse_track_file_value, read_raw

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def file_status(value: int, weight: int, reverse: bool) -> Verdict:
    """What ``value`` does to the real server: down, or up with a weight offset."""
    if weight == 0:
        if (value != 0) != reverse:
            return Verdict(False, f"tracked file value {value}")
        return Verdict(True)
    product = value * weight * (-1 if reverse else 1)
    if product <= _INT_MIN:
        return Verdict(False, f"tracked file value {value} (weight {weight})")
    return Verdict(True, offset=min(product, _INT_MAX))


@dataclass
class FileState:
    """One FILE_CHECK's last reading (``up``/``last_ok``/``last_reason`` as a checker's, for status)."""

    spec: FileSpec
    seen: bytes | None = None
    applied: bytes | None = None
    value: int = 0
    verdict: Verdict = Verdict(True)

    @property
    def up(self) -> bool:
        return self.verdict.up

    @property
    def last_ok(self) -> bool:
        return self.verdict.up

    @property
    def last_reason(self) -> str:
        return self.verdict.reason


class FileChecks:
    """Every FILE_CHECK's file, polled; verdicts out when a value changes what it does."""

    def __init__(self) -> None:
        self.states: dict[CheckerKey, FileState] = {}

    def load(self, keys: list[CheckerKey]) -> list[tuple[CheckerKey, Verdict]]:
        """Take these FILE_CHECKs (a start or a reload: those kept keep their reading); every one's
        verdict from the file as it is now."""
        old = self.states
        self.states = {}
        out: list[tuple[CheckerKey, Verdict]] = []
        for key in keys:
            spec = key.probe
            if not isinstance(spec, FileSpec):
                continue
            state = old.get(key)
            if state is None:
                raw = read_raw(spec.path)
                state = FileState(spec, raw)
                self._take(state, raw)
            self.states[key] = state
            out.append((key, state.verdict))
        return out

    def poll(self) -> list[tuple[CheckerKey, Verdict]]:
        """Read every file once; the verdicts that changed (a value is taken once two reads agree)."""
        out: list[tuple[CheckerKey, Verdict]] = []
        for key, state in self.states.items():
            raw = read_raw(state.spec.path)
            if raw != state.seen:
                state.seen = raw
            elif raw != state.applied:
                before = state.verdict
                self._take(state, raw)
                if state.verdict != before:
                    out.append((key, state.verdict))
        return out

    @staticmethod
    def _take(state: FileState, raw: bytes | None) -> None:
        state.applied = raw
        value = parse_track_file_value(raw) if raw else 0
        if value is None:
            return  # keepalived: "Invalid number ... - ignoring": the previous value stays
        state.value = value
        state.verdict = file_status(value, state.spec.weight, state.spec.reverse)
