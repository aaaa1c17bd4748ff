"""HTTP_GET / SSL_GET ``regex``: whether a response body matches, as keepalived's ``check_regex`` decides.

keepalived runs the url's PCRE2 pattern over the bytes after the header block (chunk framing included, as
for the digest), the match starting at ``regex_min_offset`` or later and at ``regex_max_offset`` or
earlier; the check fails when there is no match (with ``regex_no_match``: when there is one). kpd uses
Python's ``re`` on those bytes, with the PCRE2 options that have an equivalent (caseless, dotall,
extended, multiline; firstline by the matcher). Differences: the pattern language is Python's (most PCRE
syntax is; a pattern that does not compile is refused at its line), and kpd looks at the first
``BODY_MAX`` bytes of the body (keepalived streams the whole body through the matcher).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from keepalived_py.config.items import regex_flags

#: the most of a body kept for the regex
BODY_MAX = 1 << 20


@dataclass(frozen=True)
class BodyRegex:
    pattern: str
    options: tuple[str, ...] = ()
    no_match: bool = False
    min_offset: int = 0
    max_offset: int | None = None

    @functools.cached_property
    def compiled(self) -> re.Pattern[bytes]:
        return re.compile(self.pattern.encode("utf-8", "surrogateescape"), regex_flags(self.options))

    def found(self, body: bytes) -> bool:
        """Whether the pattern matches ``body`` where keepalived would look."""
        m = self.compiled.search(body, self.min_offset)
        if m is None or (self.max_offset is not None and m.start() > self.max_offset):
            return False
        first_line_end = body.find(b"\n") if "firstline" in self.options else -1
        return first_line_end < 0 or m.start() <= first_line_end

    def passes(self, body: bytes) -> bool:
        return self.found(body) != self.no_match
