"""Reads the statement tree against the keyword schema into generic blocks of parsed values.

Nothing here knows a particular keyword: unknown keywords, unsupported ones, bad values and misplaced blocks
are all reported from the schema's records, and the model builder then turns blocks into dataclasses.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from keepalived_py.config.diagnostics import DiagnosticSink, Location
from keepalived_py.config.lexer import Token
from keepalived_py.config.schema import ROOT, Keyword, Kind, Schema, Section
from keepalived_py.config.tree import Node
from keepalived_py.config.values import Args, BadValue

_READING_ORDER = itertools.count()
_VALUE, _SECTION = Kind.VALUE, Kind.SECTION


@dataclass
class Block:
    """One section occurrence: its header value and its keywords' parsed values by model attribute."""

    section: str
    loc: Location
    header: Any = None
    #: The keyword that opened the block (SSL_GET and HTTP_GET share a section).
    keyword: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    #: attribute -> the keyword's token (of its last occurrence); its location is built only when needed
    where: dict[str, Token] = field(default_factory=dict)
    #: attribute -> the token of each collected item, parallel to the tuple in ``values``
    item_where: dict[str, list[Token]] = field(default_factory=dict)
    #: attributes whose items are being collected into a list (a tuple once the block is read)
    collecting: set[str] = field(default_factory=set, repr=False, compare=False)
    #: When the block was opened, in reading order (includes are read where they stand): keepalived
    #: resolves some names at the point of use, so what is defined later is not found.
    order: int = field(default_factory=lambda: next(_READING_ORDER), repr=False, compare=False)

    def freeze(self) -> None:
        """Turn the lists collected while reading into the tuples the model builder expects."""
        for attr in self.collecting:
            self.values[attr] = tuple(self.values[attr])
        self.collecting.clear()

    def get(self, attr: str, default: Any = None) -> Any:
        return self.values.get(attr, default)

    def loc_of(self, attr: str) -> Location:
        token = self.where.get(attr)
        return token.loc if token is not None else self.loc

    def item_locs(self, attr: str) -> list[Location]:
        return [t.loc for t in self.item_where.get(attr, ())]


