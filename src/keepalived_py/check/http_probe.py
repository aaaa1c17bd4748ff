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
import os
import socket
import ssl
from dataclasses import dataclass, field

from keepalived_py.check.http_response import ResponseParser
from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.probe_socket import NO_SOURCE, Source, destination, open_probe_socket

READ_SIZE = 16 * 1024
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


@dataclass
class HttpOutcome:
    status: int | None = None
    digest: str | None = None
    error: str | None = None
    status_line: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)


def request_bytes(t: HttpTarget) -> bytes:
    """keepalived's request, byte for byte: ``Connection: close`` only for http_protocol 1.0C and 1.1,
    ``Host`` the virtualhost, else the address and port."""
    protocol = t.http_protocol.upper()
    version = "1.1" if protocol == "1.1" else "1.0"
    close = "Connection: close\r\n" if protocol in ("1.0C", "1.1") else ""
    host = t.virtualhost or (f"[{t.host}]" if ":" in t.host else t.host) + f":{t.port}"
    return (f"GET {t.path} HTTP/{version}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n"
            ).encode("latin-1", "replace")


def _tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_TLS = _tls_context()


async def fetch(t: HttpTarget, *, want_digest: bool = False) -> HttpOutcome:
    """GET the url; never raises: a failure is in ``error``."""
    out = HttpOutcome()
    writer: asyncio.StreamWriter | None = None
    sock: socket.socket | None = None
    stage = "connect"
    try:
        async with asyncio.timeout(t.timeout):
            sock = open_probe_socket(t.host, socket.SOCK_STREAM, t.source)
            await asyncio.get_running_loop().sock_connect(sock, destination(t.host, t.port, t.source))
            stage = "TLS" if t.ssl else "request"
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=_TLS if t.ssl else None, server_hostname=(t.sni or "") if t.ssl else None,
                limit=READ_SIZE)
            sock = None  # the transport owns it now
            stage = "request"
            writer.write(request_bytes(t))
            await writer.drain()
            stage = "response"
            parser = ResponseParser(want_digest=want_digest)
            while not parser.done and parser.error is None:
                data = await reader.read(READ_SIZE)
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
        if writer is not None:
            writer.transport.abort()
        if sock is not None:
            sock.close()
    return out


def _in_ranges(status: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= status <= hi for lo, hi in ranges or DEFAULT_STATUS)


def _ranges_text(ranges: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in ranges or DEFAULT_STATUS)


async def probe_http(t: HttpTarget) -> ProbeResult:
    outcome = await fetch(t, want_digest=t.digest is not None)
    if outcome.error is not None:
        return ProbeResult.down(outcome.error)
    assert outcome.status is not None
    if not _in_ranges(outcome.status, t.status_codes):
        return ProbeResult.down(f"HTTP status {outcome.status} not in {_ranges_text(t.status_codes)}")
    if t.digest is not None and (outcome.digest or "").lower() != t.digest.lower():
        return ProbeResult.down(f"digest mismatch: got {outcome.digest}, expected {t.digest.lower()}")
    return ProbeResult.up()

