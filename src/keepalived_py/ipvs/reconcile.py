"""The IPVS reconciler: a pure diff of the desired table against the kernel's, as a minimal operation list.

``plan(desired, current, managed=...)`` returns the operations that turn ``current`` (a dump of the kernel)
into ``desired``: services added, changed (scheduler, persistence, flags) or deleted; real servers added,
changed (weight, forwarding method, thresholds) or deleted. Nothing that already matches is touched, so
applying the plan to an up-to-date kernel does nothing, and a reload that changes one weight changes only
that weight.

Services kpd does not manage (rules someone else added, not in the configuration) are left alone unless
they are in ``managed`` (services kpd programmed earlier and no longer wants, e.g. after a reload removed
them) or ``flush_unmanaged`` is set (keepalived's lvs_flush).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from keepalived_py.ipvs.state import Dest, DestKey, Entry, Service, ServiceKey, Table


class OpKind(enum.Enum):
    ADD_SERVICE = "add-service"
    SET_SERVICE = "set-service"
    DEL_SERVICE = "del-service"
    ADD_DEST = "add-dest"
    SET_DEST = "set-dest"
    DEL_DEST = "del-dest"


@dataclass(frozen=True)
class Op:
    kind: OpKind
    service: ServiceKey
    #: the Service for ADD/SET_SERVICE, the Dest for ADD/SET_DEST, the DestKey for DEL_DEST;
    #: None for DEL_SERVICE
    item: Service | Dest | DestKey | None = None

    def __str__(self) -> str:
        detail = ""
        if isinstance(self.item, Dest):
            d = self.item
            detail = f" -> {d.key} {d.forward.ipvsadm} weight {d.weight}"
        elif isinstance(self.item, DestKey):
            detail = f" -> {self.item}"
        elif isinstance(self.item, Service):
            detail = f" {self.item.scheduler}"
        return f"{self.kind.value} {self.service}{detail}"


def service_differs(want: Service, have: Service) -> bool:
    return (
        want.scheduler != have.scheduler
        or want.flags != have.flags
        or (want.persistence_timeout is not None and want.persistence_timeout != have.persistence_timeout)
        or (want.persistence_timeout is not None and want.netmask != have.netmask)
        or (want.persistence_engine or None) != (have.persistence_engine or None)
    )


def plan(
    desired: Table,
    current: Table,
    *,
    managed: Collection[ServiceKey] = (),
    flush_unmanaged: bool = False,
) -> list[Op]:
    """The operations that make ``current`` equal to ``desired`` for the services kpd manages."""
    return [op for ops in iter_plan(desired, current, managed=managed, flush_unmanaged=flush_unmanaged)
            for op in ops]


def iter_plan(
    desired: Table,
    current: Table,
    *,
    managed: Collection[ServiceKey] = (),
    flush_unmanaged: bool = False,
) -> Iterator[list[Op]]:
    """:func:`plan` one service at a time: the operations for each service looked at, in plan's order (so
    that a caller may stop between services, e.g. to let its event loop turn)."""
    for key in sorted(current):
        if key not in desired and (flush_unmanaged or key in managed):
            yield [Op(OpKind.DEL_SERVICE, key)]
        else:
            yield []
    for key in sorted(desired):
        want = desired[key]
        have = current.get(key)
        if have is None:
            ops = [Op(OpKind.ADD_SERVICE, key, want.service)]
            ops.extend(Op(OpKind.ADD_DEST, key, want.dests[dk]) for dk in sorted(want.dests))
            yield ops
            continue
        ops = []
        if service_differs(want.service, have.service):
            ops.append(Op(OpKind.SET_SERVICE, key, want.service))
        ops.extend(_dest_ops(key, want, have))
        yield ops


def _dest_ops(key: ServiceKey, want: Entry, have: Entry) -> list[Op]:
    ops: list[Op] = []
    # Deletions first: a real server moving between forwarding methods or a sorry server being
    # replaced never coexists with its successor longer than needed.
    for dk in sorted(have.dests):
        if dk not in want.dests:
            ops.append(Op(OpKind.DEL_DEST, key, dk))
    for dk in sorted(want.dests):
        w = want.dests[dk]
        h = have.dests.get(dk)
        if h is None:
            ops.append(Op(OpKind.ADD_DEST, key, w))
        elif w != h:
            ops.append(Op(OpKind.SET_DEST, key, w))
    return ops


def copy_table(table: Table) -> dict[ServiceKey, Entry]:
    """A copy of ``table`` that :func:`apply_in_place` may change: its own dict, and its own dict of real
    servers in every entry (entries themselves are shared until changed)."""
    return {k: Entry(e.service, dict(e.dests)) for k, e in table.items()}


def apply_in_place(table: dict[ServiceKey, Entry], op: Op) -> None:
    """Change ``table`` (what a driver leaves in the kernel after ``op``) in O(1), for the mirror of the
    kernel's table the check engine keeps and for fakes. Every entry's ``dests`` must be a dict owned by
    ``table`` (see :func:`copy_table`): a real server operation changes it in place. ``table`` is left
    unchanged when ``op`` fails (FileExistsError / FileNotFoundError, as the kernel's EEXIST / ENOENT)."""
    if op.kind is OpKind.ADD_SERVICE or op.kind is OpKind.SET_SERVICE:
        assert isinstance(op.item, Service)
        old = table.get(op.service)
        if op.kind is OpKind.ADD_SERVICE and old is not None:
            raise FileExistsError(f"{op.service} exists")
        if op.kind is OpKind.SET_SERVICE and old is None:
            raise FileNotFoundError(f"{op.service} does not exist")
        table[op.service] = Entry(op.item, old.dests if old is not None else {})
    elif op.kind is OpKind.DEL_SERVICE:
        if table.pop(op.service, None) is None:
            raise FileNotFoundError(f"{op.service} does not exist")
    else:
        entry = table.get(op.service)
        if entry is None:
            raise FileNotFoundError(f"{op.service} does not exist")
        dests = entry.dests
        assert isinstance(dests, dict), "apply_in_place needs a table from copy_table()"
        if op.kind is OpKind.DEL_DEST:
            assert isinstance(op.item, DestKey)
            if dests.pop(op.item, None) is None:
                raise FileNotFoundError(f"{op.item} is not in {op.service}")
        else:
            assert isinstance(op.item, Dest)
            exists = op.item.key in dests
            if exists != (op.kind is OpKind.SET_DEST):
                raise (FileExistsError if exists else FileNotFoundError)(f"{op.item.key} in {op.service}")
            dests[op.item.key] = op.item


def apply_to(table: Table, ops: list[Op]) -> dict[ServiceKey, Entry]:
    """The table after ``ops`` (what a driver would leave in the kernel), ``table`` itself unchanged: one
    copy of the table, then O(1) per operation. For fakes and for tests."""
    out = copy_table(table)
    for op in ops:
        apply_in_place(out, op)
    return out
