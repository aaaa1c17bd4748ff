"""Generates docs/keywords.md from the keyword schema: ``python -m keepalived_py.config.reference``."""

from __future__ import annotations

import sys
from typing import Any

from keepalived_py.config.keywords import SCHEMA
from keepalived_py.config.schema import ROOT, Keyword, Kind, Schema


def _default(kw: Keyword) -> str:
    if kw.shown_default:
        return f"`{kw.shown_default}`"
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


def differences(schema: Schema = SCHEMA) -> list[str]:
    """The generated section "What kpd does differently from keepalived": every keyword kpd acts on only in
    part, with what it does not do, then those it recognises but does not implement."""
    partial = [kw for kw in schema.all_keywords() if kw.support == "partial"]
    absent = [kw for kw in schema.all_keywords() if kw.support == "not implemented"]
    out = [
        "## What kpd does differently from keepalived",
        "",
        "Generated from the same declarations as the tables below. A configuration that uses any keyword",
        "listed here makes `kpd check-config` exit 5, with the line of each use, and `kpd start` logs the",
        "same warnings once; everything else behaves as in keepalived.",
        "",
        "Keywords read and checked, acted on only in part:",
        "",
        "| section | keyword | what kpd does not do |",
        "| --- | --- | --- |",
    ]
    for kw in partial:
        out.append(f"| `{_title(schema, kw.section)}` | `{kw.name}` | {kw.partial} |")
    out += ["", "Keywords recognised but not implemented (ignored, each use reported):", ""]
    by_section: dict[str, list[str]] = {}
    for kw in absent:
        by_section.setdefault(kw.section, []).append(f"`{kw.name}`")
    for section, names in by_section.items():
        out.append(f"- `{_title(schema, section)}`: {', '.join(names)}")
    out += ["", "Behaviour that differs, on purpose, where keepalived's is a slip or unbounded:", ""]
    for sec in schema:
        for text in sec.differs:
            out.append(f"- `{_title(schema, sec.name)}`: {text}")
    out.append("")
    return out


def _title(schema: Schema, section: str) -> str:
    return "top level" if section == ROOT else schema[section].title


def render(schema: Schema = SCHEMA) -> str:
    out = [
        "# Configuration keyword reference",
        "",
        "Generated from the keyword schema (`src/keepalived_py/config/keywords/`) by `make docs`.",
        "kpd reads keepalived's configuration language; every keyword below is spelt as in keepalived.",
        "Each keyword is implemented (kpd does what keepalived does), partial (read and checked, but kpd",
        "does not do all keepalived does with it: the table says what is missing) or not implemented",
        "(recognised and ignored). `kpd check-config` reports every use of a partial or not implemented",
        "keyword at its line (exit code 5) and `kpd start` logs the same once.",
        "",
    ]
    implemented = sum(1 for kw in schema.all_keywords() if kw.support == "implemented")
    partial = sum(1 for kw in schema.all_keywords() if kw.support == "partial")
    absent = sum(1 for kw in schema.all_keywords() if kw.support == "not implemented")
    out += [f"{implemented} keywords are implemented, {partial} partly, {absent} not.", ""]
    out += differences(schema)
    for section in schema:
        supported = [kw for kw in section.keywords if kw.supported]
        unsupported = [kw for kw in section.keywords if not kw.supported]
        if not supported and not unsupported:
            continue
        title = "Top level" if section.name == ROOT else f"`{section.title}`"
        out += [f"## {title}", "", section.doc, ""]
        if supported:
            out += [
                "| keyword | syntax | default | support | description |",
                "| --- | --- | --- | --- | --- |",
            ]
            for kw in supported:
                names = kw.name + "".join(f", `{a}`" for a in (*kw.aliases, *kw.deprecated))
                doc = kw.doc + (" Repeatable." if kw.repeatable else "")
                support = f"partial: {kw.partial}" if kw.partial else "implemented"
                out.append(
                    f"| `{names.split(',')[0]}`{names[len(kw.name) :]} | {_syntax(kw)} | {_default(kw)} "
                    f"| {support} | {doc} |"
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
