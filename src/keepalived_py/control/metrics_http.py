"""The metrics endpoint's HTTP side, served from the parent's own selector loop (no thread, no blocking).

One request per connection (``Connection: close``): ``GET``/``HEAD /metrics`` is answered with the body
``render()`` gives (``prometheus_client``'s exposition), ``/`` with a pointer to it, anything else with
404/405/400. Bounded for any client, slow, idle or malformed: at most :data:`MAX_CONNECTIONS` at once (the
oldest is closed to make room), :data:`REQUEST_TIMEOUT` seconds and :data:`MAX_REQUEST` bytes to send the
request head (the body of a request is never read), :data:`SEND_TIMEOUT` seconds to take the answer, which
is written as the socket accepts it. The answer is rendered at most once per :data:`CACHE_SECONDS`, and
at most once per ten times its own rendering time (scrapes within that time share it): a flood of scrapes
costs the parent at most a tenth of its time (benchmarks/bench_metrics.py: 0.26 s for 1,000 instances and
1,000 real servers).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("kpd.metrics")

MAX_CONNECTIONS = 16
REQUEST_TIMEOUT = 5.0
SEND_TIMEOUT = 10.0
MAX_REQUEST = 8192
CACHE_SECONDS = 1.0
#: ... and at most once per this many times its own duration: rendering takes at most a tenth of the loop
RENDER_SHARE = 10.0
#: ... but an answer is never older than this (one slow rendering does not hold the metrics still)
MAX_CACHE_SECONDS = 10.0
#: prometheus_client's CONTENT_TYPE_LATEST for the text format it renders
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
INDEX = b"kpd: Prometheus metrics at /metrics\n"


@dataclass
class _Connection:
    sock: socket.socket
    opened: float
    deadline: float
    request: bytes = b""
    #: what is left to send (None: the request is still being read)
    out: memoryview | None = None


class MetricsServer:
    """A non-blocking HTTP listener whose sockets are registered on the caller's selector with the data
    ``(tag, None)`` for the listener and ``(tag, conn)`` for connections: the caller hands every ready key
    of that tag to :meth:`ready` and calls :meth:`expire` once per loop turn."""

    def __init__(self, address: tuple[str, int], render: Callable[[], bytes],
                 selector: selectors.BaseSelector, *, tag: str = "metrics",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.address = address
        self._render = render
        self._sel = selector
        self._tag = tag
        self._clock = clock
        self._conns: dict[socket.socket, _Connection] = {}
        self._cache: tuple[float, bytes] | None = None
        #: how long the last rendering took
        self._render_seconds = 0.0
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._listener = socket.socket(family,
                                       socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                self._listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self._listener.bind(address)
            self._listener.listen(MAX_CONNECTIONS)
        except BaseException:
            self._listener.close()
            raise
        selector.register(self._listener, selectors.EVENT_READ, (tag, None))

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def close(self) -> None:
        for sock in list(self._conns):
            self._close(sock)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self._listener)
        self._listener.close()

    # --- the loop's side ----------------------------------------------------------------------------------

    def ready(self, conn: socket.socket | None, events: int) -> None:
        if conn is None:
            self._accept()
            return
        if conn not in self._conns:
            return
        try:
            if events & selectors.EVENT_WRITE:
                self._send(conn)
            elif events & selectors.EVENT_READ:
                self._read(conn)
        except OSError:
            self._close(conn)

    def expire(self) -> None:
        """Close the connections past their deadline."""
        now = self._clock()
        for sock, c in list(self._conns.items()):
            if now >= c.deadline:
                if c.out is None:
                    self._respond(sock, 408, b"request timeout\n", head=False)
                    if sock in self._conns:
                        self._close(sock)  # an answer that did not go at once is not waited for
                else:
                    self._close(sock)

    # --- connections --------------------------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(MAX_CONNECTIONS):
            try:
                sock, _peer = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("metrics endpoint: cannot accept a connection: %s", err.strerror)
                    return
                raise
            sock.setblocking(False)
            if len(self._conns) >= MAX_CONNECTIONS:
                oldest = min(self._conns.values(), key=lambda c: c.opened)
                self._close(oldest.sock)
            now = self._clock()
            self._conns[sock] = _Connection(sock, now, now + REQUEST_TIMEOUT)
            self._sel.register(sock, selectors.EVENT_READ, (self._tag, sock))

    def _close(self, sock: socket.socket) -> None:
        self._conns.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(sock)
        sock.close()

    def _read(self, sock: socket.socket) -> None:
        c = self._conns[sock]
        try:
            data = sock.recv(MAX_REQUEST + 1 - len(c.request))
        except BlockingIOError:
            return
        if not data:
            self._close(sock)  # the client went before asking
            return
        c.request += data
        end = c.request.find(b"\r\n\r\n")
        if end < 0:
            end = c.request.find(b"\n\n")
        if end < 0:
            if len(c.request) > MAX_REQUEST:
                self._respond(sock, 431, b"request header too large\n", head=False)
            return
        self._answer(sock, c.request[:end])

    def _answer(self, sock: socket.socket, head: bytes) -> None:
        line = head.split(b"\n", 1)[0].rstrip(b"\r")
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[0].isalpha() \
                or not parts[0].isupper() or not parts[1].startswith(b"/"):
            self._respond(sock, 400, b"bad request\n", head=False)
            return
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            self._respond(sock, 405, b"only GET and HEAD\n", head=False, extra=b"Allow: GET, HEAD\r\n")
            return
        is_head = method == b"HEAD"
        if target == b"/metrics":
            try:
                body = self._rendered()
            except Exception:  # a bug in rendering costs this scrape, never the parent
                log.exception("metrics endpoint: cannot render the metrics")
                self._respond(sock, 500, b"cannot render the metrics\n", head=is_head)
                return
            self._respond(sock, 200, body, head=is_head, content_type=CONTENT_TYPE)
        elif target == b"/":
            self._respond(sock, 200, INDEX, head=is_head)
        else:
            self._respond(sock, 404, b"not found: the metrics are at /metrics\n", head=is_head)

    def _rendered(self) -> bytes:
        now = self._clock()
        fresh_for = min(max(CACHE_SECONDS, RENDER_SHARE * self._render_seconds), MAX_CACHE_SECONDS)
        if self._cache is None or now - self._cache[0] >= fresh_for or now < self._cache[0]:
            began = time.perf_counter()
            self._cache = (now, self._render())
            self._render_seconds = time.perf_counter() - began
        return self._cache[1]

    def _respond(self, sock: socket.socket, code: int, body: bytes, *, head: bool,
                 content_type: str = "text/plain; charset=utf-8", extra: bytes = b"") -> None:
        reason = _REASONS.get(code, "Error")
        header = (f"HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode() + extra + b"\r\n"
        c = self._conns[sock]
        c.out = memoryview(header if head else header + body)
        c.deadline = self._clock() + SEND_TIMEOUT
        with contextlib.suppress(KeyError, ValueError):
            self._sel.modify(sock, selectors.EVENT_WRITE, (self._tag, sock))
        self._send(sock)

    def _send(self, sock: socket.socket) -> None:
        c = self._conns[sock]
        if c.out is None:
            return
        try:
            sent = sock.send(c.out)
        except BlockingIOError:
            return
        c.out = c.out[sent:]
        if not len(c.out):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            self._close(sock)


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 431: "Request Header Fields Too Large", 500: "Internal Server Error"}
