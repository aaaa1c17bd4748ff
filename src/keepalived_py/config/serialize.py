"""The normalized model as JSON-ready data (``kpd check-config --json``).

Locations are left out so the output depends only on the configuration's meaning, not on where it was read.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from typing import Any

from keepalived_py.config.diagnostics import Location


def to_data(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if isinstance(item, Location) or f.name == "sources":
                continue
            out[f.name] = to_data(item)
        if hasattr(value, "kind") and "kind" not in out:
            out["kind"] = value.kind
        return out
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(
        value,
        ipaddress.IPv4Address
        | ipaddress.IPv6Address
        | ipaddress.IPv4Interface
        | ipaddress.IPv6Interface
        | ipaddress.IPv4Network
        | ipaddress.IPv6Network,
    ):
        return str(value)
    return value
