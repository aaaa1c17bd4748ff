"""HTTP_GET and SSL_GET: fetch one url of a real server and judge its status code and body digest.

The request is keepalived's: ``GET path HTTP/1.0`` (``HTTP/1.1`` with ``http_protocol 1.1``),
``User-Agent: KeepAliveClient``, ``Connection: close`` with 1.0C and 1.1, ``Host`` the virtualhost (else
the connect address and port). TLS is not
verified (keepalived does not verify either); SNI is sent when asked. The whole fetch - connect, TLS,
request, response - is bounded by the target's ``timeout`` (keepalived's connect_timeout), so a server
that never answers, drips its response or sends endless headers fails in time, and the parser bounds
memory (:mod:`keepalived_py.check.http_response`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import socket
import ssl
from dataclasses import dataclass, field

from keepalived_py.check.body_regex import BODY_MAX, BodyRegex
from keepalived_py.check.http_response import ResponseParser
from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.probe_deadline import network_timeout
from keepalived_py.check.probe_socket import NO_SOURCE, Source, destination, open_probe_socket
from keepalived_py.check.probe_stream import READ_SIZE, PlainStream, TlsStream

DEFAULT_STATUS = ((200, 299),)


@dataclass(frozen=True)
class HttpTarget:
    host: str
    port: int
    path: str
    virtualhost: str | None = None
    ssl: bool = False
    sni: str | None = None
    http_protocol: str = "1.0"
    source: Source = NO_SOURCE
    timeout: float = 5.0
    status_codes: tuple[tuple[int, int], ...] = ()
    digest: str | None = None
    regex: BodyRegex | None = None
    tls: TlsClient | None = None
    tls_compliant: bool = False


@dataclass
class HttpOutcome:
    status: int | None = None
    digest: str | None = None
    error: str | None = None
    status_line: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def request_bytes(t: HttpTarget) -> bytes:
    """keepalived's request, byte for byte: ``Connection: close`` only for http_protocol 1.0C and 1.1,
    ``Host`` the virtualhost, else the address and port."""
    protocol = t.http_protocol.upper()
    version = "1.1" if protocol == "1.1" else "1.0"
    close = "Connection: close\r\n" if protocol in ("1.0C", "1.1") else ""
    host = t.virtualhost or (f"[{t.host}]" if ":" in t.host else t.host) + f":{t.port}"
    return (f"GET {t.path} HTTP/{version}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n"
            ).encode("latin-1", "replace")


@dataclass(frozen=True)
class TlsClient:
    """The top-level SSL block: a client certificate and key (with its password), a CA file."""

    certificate: str | None = None
    key: str | None = None
    password: str | None = None
    ca: str | None = None


def _tls_context(client: TlsClient | None = None) -> ssl.SSLContext:
    """keepalived's SSL context: no server certificate verified; the client certificate when set."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if client is not None:
        if client.certificate:
            ctx.load_cert_chain(client.certificate, client.key or None, client.password)
        if client.ca:
            ctx.load_verify_locations(client.ca)
    return ctx


_TLS = _tls_context()


@functools.lru_cache(maxsize=8)
def tls_context(client: TlsClient | None) -> ssl.SSLContext | str:
    """The context for ``client`` (made once), or why it cannot be made (keepalived: "SSL error")."""
    if client is None:
        return _TLS
    try:
        return _tls_context(client)
    except (OSError, ssl.SSLError) as err:
        return f"SSL error: cannot load the SSL block's files: {err}"


async def fetch(t: HttpTarget, *, want_digest: bool = False, keep_body: int = 0) -> HttpOutcome:
    """GET the url; never raises: a failure is in ``error``."""
    out = HttpOutcome()
    sock: socket.socket | None = None
    stage = "connect"
    try:
        async with network_timeout(t.timeout):
            context = tls_context(t.tls) if t.ssl else None
            if isinstance(context, str):
                out.error = context
                return out
            sock = open_probe_socket(t.host, socket.SOCK_STREAM, t.source)
            await asyncio.get_running_loop().sock_connect(sock, destination(t.host, t.port, t.source))
            stream: PlainStream
            if context is not None:
                stage = "TLS"
                stream = TlsStream(sock, context, t.sni, compliant=t.tls_compliant)
                await stream.handshake()
            else:
                stream = PlainStream(sock)
            stage = "request"
            await stream.send(request_bytes(t))
            stage = "response"
            parser = ResponseParser(want_digest=want_digest, keep_body=keep_body)
            while not parser.done and parser.error is None:
                data = await stream.recv(READ_SIZE)
                if not data:
                    parser.eof()
                    break
                parser.feed(data)
            out.status = parser.status
            out.headers = parser.headers
            if parser.version is not None:
                major, minor = parser.version
                out.status_line = f"HTTP/{major}.{minor} {parser.status} {parser.reason}"
            if parser.error is not None:
                out.error = parser.error
            else:
                out.digest = parser.digest
                out.body = bytes(parser.body)
            await stream.finish()
    except TimeoutError:
        out.error = f"timeout after {t.timeout:g} s ({stage})"
    except ssl.SSLError as err:
        out.error = f"TLS: {err.reason or err}"
    except ConnectionResetError:
        out.error = f"connection reset ({stage})"
    except OSError as err:
        text = os.strerror(err.errno) if err.errno else str(err)
        out.error = f"{'connect' if stage == 'connect' else stage}: {text}"
    except Exception as err:  # any surprise is a failed check, never a crash
        out.error = f"unexpected error: {err!r}"
    finally:
        if sock is not None:
            sock.close()
    return out


def _in_ranges(status: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= status <= hi for lo, hi in ranges or DEFAULT_STATUS)


def _ranges_text(ranges: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in ranges or DEFAULT_STATUS)


async def probe_http(t: HttpTarget) -> ProbeResult:
    outcome = await fetch(t, want_digest=t.digest is not None, keep_body=BODY_MAX if t.regex else 0)
    if outcome.error is not None:
        return ProbeResult.down(outcome.error)
    assert outcome.status is not None
    if not _in_ranges(outcome.status, t.status_codes):
        return ProbeResult.down(f"HTTP status {outcome.status} not in {_ranges_text(t.status_codes)}")
    if t.digest is not None and (outcome.digest or "").lower() != t.digest.lower():
        return ProbeResult.down(f"digest mismatch: got {outcome.digest}, expected {t.digest.lower()}")
    if t.regex is not None:
        regex = t.regex
        try:
            # a large body and a costly pattern: off the loop
            passes = await asyncio.to_thread(regex.passes, outcome.body)
        except re.error as err:
            return ProbeResult.down(f"regex does not compile: {err}")
        if not passes:
            return ProbeResult.down("Regex match failed")
    return ProbeResult.up()

