"""Generates docs/keywords.md from the keyword schema: ``python -m keepalived_py.config.reference``."""

from __future__ import annotations

import sys
from typing import Any

from keepalived_py.config.keywords import SCHEMA
from keepalived_py.config.schema import ROOT, Keyword, Kind, Schema


def _default(kw: Keyword) -> str:
    value: Any = kw.default
    if value is None or kw.kind is not Kind.VALUE:
        return ""
    if isinstance(value, tuple):
        value = " ".join(str(v) for v in value if v is not False)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _syntax(kw: Keyword) -> str:
    if kw.kind is Kind.SECTION:
        head = f" {kw.header.describe}" if kw.header is not None else ""
        return f"`{kw.name}{head} {{ ... }}`"
    if kw.kind is Kind.LIST:
        head = f" {kw.header.describe}" if kw.header is not None else ""
        item = kw.value.describe if kw.value is not None else "item"
        return f"`{kw.name}{head} {{ {item} ... }}`"
    if kw.kind is Kind.WORDS:
        return f"`{kw.name} {{ {kw.value.describe if kw.value else 'word'} ... }}`"
    return f"`{kw.name} {kw.value.describe}`" if kw.value is not None else f"`{kw.name}`"


def render(schema: Schema = SCHEMA) -> str:
    out = [
        "# Configuration keyword reference",
        "",
        "Generated from the keyword schema (`src/keepalived_py/config/keywords/`) by `make docs`.",
        "kpd reads keepalived's configuration language; every keyword below is spelt as in keepalived.",
        "Keywords keepalived knows but kpd does not implement are accepted, reported by name by",
        "`kpd check-config` (exit code 5) and ignored.",
        "",
    ]
    total = sum(1 for kw in schema.all_keywords() if kw.supported)
    out.append(f"{total} keywords are implemented.")
    out.append("")
    for section in schema:
        supported = [kw for kw in section.keywords if kw.supported]
        unsupported = [kw for kw in section.keywords if not kw.supported]
        if not supported and not unsupported:
            continue
        title = "Top level" if section.name == ROOT else f"`{section.title}`"
        out += [f"## {title}", "", section.doc, ""]
        if supported:
            out += ["| keyword | syntax | default | description |", "| --- | --- | --- | --- |"]
            for kw in supported:
                names = kw.name + "".join(f", `{a}`" for a in (*kw.aliases, *kw.deprecated))
                doc = kw.doc + (" Repeatable." if kw.repeatable else "")
                out.append(
                    f"| `{names.split(',')[0]}`{names[len(kw.name) :]} | {_syntax(kw)} | {_default(kw)} "
                    f"| {doc} |"
                )
            out.append("")
        if unsupported:
            out.append(
                "Recognised, not implemented: " + ", ".join(f"`{kw.name}`" for kw in unsupported) + "."
            )
            out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
