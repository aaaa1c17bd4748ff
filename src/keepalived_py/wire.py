"""The heartbeat and control wire format between kpd's processes and its control socket.

One message is one datagram on a Unix ``SOCK_SEQPACKET`` socket: a UTF-8 JSON object of at most
:data:`MAX_FRAME` bytes with a ``type`` field. Decoding is strict and bounded: whatever the bytes (oversized,
not UTF-8, not JSON, nested too deeply, wrong fields), :func:`decode` raises only :class:`WireError` with a
reason, so a bad frame is dropped and logged and never takes a process down (integer literals are limited to
:data:`MAX_INT_DIGITS` characters; any ValueError or RecursionError from the JSON parser becomes a WireError).

Messages: :class:`Heartbeat` and :class:`Events` (children to parent, on the heartbeat socket),
:class:`Request` and :class:`Response` (the control socket; ``kpd events --follow`` gets a Response per
batch of new events).
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from typing import Any

#: Largest frame accepted or sent (a state summary of many instances fits comfortably).
MAX_FRAME = 256 * 1024
#: Deepest JSON nesting accepted.
MAX_DEPTH = 16
#: Longest integer literal accepted, in digits (a 64-bit counter has 20 digits). Checked by the decoder
#: itself, so it holds whatever the interpreter's int-max-str-digits setting (converting a huge literal is
#: quadratic, and beyond 4,300 digits Python raises a bare ValueError).
MAX_INT_DIGITS = 1000

CHILDREN = ("vrrp", "checker")
COMMANDS = ("status", "reload", "stop", "dump", "stats", "events")
#: longest event kind accepted
MAX_KIND_CHARS = 64


class WireReason(enum.StrEnum):
    TOO_LARGE = "too_large"
    EMPTY = "empty"
    ENCODING = "encoding"
    JSON = "json"
    TOO_DEEP = "too_deep"
    NOT_OBJECT = "not_object"
    TYPE = "type"
    FIELD = "field"


class WireError(ValueError):
    def __init__(self, reason: WireReason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Heartbeat:
    """A child is alive and its loop turning; ``state`` summarises it (instances, servers)."""

    child: str
    pid: int
    seq: int
    state: dict[str, Any]


@dataclass(frozen=True)
class Events:
    """A child's structured events (:mod:`keepalived_py.events`), oldest first, sent after a heartbeat on
    the same connection; ``dropped``: events the child lost (its buffer was full) since its last batch.
    Each event is a flat object: a string ``kind``, a number ``time`` and JSON scalar fields."""

    child: str
    pid: int
    events: list[dict[str, Any]]
    dropped: int = 0


@dataclass(frozen=True)
class Request:
    """A control-socket request (``kpd status``, ``kpd reload``, ...)."""

    cmd: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Response:
    ok: bool
    body: dict[str, Any]


Message = Heartbeat | Events | Request | Response


def encode(msg: Message) -> bytes:
    """One frame; ValueError if it would exceed :data:`MAX_FRAME`."""
    if isinstance(msg, Heartbeat):
        doc: dict[str, Any] = {
            "type": "heartbeat",
            "child": msg.child,
            "pid": msg.pid,
            "seq": msg.seq,
            "state": msg.state,
        }
    elif isinstance(msg, Events):
        doc = {"type": "events", "child": msg.child, "pid": msg.pid, "events": msg.events,
               "dropped": msg.dropped}
    elif isinstance(msg, Request):
        doc = {"type": "request", "cmd": msg.cmd, "args": msg.args}
    else:
        doc = {"type": "response", "ok": msg.ok, "body": msg.body}
    data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    if len(data) > MAX_FRAME:
        raise ValueError(f"message of {len(data)} bytes exceeds the {MAX_FRAME}-byte frame limit")
    return data


def _depth(data: str) -> int:
    """Deepest bracket nesting outside strings (checked before parsing, so parsing stays bounded)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in data:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _field(doc: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise WireError(WireReason.FIELD, f"field '{name}' missing or not {getattr(kind, '__name__', kind)}")
    return value


def _parse_int(literal: str) -> int:
    digits = len(literal) - literal.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise WireError(WireReason.JSON, f"integer literal of {digits} digits, limit {MAX_INT_DIGITS}")
    return int(literal)


def _child_pid(doc: dict[str, Any]) -> tuple[str, int]:
    child = _field(doc, "child", str)
    if child not in CHILDREN:
        raise WireError(WireReason.FIELD, f"unknown child '{child[:40]}'")
    pid = _field(doc, "pid", int)
    if pid <= 0:
        raise WireError(WireReason.FIELD, "pid must be positive")
    return child, pid


def _events(doc: dict[str, Any]) -> Events:
    child, pid = _child_pid(doc)
    dropped = _field(doc, "dropped", int)
    if dropped < 0:
        raise WireError(WireReason.FIELD, "dropped must not be negative")
    events = _field(doc, "events", list)
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise WireError(WireReason.FIELD, f"event {i} is not an object")
        kind = event.get("kind")
        if not isinstance(kind, str) or not kind or len(kind) > MAX_KIND_CHARS:
            raise WireError(WireReason.FIELD, f"event {i}: 'kind' missing, not a string or too long")
        when = event.get("time")
        if not isinstance(when, int | float) or isinstance(when, bool):
            raise WireError(WireReason.FIELD, f"event {i}: 'time' missing or not a number")
        for name, value in event.items():
            if (value is not None and not isinstance(value, str | int | float | bool)) \
                    or (isinstance(value, float) and not math.isfinite(value)):
                raise WireError(WireReason.FIELD, f"event {i}: field '{name[:40]}' is not a JSON scalar")
    return Events(child, pid, events, dropped)


def decode(data: bytes) -> Message:
    """The message in one frame; :class:`WireError` (and nothing else) for any bad input."""
    if not data:
        raise WireError(WireReason.EMPTY, "empty frame")
    if len(data) > MAX_FRAME:
        raise WireError(WireReason.TOO_LARGE, f"{len(data)} bytes, limit {MAX_FRAME}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise WireError(WireReason.ENCODING, f"not UTF-8 at byte {err.start}") from None
    if _depth(text) > MAX_DEPTH:
        raise WireError(WireReason.TOO_DEEP, f"nested deeper than {MAX_DEPTH}")
    try:
        doc = json.loads(text, parse_int=_parse_int)
    except WireError:
        raise
    except (ValueError, RecursionError) as err:  # JSONDecodeError, int-max-str-digits, ...
        raise WireError(WireReason.JSON, str(err)[:200]) from None
    if not isinstance(doc, dict):
        raise WireError(WireReason.NOT_OBJECT, f"a JSON {type(doc).__name__}, not an object")
    kind = doc.get("type")
    if kind == "heartbeat":
        child, pid = _child_pid(doc)
        seq = _field(doc, "seq", int)
        if seq < 0:
            raise WireError(WireReason.FIELD, "seq must not be negative")
        return Heartbeat(child, pid, seq, _field(doc, "state", dict))
    if kind == "events":
        return _events(doc)
    if kind == "request":
        cmd = _field(doc, "cmd", str)
        if cmd not in COMMANDS:
            raise WireError(WireReason.FIELD, f"unknown command '{cmd[:40]}'")
        args = doc.get("args", {})
        if not isinstance(args, dict):
            raise WireError(WireReason.FIELD, "field 'args' is not an object")
        return Request(cmd, args)
    if kind == "response":
        return Response(_field(doc, "ok", bool), _field(doc, "body", dict))
    raise WireError(WireReason.TYPE, f"unknown message type {str(kind)[:40]!r}")
