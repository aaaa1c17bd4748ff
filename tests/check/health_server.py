"""A healthy HTTP server in a thread (it answers while the probing loop is starved): 200 "ok" to any GET."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # every probe's connection accepted at once (the default 5 drops SYNs)


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def health_server(host: str = "127.0.0.1") -> Iterator[int]:
    """Serve on ``host`` (0.0.0.0: every local address) at a free port; yields the port."""
    server = _Server((host, 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
