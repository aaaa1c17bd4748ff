"""An in-memory IPVS driver for unit tests of pure logic (never evidence that IPVS works: see tests/ipvs)."""

from __future__ import annotations

from collections.abc import Iterator

from keepalived_py.ipvs.reconcile import Op, apply_in_place, copy_table
from keepalived_py.ipvs.state import Entry, ServiceKey


class FakeIpvs:
    def __init__(self, table: dict[ServiceKey, Entry] | None = None) -> None:
        self.table: dict[ServiceKey, Entry] = copy_table(table or {})
        self.ops: list[Op] = []
        self.flushes = 0
        self.dumps = 0

    def dump(self) -> dict[ServiceKey, Entry]:
        return dict(self.iter_dump())

    def iter_dump(self) -> Iterator[tuple[ServiceKey, Entry]]:
        self.dumps += 1
        yield from copy_table(self.table).items()

    def apply(self, op: Op) -> None:
        apply_in_place(self.table, op)
        self.ops.append(op)

    def flush(self) -> None:
        self.flushes += 1
        self.table = {}

    def weights(self) -> dict[str, dict[str, int]]:
        """{service: {dest: weight}} for compact assertions."""
        return {str(k): {str(dk): d.weight for dk, d in e.dests.items()} for k, e in self.table.items()}
