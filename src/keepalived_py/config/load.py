"""Loading a configuration: template rendering, lexing, blocks, schema, model and cross-checks in one call."""

from __future__ import annotations

import contextlib
import gc
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from keepalived_py.config.build import Origins, build_config
from keepalived_py.config.diagnostics import ConfigError, Diagnostic, DiagnosticSink, Location, exit_code_for
from keepalived_py.config.hostcheck import check_host
from keepalived_py.config.keywords import SCHEMA
from keepalived_py.config.lexer import read_config
from keepalived_py.config.model import Config
from keepalived_py.config.reader import Reader
from keepalived_py.config.routing import reset_rule_priorities
from keepalived_py.config.tree import build_tree
from keepalived_py.config.validate import validate
from keepalived_py.exitcodes import ExitCode


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a configuration is read.

    Reading creates hundreds of thousands of long-lived objects and no reference cycles worth collecting;
    the collector would otherwise rescan them again and again (it doubles the time of a large config).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def default_config_id() -> str:
    """keepalived's default config id: the short host name."""
    return socket.gethostname().split(".", 1)[0]


@dataclass
class LoadResult:
    """The model (None when the input could not even be read into one) and every diagnostic found."""

    config: Config | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    #: Which block each model record came from, to locate any keyword (only with ``keep_origins``). Not
    #: pickled (the reload worker pickles its result): keyed by object id, it means nothing elsewhere.
    origins: Origins | None = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "origins": None}

    @property
    def exit_code(self) -> ExitCode:
        return exit_code_for(self.diagnostics) if self.config is not None else ExitCode.CONFIG_FATAL

    @property
    def runnable(self) -> bool:
        return self.config is not None and self.exit_code is not ExitCode.CONFIG_FATAL

    def raise_if_fatal(self) -> Config:
        if not self.runnable or self.config is None:
            raise ConfigError(self.diagnostics)
        return self.config


def load_config(
    path: str | Path,
    *,
    vars_files: Iterable[str | Path] = (),
    overrides: Iterable[str] = (),
    config_id: str | None = None,
    host_checks: bool = True,
    keep_origins: bool = False,
    namespace: str | None = None,
) -> LoadResult:
    """Read a keepalived.conf (or a Jinja2 template of one) into the model, collecting every diagnostic.

    ``host_checks``: also check the configuration against this host (interfaces exist, script security),
    as ``keepalived -t`` does; off for checks of the configuration alone. ``keep_origins``: keep where each
    record came from in :attr:`LoadResult.origins` (every block and token stays alive with the result).
    ``namespace``: the network namespace the host checks look at (interfaces): None, the configuration's
    ``net_namespace``; ``""``, the one we are in; else the one named (``kpd start --namespace``).
    """
    with _gc_paused():
        result = _load(
            Path(path),
            list(vars_files),
            list(overrides),
            config_id or default_config_id(),
            host_checks,
            namespace,
        )
    if not keep_origins:
        result.origins = None
    return result


def _load(
    path: Path,
    vars_files: list[str | Path],
    overrides: list[str],
    config_id: str,
    host_checks: bool,
    namespace: str | None,
) -> LoadResult:
    """The body of :func:`load_config`."""
    reset_rule_priorities()
    sink = DiagnosticSink()
    text: str | None = None
    line_numbers: tuple[int | tuple[str, int], ...] | None = None
    if path.name.endswith(".j2") or vars_files or overrides:
        from keepalived_py.config import template  # Jinja2 is imported only for templates

        variables = template.load_variables(vars_files, overrides, sink)
        if sink.has_fatal:
            return LoadResult(None, sink.diagnostics)
        rendered = template.render(path, variables, sink, mark_lines=True)
        if rendered is None:
            return LoadResult(None, sink.diagnostics)
        text, line_numbers = rendered.text, rendered.line_numbers
    lines = read_config(path, config_id=config_id, sink=sink, text=text, line_numbers=line_numbers)
    nodes = build_tree(lines, sink)
    root_block = Reader(SCHEMA, sink).read(nodes, Location(str(path), 1, 1))
    origins = Origins()
    sources = tuple(dict.fromkeys(line.tokens[0].file for line in lines)) or (str(path),)
    config = build_config(root_block, sources, origins)
    config = validate(config, origins, sink)
    if host_checks:
        check_host(config, origins, sink, namespace=namespace)
    return LoadResult(config, sink.diagnostics, sink.unsupported_keywords, origins)
