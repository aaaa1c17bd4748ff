"""Value types for configuration keywords: each turns a keyword's argument tokens into a Python value.

A value type is a callable ``(args) -> value`` that raises :class:`BadValue` naming the offending token. The
types here are the vocabulary the keyword schema is written in; each has a ``describe`` text used by the
generated keyword reference.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from keepalived_py.config.lexer import Token

T = TypeVar("T")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class BadValue(ValueError):
    """A keyword's arguments do not fit its type; ``token`` is where to point (None: the keyword itself)."""

    def __init__(self, message: str, token: Token | None = None):
        super().__init__(message)
        self.message = message
        self.token = token


@dataclass(slots=True)
class Args:
    """The arguments of one keyword occurrence, with the keyword token for locating 'missing value' errors."""

    keyword: Token
    tokens: tuple[Token, ...]
    #: Remarks a value type makes without rejecting the value, located at a token: (message, token, error)
    #: -- an error (exit 5) where keepalived reports one and still takes the value, else a note.
    notes: list[tuple[str, Token, bool]] = field(default_factory=list)

    def note(self, message: str, token: Token) -> None:
        self.notes.append((message, token, False))

    def error(self, message: str, token: Token) -> None:
        self.notes.append((message, token, True))

    def __len__(self) -> int:
        return len(self.tokens)

    def texts(self) -> list[str]:
        return [t.text for t in self.tokens]

    def one(self, what: str) -> Token:
        if not self.tokens:
            raise BadValue(f"'{self.keyword.text}' needs {what}", self.keyword)
        if len(self.tokens) > 1:
            raise BadValue(
                f"'{self.keyword.text}' takes one value ({what}); unexpected extra argument", self.tokens[1]
            )
        return self.tokens[0]

    def first(self, what: str) -> Token:
        if not self.tokens:
            raise BadValue(f"'{self.keyword.text}' needs {what}", self.keyword)
        return self.tokens[0]


class ValueType(Generic[T]):
    """Base of value types: ``parse`` an :class:`Args`, ``describe`` for the docs."""

    describe: str = "value"

    def __call__(self, args: Args) -> T:
        raise NotImplementedError


# --- scalars ------------------------------------------------------------------------------------------------


class Flag(ValueType[bool]):
    """A keyword that means 'on' by its presence; keepalived also accepts an explicit true/false word."""

    describe = "flag"
    _WORDS = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}

    def __call__(self, args: Args) -> bool:
        if not args.tokens:
            return True
        tok = args.one("true or false")
        try:
            return self._WORDS[tok.text.lower()]
        except KeyError:
            raise BadValue(f"'{tok.text}' is not a boolean (true/false, on/off, yes/no)", tok) from None


_INT = re.compile(r"[+-]?\d{1,20}")
_SECONDS = re.compile(r"\d{0,12}(\.\d{0,6})?")
_WHOLE_SECONDS = re.compile(r"\d{1,12}")
_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"  # 0..255 without leading zeros (as the stdlib accepts)
_IPV4 = re.compile(r"\.".join([_OCTET] * 4))


def _int_text(tok: Token) -> int:
    text = tok.text
    if not _INT.fullmatch(text):
        raise BadValue(f"'{_short(text)}' is not an integer", tok)
    return int(text)


@dataclass(frozen=True)
class Int(ValueType[int]):
    min: int = 0
    max: int = 2**32 - 1

    @property
    def describe(self) -> str:  # type: ignore[override]
        return f"integer {self.min}..{self.max}"

    def __call__(self, args: Args) -> int:
        tok = args.one("an integer")
        return self.check(tok)

    def check(self, tok: Token) -> int:
        value = _int_text(tok)
        if not self.min <= value <= self.max:
            raise BadValue(f"{value} is out of range {self.min}..{self.max}", tok)
        return value


@dataclass(frozen=True)
class Seconds(ValueType[float]):
    """A duration in seconds, decimals allowed (keepalived's read_decimal_unsigned_strvec)."""

    min: float = 0.0
    max: float = 2**31 / 1e6
    integer_only: bool = False

    @property
    def describe(self) -> str:  # type: ignore[override]
        kind = "whole seconds" if self.integer_only else "seconds"
        return f"{kind} {_num(self.min)}..{_num(self.max)}"

    def __call__(self, args: Args) -> float:
        return self.check(args.one("a number of seconds"))

    def check(self, tok: Token) -> float:
        text = tok.text
        pattern = _WHOLE_SECONDS if self.integer_only else _SECONDS
        if not text or text == "." or not pattern.fullmatch(text):
            raise BadValue(
                f"'{_short(text)}' is not a {'whole ' if self.integer_only else ''}number of seconds", tok
            )
        value = float(text)
        if not math.isfinite(value) or not self.min <= value <= self.max:
            raise BadValue(f"{text} is out of range {_num(self.min)}..{_num(self.max)} seconds", tok)
        return value


