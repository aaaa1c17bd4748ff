"""Pieces shared by bench_pair.py (client-visible failover) and soak.py (200 failovers of a kpd pair).

Pure helpers (tested in tests/test_bench_pairlab.py): parsing the probe client's records, the outage a
client saw, runs of VIP-holder samples, least-squares slope, percentiles. Two small programs run inside the
lab's namespaces, started as ``python benchmarks/pairlab.py responder NAME`` on a director (answers every
HTTP request on port 8080 with NAME) and ``python benchmarks/pairlab.py client VIP`` on the client (one HTTP
GET to the VIP every ``--interval`` s, one line per request on stdout: ``start end ok who``, wall-clock
seconds, the same clock as tcpdump's timestamps).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import socket
import socketserver
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PORT = 8080
Sample = tuple[float, tuple[str, ...]]  # VipSampler's (monotonic time, nodes holding the VIP)


# --- probe records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    start: float  # wall clock, s
    end: float
    ok: bool
    who: str  # the responder's name, or why the request failed


def parse_requests(text: str) -> list[Request]:
    """The client's lines (``start end ok who``); a truncated last line and anything else are skipped."""
    out = []
    for line in text.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) != 4 or parts[2] not in ("0", "1"):
            continue
        try:
            out.append(Request(float(parts[0]), float(parts[1]), parts[2] == "1", parts[3]))
        except ValueError:
            continue
    return out


@dataclass(frozen=True, slots=True)
class Outage:
    first_failed: Request
    first_ok: Request  # the first success after the first failure
    failed: int  # failed requests from first_failed up to first_ok

    @property
    def span(self) -> float:
        """From the start of the first failed request to the answer of the first successful one."""
        return self.first_ok.end - self.first_failed.start


def outage_after(requests: Sequence[Request], since: float, until: float = math.inf) -> Outage | None:
    """The first outage among the requests started in [since, until): the first failed request, the first
    successful one after it (None when no request failed, or none succeeded afterwards)."""
    window = [r for r in requests if since <= r.start < until]
    first = next((i for i, r in enumerate(window) if not r.ok), None)
    if first is None:
        return None
    for j in range(first + 1, len(window)):
        if window[j].ok:
            return Outage(window[first], window[j], j - first)
    return None


# --- VIP holder samples --------------------------------------------------------------------------


def runs(
    samples: Sequence[Sample], predicate: Callable[[tuple[str, ...]], bool]
) -> list[tuple[float, float]]:
    """(start, end) of every maximal run of consecutive samples whose holders satisfy ``predicate``: start is
    the first such sample's time, end the time of the first sample after the run (so a span is an upper
    bound, at most one sampling interval long), or the last sample's time when the run reaches the end."""
    out = []
    start: float | None = None
    for when, holders in samples:
        if predicate(holders):
            if start is None:
                start = when
        elif start is not None:
            out.append((start, when))
            start = None
    if start is not None:
        out.append((start, samples[-1][0]))
    return out


def longest(spans: Iterable[tuple[float, float]]) -> float:
    return max((end - start for start, end in spans), default=0.0)


def mask_stale(samples: Sequence[Sample], node: str, dead_at: float) -> tuple[list[Sample], float | None]:
    """Drop ``node`` from the holders from ``dead_at`` (its daemon SIGKILLed, the address left on its
    interface) until the first later sample in which it does not hold the VIP (its restarted daemon
    removed the leftover): a dead daemon's address is not a MASTER. Returns the samples and the time the
    leftover was seen gone (None when it never was)."""
    out: list[Sample] = []
    gone: float | None = None
    for when, holders in samples:
        if when >= dead_at and gone is None:
            if node in holders:
                holders = tuple(h for h in holders if h != node)
            else:
                gone = when
        out.append((when, holders))
    return out, gone


def timeline(samples: Sequence[Sample], origin: float) -> str:
    """The holder changes as ``+ms:holders`` relative to ``origin`` (e.g. ``-95:a +300:- +305:b``)."""
    out = []
    last: tuple[str, ...] | None = None
    for when, holders in samples:
        if holders != last:
            out.append(f"{(when - origin) * 1e3:+.0f}:{','.join(holders) or '-'}")
            last = holders
    return " ".join(out)


def max_gap(samples: Sequence[Sample]) -> float:
    """The longest time between two consecutive samples."""
    return max((b[0] - a[0] for a, b in itertools.pairwise(samples)), default=0.0)


# --- statistics ----------------------------------------------------------------------------------


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against their index (0, 1, 2, ...); 0 for fewer than two."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    sxx = sum((i - mean_x) ** 2 for i in range(n))
    sxy = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    return sxy / sxx


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class LineFile:
    """A growing text file read incrementally (whole lines only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._tail = b""

    def read(self) -> str:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return ""
        self._offset += len(data)
        data = self._tail + data
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:]
        return data[:cut].decode(errors="replace")


# --- the programs run in the namespaces ----------------------------------------------------------


def responder(name: str, port: int) -> int:
    """Answer every HTTP request on 0.0.0.0:port with ``name`` (a director's service)."""
    body = name.encode()
    reply = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(1.0)
            data = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in data and len(data) < 4096:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                self.request.sendall(reply)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 128

    with Server(("0.0.0.0", port), Handler) as server:
        print(f"responder {name} on port {port}", flush=True)
        server.serve_forever()
    return 0


def client(vip: str, port: int, interval: float, timeout: float, deadline: float) -> int:
    """GET / from vip:port every ``interval`` s (connect and read timeouts ``timeout``), for at most
    ``deadline`` s; one line per request: ``start end ok who`` (wall clock)."""
    request = f"GET / HTTP/1.0\r\nHost: {vip}\r\n\r\n".encode()
    stop = time.monotonic() + deadline
    out = sys.stdout
    while time.monotonic() < stop:
        t0, m0 = time.time(), time.monotonic()
        ok, who = False, ""
        try:
            with socket.create_connection((vip, port), timeout=timeout) as sock:
                sock.settimeout(timeout)
                sock.sendall(request)
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            ok = head.startswith(b"HTTP/1.0 200") and bool(body)
            who = body.decode(errors="replace").strip() or "empty"
        except TimeoutError:
            who = "timeout"
        except OSError as err:
            who = type(err).__name__
        out.write(f"{t0:.6f} {time.time():.6f} {int(ok)} {who.split()[0] if who else '-'}\n")
        out.flush()
        pause = m0 + interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description="the responder and the probe client of bench_pair.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("responder")
    r.add_argument("name")
    r.add_argument("--port", type=int, default=PORT)
    c = sub.add_parser("client")
    c.add_argument("vip")
    c.add_argument("--port", type=int, default=PORT)
    c.add_argument("--interval", type=float, default=0.01)
    c.add_argument("--timeout", type=float, default=0.1)
    c.add_argument("--deadline", type=float, default=3600.0, help="exit after this many seconds")
    args = ap.parse_args()
    if args.cmd == "responder":
        return responder(args.name, args.port)
    return client(args.vip, args.port, args.interval, args.timeout, args.deadline)


if __name__ == "__main__":
    sys.exit(main())
