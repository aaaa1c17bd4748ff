"""The keepalived configuration language, up to logical lines of tokens.

:func:`read_config` reads a ``keepalived.conf`` (and everything it includes) the way keepalived 2.2's
``lib/parser.c`` does -- its code, not its man page, is the reference -- and returns the logical lines as
:class:`Line` objects of located :class:`Token` words. A later stage pairs braces into a tree.

What happens to each physical line, in keepalived's order:

1. The line ends at ``\\n``; trailing ``\\r`` characters are dropped.
2. *Comments*: leading and trailing blanks are removed and everything from an unquoted ``#`` or ``!`` on is
   dropped. ``\\#`` and ``\\!`` outside quotes stand for a literal ``#`` / ``!``. A line whose last
   character is an unescaped ``\\`` keeps it (glued to the text before it, blanks removed) -- even when
   that backslash ends a comment.
3. *Conditional*: ``@ID rest`` keeps ``rest`` only when ``ID == config_id``; ``@^ID rest`` only when it
   differs. ``@ID`` with nothing after it drops the line. Any line can be conditional: definitions,
   ``~SEQ`` lines, includes, and block lines (dropping a line with a ``{`` unbalances the braces, as in
   keepalived).
4. *Definition*: ``$NAME=value`` (no blank before ``=``) defines NAME; a value ending in ``\\`` continues on
   the following lines (a line without the trailing ``\\``, or an empty line, ends it; blank and comment
   lines are skipped; ``$A=\\`` followed by a single line is an ordinary one-line definition). Values are
   stored unexpanded: ``$A=$B`` expands ``$B`` when ``$A`` is used.
5. ``~SEQ(var, end)``, ``~SEQ(var, start, end)``, ``~SEQ(var, start, step, end)`` (``~SEQx`` for hex) and
   ``~LST(var, v1, v2...)`` / ``~LST({a,b}, {1,2}, {3,4})`` repeat the rest of the line once per value with
   the variable(s) defined (they stay defined afterwards, holding the last value). Numbers are C
   ``strtol`` base 0, so ``010`` is 8 and ``0x10`` is 16. ``~SEQ(i, 3)`` counts 1..3; ``~SEQ(i, 0)``
   gives 1, 0.
6. *Substitution*: ``$NAME`` is replaced only when followed by a blank, ``,``, ``)`` or the end of the line
   (``$IP/24`` is *not* substituted; write ``${IP}/24``); ``${NAME}`` anywhere. Replaced text is rescanned,
   so definitions may use definitions. A multi-line definition can only be used at the end of a line: its
   first line replaces the reference and its other lines follow as lines of their own. After substitution
   the line is de-commented again (a ``#`` that came from a value starts a comment, as in keepalived) and
   steps 3-6 are repeated while it starts with ``@`` or still contains ``$``. Lines starting with ``~``
   (other than ``~SEQ``/``~LST``) are not substituted. Built in: ``$_PWD`` (directory of the current
   file), ``$_INSTANCE`` (config_id), ``${_RANDOM [min [max]]}``, ``$_HASH`` (``#``), ``$_BANG`` (``!``).
   A ``$NAME`` left unsubstituted gets an ERROR diagnostic (keepalived silently keeps the text).
7. ``include PATTERN`` (also ``includer``/``includem``/``includew``/``includeb``/``includea``) reads the
   files matching the glob PATTERN (``*?[]`` and ``{a,b}``; the whole rest of the line, quotes included),
   relative to the including file's directory, each glob's matches in sorted order. Like keepalived,
   includes met while ``~SEQ``/``~LST`` or multi-line definition lines are pending are read once those
   are done, the last one first.
8. *Words*: split at blanks (`` \\t\\f\\n\\r\\v``); an unquoted ``{`` or ``}`` is always a token of its own
   (``foo{`` is ``foo`` ``{``). ``"..."`` quotes (no escapes inside); quoted and unquoted parts next to each
   other join into one word (``ab"c d"e`` is ``abc de``), and :attr:`Token.quoted` is set. keepalived
   cuts a line at each unquoted brace and handles the text after it as a new line, so steps 3-7 apply
   there again: ``x { @other y }`` keeps only ``x {`` (the ``}`` goes too), ``x } $V=1`` defines V. kpd
   keeps all the words of a physical line in one :class:`Line`.

Deliberate differences from keepalived (which does not survive these inputs, or gets them wrong):
include cycles, recursive definitions, expansion bombs, huge ``~SEQ`` ranges and oversized input are
stopped at the caps below with a FATAL diagnostic (keepalived loops forever, crashes, or truncates the
line at 1023 bytes); ``${_RANDOM min max}`` is substituted correctly (keepalived 2.2 corrupts the line);
keepalived's generic tokenizer splits ``ab"c d"e`` into the three words ``ab``, ``c d``, ``e``, kpd joins
them (as keepalived's script tokenizer does, see
:func:`keepalived_py.command_line.split_command_line`); a quoted ``"{"`` is a word (keepalived takes it for
a brace); keepalived's child processes re-read a copy of the configuration in
which ``\\#`` has become ``#`` -- kpd follows the parent's reading.

Severities: problems keepalived refuses or cannot survive are FATAL (unreadable or missing files -- also a
missing literal include, which keepalived only logs --, NUL bytes, invalid UTF-8, unterminated quotes,
include cycles, caps); things keepalived runs with but gets wrong are ERROR (undefined ``$NAME``,
malformed ``~SEQ``, executable include files, lines longer than keepalived's 1023-byte buffer); a glob
matching nothing is a NOTE (keepalived ignores it silently).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import stat
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from keepalived_py.config.diagnostics import Diagnostic, DiagnosticSink, Location, Severity
from keepalived_py.config.source_file import SourceFileError, file_kind, read_source_file

if TYPE_CHECKING:
    import random

# ---------------------------------------------------------------------------------------------------------
# Caps. Every limit that protects time or memory is here, with the diagnostic it produces when hit.

#: Total bytes read, the top file and all included files together (FATAL; nothing more is read).
MAX_TOTAL_INPUT_BYTES = 64 * 1024 * 1024
#: Files nested by ``include`` (the top file is depth 1) (FATAL at the include line).
MAX_INCLUDE_DEPTH = 32
#: Configuration files read in all (FATAL at the include line; later includes are skipped).
MAX_INCLUDE_FILES = 1000
#: Longest include pattern (FATAL); also bounds ``{a,b}`` expansion work.
MAX_INCLUDE_PATTERN = 4096
#: Includes, ``~SEQ``/``~LST`` and multi-line definition expansions nested in one another (FATAL).
MAX_NESTING_DEPTH = 64
#: Longest logical line after definition substitution, in characters (FATAL; the line is dropped).
MAX_LINE_CHARS = 1024 * 1024
#: Definitions expanding definitions, nested (FATAL; the line is dropped).
MAX_EXPANSION_DEPTH = 64
#: Definition references replaced in one logical line (FATAL; the line is dropped).
MAX_EXPANSIONS_PER_LINE = 10_000
#: Definition references replaced in all (FATAL; reading stops).
MAX_TOTAL_EXPANSIONS = 500_000
#: Characters produced by substitution in all (FATAL; reading stops).
MAX_TOTAL_EXPANDED_CHARS = 64 * 1024 * 1024
#: Lines generated by ``~SEQ``/``~LST`` and multi-line definitions in all (FATAL; generation stops).
MAX_GENERATED_LINES = 100_000
#: Tokens returned in all (FATAL; reading stops).
MAX_TOKENS = 1_000_000
#: Substitution passes over one logical line (each must change it) (FATAL; the line is dropped).
MAX_SUBSTITUTION_PASSES = 64
#: Texts after a brace re-examined for ``@``, ``$``, ``~`` and ``include`` on one line (ERROR; the rest
#: of the line is taken as plain words).
MAX_RESIDUES = 100

#: keepalived reads lines with ``fgets(buf, 1024)``: a longer line (newline included) is split, and
#: substitution stops when a line would reach this length. kpd reads such lines whole, with an ERROR.
KEEPALIVED_MAXBUF = 1024

# ---------------------------------------------------------------------------------------------------------

_WHITE_SPACE = " \t\f\n\r\v"  # keepalived's WHITE_SPACE: separates words
_C_SPACE = " \t\n\v\f\r"  # C isspace()
_BLANK = " \t"  # C isblank()
_MAGIC = re.compile(r"[*?\[]")
_DECOMMENT_SPECIAL = re.compile(r'[!#"\\]')
#: A file without any of these takes the fast path of :meth:`_Reader._run_clean`.
_UNUSUAL = re.compile("[\0\r\ufeff]")
#: A line without any of these (nor "include") is plain: words and braces, nothing to interpret. Plain lines
#: are split by str.split(), so the other characters it takes for white space make a line not plain.
_NOT_PLAIN = re.compile(r'[!#"\\$@~\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]')
_INCLUDE = re.compile("include")
#: Builds a named tuple (a Location, a Line) without the Python-level ``__new__`` of its class: plain lines,
#: the lines most lines are, make one of each.
_new_tuple = tuple.__new__
_BRACE_OR_QUOTE = re.compile(r'[{}"]')
_BLANKS = re.compile(r"[ \t]*")
_FIRST_BLANK = re.compile(r"[ \t]")
#: a token after optional white space: a brace, a word of unquoted runs and "quoted" parts, or a lone quote
_TOKEN = re.compile(r'[ \t\f\n\r\v]*+(?:([{}])|((?:[^ \t\f\n\r\v"{}]++|"[^"]*+")++)|("))')
_DEFINITION = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REF_CHARS = re.compile(r"[A-Za-z0-9_{} ]*")  # characters a $reference can span
_REF_SCAN = re.compile(r"\$(\{?)([A-Za-z_][A-Za-z0-9_]*)")
_SEQ_VAR_END = re.compile(r"[ \t,)]")
_LST_VAR_END = re.compile(r"[ \t,}]")
_LST_VALUE_END = re.compile(r"[ \t,})]")

# include flags, as keepalived's include_t: which problems are errors rather than log messages
_INC_R = 0x01  # unreadable, directory, executable...
_INC_M = 0x02  # no match because a file or directory is missing
_INC_W = 0x04  # no match for a wildcard
_INC_B = 0x08  # a {a,b} alternative is missing
_INCLUDE_FLAGS = {
    "": 0,
    "r": _INC_R,
    "m": _INC_R | _INC_M,
    "w": _INC_R | _INC_M | _INC_W,
    "b": _INC_R | _INC_B,
    "a": _INC_R | _INC_M | _INC_W | _INC_B,
}


class Token:
    """One word of a configuration line, after quoting, joining and substitution.

    It keeps the Location of its line and its own column, and builds its full :attr:`loc` only when asked
    (diagnostics), since a large configuration has hundreds of thousands of words.
    """

    __slots__ = ("_col", "_where", "quoted", "text")

    def __init__(self, text: str, loc: Location, quoted: bool = False, col: int = 0) -> None:
        self.text = text
        #: True when any part of the word was quoted: a quoted "{" or "}" is a word, never a brace.
        self.quoted = quoted
        self._where = loc
        self._col = col or loc.col

    @property
    def loc(self) -> Location:
        where = self._where
        if where.col == self._col:
            return where
        return Location(where.file, where.line, self._col, where.text)

    @property
    def file(self) -> str:
        """The file the word comes from (without building its Location)."""
        return self._where.file

    @property
    def is_open(self) -> bool:
        return self.text == "{" and not self.quoted

    @property
    def is_close(self) -> bool:
        return self.text == "}" and not self.quoted

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Token):
            return NotImplemented
        return (self.text, self.loc, self.quoted) == (other.text, other.loc, other.quoted)

    def __hash__(self) -> int:
        return hash((self.text, self.loc, self.quoted))

    def __repr__(self) -> str:
        return f"Token({self.text!r}, {self.loc!r}, quoted={self.quoted})"


class Line(NamedTuple):
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
    line_numbers: Sequence[int | tuple[str, int]] | None = None,
) -> list[Line]:
    """Read the configuration at *path* (and its includes) into logical lines of tokens.

    *config_id* selects ``@ID`` conditional lines (keepalived's ``-i``). When *text* is given it is used as
    the content of *path* (e.g. a rendered template) and the file is not read; ``line_numbers[i]`` is then
    the line number reported for line ``i + 1`` of *text* (lines beyond the sequence keep their own
    number). Includes are still read from disk, relative to *path*'s directory.

    Never raises for any input: every problem is a located diagnostic in *sink* (a missing or unreadable
    top file is a FATAL diagnostic without location, and no lines). An empty file gives no lines.
    """
    reader = _Reader(config_id, sink)
    try:
        reader.read_top(str(path), text, line_numbers)
    except RecursionError:  # pragma: no cover - the nesting caps keep well below the limit
        reader.fatal("configuration nested too deeply for the lexer", None)
    except Exception as exc:  # pragma: no cover - a bug; the contract is to never raise
        reader.fatal(f"internal error in the configuration lexer: {exc!r}", None)
    return reader.lines


# ---------------------------------------------------------------------------------------------------------
# Text with a source column for every character


class _Mapped:
    """A string plus, for each character, the 1-based source column it came from.

    Stored as segments: from ``starts[k]`` on, characters map either to ``cols[k]`` plus their distance
    from the segment start (text copied from the source) or all to ``cols[k]`` (``fixed``: text that came
    from a definition, located at the ``$`` of its reference).
    """

    __slots__ = ("_cols", "_fixed", "_starts", "text")

    def __init__(self, text: str, starts: list[int], cols: list[int], fixed: list[bool]) -> None:
        self.text = text
        self._starts = starts
        self._cols = cols
        self._fixed = fixed

    @classmethod
    def verbatim(cls, text: str, col: int = 1) -> _Mapped:
        return cls(text, [0], [col], [False])

    @classmethod
    def fixed(cls, text: str, col: int) -> _Mapped:
        return cls(text, [0], [col], [True])

    def _seg(self, i: int) -> int:
        return max(0, bisect_right(self._starts, i) - 1)

    def col_at(self, i: int) -> int:
        """Source column of character *i* (the end of the text maps past its last character)."""
        if len(self._starts) == 1:
            return self._cols[0] if self._fixed[0] else self._cols[0] + i
        k = self._seg(i)
        if self._fixed[k]:
            return self._cols[k]
        return self._cols[k] + (i - self._starts[k])

    def slice(self, i: int, j: int | None = None) -> _Mapped:
        b = _Builder()
        b.add(self, i, len(self.text) if j is None else j)
        return b.build()


class _Builder:
    """Builds a :class:`_Mapped` from pieces in linear time."""

    __slots__ = ("cols", "fixed", "length", "parts", "starts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.starts: list[int] = []
        self.cols: list[int] = []
        self.fixed: list[bool] = []

    def _segment(self, col: int, fixed: bool) -> None:
        if self.starts:
            last = len(self.starts) - 1
            if self.starts[last] == self.length:  # the previous segment is empty: reuse it
                self.cols[last] = col
                self.fixed[last] = fixed
                return
            if self.fixed[last] == fixed and (
                (fixed and self.cols[last] == col)
                or (not fixed and self.cols[last] + self.length - self.starts[last] == col)
            ):
                return  # continues the previous segment
        self.starts.append(self.length)
        self.cols.append(col)
        self.fixed.append(fixed)

    def add_fixed(self, text: str, col: int) -> None:
        if text:
            self._segment(col, True)
            self.parts.append(text)
            self.length += len(text)

    def add(self, m: _Mapped, i: int, j: int) -> None:
        if j <= i:
            return
        k = m._seg(i)
        pos = i
        starts = m._starts
        while pos < j:
            self._segment(m.col_at(pos), m._fixed[k])
            seg_end = starts[k + 1] if k + 1 < len(starts) else len(m.text)
            step = min(seg_end, j) - pos
            self.length += step
            pos += step
            k += 1
        self.parts.append(m.text[i:j])

    def build(self) -> _Mapped:
        if not self.starts:
            return _Mapped("", [0], [1], [True])
        return _Mapped("".join(self.parts), self.starts, self.cols, self.fixed)


_EMPTY = _Mapped("", [0], [1], [True])


def _numbers_of_lines_with(pattern: re.Pattern[str], data: str) -> Iterator[int]:
    """The (1-based) numbers of the lines of *data* where *pattern* is found: one scan of the whole text,
    not one search per line."""
    number, counted = 1, 0
    found = pattern.search(data)
    while found is not None:
        at = found.start()
        number += data.count("\n", counted, at)
        yield number
        end = data.find("\n", at)
        if end < 0:
            return
        number += 1
        counted = end + 1
        found = pattern.search(data, counted)


def _decomment(m: _Mapped) -> _Mapped:
    """keepalived's decomment(): strip blanks and comments, unescape ``\\#``/``\\!``, keep a final ``\\``."""
    s = m.text
    n = len(s)
    start = _BLANKS.match(s).end()  # type: ignore[union-attr]
    if start < n and s[start] in "#!" and s[-1] != "\\":
        return _EMPTY  # a comment line
    keep: list[tuple[int, int]] = []
    seg_start = start
    quote = False
    comment = -1
    cont = -1
    pos = start
    while True:
        found = _DECOMMENT_SPECIAL.search(s, pos)
        if found is None:
            break
        p = found.start()
        c = s[p]
        if c == '"':
            if comment < 0:
                quote = not quote
            pos = p + 1
        elif c == "\\":
            if p + 1 >= n:
                cont = p
                break
            if not quote and s[p + 1] in "#!" and comment < 0:
                keep.append((seg_start, p))  # drop the backslash
                seg_start = p + 1
            pos = p + 2
        else:
            if not quote and comment < 0:
                comment = p
            pos = p + 1
    end = n
    if cont >= 0:
        end = cont
    if comment >= 0:
        end = min(end, comment)
    keep.append((seg_start, max(seg_start, end)))
    # remove trailing blanks (they can only be in the last kept range: a dropped backslash precedes # or !)
    while keep:
        a, b = keep[-1]
        while b > a and s[b - 1] in _BLANK:
            b -= 1
        if b > a:
            keep[-1] = (a, b)
            break
        keep.pop()
    if cont >= 0:
        keep.append((cont, cont + 1))
    if len(keep) == 1 and keep[0] == (0, n):
        return m
    b2 = _Builder()
    for a, b in keep:
        b2.add(m, a, b)
    return b2.build()


# ---------------------------------------------------------------------------------------------------------
# Reader state


@dataclass(frozen=True, slots=True)
class _Origin:
    """The physical line a logical line comes from."""

    file: str
    line: int
    text: str

    def loc(self, col: int = 1) -> Location:
        return Location(self.file, self.line, col, self.text)


@dataclass(slots=True)
class _Def:
    """A ``$NAME`` definition."""

    value: str = ""
    multiline: bool = False
    #: built-in definitions compute their value: fn(params, origin)
    fn: Callable[[str | None, _Origin], str] | None = None
    max_params: int = 0


@dataclass(slots=True)
class _Pending:
    """A multi-line definition still collecting its continuation lines."""

    defn: _Def
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Frame:
    """Text being scanned for substitution; ``col`` is None for the line itself, else the fixed column."""

    text: str
    #: where to look for the next "$"
    pos: int
    col: int | None
    #: start of the text not yet copied to the output
    mark: int = 0


@dataclass(frozen=True, slots=True)
class _IncludeRequest:
    pattern: str
    loc: Location
    flags: int
    base: str
    #: nesting depth of the line that asked for it
    depth: int


#: A source line: (decommented text, origin), (plain text, its Location) or (None, origin) when empty.
_Item = tuple[_Mapped | str | None, "_Origin | Location"]


class _Stop(Exception):
    """Internal: a line cannot be processed further (its diagnostic has been reported)."""


class _Reader:
    """One read_config() run: definitions, include stack, budgets and the lines produced."""

    def __init__(self, config_id: str, sink: DiagnosticSink) -> None:
        self.config_id = config_id
        self.sink = sink
        self.lines: list[Line] = []
        self.defs: dict[str, _Def] = {}
        self.file_stack: list[tuple[str, str]] = []  # (identity, display name)
        self.files_read = 0
        self.input_bytes = 0
        self.generated = 0
        self.expansions = 0
        self.expanded_chars = 0
        self.tokens = 0
        self.stopped = False
        self._reported: set[tuple[Severity, str, str, int, int]] = set()
        self._gen_level = 0
        self._deferred: list[_IncludeRequest] = []
        self._random: random.Random | None = None  # made when ${_RANDOM} is used
        self._definition_started: _Pending | None = None
        self._standard_definitions()

    # -- diagnostics ------------------------------------------------------------------------------------

    def report(self, severity: Severity, message: str, loc: Location | None) -> None:
        """Add a diagnostic once (generated lines would otherwise repeat it)."""
        key = (severity, message, loc.file if loc else "", loc.line if loc else 0, loc.col if loc else 0)
        if key in self._reported:
            return
        self._reported.add(key)
        self.sink.add(Diagnostic(severity, message, loc))

    def fatal(self, message: str, loc: Location | None) -> None:
        self.report(Severity.FATAL, message, loc)

    def error(self, message: str, loc: Location | None) -> None:
        self.report(Severity.ERROR, message, loc)

    def stop(self, message: str, loc: Location | None) -> None:
        """A global cap was hit: report it and read nothing more."""
        self.fatal(message, loc)
        self.stopped = True

    # -- definitions ------------------------------------------------------------------------------------

    def _standard_definitions(self) -> None:
        def pwd(_params: str | None, origin: _Origin) -> str:
            return os.path.abspath(os.path.dirname(origin.file) or ".")

        def instance(_params: str | None, _origin: _Origin) -> str:
            return self.config_id

        self.defs["_PWD"] = _Def(fn=pwd)
        self.defs["_INSTANCE"] = _Def(fn=instance)
        self.defs["_RANDOM"] = _Def(fn=self._random_value, max_params=2)
        self.defs["_HASH"] = _Def("#")
        self.defs["_BANG"] = _Def("!")

    def _random_value(self, params: str | None, origin: _Origin) -> str:
        low, high = 0, 32767
        numbers = [int(p) for p in params.split()] if params else []
        if numbers:
            low = numbers[0]
        if len(numbers) > 1:
            high = numbers[1]
        if len(numbers) > 2:
            self.error("too many parameters for ${_RANDOM}: it takes [min [max]]", origin.loc())
        if low > high:
            self.error(f"${{_RANDOM {low} {high}}}: minimum is above maximum; they are swapped", origin.loc())
            low, high = high, low
        if self._random is None:
            import random  # here: it imports hashlib, hence OpenSSL (3.7 MiB in the parent, for nothing)

            self._random = random.Random()
        return str(self._random.randint(low, high))

    def define(self, name: str, value: str, multiline: bool = False) -> _Def:
        """Set (or override, built-ins included) a definition."""
        d = self.defs.get(name)
        if d is None:
            d = self.defs[name] = _Def()
        d.value = value
        d.multiline = multiline
        d.fn = None
        d.max_params = 0
        return d

    @staticmethod
    def commit(pending: _Pending, last: str = "") -> None:
        """End a multi-line definition, with its *last* line.

        As in keepalived, a definition still empty when its last line comes (``$A=\\`` then one line) is
        an ordinary one-line definition.
        """
        value = "".join(pending.parts)
        if not value:
            pending.defn.multiline = False
        pending.defn.value = value + last

    def continue_definition(self, pending: _Pending, text: str) -> bool:
        """Add a continuation line to a multi-line definition; False when this line ended it."""
        if not text.endswith("\\"):
            self.commit(pending, text)
            return False
        text = text[:-1].rstrip(_BLANK) + "\n"
        if len(text) >= 2:
            pending.parts.append(text)
        return True

    # -- top level and files ----------------------------------------------------------------------------

    def read_top(
        self, path: str, text: str | None, line_numbers: Sequence[int | tuple[str, int]] | None
    ) -> None:
        data: bytes | str | None
        if text is not None:
            if len(text) > MAX_TOTAL_INPUT_BYTES:
                self.stop(f"configuration input exceeds {MAX_TOTAL_INPUT_BYTES} bytes; nothing is read", None)
                return
            self.input_bytes += len(text)
            self.files_read += 1
            data = text
        else:
            data = self._load(path, None, literal=True, flags=_INC_R, top=True)
            line_numbers = None
        if data is None:
            return
        pending = self._read_data(path, _identity(path), data, line_numbers, 1, None)
        if pending is not None:
            self.commit(pending)

    def _load(self, path: str, at: Location | None, *, literal: bool, flags: int, top: bool) -> bytes | None:
        """The bytes of a configuration file, or None after reporting why it cannot be used."""
        what = "configuration file" if top else "included file"
        try:
            st = os.stat(path)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if not top and isinstance(exc, FileNotFoundError) and literal:
                hint = " (quotes are not removed from include patterns)" if '"' in path else ""
                # keepalived logs "Config files missing" and runs (include_check / includem make it an error)
                self.report(Severity.NOTE, f"included file '{path}' not found{hint}; skipped", at)
            else:
                self.fatal(f"cannot read {what} '{path}': {reason}", at)
            return None
        if not stat.S_ISREG(st.st_mode):
            kind = file_kind(st.st_mode)
            if top or literal or flags & _INC_R:
                self.fatal(f"{what} '{path}' is {kind}", at)
            else:
                self.report(Severity.NOTE, f"'{path}' matched by the include pattern is {kind}; skipped", at)
            return None
        if st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            message = f"{what} '{path}' is executable: keepalived reads no executable configuration file"
            if top or flags & _INC_R:
                self.fatal(message, at)
            else:
                self.error(message + "; skipped", at)
            return None
        remaining = MAX_TOTAL_INPUT_BYTES - self.input_bytes
        if st.st_size > remaining:
            self.stop(f"configuration input exceeds {MAX_TOTAL_INPUT_BYTES} bytes; '{path}' is not read", at)
            return None
        try:
            data = read_source_file(path, remaining)
        except SourceFileError as exc:
            if exc.too_large:
                too_much = f"configuration input exceeds {MAX_TOTAL_INPUT_BYTES} bytes; '{path}' is not read"
                self.stop(too_much, at)
            else:
                self.fatal(f"cannot read {what} '{path}': {exc}", at)
            return None
        self.input_bytes += len(data)
        self.files_read += 1
        return data

    def _read_data(
        self,
        display: str,
        identity: str,
        data: bytes | str,
        line_numbers: Sequence[int | tuple[str, int]] | None,
        depth: int,
        pending: _Pending | None,
    ) -> _Pending | None:
        self.file_stack.append((identity, display))
        saved_level, saved_deferred = self._gen_level, self._deferred
        self._gen_level, self._deferred = 0, []
        try:
            if isinstance(data, bytes):
                # One decode for the whole file; line by line (to locate bad bytes) only when it is not UTF-8.
                with contextlib.suppress(UnicodeDecodeError):
                    data = data.decode("utf-8")
            if isinstance(data, str) and line_numbers is None and not _UNUSUAL.search(data):
                return self._run_clean(display, data, depth, pending)
            return self._run(self._file_lines(display, data, line_numbers), depth, pending)
        finally:
            self.file_stack.pop()
            self._gen_level, self._deferred = saved_level, saved_deferred

    def _file_lines(
        self, file: str, data: bytes | str, line_numbers: Sequence[int | tuple[str, int]] | None
    ) -> Iterator[_Item]:
        """The physical lines of a file, decoded, checked and de-commented; None for an empty line.

        ``line_numbers`` (rendered templates) gives each line the number to report, or the (file, line)
        of a template the top one included. A file that is not UTF-8 comes as bytes, decoded line by line.
        """
        binary = isinstance(data, bytes)
        newline: bytes | str = b"\n" if binary else "\n"
        n = len(data)
        pos = 0
        index = 0
        while pos < n and not self.stopped:
            nl = data.find(newline, pos)  # type: ignore[arg-type]
            end, nxt = (n, n) if nl < 0 else (nl, nl + 1)
            raw = data[pos:end]
            pos = nxt
            index += 1
            number = index
            display = file
            if line_numbers is not None and index - 1 < len(line_numbers):
                candidate = line_numbers[index - 1]
                if isinstance(candidate, tuple):  # a line a template included from another file
                    display, candidate = candidate
                if isinstance(candidate, int) and candidate >= 1:
                    number = candidate
            if isinstance(raw, bytes):
                size = len(raw)
                raw = raw.rstrip(b"\r")
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    text = raw.decode("utf-8", "replace")
                    col = len(raw[: exc.start].decode("utf-8", "replace")) + 1
                    if not _in_comment(raw, exc.start):  # bytes in a comment are nobody's business
                        self.error(
                            f"invalid UTF-8 (byte 0x{raw[exc.start]:02x}); replaced by U+FFFD",
                            Location(display, number, col, text),
                        )
            else:
                text = raw.rstrip("\r")
                size = len(raw)
                if size > 255:
                    size = len(raw.encode("utf-8", "surrogatepass"))
            if index == 1 and text.startswith("\ufeff"):
                self.error(
                    "UTF-8 byte order mark at the start of the file: "
                    "keepalived reads it as part of the first word",
                    Location(display, number, 1, text),
                )
            nul = text.find("\0")
            if nul >= 0:
                self.error(
                    "NUL byte in the configuration; the rest of the line is ignored",
                    Location(display, number, nul + 1, text),
                )
                text = text[:nul]
            origin = _Origin(display, number, text)
            if size > KEEPALIVED_MAXBUF - 2:
                self.error(
                    f"line is {size} bytes long: keepalived reads lines of at most {KEEPALIVED_MAXBUF - 2} "
                    "bytes and would split it",
                    origin.loc(),
                )
            if not text:
                yield None, origin
            elif _NOT_PLAIN.search(text) is None and "include" not in text:
                yield text, origin.loc()  # a plain line: words and braces only (the fast path)
            else:
                yield _decomment(_Mapped.verbatim(text)), origin

    def _run_clean(self, display: str, data: str, depth: int, pending: _Pending | None) -> _Pending | None:
        """:meth:`_run` over the common file: valid UTF-8 without NUL, CR or byte-order mark.

        Its plain lines (no quote, comment, ``$``, ``@``, ``~``, backslash or include: most lines of most
        files) go straight to :meth:`_plain_line`; the others through :meth:`_run`, one at a time.
        """
        lines = data.split("\n")
        if data.endswith("\n"):
            lines.pop()
        limit = KEEPALIVED_MAXBUF - 2
        not_plain = {*_numbers_of_lines_with(_NOT_PLAIN, data), *_numbers_of_lines_with(_INCLUDE, data)}
        plain_line = self._plain_line
        for number, text in enumerate(lines, 1):
            if self.stopped:
                break
            if len(text) > limit // 4 and len(text.encode("utf-8", "surrogatepass")) > limit:
                size = len(text.encode("utf-8", "surrogatepass"))
                self.error(
                    f"line is {size} bytes long: keepalived reads lines of at most {limit} bytes and would "
                    "split it",
                    Location(display, number, 1, text),
                )
            item: _Item
            if not text:
                item = None, _Origin(display, number, text)
            elif number not in not_plain:
                if pending is None:
                    plain_line(text, _new_tuple(Location, (display, number, 1, text)))
                    continue
                item = text, Location(display, number, 1, text)
            else:
                item = _decomment(_Mapped.verbatim(text)), _Origin(display, number, text)
            pending = self._run((item,), depth, pending)
        return pending

    # -- the line loop ----------------------------------------------------------------------------------

    def _nesting_ok(self, depth: int, loc: Location) -> bool:
        if depth > MAX_NESTING_DEPTH:
            self.fatal(
                f"includes, ~SEQ/~LST and multi-line definitions nested more than {MAX_NESTING_DEPTH} deep",
                loc,
            )
            return False
        return True

    def _run(self, items: Iterable[_Item], depth: int, pending: _Pending | None) -> _Pending | None:
        """Feed lines through keepalived's read_line logic; return a multi-line definition still open."""
        for m, origin in items:
            if self.stopped:
                break
            if m is None:  # an empty line ends a multi-line definition
                if pending is not None:
                    self.commit(pending)
                    pending = None
                continue
            if isinstance(m, str):
                assert isinstance(origin, Location)
                if pending is None:
                    self._plain_line(m, origin)
                    continue
                m = _decomment(_Mapped.verbatim(m))
                origin = _Origin(origin.file, origin.line, origin.text)
            if not m.text:
                continue
            if pending is not None:
                if not self.continue_definition(pending, m.text):
                    pending = None
                continue
            assert isinstance(origin, _Origin)
            pending = self._process(m, origin, depth)
        return pending

    def _process(self, m: _Mapped, origin: _Origin, depth: int) -> _Pending | None:
        """One logical line; then the includes it (and the lines it generated) asked for, last first."""
        self._gen_level += 1
        try:
            pending = self._process_line(m, origin, depth)
        finally:
            self._gen_level -= 1
        if self._gen_level == 0:
            while self._deferred and not self.stopped:
                request = self._deferred.pop()
                pending = self._include(request, pending)
        return pending

    def _process_line(self, m: _Mapped, origin: _Origin, depth: int) -> _Pending | None:
        """One logical line: conditional, definition, ~SEQ, substitution, include or words.

        As in keepalived, the text after each brace is examined again as if it started a line (so
        ``x { @id y }`` is conditional on ``@id``, and a ``$NAME=`` or ``include`` there is one); its
        words still join the same :class:`Line`.
        """
        rests: list[tuple[list[str], int]] = []  # other lines of multi-line definitions, by expansion
        pending: _Pending | None = None
        tokens: list[Token] = []
        current: _Mapped | None = m
        residues = 0
        while current is not None:
            kind, line, substituted = self._resolve(current, origin, rests)
            current = None
            if kind == "definition":
                pending = self._definition_started
            elif kind == "seq":
                assert line is not None
                self._add_line(tokens)
                tokens = []
                pending = self._seq(line, origin, depth)
            elif line is not None and line.text:
                s = line.text
                if substituted and len(s) >= KEEPALIVED_MAXBUF:
                    self.error(
                        f"after substitution this line is {len(s)} characters long: keepalived stops "
                        f"substituting at {KEEPALIVED_MAXBUF - 1}",
                        origin.loc(line.col_at(0)),
                    )
                if _is_include(s):
                    self._check_unsubstituted(line, origin, 0, len(s))
                    self._include_line(line, origin, depth)
                    break
                start = 0
                while True:
                    brace = _first_brace(s, start)
                    end = len(s) if brace < 0 else brace
                    tokens.extend(self._tokenize(line, origin, start, end))
                    if brace < 0:
                        break
                    tokens.append(Token(s[brace], origin.loc(line.col_at(brace))))
                    start = _skip_blanks(s, brace + 1)
                    if start >= len(s):
                        break
                    if s[start] in "@$~" or _is_include(s[start : start + 9]):
                        residues += 1
                        if residues <= MAX_RESIDUES:
                            current = line.slice(start)
                            break
                        self.error(
                            f"more than {MAX_RESIDUES} braces on this line: the rest is not checked for "
                            "@, $, ~ and include",
                            origin.loc(line.col_at(start)),
                        )
                if not s.startswith("~"):
                    self._check_unsubstituted(line, origin, 0, len(s) if current is None else start)
        self._add_line(tokens)
        if rests and self._nesting_ok(depth + 1, origin.loc(m.col_at(0))):
            for lines, col in reversed(rests):
                pending = self._run(self._definition_lines(lines, col, origin), depth + 1, pending)
        return pending

    def _resolve(
        self, line: _Mapped, origin: _Origin, rests: list[tuple[list[str], int]]
    ) -> tuple[str, _Mapped | None, bool]:
        """keepalived's read_line() loop over one line: (what it is, its text, whether substituted).

        What it is: "dropped" (a conditional for another id, or a cap), "definition" (the pending
        multi-line one, if any, is left in ``_definition_started``), "seq", or "line".
        """
        substituted = False
        for _ in range(MAX_SUBSTITUTION_PASSES):
            s = line.text
            if s.startswith("@"):
                stripped = self._conditional(line)
                if stripped is None:
                    return "dropped", None, False
                line, s = stripped, stripped.text
            if s.startswith("$"):
                found = _DEFINITION.match(s)
                if found is not None:
                    self._definition_started = self._definition(found.group(1), s[found.end() :])
                    return "definition", None, False
            if s.startswith(("~SEQ", "~LST")):
                return "seq", line, substituted
            if s.startswith("~") or "$" not in s:
                return "line", line, substituted
            try:
                expanded, changed, new_rests = self._substitute(line, origin)
            except _Stop:
                return "dropped", None, False
            rests.extend(new_rests)
            if not changed:
                return "line", line, substituted
            substituted = True
            line = _decomment(expanded)
            if not (line.text.startswith("@") or "$" in line.text):
                return "line", line, substituted
        self.fatal(
            f"more than {MAX_SUBSTITUTION_PASSES} substitution passes over this line",
            origin.loc(line.col_at(0)),
        )
        return "dropped", None, False

    def _plain_line(self, text: str, where: Location) -> None:
        """A line with nothing to substitute, quote, strip or include: its words and braces as they stand."""
        tokens: list[Token] = []
        pos = 0
        find = text.find
        for word in text.replace("{", " { ").replace("}", " } ").split():  # a brace is a word of its own
            at = find(word, pos)
            tokens.append(Token(word, where, False, at + 1))
            pos = at + len(word)
        if tokens:  # _add_line, inline: this is the line most lines take
            self.tokens += len(tokens)
            if self.tokens > MAX_TOKENS:
                self.stop(f"more than {MAX_TOKENS} tokens; the rest is ignored", tokens[0].loc)
                return
            self.lines.append(_new_tuple(Line, (tuple(tokens),)))

    def _add_line(self, tokens: list[Token]) -> None:
        if not tokens:
            return
        self.tokens += len(tokens)
        if self.tokens > MAX_TOKENS:
            self.stop(f"more than {MAX_TOKENS} tokens; the rest is ignored", tokens[0].loc)
            return
        self.lines.append(Line(tuple(tokens)))

    def _conditional(self, line: _Mapped) -> _Mapped | None:
        """``@ID rest`` / ``@^ID rest``: the rest when it applies to config_id, else None."""
        s = line.text
        reverse = s.startswith("@^")
        ofs = 2 if reverse else 1
        blank = _FIRST_BLANK.search(s, ofs)
        if blank is None:
            return None
        if (s[ofs : blank.start()] != self.config_id) != reverse:
            return None
        return line.slice(_BLANKS.match(s, blank.start()).end())  # type: ignore[union-attr]

    def _definition(self, name: str, rest: str) -> _Pending | None:
        """``$NAME=rest``; the pending definition when it continues on the next lines."""
        rest = rest.lstrip(_BLANK)
        if rest.endswith("\\"):
            head = rest[:-1].rstrip(_BLANK)
            value = head + "\n" if head else ""
            return _Pending(self.define(name, value, multiline=True), [value])
        self.define(name, rest)
        return None

    def _definition_lines(self, lines: list[str], col: int, origin: _Origin) -> Iterator[_Item]:
        """The second and later lines of a multi-line definition, located at its reference."""
        for text in lines:
            if not self._count_generated(origin.loc(col)):
                return
            yield (_Mapped.fixed(text, col) if text else None), origin

    def _count_generated(self, loc: Location) -> bool:
        self.generated += 1
        if self.generated > MAX_GENERATED_LINES:
            self.fatal(
                f"~SEQ/~LST and multi-line definitions generate more than {MAX_GENERATED_LINES} lines; "
                "the rest are not generated",
                loc,
            )
            return False
        return True

    # -- substitution -----------------------------------------------------------------------------------

    def _substitute(
        self, line: _Mapped, origin: _Origin
    ) -> tuple[_Mapped, bool, list[tuple[list[str], int]]]:
        """One pass of keepalived's replace_param(): (new text, whether anything changed, multi-line rests).

        The line and the definition values being expanded form a stack of frames; a value is scanned
        before the rest of the text after its reference, as keepalived's in-place replacement does.
        Raises :class:`_Stop` (after reporting) when a cap is hit.
        """
        if _REF_SCAN.search(line.text) is None:
            return line, False, []
        frames = [_Frame(line.text, 0, None)]
        out = _Builder()
        rests: list[tuple[list[str], int]] = []
        changed = False
        count = 0
        limit = len(line.text) + MAX_LINE_CHARS

        def flush(frame: _Frame, upto: int) -> None:
            """Copy the frame's text from its mark up to *upto* to the output."""
            if frame.col is None:
                out.add(line, frame.mark, upto)
            else:
                out.add_fixed(frame.text[frame.mark : upto], frame.col)
            frame.mark = upto
            if out.length > limit:
                self.fatal(
                    f"definition substitution makes this line more than {MAX_LINE_CHARS} characters longer "
                    "(recursive definition?)",
                    origin.loc(line.col_at(0)),
                )
                raise _Stop

        while True:
            top = frames[-1]
            dollar = top.text.find("$", top.pos)
            if dollar < 0:
                flush(top, len(top.text))
                if len(frames) == 1:
                    break
                frames.pop()
                continue
            ahead, complete = _lookahead(frames, dollar + 1)
            ref = self._match_reference(ahead, complete)
            if ref is None:
                top.pos = dollar + 1
                continue
            flush(top, dollar)
            defn, consumed, params = ref
            col = top.col if top.col is not None else line.col_at(dollar)
            loc = origin.loc(col)
            count += 1
            self.expansions += 1
            if count > MAX_EXPANSIONS_PER_LINE:
                self.fatal(
                    f"more than {MAX_EXPANSIONS_PER_LINE} definition references on one line "
                    "(recursive definition?)",
                    loc,
                )
                raise _Stop
            if self.expansions > MAX_TOTAL_EXPANSIONS:
                self.stop(f"more than {MAX_TOTAL_EXPANSIONS} definition references in all", loc)
                raise _Stop
            _advance(frames, consumed + 1)
            value = defn.fn(params, origin) if defn.fn is not None else defn.value
            changed = True
            first = value
            if defn.multiline:
                first, *others = value.split("\n")
                if others:
                    rests.append((others, col))
            if first:
                frames.append(_Frame(first, 0, col))
                if len(frames) > MAX_EXPANSION_DEPTH:
                    self.fatal(
                        f"definitions nested more than {MAX_EXPANSION_DEPTH} deep (recursive definition?)",
                        loc,
                    )
                    raise _Stop
            if value.lstrip(_BLANK).startswith("~"):
                # keepalived stops here so that a ~SEQ in a definition sees its own $variables unexpanded
                for frame in reversed(frames):
                    flush(frame, len(frame.text))
                break
        if changed:
            self.expanded_chars += out.length
            if self.expanded_chars > MAX_TOTAL_EXPANDED_CHARS:
                self.stop(
                    f"definition substitution produces more than {MAX_TOTAL_EXPANDED_CHARS} characters", None
                )
                raise _Stop
        return out.build(), changed, rests

    def _match_reference(self, ahead: str, complete: bool) -> tuple[_Def, int, str | None] | None:
        """keepalived's find_definition() on the text after a ``$``: (definition, length used, params)."""
        braces = ahead.startswith("{")
        name_match = _NAME.match(ahead, 1 if braces else 0)
        if name_match is None:
            return None
        name = name_match.group()
        k = name_match.end()
        params: str | None = None
        if braces:
            first = last = -1
            while k < len(ahead) and (ahead[k] == " " or "0" <= ahead[k] <= "9"):
                if ahead[k] != " ":
                    if first < 0:
                        first = k
                    last = k
                k += 1
            if first >= 0 and last + 1 != k:
                return None
            if k >= len(ahead) or ahead[k] != "}":
                return None
            consumed = k + 1
            if first >= 0:
                params = ahead[first : last + 1]
        else:
            if k < len(ahead) and ahead[k] not in " \t,)":
                return None
            consumed = k
        at_end = complete and consumed == len(ahead)
        defn = self.defs.get(name)
        if defn is None or (defn.multiline and not at_end):
            return None
        if params is not None and not defn.max_params:
            return None
        return defn, consumed, params

    # -- ~SEQ / ~LST ------------------------------------------------------------------------------------

    def _seq(self, line: _Mapped, origin: _Origin, depth: int) -> _Pending | None:
        """Repeat the rest of a ``~SEQ``/``~LST`` line once per value."""
        s = line.text
        loc = origin.loc(line.col_at(0))
        kind = s[:4]
        try:
            if kind == "~SEQ":
                assignments, text_start = self._parse_seq(line, origin)
            else:
                assignments, text_start = _parse_lst(s)
        except ValueError as exc:
            self.error(f"invalid {kind} specification: {exc}", loc)
            return None
        if not self._nesting_ok(depth + 1, loc):
            return None
        template = line.slice(text_start)

        def lines() -> Iterator[_Item]:
            for assignment in assignments:
                if not self._count_generated(loc):
                    return
                for name, value in assignment:
                    self.define(name, value)
                yield (template if template.text else None), origin

        return self._run(lines(), depth + 1, None)

    def _parse_seq(self, line: _Mapped, origin: _Origin) -> tuple[Iterable[list[tuple[str, str]]], int]:
        s = line.text
        p = 4
        hexa = s[p : p + 1] == "x"
        if hexa:
            p += 1
        p = _skip_blanks(s, p)
        if s[p : p + 1] != "(":
            raise ValueError("'(' expected after ~SEQ")
        p = _skip_blanks(s, p + 1)
        var_start = p
        found = _SEQ_VAR_END.search(s, p)
        p = found.start() if found else len(s)
        var = s[var_start:p]
        p = _skip_blanks(s, p)
        if not var or p >= len(s) or s[p] != ",":
            raise ValueError("expected ~SEQ(variable, [start,] [step,] end)")
        p = _skip_blanks(s, p + 1)
        close = s.find(")", p)
        if close < 0:
            raise ValueError("missing ')'")
        if close + 1 - p + 1 > 64:  # keepalived's seq_buf
            raise ValueError("parameter strings too long")
        try:
            params, _changed, rests = self._substitute(line.slice(p, close + 1), origin)
        except _Stop:
            raise ValueError("parameters cannot be substituted") from None
        if rests:
            raise ValueError("a parameter is a multi-line definition")
        numbers, q, text = [], 0, params.text
        while True:
            value, q = _strtol(text, q)
            numbers.append(value)
            q = _skip_blanks(text, q)
            if q < len(text) and text[q] == ")":
                break
            if q >= len(text) or text[q] != "," or len(numbers) == 3:
                raise ValueError("expected ~SEQ(variable, [start,] [step,] end)")
            q += 1
        if len(numbers) == 1:
            end = numbers[0]
            step = -1 if end < 1 else 1
            start = -1 if end < 0 else 1
        elif len(numbers) == 2:
            start, end = numbers
            step = 1 if start <= end else -1
        else:
            start, step, end = numbers
            if not step or (start < end and step < 0) or (start > end and step > 0):
                raise ValueError("the step does not lead from start to end")
        if hexa and (start < 0 or end < 0):
            raise ValueError("~SEQx is only valid for positive numbers")
        values = range(start, end + (1 if step > 0 else -1), step)
        fmt = "x" if hexa else "d"
        return ([(var, format(v, fmt))] for v in values), _skip_blanks(s, close + 1)

    # -- output -----------------------------------------------------------------------------------------

    def _check_unsubstituted(self, line: _Mapped, origin: _Origin, start: int, end: int) -> None:
        """An ERROR for every ``$NAME`` in ``line.text[start:end]`` keepalived would leave as it is."""
        s = line.text
        if s.find("$", start, end) < 0:
            return
        for ref in _REF_SCAN.finditer(s, start, end):
            braces, name = ref.group(1), ref.group(2)
            loc = origin.loc(line.col_at(ref.start()))
            defn = self.defs.get(name)
            if defn is None:
                shown = f"${{{name}}}" if braces else f"${name}"
                self.error(f"'{shown}' is not defined; it is left as it is", loc)
            elif defn.multiline:
                self.error(
                    f"multi-line definition '${name}' is only substituted at the end of a line; "
                    "it is left as it is",
                    loc,
                )
            elif braces:
                self.error(f"malformed reference '${{{name}...'; it is left as it is", loc)
            else:
                after = s[ref.end()] if ref.end() < end else ""
                self.error(
                    f"'${name}' is followed by '{after}' and is not substituted: keepalived substitutes "
                    f"$NAME only before a blank, ',' or ')' or at the end of the line; write '${{{name}}}'",
                    loc,
                )

    def _tokenize(self, line: _Mapped, origin: _Origin, start: int, end: int) -> list[Token]:
        """The words of ``line.text[start:end]``; adjacent quoted and unquoted parts join."""
        s = line.text
        tokens: list[Token] = []
        while end > start and s[end - 1] in _WHITE_SPACE:
            end -= 1
        for found in _TOKEN.finditer(s, start, end):
            brace, word = found.group(1, 2)
            if brace is not None:
                tokens.append(Token(brace, origin.loc(line.col_at(found.start(1)))))
            elif word is not None:
                quoted = '"' in word
                text = word.replace('"', "") if quoted else word
                tokens.append(Token(text, origin.loc(line.col_at(found.start(2))), quoted))
            else:
                col = line.col_at(found.start(3))
                self.error("unterminated quoted string: missing closing '\"'", origin.loc(col))
                break
        return tokens

    # -- includes ---------------------------------------------------------------------------------------

    def _include_line(self, line: _Mapped, origin: _Origin, depth: int) -> None:
        s = line.text
        variant = "" if s[7] in _C_SPACE else s[7]
        p = _skip_blanks(s, 8 if not variant else 9)
        pattern = s[p:]
        loc = origin.loc(line.col_at(p))
        if not pattern:
            self.error("'include' needs a file name", origin.loc(line.col_at(0)))
            return
        if len(pattern) > MAX_INCLUDE_PATTERN:
            self.fatal(f"include pattern longer than {MAX_INCLUDE_PATTERN} characters", loc)
            return
        base = os.path.dirname(origin.file)
        self._deferred.append(_IncludeRequest(pattern, loc, _INCLUDE_FLAGS[variant], base, depth))

    def _include(self, request: _IncludeRequest, pending: _Pending | None) -> _Pending | None:
        loc = request.loc
        if len(self.file_stack) >= MAX_INCLUDE_DEPTH:
            self.fatal(f"includes nested more than {MAX_INCLUDE_DEPTH} deep", loc)
            return pending
        for path, literal in self._expand_include(request):
            if self.stopped:
                break
            identity = _identity(path)
            keys = [key for key, _name in self.file_stack]
            if identity in keys:
                chain = [name for _key, name in self.file_stack[keys.index(identity) :]] + [path]
                self.error("include cycle: " + " -> ".join(chain) + "; not read again", loc)
                continue
            if self.files_read >= MAX_INCLUDE_FILES:
                self.fatal(f"more than {MAX_INCLUDE_FILES} configuration files; '{path}' is not read", loc)
                continue
            if not self._nesting_ok(request.depth + 1, loc):
                continue
            data = self._load(path, loc, literal=literal, flags=request.flags, top=False)
            if data is not None:
                pending = self._read_data(path, identity, data, None, request.depth + 1, pending)
        return pending

    def _expand_include(self, request: _IncludeRequest) -> list[tuple[str, bool]]:
        """The files an include names, in keepalived's order: (path, named without wildcards)."""
        out: list[tuple[str, bool]] = []
        alternatives = _brace_expand(request.pattern, MAX_INCLUDE_FILES)
        if alternatives is None:
            self.fatal(f"include pattern expands to more than {MAX_INCLUDE_FILES} patterns", request.loc)
            return out
        for alt in alternatives:
            joined = os.path.join(request.base, alt) if request.base else alt
            if not _MAGIC.search(alt):
                out.append((joined, True))
                continue
            pattern = os.path.join(glob.escape(request.base), alt) if request.base else alt
            try:
                found = sorted(glob.glob(pattern))
            except (OSError, ValueError, RecursionError):
                found = []
            if not found:
                missing_dir = not os.path.isdir(_fixed_directory(joined))
                strict = request.flags & _INC_W or (request.flags & _INC_M and missing_dir)
                why = " (its directory does not exist)" if missing_dir else ""
                self.report(
                    Severity.FATAL if strict else Severity.NOTE,
                    f"include pattern '{alt}' matches no files{why}",
                    request.loc,
                )
            out.extend((path, False) for path in found)
            if len(out) > MAX_INCLUDE_FILES:
                self.fatal(f"include pattern matches more than {MAX_INCLUDE_FILES} files", request.loc)
                return out[:MAX_INCLUDE_FILES]
        return out


# ---------------------------------------------------------------------------------------------------------
# Helpers


def _in_comment(raw: bytes, pos: int) -> bool:
    """Whether byte ``pos`` of a line lies in a ``#`` / ``!`` comment (outside double quotes)."""
    quoted = False
    for i, byte in enumerate(raw[:pos]):
        if byte == 0x22:  # "
            quoted = not quoted
        elif byte in (0x23, 0x21) and not quoted:  # # or !
            return i == 0 or raw[i - 1] != 0x5C  # not escaped with a backslash
    return False


def _identity(path: str) -> str:
    """What makes two paths the same file, for include cycle detection."""
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return os.path.abspath(path) if "\0" not in path else path


def _skip_blanks(s: str, p: int) -> int:
    return _BLANKS.match(s, p).end()  # type: ignore[union-attr]


def _first_brace(s: str, start: int) -> int:
    """Index of the first ``{`` or ``}`` not inside ``"..."`` from *start*; -1 if none.

    As keepalived, an unterminated quote hides any brace after it.
    """
    p = start
    n = len(s)
    while p < n:
        found = _BRACE_OR_QUOTE.search(s, p)
        if found is None:
            return -1
        p = found.start()
        if s[p] != '"':
            return p
        close = s.find('"', p + 1)
        if close < 0:
            return -1
        p = close + 1
    return -1


def _is_include(s: str) -> bool:
    """keepalived's is_include(): ``include`` or ``include[rmwba]`` followed by white space."""
    if not s.startswith("include") or len(s) < 8:
        return False
    if s[7] in _C_SPACE:
        return True
    return s[7] in "rmwba" and len(s) > 8 and s[8] in _C_SPACE


def _lookahead(frames: list[_Frame], start: int) -> tuple[str, bool]:
    """The characters a ``$`` reference starting at ``frames[-1].text[start]`` could use.

    Returns them (as far as they can belong to a reference, plus one terminating character) and whether
    the end of all the text was reached -- which keepalived requires for multi-line definitions.
    """
    parts: list[str] = []
    for index in range(len(frames) - 1, -1, -1):
        text = frames[index].text
        run = _REF_CHARS.match(text, start if index == len(frames) - 1 else frames[index].mark)
        assert run is not None
        parts.append(run.group())
        if run.end() < len(text):
            parts.append(text[run.end()])
            return "".join(parts), False
    return "".join(parts), True


def _advance(frames: list[_Frame], count: int) -> None:
    """Consume *count* characters from the top of the frame stack (dropping finished value frames)."""
    while count:
        top = frames[-1]
        take = min(count, len(top.text) - top.mark)
        top.mark += take
        top.pos = top.mark
        count -= take
        if top.mark >= len(top.text) and len(frames) > 1:
            frames.pop()
        elif take == 0:  # pragma: no cover - the bottom frame is exhausted; nothing more to consume
            return


_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _strtol(s: str, p: int) -> tuple[int, int]:
    """C ``strtol(s + p, &end, 0)``: (value, index after it); (0, p) when there is no number."""
    q = p
    n = len(s)
    while q < n and s[q] in _C_SPACE:
        q += 1
    sign = 1
    if q < n and s[q] in "+-":
        sign = -1 if s[q] == "-" else 1
        q += 1
    base = 10
    digits = "0123456789"
    if q + 1 < n and s[q] == "0" and s[q + 1] in "xX" and q + 2 < n and s[q + 2] in "0123456789abcdefABCDEF":
        base, digits, q = 16, "0123456789abcdefABCDEF", q + 2
    elif q < n and s[q] == "0":
        base, digits = 8, "01234567"
    start = q
    while q < n and s[q] in digits:
        q += 1
    if q == start:
        return 0, p
    value = sign * int(s[start:q], base)
    return max(_LONG_MIN, min(_LONG_MAX, value)), q


def _parse_lst(s: str) -> tuple[list[list[tuple[str, str]]], int]:
    """keepalived's add_lst(): the variable assignments of each repetition, and where the text starts."""
    n = len(s)

    def bad() -> ValueError:
        return ValueError("expected ~LST(variable, value, ...) or ~LST({var, ...}, {value, ...}, ...)")

    def at(p: int) -> str:
        return s[p] if p < n else ""

    p = _skip_blanks(s, 4)
    if at(p) != "(":
        raise bad()
    p = _skip_blanks(s, p + 1)
    end_char = ","
    if at(p) == "{":
        end_char = "}"
        p = _skip_blanks(s, p + 1)
    names: list[str] = []
    while True:
        found = _LST_VAR_END.search(s, p)
        var_end = found.start() if found else n
        names.append(s[p:var_end])
        p = _skip_blanks(s, var_end)
        if at(p) == end_char:
            break
        if at(p) != ",":
            raise bad()
        p = _skip_blanks(s, p + 1)
    if at(p) == "}":
        p = _skip_blanks(s, p + 1)
    if at(p) != ",":
        raise bad()
    p = _skip_blanks(s, p + 1)
    value_sets: list[list[str]] = []
    while True:
        end_char = ","
        if at(p) == "{":
            end_char = "}"
            p = _skip_blanks(s, p + 1)
        values: list[str] = []
        while True:
            found = _LST_VALUE_END.search(s, p)
            value_end = found.start() if found else n
            values.append(s[p:value_end])
            p = _skip_blanks(s, value_end)
            if at(p) == end_char or (at(p) == ")" and end_char == ","):
                break
            if at(p) != ",":
                raise bad()
            p = _skip_blanks(s, p + 1)
            if len(values) >= len(names):
                raise ValueError("too many values")
        values.extend([""] * (len(names) - len(values)))
        value_sets.append(values)
        if at(p) == "}" and end_char == "}":
            p = _skip_blanks(s, p + 1)
        if at(p) == ")":
            break
        if at(p) != ",":
            raise bad()
        p = _skip_blanks(s, p + 1)
    return [list(zip(names, values, strict=True)) for values in value_sets], _skip_blanks(s, p + 1)


def _brace_expand(pattern: str, limit: int) -> list[str] | None:
    """glob(3) GLOB_BRACE expansion of ``{a,b}`` (nested, ``\\`` escapes); None past *limit* results."""
    done: list[str] = []
    work = [pattern]
    steps = 0
    while work:
        steps += 1
        if steps > 4 * limit:
            return None
        p = work.pop()
        group = _first_brace_group(p)
        if group is None:
            done.append(p)
            if len(done) > limit:
                return None
            continue
        open_, close, commas = group
        bounds = [open_, *commas, close]
        alternatives = [p[bounds[k] + 1 : bounds[k + 1]] for k in range(len(bounds) - 1)]
        # reversed onto the stack so that they come out in order
        work.extend(p[:open_] + alt + p[close + 1 :] for alt in reversed(alternatives))
        if len(work) > limit:
            return None
    return done


def _first_brace_group(p: str) -> tuple[int, int, list[int]] | None:
    """The first ``{...}`` with its top-level commas: (open, close, commas); None if there is none."""
    i, n = 0, len(p)
    while i < n and p[i] != "{":
        i += 2 if p[i] == "\\" else 1
    if i >= n:
        return None
    depth = 0
    commas: list[int] = []
    j = i
    while j < n:
        c = p[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i, j, commas
        elif c == "," and depth == 1:
            commas.append(j)
        j += 1
    return None  # unbalanced: taken literally


def _fixed_directory(path: str) -> str:
    """The directory part of a glob pattern before its first wildcard."""
    parts = path.split(os.sep)
    fixed: list[str] = []
    for part in parts[:-1]:
        if _MAGIC.search(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or ("/" if path.startswith(os.sep) else ".")
