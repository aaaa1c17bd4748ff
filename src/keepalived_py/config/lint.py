"""``kpd lint``: the configurations of every node of a cluster, each checked alone and all together.

The nodes are named on the command line as ``CONFIG[@ID]`` (a keepalived.conf or a template of one, with the
config id its ``@ID`` lines are read for) or as one template rendered once per ``VARS[@ID]`` file. Each is
loaded as ``kpd check-config`` loads it; :mod:`keepalived_py.config.crosscheck` then compares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from keepalived_py.config.crosscheck import Node, cross_check
from keepalived_py.config.diagnostics import Diagnostic, exit_code_for, worst_exit_code
from keepalived_py.config.load import LoadResult, load_config
from keepalived_py.exitcodes import ExitCode


@dataclass(frozen=True)
class NodeSource:
    """Where one node's configuration comes from."""

    name: str
    config: str
    vars_files: tuple[str, ...] = ()
    #: None: as check-config, the short host name of the machine linting
    config_id: str | None = None

    @property
    def label(self) -> str:
        """The node as the summary line shows it: its name, its file, its variables."""
        rendered = f" with {', '.join(self.vars_files)}" if self.vars_files else ""
        shown = f"{self.config}{rendered}"
        return shown if shown == self.name else f"{self.name} ({shown})"


def split_config_id(arg: str) -> tuple[str, str | None]:
    """``FILE@ID`` -> (FILE, ID); the id is what follows the last ``@`` when that holds no ``/``."""
    path, sep, config_id = arg.rpartition("@")
    if not sep or not path or not config_id or "/" in config_id:
        return arg, None
    return path, config_id


def node_sources(
    configs: Sequence[str], template: str | None = None, vars_files: Sequence[str] = ()
) -> list[NodeSource]:
    """The nodes named on the command line: each config, then the template once per vars file.

    A node is named by its config id, else by its vars file's stem, else by its config path as given; a
    name used twice gets ``#2``, ``#3`` ... appended.
    """
    sources = []
    for arg in configs:
        path, config_id = split_config_id(arg)
        sources.append(NodeSource(config_id or path, path, (), config_id))
    if template is not None:
        for arg in vars_files:
            path, config_id = split_config_id(arg)
            sources.append(NodeSource(config_id or Path(path).stem, template, (path,), config_id))
    seen: dict[str, int] = {}
    named = []
    for source in sources:
        count = seen[source.name] = seen.get(source.name, 0) + 1
        named.append(source if count == 1 else NodeSource(f"{source.name}#{count}", *_rest(source)))
    return named


def _rest(source: NodeSource) -> tuple[str, tuple[str, ...], str | None]:
    return source.config, source.vars_files, source.config_id


@dataclass
class LintedNode:
    """One node: its own load result (as check-config gives it) and what the other nodes say against it."""

    source: NodeSource
    result: LoadResult
    cross_node: list[Diagnostic] = field(default_factory=list)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [*self.result.diagnostics, *self.cross_node]

    @property
    def exit_code(self) -> ExitCode:
        own = self.result.exit_code
        if own is ExitCode.CONFIG_FATAL:
            return own
        return exit_code_for([*self.result.diagnostics, *self.cross_node])


def lint(sources: Sequence[NodeSource], *, host_checks: bool = False) -> list[LintedNode]:
    """Load every node, then check them together (the nodes whose configuration could not be read at all are
    left out of the comparison; their own diagnostics say why)."""
    linted = [
        LintedNode(
            source,
            load_config(
                source.config,
                vars_files=source.vars_files,
                config_id=source.config_id,
                host_checks=host_checks,
                keep_origins=True,
            ),
        )
        for source in sources
    ]
    nodes = [
        Node(entry.source.name, entry.result.config, entry.result.origins)
        for entry in linted
        if entry.result.config is not None and entry.result.origins is not None
    ]
    found = cross_check(nodes)
    for entry in linted:
        entry.cross_node = found.get(entry.source.name, [])
    return linted


def exit_code_of(nodes: Sequence[LintedNode]) -> ExitCode:
    """The exit code of the whole lint: the worst of the nodes', with check-config's precedence."""
    return worst_exit_code(node.exit_code for node in nodes)
