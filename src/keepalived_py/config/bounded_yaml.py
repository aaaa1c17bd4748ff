"""Safe YAML loading with alias expansion bounded: no "billion laughs".

An alias costs nothing to parse, but the value it names is used again wherever it appears: nine levels of
ten aliases each make a document of a few hundred bytes stand for a billion values, which a template
iterating or printing them would try to produce. The document's node graph is composed first (aliases
still shared), its size with every alias expanded is counted (each node once), and a document that would
expand to more than a limit of nodes, or whose aliases make it recursive, is refused at the node where the
limit is crossed.
"""

from __future__ import annotations

from typing import Any

import yaml

#: Nodes a YAML document may stand for with every alias expanded.
MAX_EXPANDED_NODES = 1_000_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YAMLExpansionError(yaml.MarkedYAMLError):
    """The document expands past the limit, or is recursive; ``problem_mark`` is where."""


def safe_load_bounded(text: str, max_nodes: int = MAX_EXPANDED_NODES) -> Any:
    """``yaml.safe_load`` of *text*, refusing documents that expand to more than *max_nodes* nodes."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, max_nodes)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: yaml.Node, max_nodes: int) -> None:
    """Count the nodes *root* stands for, each distinct node visited once (iteratively: no recursion)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > max_nodes:
                raise YAMLExpansionError(
                    problem=f"aliases expand this value to more than {max_nodes} nodes",
                    problem_mark=node.start_mark,
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YAMLExpansionError(
                problem="recursive alias (a value containing itself)", problem_mark=node.start_mark
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