class Reader:
    def __init__(self, schema: Schema, sink: DiagnosticSink):
        self.schema = schema
        self.sections = schema.sections
        self.sink = sink

    def read(self, nodes: list[Node], root_loc: Location) -> Block:
        root = Block(ROOT, root_loc)
        self._read_into(root, self.schema[ROOT], nodes)
        root.freeze()
        return root

    def _read_into(self, block: Block, section: Section, nodes: list[Node]) -> None:
        lookup = section.by_spelling.get
        for node in nodes:
            word = node.keyword.text
            if not word:  # a stray '{' already reported by the tree builder
                continue
            kw = lookup(word)
            if kw is None:
                self._unknown(node, section)
                continue
            if kw.remarked:
                if not kw.supported:
                    what = "block" if node.children is not None else "keyword"
                    self.sink.unsupported(kw.name, node.loc, what=f"{section.title} {what}")
                    continue
                if kw.partial:
                    what = "block" if node.children is not None else "keyword"
                    self.sink.partial(kw.name, kw.partial, node.loc, what=f"{section.title} {what}")
                if word in kw.deprecated:
                    self.sink.note(f"'{word}' is deprecated; use '{kw.name}'", node.loc)
            kind = kw.kind
            if kind is _VALUE:
                self._value(block, kw, node)
            elif kind is _SECTION:
                self._section(block, kw, node)
            elif kind is Kind.LIST:
                self._list(block, kw, node)
            else:
                self._words(block, kw, node)

    def _unknown(self, node: Node, section: Section) -> None:
        where = "at the top level" if section.name == ROOT else f"in {section.title}"
        hint = ""
        for other in self.schema:
            kw = other.lookup(node.keyword.text) if other is not section else None
            if kw is None:
                continue
            if node.keyword.text != kw.name and (here := section.lookup(kw.name)) is not None:
                # an old spelling keepalived takes only elsewhere (nb_get_retry in TCP_CHECK)
                hint = f" (keepalived takes it only in {other.title}; here, use '{here.name}')"
            else:
                hint = f" (it belongs in {other.title})"
            break
        self.sink.error(
            f"unknown keyword '{_show(node.keyword.text)}' {where}{hint}; it is ignored", node.loc
        )

    def _bad(self, kw: Keyword, err: BadValue, node: Node) -> None:
        loc = err.token.loc if err.token is not None else node.loc
        if kw.drops_item:
            item = kw.name if kw.kind is Kind.SECTION else kw.section
            self.sink.error(f"{err.message}; this {item} is ignored", loc)
        else:
            self.sink.error(f"{err.message}; it is ignored", loc)

    def _notes(self, args: Args) -> None:
        """What a value type remarked without rejecting the value (errors where keepalived reports one)."""
        for message, token, error in args.notes:
            (self.sink.error if error else self.sink.note)(message, token.loc)

    def _store(self, block: Block, kw: Keyword, value: Any, loc: Token) -> None:
        attr = kw.attr
        block.where[attr] = loc
        if kw.collects:
            # Appended to a list (a tuple rebuilt per item made reading quadratic in the number of items).
            if attr not in block.collecting:
                block.values[attr] = list(block.values.get(attr, ()))
                block.collecting.add(attr)
            block.values[attr].append(value)
            block.item_where.setdefault(attr, []).append(loc)
        else:
            block.values[attr] = value

    def _no_block(self, kw: Keyword, node: Node) -> bool:
        if node.children is not None:
            brace = node.open_brace.loc if node.open_brace else node.loc
            self.sink.error(f"'{kw.name}' does not take a block; the block is ignored", brace)
            return False
        return True

    def _needs_block(self, kw: Keyword, node: Node) -> bool:
        if node.children is None:
            self.sink.error(f"'{kw.name}' needs a block '{{ ... }}'; it is ignored", node.loc)
            return False
        return True

    def _value(self, block: Block, kw: Keyword, node: Node) -> None:
        if node.children is not None:
            self._no_block(kw, node)
            return
        assert kw.value is not None, kw.name
        args = Args(node.keyword, tuple(node.args))
        try:
            value = kw.value(args)
        except BadValue as err:
            self._bad(kw, err, node)
            return
        if args.notes:
            self._notes(args)
        if kw.collects:
            self._store(block, kw, value, node.keyword)
        else:
            block.values[kw.attr] = value
            block.where[kw.attr] = node.keyword

    def _header(self, kw: Keyword, node: Node) -> tuple[bool, Any]:
        """Parse the arguments before a block: (usable, value)."""
        if kw.header is None:
            if node.args:
                self._extra_args(kw, node.args)
            return True, None
        try:
            return True, kw.header(Args(node.keyword, tuple(node.args)))
        except BadValue as err:
            self._bad(kw, err, node)
            return not kw.drops_item, None

    def _list(self, block: Block, kw: Keyword, node: Node) -> None:
        usable, header = self._header(kw, node)
        if not usable or not self._needs_block(kw, node):
            return
        named = kw.header is not None
        if named:
            # A named list (virtual_server_group NAME { ... }): a block of its own holding the items.
            target = Block(kw.name, node.loc, header, kw.name)
            self._store(block, kw, target, node.keyword)
            block, kw = target, Keyword("items", kw.doc, kw.value, kind=Kind.LIST)
        block.values.setdefault(kw.attr, ())
        block.where.setdefault(kw.attr, node.keyword)
        assert kw.value is not None and node.children is not None
        for child in node.children:
            if child.children is not None:
                self.sink.error(
                    f"an item of '{kw.name}' cannot open a block",
                    child.open_brace.loc if child.open_brace else child.loc,
                )
                continue
            args = Args(child.keyword, (child.keyword, *child.args))
            try:
                item = kw.value(args)
            except BadValue as err:
                self._bad(kw, err, child)
                continue
            self._notes(args)
            self._store(block, kw, item, child.keyword)
        if named:
            block.freeze()  # the enclosing block is frozen when its own reading ends

    def _words(self, block: Block, kw: Keyword, node: Node) -> None:
        words: list[Token] = list(node.args)
        if node.children is not None:
            words.extend(node.words())
        elif not words:
            self._needs_block(kw, node)
            return
        block.values.setdefault(kw.attr, ())
        block.where.setdefault(kw.attr, node.keyword)
        assert kw.value is not None
        for word in words:
            try:
                item = kw.value(Args(word, (word,)))
            except BadValue as err:
                self._bad(kw, err, node)
                continue
            self._store(block, kw, item, word)

    def _section(self, block: Block, kw: Keyword, node: Node) -> None:
        assert kw.child is not None
        usable, header = self._header(kw, node)
        if not usable or not self._needs_block(kw, node):
            return
        assert node.children is not None
        if kw.collects:
            child = Block(kw.child, node.loc, header, kw.name)
            self._store(block, kw, child, node.keyword)
        else:
            existing = block.values.get(kw.attr)
            child = existing if isinstance(existing, Block) else Block(kw.child, node.loc, header, kw.name)
            self._store(block, kw, child, node.keyword)
        self._read_into(child, self.sections[kw.child], node.children)
        child.freeze()

    def _extra_args(self, kw: Keyword, args: list[Token]) -> None:
        self.sink.error(
            f"'{kw.name}' takes no arguments here; '{_show(args[0].text)}' is ignored", args[0].loc
        )


def _show(text: str, limit: int = 40) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."
