"""The declarations of every keyword kpd reads, assembled into :data:`SCHEMA`.

Supported keywords are declared in the modules of this package; every other keyword keepalived knows (from
:mod:`keepalived_py.config.catalogue`) is registered as recognised-but-unsupported, so it is reported by name
and never mistaken for a typo.
"""

from __future__ import annotations

from keepalived_py.config import catalogue
from keepalived_py.config.keywords import global_defs, lvs, vrrp
from keepalived_py.config.schema import Keyword, Kind, Schema


def _unsupported_from_catalogue(schema: Schema) -> None:
    for section_name, keywords in catalogue.KEEPALIVED_KEYWORDS.items():
        section = schema.sections.get(section_name)
        if section is None:
            continue  # a block kpd does not implement at all: its keyword in the parent is unsupported
        for name, child in keywords.items():
            if section.lookup(name) is not None:
                continue
            canonical = catalogue.KEEPALIVED_ALIASES.get((section_name, name))
            if canonical is not None and section.lookup(canonical) is not None:
                continue  # an alias kpd does not list yet: handled below
            kind = Kind.VALUE if child is None else Kind.SECTION
            schema.add(
                section_name,
                Keyword(name, "keepalived keyword not implemented by kpd.", kind=kind, supported=False),
            )
    # Aliases keepalived accepts for keywords kpd implements: attach them to the implemented keyword.
    for (section_name, spelling), canonical in catalogue.KEEPALIVED_ALIASES.items():
        section = schema.sections.get(section_name)
        if section is None or section.lookup(spelling) is not None:
            continue
        target = section.lookup(canonical)
        if target is not None:
            section.by_spelling[spelling] = target


def build_schema() -> Schema:
    schema = Schema()
    global_defs.declare(schema)
    vrrp.declare(schema)
    lvs.declare(schema)
    _unsupported_from_catalogue(schema)
    schema.check()
    return schema


SCHEMA = build_schema()
