"""Located configuration diagnostics, rendered ExaBGP style.

Every problem found in a configuration is a :class:`Diagnostic` with a :class:`Location`; a run collects many
of them in a :class:`DiagnosticSink` rather than stopping at the first. :class:`ConfigError` is the only
exception the config front end lets escape, whatever the input.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from keepalived_py.exitcodes import ExitCode

#: Stop collecting after this many diagnostics (a binary file would otherwise report one per line).
MAX_DIAGNOSTICS = 200
#: Longest source line shown under a diagnostic; longer lines are cut around the caret.
MAX_SHOWN_LINE = 160


class Severity(enum.StrEnum):
    """How bad a diagnostic is; decides the ``check-config`` exit code."""

    FATAL = "error"  # the configuration cannot run
    ERROR = "warning"  # an error, but keepalived would run (unknown keyword, bad value ignored)
    UNSUPPORTED = "unsupported"  # a keyword keepalived knows but kpd does not implement, or only in part
    SECURITY = "security"  # script security (enable_script_security missing, unsafe script path)
    NOTE = "note"  # information only

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    Severity.FATAL: ExitCode.CONFIG_FATAL,
    Severity.ERROR: ExitCode.CONFIG_ERRORS,
    Severity.UNSUPPORTED: ExitCode.CONFIG_ERRORS,
    Severity.SECURITY: ExitCode.CONFIG_SCRIPT_SECURITY,
    Severity.NOTE: ExitCode.OK,
}
# Which exit code wins when several apply: cannot-run beats errors beats script security.
_EXIT_PRECEDENCE = (ExitCode.CONFIG_FATAL, ExitCode.CONFIG_ERRORS, ExitCode.CONFIG_SCRIPT_SECURITY)


class Location(NamedTuple):
    """A position in a source file: 1-based line and column, plus the text of that line.

    A named tuple rather than a dataclass: the lexer makes one per word, so it must be cheap to build.
    """

    file: str
    line: int
    col: int = 1
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def at_col(self, col: int) -> Location:
        return Location(self.file, self.line, col, self.text)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    message: str
    location: Location | None = None
    #: Extra lines shown after the caret (e.g. "rendered from template line 12").
    notes: tuple[str, ...] = ()
    #: Machine-readable tag, e.g. the unsupported keyword's name.
    keyword: str | None = None

    def format(self) -> str:
        """``FILE:LINE:COL: severity: message``, then the source line and a caret under the column."""
        loc = self.location
        head = f"{loc}: " if loc is not None else ""
        out = [f"{head}{self.severity.value}: {self.message}"]
        if loc is not None and loc.text:
            shown, caret_col = _window(loc.text, loc.col)
            out.append(f"  {shown}")
            out.append("  " + " " * (caret_col - 1) + "^")
        out.extend(f"  {note}" for note in self.notes)
        return "\n".join(out)

    def to_json(self) -> dict[str, object]:
        loc = self.location
        return {
            "severity": self.severity.value,
            "message": self.message,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
            "keyword": self.keyword,
        }


def _window(text: str, col: int) -> tuple[str, int]:
    """The part of a (possibly huge) line to show, with the caret column inside it; tabs shown as spaces."""
    text = text.replace("\t", " ")
    text = "".join(ch if ch.isprintable() else "?" for ch in text[: col + MAX_SHOWN_LINE])
    col = max(1, min(col, len(text) + 1))
    if len(text) <= MAX_SHOWN_LINE:
        return text, col
    start = max(0, col - MAX_SHOWN_LINE // 2)
    piece = text[start : start + MAX_SHOWN_LINE]
    prefix = "..." if start else ""
    return prefix + piece + "...", col - start + len(prefix)


@dataclass
class DiagnosticSink:
    """Collects diagnostics for one run, bounded to :data:`MAX_DIAGNOSTICS`."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    dropped: int = 0

    def add(self, diagnostic: Diagnostic) -> None:
        if len(self.diagnostics) < MAX_DIAGNOSTICS:
            self.diagnostics.append(diagnostic)
        else:
            self.dropped += 1

    def fatal(self, message: str, location: Location | None = None, **kw: object) -> None:
        self.add(Diagnostic(Severity.FATAL, message, location, **kw))  # type: ignore[arg-type]

    def error(self, message: str, location: Location | None = None, **kw: object) -> None:
        self.add(Diagnostic(Severity.ERROR, message, location, **kw))  # type: ignore[arg-type]

    def unsupported(self, keyword: str, location: Location | None = None, what: str = "keyword") -> None:
        self.add(
            Diagnostic(
                Severity.UNSUPPORTED,
                f"{what} '{keyword}' is recognised but not implemented by kpd; it is ignored",
                location,
                keyword=keyword,
            )
        )

    def partial(
        self, keyword: str, missing: str, location: Location | None = None, what: str = "keyword"
    ) -> None:
        """A keyword kpd acts on only in part, and what it does not do (exit code 5, as unsupported)."""
        self.add(
            Diagnostic(
                Severity.UNSUPPORTED,
                f"{what} '{keyword}' is only partly implemented by kpd: {missing}",
                location,
                keyword=keyword,
            )
        )

    def security(self, message: str, location: Location | None = None) -> None:
        self.add(Diagnostic(Severity.SECURITY, message, location))

    def note(self, message: str, location: Location | None = None) -> None:
        self.add(Diagnostic(Severity.NOTE, message, location))

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.diagnostics)

    def __len__(self) -> int:
        return len(self.diagnostics)

    @property
    def has_fatal(self) -> bool:
        return any(d.severity is Severity.FATAL for d in self.diagnostics)

    @property
    def unsupported_keywords(self) -> list[str]:
        """Names of the keywords met that kpd does not implement or implements in part, each once, in order
        of first appearance."""
        seen: dict[str, None] = {}
        for d in self.diagnostics:
            if d.severity is Severity.UNSUPPORTED and d.keyword:
                seen.setdefault(d.keyword, None)
        return list(seen)

    def exit_code(self) -> ExitCode:
        return exit_code_for(self.diagnostics)

    def format(self) -> str:
        parts = [d.format() for d in self.diagnostics]
        if self.dropped:
            parts.append(f"... and {self.dropped} more diagnostics not shown")
        return "\n".join(parts)


def exit_code_for(diagnostics: Iterable[Diagnostic]) -> ExitCode:
    return worst_exit_code(d.severity.exit_code for d in diagnostics)


def worst_exit_code(exit_codes: Iterable[ExitCode]) -> ExitCode:
    """The one of several check exit codes that wins: cannot-run, then errors, then script security."""
    codes = set(exit_codes)
    for code in _EXIT_PRECEDENCE:
        if code in codes:
            return code
    return ExitCode.OK


class ConfigError(Exception):
    """The configuration cannot be used; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics) or "invalid configuration")

    @property
    def exit_code(self) -> ExitCode:
        return exit_code_for(self.diagnostics) or ExitCode.CONFIG_FATAL
