"""Pairs braces: logical lines become a tree of statements.

A statement is a keyword with its arguments and, when a ``{`` follows (on the same line or alone on the next
one), the statements of its block. Words after a ``{`` on the same line form a statement of their own, so
one-line blocks (``group { VI_1 VI_2 }``) read like multi-line ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keepalived_py.config.diagnostics import DiagnosticSink, Location
from keepalived_py.config.lexer import Line, Token

#: Deepest block nesting accepted (keepalived's own grammar needs 5: virtual_server/real_server/HTTP_GET/url).
MAX_DEPTH = 32


@dataclass(slots=True)
class Node:
    keyword: Token
    args: list[Token] = field(default_factory=list)
    #: None: no block; a list (maybe empty): the statements inside ``{ }``.
    children: list[Node] | None = None
    open_brace: Token | None = None

    @property
    def loc(self) -> Location:
        return self.keyword.loc

    def words(self) -> list[Token]:
        """Every word of the block's statements, in order (for blocks that are lists of words)."""
        out: list[Token] = []
        for child in self.children or ():
            out.append(child.keyword)
            out.extend(child.args)
            out.extend(child.words())
        return out


def build_tree(lines: list[Line], sink: DiagnosticSink) -> list[Node]:
    """The top-level statements; unbalanced braces and too-deep nesting are FATAL diagnostics."""
    root: list[Node] = []
    # Each open block: (its node, the list its statements go into).
    stack: list[Node] = []
    current = root
    last: Node | None = None  # the statement a `{` at the start of a line opens

    def open_block(node: Node, brace: Token) -> list[Node]:
        nonlocal current
        if len(stack) >= MAX_DEPTH:
            sink.fatal(f"blocks nested deeper than {MAX_DEPTH} levels", brace.loc)
        node.children = []
        node.open_brace = brace
        stack.append(node)
        current = node.children
        return current

    for line in lines:
        stmt: Node | None = None
        for tok in line.tokens:
            text = tok.text
            if text == "{" and not tok.quoted:
                target = stmt if stmt is not None else last
                if target is None or target.children is not None:
                    sink.fatal("'{' without a keyword to open a block for", tok.loc)
                    target = Node(Token("", tok.loc))
                    current.append(target)
                open_block(target, tok)
                stmt = None
                last = None
            elif text == "}" and not tok.quoted:
                if not stack:
                    sink.fatal("'}' without a matching '{'", tok.loc)
                else:
                    stack.pop()
                    current = stack[-1].children if stack else root  # type: ignore[assignment]
                stmt = None
                last = None
            elif stmt is None:
                stmt = Node(tok, [])
                current.append(stmt)
                last = stmt
            else:
                stmt.args.append(tok)
    for node in reversed(stack):
        brace = node.open_brace
        sink.fatal(f"'{{' opened for '{node.keyword.text}' is never closed", brace.loc if brace else node.loc)
    return root
