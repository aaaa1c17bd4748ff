"""The metrics endpoint's HTTP side on a real selector and real sockets: answers, and bounds for slow, idle,
malformed and too many clients (the clock is the test's, so timeouts need no waiting)."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator

import pytest

from keepalived_py.control import metrics_http
from keepalived_py.control.metrics_http import MAX_CONNECTIONS, MAX_REQUEST, MetricsServer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Endpoint:
    def __init__(self, body: bytes = b"kpd_up 1\n") -> None:
        self.sel = selectors.DefaultSelector()
        self.clock = Clock()
        self.body = body
        self.renders = 0
        self.server = MetricsServer(("127.0.0.1", 0), self.render, self.sel, clock=self.clock)

    def render(self) -> bytes:
        self.renders += 1
        if self.body == b"boom":
            raise RuntimeError("boom")
        return self.body

    def pump(self, turns: int = 20) -> None:
        """What the parent's loop does, a few turns (never blocking: timeout 0)."""
        for _ in range(turns):
            for key, mask in self.sel.select(timeout=0.01):
                tag, conn = key.data
                assert tag == "metrics"
                self.server.ready(conn, mask)
            self.server.expire()

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        self.pump(2)
        return sock

    def exchange(self, request: bytes) -> bytes:
        sock = self.connect()
        sock.sendall(request)
        return self.read_all(sock)

    def read_all(self, sock: socket.socket) -> bytes:
        sock.setblocking(False)
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.pump(1)
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            if not chunk:
                sock.close()
                return data
            data += chunk
        raise AssertionError(f"no end of answer: {data[:200]!r}")


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    yield e
    e.server.close()
    e.sel.close()


def test_get_metrics_answers_the_rendered_exposition(endpoint: Endpoint) -> None:
    answer = endpoint.exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    assert b"Content-Length: 9" in head and b"Connection: close" in head
    assert body == b"kpd_up 1\n"


def test_head_answers_without_a_body(endpoint: Endpoint) -> None:
    answer = endpoint.exchange(b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\n")


def test_scrapes_within_a_second_share_one_rendering(endpoint: Endpoint) -> None:
    for _ in range(3):
        endpoint.exchange(b"GET /metrics HTTP/1.1\r\n\r\n")
    assert endpoint.renders == 1
    endpoint.clock.now += metrics_http.CACHE_SECONDS
    endpoint.exchange(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n")
    assert endpoint.renders == 2


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /other HTTP/1.1\r\n\r\n", b"404"),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", b"405"),
    (b"garbage\r\n\r\n", b"400"),
    (b"GET /metrics\r\n\r\n", b"400"),
    (b"\x00\xff\xfe \xfa HTTP/1.1\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\n\r\n", b"200"),
])
def test_other_requests_get_an_error_status(endpoint: Endpoint, request_bytes: bytes, status: bytes) -> None:
    answer = endpoint.exchange(request_bytes)
    assert answer.split(b" ", 2)[1] == status, answer
    assert endpoint.renders == 0


def test_an_oversized_request_head_is_refused(endpoint: Endpoint) -> None:
    sock = endpoint.connect()
    sock.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * (MAX_REQUEST + 100))
    assert endpoint.read_all(sock).startswith(b"HTTP/1.1 431")


def test_an_idle_client_is_answered_408_and_closed_at_its_deadline(endpoint: Endpoint) -> None:
    sock = endpoint.connect()
    sock.sendall(b"GET /metr")  # and then nothing: slowloris
    endpoint.pump(5)
    assert len(endpoint.server._conns) == 1
    endpoint.clock.now += metrics_http.REQUEST_TIMEOUT
    assert endpoint.read_all(sock).startswith(b"HTTP/1.1 408")
    assert not endpoint.server._conns


def test_a_client_that_does_not_read_its_answer_never_blocks_the_loop(endpoint: Endpoint) -> None:
    endpoint.body = b"x" * (16 * 1024 * 1024)  # far more than the socket buffers hold
    sock = endpoint.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    began = time.monotonic()
    endpoint.pump(20)  # the answer goes out as the socket takes it; the loop turns on
    assert time.monotonic() - began < 5
    assert len(endpoint.server._conns) == 1
    endpoint.clock.now += metrics_http.SEND_TIMEOUT
    endpoint.pump(1)
    assert not endpoint.server._conns, "closed at its deadline"
    sock.close()


def test_past_the_connection_limit_the_oldest_is_closed(endpoint: Endpoint) -> None:
    idle = []
    for _ in range(MAX_CONNECTIONS):
        idle.append(endpoint.connect())
        endpoint.clock.now += 0.01
    answer = endpoint.exchange(b"GET /metrics HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert len(endpoint.server._conns) <= MAX_CONNECTIONS
    idle[0].settimeout(5)
    assert idle[0].recv(100) == b"", "the oldest idle connection was closed"
    for sock in idle:
        sock.close()


def test_a_rendering_error_costs_the_scrape_not_the_server(endpoint: Endpoint) -> None:
    endpoint.body = b"boom"
    assert endpoint.exchange(b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 500")
    endpoint.body = b"ok\n"
    endpoint.clock.now += metrics_http.CACHE_SECONDS
    assert endpoint.exchange(b"GET /metrics HTTP/1.1\r\n\r\n").endswith(b"\r\n\r\nok\n")


def test_it_binds_only_the_configured_address() -> None:
    sel = selectors.DefaultSelector()
    server = MetricsServer(("::1", 0), lambda: b"", sel)
    try:
        assert server._listener.getsockname()[0] == "::1"
        assert server._listener.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    finally:
        server.close()
        sel.close()


def test_a_slow_rendering_is_shared_for_ten_times_its_duration(endpoint: Endpoint) -> None:
    """However often it is scraped, rendering takes at most a tenth of the parent's time."""
    slow = 0.15  # seconds per rendering: 1.5 s between renderings, more than the 1 s minimum
    real_render = endpoint.render

    def render() -> bytes:
        time.sleep(slow)
        return real_render()

    endpoint.server._render = render
    endpoint.exchange(b"GET /metrics HTTP/1.1\r\n\r\n")
    endpoint.clock.now += metrics_http.CACHE_SECONDS  # past the 1 s minimum, within 10 x 0.15 s
    endpoint.exchange(b"GET /metrics HTTP/1.1\r\n\r\n")
    assert endpoint.renders == 1
    endpoint.clock.now += metrics_http.RENDER_SHARE * slow
    endpoint.exchange(b"GET /metrics HTTP/1.1\r\n\r\n")
    assert endpoint.renders == 2


def test_an_answer_is_never_older_than_the_cache_cap(endpoint: Endpoint) -> None:
    """One slow rendering (say, the first one after start on a slow machine) does not freeze the metrics."""
    endpoint.exchange(b"GET /metrics HTTP/1.1\r\n\r\n")
    endpoint.server._render_seconds = 60.0  # as if it had taken a minute: 10 minutes of sharing, uncapped
    endpoint.clock.now += metrics_http.MAX_CACHE_SECONDS
    endpoint.exchange(b"GET /metrics HTTP/1.1\r\n\r\n")
    assert endpoint.renders == 2
