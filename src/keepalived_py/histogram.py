"""A fixed-bucket histogram a child keeps and the parent exposes (check durations, event-loop lag).

The child observes values in O(log buckets) and sends :meth:`Histogram.to_json`; the parent turns it into
a Prometheus histogram (cumulative buckets) without seeing the individual values.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

#: seconds: from a fast local TCP connect to a slow HTTP check near its timeout
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: seconds: an idle loop wakes within a millisecond; past a second it is in trouble
LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Histogram:
    """Counts per bucket (``bounds`` are the upper bounds; one more bucket for larger values) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def to_json(self) -> dict[str, Any]:
        """``bounds``, ``counts`` (per bucket, not cumulative; the last one is above every bound), ``sum``."""
        return {"bounds": list(self.bounds), "counts": list(self.counts), "sum": round(self.sum, 6)}
