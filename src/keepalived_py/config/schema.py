"""The keyword schema: every configuration keyword declared once, like gunicorn's settings.

A :class:`Keyword` record says which section it belongs to, how its value is parsed and validated, its
default, whether it may repeat, its aliases, and one line of documentation. The reader, the model builder,
the docs and the supported-keyword table are all driven by these records (see
``keepalived_py.config.keywords`` for the declarations themselves).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from keepalived_py.config.values import ValueType

ROOT = "root"


class Kind(enum.Enum):
    VALUE = "value"  # `keyword args...` on one line
    SECTION = "section"  # `keyword [header args] { child keywords }`
    LIST = "list"  # `keyword { item line ... }`: each line is one item parsed by `value`
    WORDS = "words"  # `keyword { w1 w2 ... }`: each word, across lines, is one item parsed by `value`


@dataclass(frozen=True)
class Keyword:
    name: str
    doc: str
    #: VALUE: parses the arguments; LIST: parses each item line; WORDS: parses each word.
    value: ValueType[Any] | None = None
    default: Any = None
    kind: Kind = Kind.VALUE
    #: SECTION: the section whose keywords its block holds.
    child: str | None = None
    #: SECTION or LIST: parses the arguments before the block (a name, an address); each occurrence is then
    #: a block of its own, collected in a tuple. None: the keyword takes no arguments.
    header: ValueType[Any] | None = None
    #: May appear more than once; the values collect into a tuple (lists and sections always collect).
    repeatable: bool = False
    #: Other spellings keepalived accepts for the same keyword.
    aliases: tuple[str, ...] = ()
    #: Spellings keepalived still accepts but has deprecated: accepted with a note.
    deprecated: tuple[str, ...] = ()
    #: The model attribute the value lands in (default: the keyword's name).
    field: str = ""
    #: False: keepalived knows it, kpd does not implement it; reported by name and ignored.
    supported: bool = True
    #: What kpd does not do of what keepalived does with this keyword ("" when kpd does all of it). The value
    #: is read and validated as usual; every use is reported (check-config exit 5) and listed in the docs.
    partial: str = ""
    #: A bad value makes the item it identifies unusable (VRID, a server's address): keepalived drops the
    #: item and runs the rest, and so does kpd.
    drops_item: bool = False
    #: How the docs show the default when the model holds it in another unit (e.g. seconds for microseconds).
    shown_default: str = ""
    #: Filled in on registration.
    section: str = ""

    @property
    def support(self) -> str:
        """How much of keepalived's behaviour kpd has: "implemented", "partial" or "not implemented"."""
        if not self.supported:
            return "not implemented"
        return "partial" if self.partial else "implemented"

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases, *self.deprecated)

    #: Occurrences collect into a tuple (repeatable, a list, or a named block); derived on creation.
    collects: bool = dataclasses.field(init=False, default=False)

    #: The model attribute (``field`` or the name); derived on creation.
    attr: str = dataclasses.field(init=False, default="")

    #: Its use is remarked on (not supported, partial, or a deprecated spelling); derived on creation.
    remarked: bool = dataclasses.field(init=False, default=False)

    def __post_init__(self) -> None:
        collects = self.repeatable or self.kind in (Kind.LIST, Kind.WORDS) or self.header is not None
        object.__setattr__(self, "collects", collects)
        object.__setattr__(self, "attr", self.field or self.name)
        object.__setattr__(self, "remarked", not self.supported or bool(self.partial or self.deprecated))


@dataclass
class Section:
    name: str
    title: str
    doc: str
    #: how kpd's behaviour differs from keepalived's for this section, where it does (listed in the docs)
    differs: tuple[str, ...] = ()
    keywords: list[Keyword] = field(default_factory=list)
    by_spelling: dict[str, Keyword] = field(default_factory=dict)

    def lookup(self, word: str) -> Keyword | None:
        return self.by_spelling.get(word)

    def keyword(self, name: str) -> Keyword:
        return self.by_spelling[name]

    def defaults(self) -> dict[str, Any]:
        """Model attribute -> default, for the supported keywords that are not sub-sections."""
        out: dict[str, Any] = {}
        for kw in self.keywords:
            if kw.supported and kw.attr not in out:
                out[kw.attr] = () if kw.collects else kw.default
        return out


class Schema:
    """The registry of sections and their keywords."""

    def __init__(self) -> None:
        self.sections: dict[str, Section] = {}

    def section(self, name: str, title: str, doc: str = "", *, differs: tuple[str, ...] = ()) -> Section:
        if name in self.sections:
            raise ValueError(f"section {name!r} declared twice")
        sec = Section(name, title, doc, differs)
        self.sections[name] = sec
        return sec

    def add(self, section: str, *keywords: Keyword) -> None:
        sec = self.sections[section]
        for kw in keywords:
            kw = replace(kw, section=section)
            for spelling in kw.spellings:
                if spelling in sec.by_spelling:
                    raise ValueError(f"{section}: keyword {spelling!r} declared twice")
                sec.by_spelling[spelling] = kw
            sec.keywords.append(kw)

    def check(self) -> None:
        """Every supported block keyword names a declared section (called once all are declared)."""
        for kw in self.all_keywords():
            if kw.kind is Kind.SECTION and kw.supported and kw.child not in self.sections:
                raise ValueError(f"{kw.section}.{kw.name}: unknown child section {kw.child!r}")

    def __getitem__(self, name: str) -> Section:
        return self.sections[name]

    def __iter__(self) -> Iterator[Section]:
        return iter(self.sections.values())

    def all_keywords(self) -> Iterator[Keyword]:
        for sec in self:
            yield from sec.keywords
