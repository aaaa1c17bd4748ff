"""When to respawn a child that died, as keepalived decides it (pure).

A child that ran for longer than :data:`STABLE_AFTER` seconds is respawned at once; one that died sooner is
respawned after 1, 2, 4 ... seconds, doubling up to :data:`MAX_DELAY`. A child that exits with a
configuration or fatal code is not respawned at all: the daemon stops instead of looping.
"""

from __future__ import annotations

from dataclasses import dataclass

STABLE_AFTER = 60.0
FIRST_DELAY = 1.0
MAX_DELAY = 60.0


@dataclass
class Backoff:
    delay: float = 0.0

    def next_delay(self, ran_for: float) -> float:
        """The wait before respawning a child that ran ``ran_for`` seconds before it died."""
        if ran_for > STABLE_AFTER:
            self.delay = 0.0
            return 0.0
        self.delay = FIRST_DELAY if self.delay == 0.0 else min(self.delay * 2, MAX_DELAY)
        return self.delay