def _num(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Word(ValueType[str]):
    """One word (no spaces), up to ``max_len`` characters."""

    max_len: int = 4096
    what: str = "a word"

    @property
    def describe(self) -> str:  # type: ignore[override]
        return self.what

    def __call__(self, args: Args) -> str:
        tok = args.one(self.what)
        if len(tok.text) > self.max_len:
            raise BadValue(f"value is longer than {self.max_len} characters", tok)
        return tok.text


@dataclass(frozen=True)
class Text(ValueType[str]):
    """The rest of the line joined by single spaces (keepalived's strvec join)."""

    what: str = "text"
    max_len: int = 4096

    @property
    def describe(self) -> str:  # type: ignore[override]
        return self.what

    def __call__(self, args: Args) -> str:
        args.first(self.what)
        text = " ".join(args.texts())
        if len(text) > self.max_len:
            raise BadValue(f"value is longer than {self.max_len} characters", args.tokens[0])
        return text


@dataclass(frozen=True)
class Choice(ValueType[str]):
    """One of a fixed set of words, case-insensitive; ``aliases`` map other spellings to a choice."""

    choices: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()
    case_sensitive: bool = False

    @property
    def describe(self) -> str:  # type: ignore[override]
        return "|".join(self.choices)

    def __call__(self, args: Args) -> str:
        return self.check(args.one("|".join(self.choices)))

    def check(self, tok: Token) -> str:
        key = tok.text if self.case_sensitive else tok.text.lower()
        for choice in self.choices:
            if key == (choice if self.case_sensitive else choice.lower()):
                return choice
        for alias, choice in self.aliases:
            if key == alias.lower():
                return choice
        raise BadValue(f"'{_short(tok.text)}' is not one of {', '.join(self.choices)}", tok)


# --- addresses ----------------------------------------------------------------------------------------------


def parse_address(tok: Token, family: int | None = None) -> IPAddress:
    addr: IPAddress
    m = _IPV4.fullmatch(tok.text)
    if m is not None:
        # Fast path for dotted quads (the stdlib parser is slow); anything else takes the stdlib's.
        a, b, c, d = m.groups()
        addr = ipaddress.IPv4Address((int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d))
        if family is not None and family != 4:
            raise BadValue(f"'{tok.text}' is not an IPv{family} address", tok)
        return addr
    try:
        addr = ipaddress.ip_address(tok.text)
    except ValueError:
        raise BadValue(f"'{_short(tok.text)}' is not a valid IP address", tok) from None
    if family is not None and addr.version != family:
        raise BadValue(f"'{tok.text}' is not an IPv{family} address", tok)
    return addr


def parse_interface(tok: Token) -> IPInterface:
    """``ADDR[/PREFIX]`` as keepalived's virtual_ipaddress takes it (host bits allowed; default /32, /128)."""
    text = tok.text
    addr_text, _, prefix = text.partition("/")
    addr = parse_address(Token(addr_text, tok.loc, tok.quoted))
    if prefix:
        limit = 32 if addr.version == 4 else 128
        if not prefix.isdigit() or not 0 <= int(prefix) <= limit:
            col = tok.loc.col + len(addr_text) + 1
            raise BadValue(
                f"'/{_short(prefix)}' is not a valid prefix length (0..{limit})",
                Token(prefix, tok.loc.at_col(col)),
            )
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        raise BadValue(f"'{_short(text)}' is not a valid address/prefix", tok) from None


@dataclass(frozen=True)
class Address(ValueType[IPAddress]):
    family: int | None = None

    @property
    def describe(self) -> str:  # type: ignore[override]
        return f"IPv{self.family} address" if self.family else "IP address"

    def __call__(self, args: Args) -> IPAddress:
        return parse_address(args.one("an IP address"), self.family)


PORT = Int(0, 65535)


@dataclass(frozen=True)
class AddressPort(ValueType[tuple[IPAddress, int | None]]):
    """``ADDR [PORT]`` (e.g. smtp_server, sorry_server, connect_ip + port pairs)."""

    port_required: bool = False

    @property
    def describe(self) -> str:  # type: ignore[override]
        return "IP address and port" if self.port_required else "IP address [port]"

    def __call__(self, args: Args) -> tuple[IPAddress, int | None]:
        addr = parse_address(args.first("an IP address"))
        rest = args.tokens[1:]
        if not rest:
            if self.port_required:
                raise BadValue(f"'{args.keyword.text}' needs a port after the address", args.tokens[0])
            return addr, None
        if len(rest) > 1:
            raise BadValue("unexpected extra argument", rest[1])
        return addr, PORT.check(rest[0])


# --- combinators --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Custom(ValueType[Any]):
    """A one-off parser function with its own description."""

    func: Callable[[Args], Any]
    what: str

    @property
    def describe(self) -> str:  # type: ignore[override]
        return self.what

    def __call__(self, args: Args) -> Any:
        return self.func(args)


class Words(ValueType[tuple[str, ...]]):
    """All the words of the line (or of a list block), e.g. a script and its arguments."""

    describe = "words"

    def __call__(self, args: Args) -> tuple[str, ...]:
        args.first("a value")
        return tuple(args.texts())


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
