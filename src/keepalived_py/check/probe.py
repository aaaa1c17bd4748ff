"""What one probe of a real server reports, whatever the checker type."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeResult:
    """One probe's verdict. ``reason`` says why it failed (and is empty on success)."""

    ok: bool
    reason: str = ""
    #: MISC_CHECK with misc_dynamic: the weight the script asked for (exit code - 2), else None
    weight: int | None = None

    @classmethod
    def up(cls, weight: int | None = None) -> ProbeResult:
        return cls(True, "", weight)

    @classmethod
    def down(cls, reason: str) -> ProbeResult:
        return cls(False, reason)
