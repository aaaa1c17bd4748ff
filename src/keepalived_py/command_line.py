"""keepalived's splitting of a script string into words (``alloc_strvec_quoted_escaped()``).

A small shared base: pure, it imports nothing from the rest of ``keepalived_py``.  The configuration uses it
to turn ``script "/bin/x 'a b'"`` into an argument vector.
"""

from __future__ import annotations

import os

__all__ = ["split_command_line"]

# --- keepalived's script-string splitting -----------------------------------------------------------------

_WHITE_SPACE = frozenset(b" \t\f\n\r\v")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_OCTAL_DIGITS = frozenset(b"01234567")
_SIMPLE_ESCAPES = {
    ord("a"): 0x07,
    ord("b"): 0x08,
    ord("E"): 0x1B,
    ord("f"): 0x0C,
    ord("n"): 0x0A,
    ord("r"): 0x0D,
    ord("t"): 0x09,
    ord("v"): 0x0B,
}
_BACKSLASH, _SQUOTE, _DQUOTE = ord("\\"), ord("'"), ord('"')


def split_command_line(text: str) -> list[str]:
    """Split a script string into words by keepalived's rules (``alloc_strvec_quoted_escaped()``).

    * Words are separated by runs of blanks (space, ``\\t``, ``\\f``, ``\\n``, ``\\r``, ``\\v``).
    * ``'...'`` and ``"..."`` quote blanks and the other quote character; quotes can join parts of one
      word (``a'b c'd`` is ``ab cd``) and ``''`` is an empty word.
    * A backslash escapes the next character *everywhere*, inside either kind of quote too:
      ``\\a \\b \\E \\f \\n \\r \\t \\v`` are control characters, ``\\xHH...`` takes every hex digit that
      follows (keeping the low 8 bits), ``\\NNN`` up to three octal digits, ``\\cX`` the control
      character ``X & 0x1f``; any other character stands for itself (``\\\\``, ``\\'``, ``\\"``, ``\\ ``).
      ``\\x`` not followed by a hex digit is ``x``.
    * Escapes produce bytes; words are decoded like file names (UTF-8, undecodable bytes as surrogate
      escapes, so they exec as the exact bytes).  A word is cut at a NUL byte, as C strings are.

    Raises ``ValueError`` for an unterminated quote, a backslash at the very end, or a string with no
    words at all (keepalived rejects all three).

    keepalived applies these rules twice to ``notify_master "/bin/x 'a b'"``: once to the whole keyword
    line (giving the script string ``/bin/x 'a b'``) and once to the script string; this function is
    one pass.
    """
    data = os.fsencode(text)
    n = len(data)
    words: list[str] = []
    i = 0
    while i < n:
        while i < n and data[i] in _WHITE_SPACE:
            i += 1
        if i >= n:
            break
        word = bytearray()
        quote = 0
        while i < n:
            c = data[i]
            if c == _BACKSLASH:
                i += 1
                if i >= n:
                    raise ValueError(f"missing character after '\\' at the end of {text!r}")
                value, i = _escape(data, i)
                word.append(value)
            elif quote:
                if c == quote:
                    quote = 0
                else:
                    word.append(c)
                i += 1
            elif c in (_SQUOTE, _DQUOTE):
                quote = c
                i += 1
            elif c in _WHITE_SPACE:
                break
            else:
                word.append(c)
                i += 1
        if quote:
            raise ValueError(f"missing terminating {chr(quote)} in {text!r}")
        words.append(os.fsdecode(bytes(word).split(b"\0", 1)[0]))
    if not words:
        raise ValueError("empty command line")
    return words


def _escape(data: bytes, i: int) -> tuple[int, int]:
    """Decode the escape whose character (after the backslash) is at ``data[i]``: (byte, next index)."""
    n = len(data)
    c = data[i]
    if c == ord("x") and i + 1 < n and data[i + 1] in _HEX_DIGITS:
        value = 0
        i += 1
        while i < n and data[i] in _HEX_DIGITS:
            value = ((value << 4) | int(chr(data[i]), 16)) & 0xFF
            i += 1
        return value, i
    if c == ord("c") and i + 1 < n:
        return data[i + 1] & 0x1F, i + 2
    if c in _OCTAL_DIGITS:
        value = c - ord("0")
        i += 1
        for _ in range(2):
            if i < n and data[i] in _OCTAL_DIGITS:
                value = ((value << 3) + data[i] - ord("0")) & 0xFF
                i += 1
        return value, i
    return _SIMPLE_ESCAPES.get(c, c), i + 1
