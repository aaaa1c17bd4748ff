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
    """The top-level statements.

    As keepalived does, unbalanced braces are errors the configuration still runs with: an extra ``}`` and a
    ``{`` with no keyword to open are ignored, and blocks left open end with the file. Blocks nested
    deeper than :data:`MAX_DEPTH` are reported once.
    """
    root: list[Node] = []
    stack: list[Node] = []  # the open blocks
    current = root  # where statements go
    last: Node | None = None  # the statement a `{` at the start of a line opens
    too_deep = False

    for line in lines:
        stmt: Node | None = None
        for tok in line.tokens:
            text = tok.text
            if text == "{" and not tok.quoted:
                target = stmt if stmt is not None else last
                if target is None or target.children is not None:
                    sink.error("unexpected '{' without a keyword to open a block for; it is ignored", tok.loc)
                    continue
                if len(stack) >= MAX_DEPTH and not too_deep:
                    too_deep = True
                    sink.error(f"blocks nested deeper than {MAX_DEPTH} levels", tok.loc)
                target.children = []
                target.open_brace = tok
                stack.append(target)
                current = target.children
                stmt = None
                last = None
            elif text == "}" and not tok.quoted:
                if not stack:
                    sink.error("extra '}' without a matching '{'; it is ignored", tok.loc)
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
    if stack:
        node = stack[0]
        brace = node.open_brace
        sink.error(
            f"{len(stack)} missing '}}': the '{{' opened for '{node.keyword.text}' here is never closed",
            brace.loc if brace else node.loc,
        )
    return root
