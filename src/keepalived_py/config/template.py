"""Jinja2 front end: configs rendered from templates before they are parsed.

Rendering is sandboxed (no attribute access to Python internals, bounded ``range``), undefined variables are
errors (StrictUndefined), and output is capped. To report later parse errors at the template line that
produced them, the config loader renders a copy of the template whose every line starts with an invisible
marker naming its line; the markers are stripped from the output and become the line map handed to the lexer.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from keepalived_py.config.diagnostics import DiagnosticSink, Location

#: Largest rendered configuration accepted.
MAX_OUTPUT_BYTES = 32 * 1024 * 1024
#: Longest a render may take.
MAX_RENDER_SECONDS = 30.0
#: Largest variables file accepted.
MAX_VARS_BYTES = 8 * 1024 * 1024

# Private-use characters: not whitespace (Jinja's "-" whitespace control keeps them); never in a config.
_MARK = "\ue000"
_MARK_END = "\ue001"
_MARK_RE = re.compile(f"{_MARK}(\\d+):(\\d+){_MARK_END}")
_TAG_OPEN = re.compile(r"\{[{%#]")
_LSTRIP_TAG = re.compile(r"[ \t]*\{[{%#]-")
_TAG_CLOSE = {"{{": "}}", "{%": "%}", "{#": "#}"}


def is_template(path: str | Path) -> bool:
    return str(path).endswith(".j2")


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


class _MarkingLoader(jinja2.FileSystemLoader):
    """Loads every template with line markers naming the template (by index in :attr:`files`) and line."""

    def __init__(self, top: Path):
        super().__init__(str(top.parent))
        self.files: list[str] = [str(top)]

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        source, filename, uptodate = super().get_source(environment, template)
        if filename not in self.files:
            self.files.append(filename)
        return _mark_lines(source, self.files.index(filename)), filename, uptodate


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
            data = path.read_bytes()
        except OSError as err:
            sink.fatal(f"cannot read variables file {path}: {err.strerror or err}")
            continue
        if len(data) > MAX_VARS_BYTES:
            sink.fatal(f"variables file {path} is larger than {MAX_VARS_BYTES} bytes")
            continue
        try:
            text = data.decode("utf-8")
            loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
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
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
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
    path: str | Path, variables: Mapping[str, Any], sink: DiagnosticSink, *, mark_lines: bool = False
) -> Rendered | None:
    """Render a template; on failure report a located FATAL diagnostic and return None."""
    path = Path(path)
    loader: jinja2.BaseLoader = (
        _MarkingLoader(path) if mark_lines else jinja2.FileSystemLoader(str(path.parent))
    )
    env = make_environment(loader)
    try:
        source_text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        sink.fatal(f"cannot read template {path}: {getattr(err, 'strerror', None) or err}")
        return None
    try:
        template = env.get_template(path.name)
        chunks: list[str] = []
        size = 0
        deadline = time.monotonic() + MAX_RENDER_SECONDS
        for chunk in template.generate(**variables):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_OUTPUT_BYTES:
                sink.fatal(f"template output exceeds {MAX_OUTPUT_BYTES} bytes", Location(str(path), 1, 1))
                return None
            if time.monotonic() > deadline:
                sink.fatal(
                    f"template rendering took longer than {MAX_RENDER_SECONDS:.0f} s",
                    Location(str(path), 1, 1),
                )
                return None
    except jinja2.TemplateSyntaxError as err:
        name = err.filename or str(path)
        sink.fatal(
            f"template syntax error: {err.message}", _template_loc(name, err.lineno, path, source_text)
        )
        return None
    except jinja2.TemplateNotFound as err:
        sink.fatal(f"template not found: {err.name}", Location(str(path), 1, 1))
        return None
    except (jinja2.TemplateError, jinja2.sandbox.SecurityError) as err:
        line = _template_line(err.__traceback__, path)
        kind = "undefined variable" if isinstance(err, jinja2.UndefinedError) else "template error"
        sink.fatal(f"{kind}: {err}", _template_loc(str(path), line, path, source_text))
        return None
    except (ArithmeticError, TypeError, ValueError, RecursionError, MemoryError, LookupError) as err:
        line = _template_line(err.__traceback__, path)
        sink.fatal(
            f"template error: {type(err).__name__}: {err}", _template_loc(str(path), line, path, source_text)
        )
        return None
    text = "".join(chunks)
    if not isinstance(loader, _MarkingLoader):
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
