"""Jinja2 front end: configs rendered from templates before they are parsed.

Rendering is sandboxed (no attribute access to Python internals, bounded ``range``), undefined variables are
errors (StrictUndefined), and output is capped. It runs in a forked child process under hard CPU, memory
and wall-clock limits (:class:`RenderLimits`), so no template can hang or exhaust the caller; every file
it reads (the template, what it includes or imports, variables files) is a regular file of bounded size.

To report later parse errors at the template line that produced them, the config loader renders a copy of
the template whose every line starts with an invisible marker naming its line; the markers are stripped from
the output and become the line map handed to the lexer.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import internalcode

from keepalived_py.config.bounded_yaml import YAMLExpansionError, safe_load_bounded
from keepalived_py.config.diagnostics import Diagnostic, DiagnosticSink, Location, Severity
from keepalived_py.config.limited_process import LimitExceeded, Limits, run_limited
from keepalived_py.config.source_file import SourceFileError, read_source_file

#: Largest rendered configuration accepted (characters).
MAX_OUTPUT_BYTES = 32 * 1024 * 1024
#: Longest a render may take, wall clock (environment: KPD_TEMPLATE_WALL_SECONDS).
MAX_RENDER_SECONDS = 30.0
#: CPU time a render may use (environment: KPD_TEMPLATE_CPU_SECONDS).
MAX_RENDER_CPU_SECONDS = 30.0
#: Memory a render may use on top of what the process already holds (environment: KPD_TEMPLATE_MEMORY_MIB).
MAX_RENDER_MEMORY_BYTES = 512 * 1024 * 1024
#: Largest variables file accepted.
MAX_VARS_BYTES = 8 * 1024 * 1024
#: Largest template file accepted (the top template and each one it includes or imports).
MAX_TEMPLATE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class RenderLimits:
    """Hard limits on one render; the defaults can be lowered (or raised) through the environment."""

    cpu_seconds: float = MAX_RENDER_CPU_SECONDS
    memory_bytes: int = MAX_RENDER_MEMORY_BYTES
    wall_seconds: float = MAX_RENDER_SECONDS

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> RenderLimits:
        def number(name: str, default: float) -> float:
            try:
                value = float(environ.get(name, ""))
            except ValueError:
                return default
            return value if 0 < value < 1e9 else default

        return cls(
            cpu_seconds=number("KPD_TEMPLATE_CPU_SECONDS", MAX_RENDER_CPU_SECONDS),
            memory_bytes=int(number("KPD_TEMPLATE_MEMORY_MIB", MAX_RENDER_MEMORY_BYTES / 2**20) * 2**20),
            wall_seconds=number("KPD_TEMPLATE_WALL_SECONDS", MAX_RENDER_SECONDS),
        )

    def exceeded(self, kind: str) -> str:
        """The diagnostic for a render that crossed the *kind* ("cpu", "wall", "memory") limit."""
        if kind == "cpu":
            return f"template render exceeded {self.cpu_seconds:g} s of CPU time"
        if kind == "memory":
            return f"template render exceeded {self.memory_bytes / 2**20:g} MiB of memory"
        return f"template render exceeded {self.wall_seconds:g} s"


# Private-use characters: not whitespace (Jinja's "-" whitespace control keeps them); never in a config.
_MARK = "\ue000"
_MARK_END = "\ue001"
_MARK_RE = re.compile(f"{_MARK}(\\d+):(\\d+){_MARK_END}")
_TAG_OPEN = re.compile(r"\{[{%#]")
_LSTRIP_TAG = re.compile(r"[ \t]*\{[{%#]-")
_TAG_CLOSE = {"{{": "}}", "{%": "%}", "{#": "#}"}


@dataclass(frozen=True)
class Rendered:
    text: str
    #: line_numbers[i]: the line of the top template that produced line i + 1 of ``text``, or
    #: (file, line) when a template it includes produced it
    line_numbers: tuple[int | tuple[str, int], ...]


def _mark_lines(source: str, index: int = 0) -> str:
    """Put a line marker at the start of every template line that begins outside a Jinja tag."""
    out: list[str] = []
    line = 1
    pos = 0
    in_tag: str | None = None
    at_line_start = True
    n = len(source)
    while pos < n:
        if in_tag is None:
            if at_line_start:
                # A line opening with "{%-" (or "{{-", "{#-") joins the previous one: no marker may stand
                # between them, or the whitespace control could not strip the newline.
                if not _LSTRIP_TAG.match(source, pos):
                    out.append(f"{_MARK}{index}:{line}{_MARK_END}")
                at_line_start = False
            m = _TAG_OPEN.search(source, pos)
            nl = source.find("\n", pos)
            if m is not None and (nl == -1 or m.start() < nl):
                out.append(source[pos : m.end()])
                in_tag = _TAG_CLOSE[m.group()]
                pos = m.end()
                continue
            if nl == -1:
                out.append(source[pos:])
                break
            out.append(source[pos : nl + 1])
            pos = nl + 1
            line += 1
            at_line_start = True
        else:
            end = source.find(in_tag, pos)
            stop = n if end == -1 else end + len(in_tag)
            chunk = source[pos:stop]
            line += chunk.count("\n")
            out.append(chunk)
            pos = stop
            in_tag = None
            if chunk.endswith("\n"):
                at_line_start = True
    return "".join(out)


class TemplateFileError(jinja2.TemplateError):
    """A template file that exists but cannot be used (not a regular file, too large, not UTF-8)."""


class _SourceLoader(jinja2.BaseLoader):
    """Loads templates from the top template's directory, each a bounded regular file.

    With *mark*, every template is loaded with line markers naming it (by index in :attr:`files`) and
    its line.
    """

    def __init__(self, top: Path, mark: bool):
        self.directory = str(top.parent)
        self.mark = mark
        self.files: list[str] = [os.path.normpath(str(top))]

    @internalcode
    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        filename = os.path.normpath(
            os.path.join(self.directory, *jinja2.loaders.split_template_path(template))
        )
        source = read_template(filename, template)
        if not self.mark:
            return source, filename, lambda: True
        if filename not in self.files:
            self.files.append(filename)
        return _mark_lines(source, self.files.index(filename)), filename, lambda: True


def read_template(filename: str, name: str | None = None) -> str:
    """The text of a template file; TemplateNotFound when missing, TemplateFileError when unusable."""
    try:
        data = read_source_file(filename, MAX_TEMPLATE_BYTES)
    except SourceFileError as err:
        if err.missing:
            raise jinja2.TemplateNotFound(name or filename) from None
        raise TemplateFileError(f"cannot read template {filename}: {err}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TemplateFileError(f"template {filename} is not valid UTF-8 (byte {err.start})") from None


def make_environment(loader: jinja2.BaseLoader) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def load_variables(
    files: Iterable[str | Path], overrides: Iterable[str], sink: DiagnosticSink
) -> dict[str, Any]:
    """Variables from YAML or JSON files (later files win), then ``key=value`` overrides (YAML scalars)."""
    variables: dict[str, Any] = {}
    for name in files:
        path = Path(name)
        try:
            data = read_source_file(path, MAX_VARS_BYTES)
        except SourceFileError as err:
            sink.fatal(f"cannot read variables file {path}: {err}")
            continue
        try:
            text = data.decode("utf-8")
            loaded = json.loads(text) if path.suffix == ".json" else safe_load_bounded(text)
        except UnicodeDecodeError as err:
            sink.fatal(f"variables file is not valid UTF-8 (byte {err.start})", Location(str(path), 1, 1))
            continue
        except json.JSONDecodeError as err:
            sink.fatal(f"invalid JSON: {err.msg}", _line_loc(path, text, err.lineno, err.colno))
            continue
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            problem = getattr(err, "problem", None) or str(err)
            loc = _line_loc(path, text, mark.line + 1, mark.column + 1) if mark else Location(str(path), 1, 1)
            sink.fatal(f"invalid YAML: {problem}", loc)
            continue
        except RecursionError:
            sink.fatal("variables nested too deeply", Location(str(path), 1, 1))
            continue
        if loaded is None:
            continue
        if not isinstance(loaded, dict):
            sink.fatal(
                f"variables file must hold a mapping, not {type(loaded).__name__}", Location(str(path), 1, 1)
            )
            continue
        variables.update(loaded)
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq or not key or not re.fullmatch(r"[A-Za-z_][\w.]*", key):
            sink.fatal(f"--set expects KEY=VALUE with KEY a variable name, got '{item[:60]}'")
            continue
        try:
            value = safe_load_bounded(raw) if raw else ""
        except YAMLExpansionError as err:
            sink.fatal(f"--set {key}: {err.problem}")
            continue
        except (yaml.YAMLError, RecursionError):
            value = raw
        target = variables
        *parents, leaf = key.split(".")
        for part in parents:
            nested = target.get(part)
            if not isinstance(nested, dict):
                nested = target[part] = {}
            target = nested
        target[leaf] = value
    return variables


def _line_loc(path: Path, text: str, line: int, col: int) -> Location:
    lines = text.splitlines()
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    return Location(str(path), line, col, src)


def render(
    path: str | Path,
    variables: Mapping[str, Any],
    sink: DiagnosticSink,
    *,
    mark_lines: bool = False,
    limits: RenderLimits | None = None,
) -> Rendered | None:
    """Render a template in a child process under *limits* (default: :meth:`RenderLimits.from_environment`).

    On failure report a located FATAL diagnostic and return None.
    """
    path = Path(path)
    limits = limits or RenderLimits.from_environment()
    outcome = run_limited(
        lambda: _render_result(path, variables, mark_lines, limits),
        Limits(limits.cpu_seconds, limits.memory_bytes, limits.wall_seconds),
    )
    if outcome.failure is not None:
        if outcome.failure == "crashed":
            sink.fatal(f"template render failed ({outcome.detail})", Location(str(path), 1, 1))
        else:
            sink.fatal(limits.exceeded(outcome.failure), Location(str(path), 1, 1))
        return None
    result = outcome.result
    for encoded in result["diagnostics"]:
        sink.add(_decode_diagnostic(encoded))
    if result["text"] is None:
        return None
    files = result["files"]
    numbers = tuple(n if isinstance(n, int) else (files[n[0]], n[1]) for n in result["lines"])
    return Rendered(result["text"], numbers)


def _render_result(
    path: Path, variables: Mapping[str, Any], mark_lines: bool, limits: RenderLimits
) -> dict[str, Any]:
    """In the render process: render, then the result as JSON values (files listed once, by index)."""
    sink = DiagnosticSink()
    rendered = render_here(path, variables, sink, mark_lines=mark_lines, limits=limits)
    files: dict[str, int] = {}
    lines: list[int | list[Any]] = []
    if rendered is not None:
        for n in rendered.line_numbers:
            lines.append(n if isinstance(n, int) else [files.setdefault(n[0], len(files)), n[1]])
    return {
        "diagnostics": [_encode_diagnostic(d) for d in sink.diagnostics],
        "text": rendered.text if rendered is not None else None,
        "files": list(files),
        "lines": lines,
    }


def _encode_diagnostic(d: Diagnostic) -> dict[str, Any]:
    return {
        "severity": d.severity.value,
        "message": d.message,
        "location": list(d.location) if d.location is not None else None,
        "notes": list(d.notes),
        "keyword": d.keyword,
    }


def _decode_diagnostic(d: dict[str, Any]) -> Diagnostic:
    loc = d["location"]
    return Diagnostic(
        Severity(d["severity"]),
        d["message"],
        Location(*loc) if loc is not None else None,
        tuple(d["notes"]),
        d["keyword"],
    )


def render_here(
    path: str | Path,
    variables: Mapping[str, Any],
    sink: DiagnosticSink,
    *,
    mark_lines: bool = False,
    limits: RenderLimits | None = None,
) -> Rendered | None:
    """Render a template in this process (the render process's side of :func:`render`).

    *limits* only words the diagnostics of a :class:`LimitExceeded` or ``MemoryError`` met while rendering.
    """
    path = Path(path)
    limits = limits or RenderLimits()
    loader = _SourceLoader(path, mark_lines)
    env = make_environment(loader)
    try:
        source_text = read_template(str(path))
    except jinja2.TemplateNotFound:
        sink.fatal(f"cannot read template {path}: No such file or directory")
        return None
    except TemplateFileError as err:
        sink.fatal(str(err))
        return None
    try:
        template = env.get_template(path.name)
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(**variables):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_OUTPUT_BYTES:
                sink.fatal(f"template output exceeds {MAX_OUTPUT_BYTES} bytes", Location(str(path), 1, 1))
                return None
    except jinja2.TemplateSyntaxError as err:
        name = err.filename or str(path)
        sink.fatal(
            f"template syntax error: {err.message}", _template_loc(name, err.lineno, path, source_text)
        )
        return None
    except jinja2.TemplateNotFound as err:
        line = _template_line(err.__traceback__, path)
        sink.fatal(f"template not found: {err.name}", _template_loc(str(path), line, path, source_text))
        return None
    except TemplateFileError as err:
        line = _template_line(err.__traceback__, path)
        sink.fatal(str(err), _template_loc(str(path), line, path, source_text))
        return None
    except LimitExceeded as err:
        line = _template_line(err.__traceback__, path)
        sink.fatal(limits.exceeded(err.kind), _template_loc(str(path), line, path, source_text))
        return None
    except MemoryError as err:
        line = _template_line(err.__traceback__, path)
        del chunks
        sink.fatal(limits.exceeded("memory"), _template_loc(str(path), line, path, source_text))
        return None
    except (jinja2.TemplateError, jinja2.exceptions.SecurityError) as err:
        line = _template_line(err.__traceback__, path)
        kind = "undefined variable" if isinstance(err, jinja2.UndefinedError) else "template error"
        sink.fatal(f"{kind}: {err}", _template_loc(str(path), line, path, source_text))
        return None
    except (ArithmeticError, TypeError, ValueError, RecursionError, LookupError) as err:
        line = _template_line(err.__traceback__, path)
        sink.fatal(
            f"template error: {type(err).__name__}: {err}", _template_loc(str(path), line, path, source_text)
        )
        return None
    text = "".join(chunks)
    if not mark_lines:
        return Rendered(text, tuple(range(1, text.count("\n") + 2)))
    return _unmark(text, loader.files)


def _unmark(text: str, files: list[str]) -> Rendered:
    lines = text.split("\n")
    numbers: list[int | tuple[str, int]] = []
    clean: list[str] = []
    current: int | tuple[str, int] = 1
    for line in lines:
        first = _MARK_RE.search(line)
        if first is not None:
            index, number = int(first.group(1)), int(first.group(2))
            current = number if index == 0 else (files[index], number)
        numbers.append(current)
        clean.append(_MARK_RE.sub("", line))
    return Rendered("\n".join(clean), tuple(numbers))


def _template_line(tb: TracebackType | None, path: Path) -> int:
    """The template line of the innermost traceback frame executing the template file."""
    line = 1
    target = str(path.resolve())
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        try:
            if str(Path(filename).resolve()) == target:
                line = tb.tb_lineno
        except (OSError, ValueError):
            pass
        tb = tb.tb_next
    return line


def _template_loc(name: str, line: int | None, path: Path, source_text: str) -> Location:
    line = line or 1
    text = ""
    if Path(name).resolve() == path.resolve():
        lines = source_text.splitlines()
        text = lines[line - 1] if 0 < line <= len(lines) else ""
    col = len(text) - len(text.lstrip()) + 1 if text else 1
    return Location(name, line, col, text)
