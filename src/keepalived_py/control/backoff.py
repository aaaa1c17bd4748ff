"""When to respawn a child that died, as keepalived decides it (pure).

A child that ran for longer than :data:`STABLE_AFTER` seconds is respawned at once. Children that keep dying
sooner are respawned after 0, 1, 2, 4 ... seconds, doubling up to :data:`MAX_DELAY` (keepalived's
``calc_restart_delay``: the first quick death restarts at once, the next ones back off). A child that
exits with a configuration or fatal code is not respawned at all: the daemon stops instead of looping.
"""

from __future__ import annotations

from dataclasses import dataclass

STABLE_AFTER = 60.0
FIRST_DELAY = 1.0
MAX_DELAY = 60.0


@dataclass
class Backoff:
    #: the delay the next quick death will get
    upcoming: float = 0.0

    def next_delay(self, ran_for: float) -> float:
        """The wait before respawning a child that ran ``ran_for`` seconds before it died."""
        if ran_for > STABLE_AFTER:
            self.upcoming = 0.0
            return 0.0
        delay = self.upcoming
        self.upcoming = FIRST_DELAY if delay == 0.0 else min(delay * 2, MAX_DELAY)
        return delay
