"""A pure, bounded, incremental HTTP/1.x response parser for HTTP_GET / SSL_GET and genhash.

Bytes go in with :meth:`ResponseParser.feed` (in any split) and :meth:`ResponseParser.eof`; the status,
headers and the MD5 digest of the body come out. Nothing a server sends can make it raise or grow without
bound: the status line is parsed strictly (``HTTP/d.d NNN reason``, keepalived's CVE-2018-19115 was a
crash on a malformed one), the header block and the number of headers are capped, chunk-size lines are
capped, and the body is hashed as it streams, never buffered. The digest is taken, as keepalived's checker
and genhash take it, over every byte after the header block: a chunked body is hashed with its chunk
framing (so digests made with keepalived's genhash keep matching); chunked framing is still parsed, to
know where the response ends and to reject a malformed one.
"""

from __future__ import annotations

import hashlib
import re

MAX_STATUS_LINE = 8 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 256
MAX_CHUNK_LINE = 1024

_STATUS = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?\Z")
_CHUNK = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?\Z")


class ResponseParser:
    """One response's parse. After :attr:`done` or :attr:`error` further input is ignored."""

    def __init__(self, *, want_digest: bool = False, keep_body: int = 0) -> None:
        self.status: int | None = None
        self.version: tuple[int, int] | None = None
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.error: str | None = None
        self.done = False
        self.body_bytes = 0
        self._md5 = hashlib.md5(usedforsecurity=False) if want_digest else None
        #: the first ``keep_body`` bytes after the header block (what the digest covers), for a regex
        self.body = bytearray()
        self._keep = keep_body
        self._buf = bytearray()
        # status, headers, body-length, body-eof, chunk-size, chunk, chunk-crlf, trailer
        self._state = "status"
        self._header_bytes = 0
        self._remaining = 0
        self._raw = b""  # the last line as received, terminator included

    @property
    def digest(self) -> str | None:
        return self._md5.hexdigest() if self._md5 is not None and self.done else None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    # --- input --------------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.done or self.error is not None or not data:
            return
        self._buf += data
        try:
            self._run()
        except _Fail as fail:
            self._fail(str(fail))

    def eof(self) -> None:
        """The server closed the connection."""
        if self.done or self.error is not None:
            return
        if self._state == "body-eof":
            self._finish()
        elif self._state == "status" and not self._buf:
            self._fail("connection closed without a response")
        elif self._state == "status":
            self._fail(f"malformed status line: {_show(bytes(self._buf))}")
        else:
            self._fail("connection closed before the response was complete")

    # --- the machine --------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self.done and self.error is None:
            state = self._state
            if state == "status":
                line = self._line(MAX_STATUS_LINE, "status line too long")
                if line is None:
                    return
                self._status_line(line)
            elif state in ("headers", "trailer"):
                line = self._line(MAX_HEADER_BYTES - self._header_bytes, "headers too large")
                if line is None:
                    return
                self._header_bytes += len(line) + 2
                if state == "trailer":
                    self._hash(self._raw)
                if line == b"":
                    if state == "trailer":
                        self._finish()
                    else:
                        self._start_body()
                elif state == "headers":
                    self._header_line(line)
            elif state in ("body-length", "chunk"):
                if not self._buf:
                    return
                take = min(len(self._buf), self._remaining)
                self._body(self._buf[:take])
                del self._buf[:take]
                self._remaining -= take
                if self._remaining == 0:
                    if state == "body-length":
                        self._finish()
                    else:
                        self._state = "chunk-crlf"
            elif state == "body-eof":
                if self._buf:
                    self._body(self._buf)
                    self._buf.clear()
                return
            elif state == "chunk-crlf":
                line = self._line(2, "chunk not followed by CRLF")
                if line is None:
                    return
                self._hash(self._raw)
                if line != b"":
                    raise _Fail("chunk not followed by CRLF")
                self._state = "chunk-size"
            elif state == "chunk-size":
                line = self._line(MAX_CHUNK_LINE, "chunk size line too long")
                if line is None:
                    return
                self._hash(self._raw)
                m = _CHUNK.match(line.strip(b" \t"))
                if m is None:
                    raise _Fail(f"malformed chunk size: {_show(line)}")
                size = int(m.group(1), 16)
                if size == 0:
                    self._state = "trailer"
                else:
                    self._remaining = size
                    self._state = "chunk"

    def _line(self, limit: int, too_long: str) -> bytes | None:
        """The next line without its terminator (CRLF, or a bare LF), or None when it is not complete."""
        end = self._buf.find(b"\n", 0, limit + 2)
        if end < 0:
            if len(self._buf) > limit + 1:
                raise _Fail(too_long)
            return None
        line = bytes(self._buf[:end])
        self._raw = bytes(self._buf[: end + 1])
        del self._buf[: end + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > limit:
            raise _Fail(too_long)
        return line

    def _status_line(self, line: bytes) -> None:
        m = _STATUS.match(line)
        if m is None:
            raise _Fail(f"malformed status line: {_show(line)}")
        self.version = (int(m.group(1)), int(m.group(2)))
        self.status = int(m.group(3))
        self.reason = (m.group(4) or b"").decode("latin-1")
        self._state = "headers"

    def _header_line(self, line: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS:
            raise _Fail("too many headers")
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b"\x00" in line:
            raise _Fail(f"malformed header line: {_show(line)}")
        self.headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))

    def _start_body(self) -> None:
        encoding = (self.header("Transfer-Encoding") or "").lower()
        length = self.header("Content-Length")
        if self.status is not None and (100 <= self.status < 200 or self.status in (204, 304)):
            self._finish()
        elif "chunked" in encoding:
            self._state = "chunk-size"
        elif length is not None:
            if not length.isdigit() or len(length) > 18:
                raise _Fail(f"malformed Content-Length: {length[:40]!r}")
            self._remaining = int(length)
            self._state = "body-length"
            if self._remaining == 0:
                self._finish()
        else:
            self._state = "body-eof"

    def _body(self, data: bytes | bytearray) -> None:
        self.body_bytes += len(data)
        self._hash(data)

    def _hash(self, data: bytes | bytearray) -> None:
        if self._md5 is not None:
            self._md5.update(data)
        room = self._keep - len(self.body)
        if room > 0:
            self.body += data[:room]

    def _finish(self) -> None:
        self.done = True
        self._buf.clear()

    def _fail(self, reason: str) -> None:
        self.error = reason
        self._buf.clear()


class _Fail(Exception):
    pass


def _show(data: bytes, limit: int = 60) -> str:
    text = repr(bytes(data[:limit]))
    return text + ("..." if len(data) > limit else "")
