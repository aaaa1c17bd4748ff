"""The keepalived configuration language, up to logical lines of tokens.

INTERFACE STUB -- implementation in progress.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from keepalived_py.config.diagnostics import DiagnosticSink, Location


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a configuration line, after quoting, joining and substitution."""

    text: str
    loc: Location
    #: True when any part of the word was quoted: a quoted "{" or "}" is a word, never a brace.
    quoted: bool = False

    @property
    def is_open(self) -> bool:
        return self.text == "{" and not self.quoted

    @property
    def is_close(self) -> bool:
        return self.text == "}" and not self.quoted


@dataclass(frozen=True, slots=True)
class Line:
    """A logical line: at least one token; braces are tokens of their own."""

    tokens: tuple[Token, ...]

    @property
    def loc(self) -> Location:
        return self.tokens[0].loc


def read_config(
    path: str | Path,
    *,
    config_id: str,
    sink: DiagnosticSink,
    text: str | None = None,
    line_numbers: Sequence[int] | None = None,
) -> list[Line]:
    raise NotImplementedError
