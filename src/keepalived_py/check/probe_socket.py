"""The socket of a connection probe (TCP, HTTP, SMTP, UDP, DNS), with the checker's connection options.

As keepalived's ``socket_bind_connect`` sets them: the firewall mark (``fwmark``, SO_MARK), the interface
(``bind_if``, SO_BINDTODEVICE), then the source (``bindto``, ``bind_port``). An IPv6 link-local
destination is reached through ``bind_if`` (its scope); keepalived refuses such a checker without one.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """Where a probe's packets come from, and how they are marked."""

    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None


NO_SOURCE = Source()
SockAddr = tuple[str, int] | tuple[str, int, int, int]


def open_probe_socket(host: str, kind: int, source: Source = NO_SOURCE) -> socket.socket:
    """A non-blocking socket of ``kind`` for reaching ``host``, with ``source`` applied; raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        sock.setblocking(False)
        if source.fwmark:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, source.fwmark)
        if source.bind_if:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, source.bind_if.encode())
        if source.bindto is not None or source.bind_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            any_address = "::" if family == socket.AF_INET6 else "0.0.0.0"
            sock.bind(_address(source.bindto or any_address, source.bind_port or 0, source.bind_if))
    except BaseException:
        sock.close()
        raise
    return sock


def destination(host: str, port: int, source: Source = NO_SOURCE) -> SockAddr:
    """The address to connect to: an IPv6 link-local one gets bind_if's scope."""
    return _address(host, port, source.bind_if)


def _address(host: str, port: int, bind_if: str | None) -> SockAddr:
    if ":" in host:
        if bind_if and ipaddress.IPv6Address(host.split("%", 1)[0]).is_link_local:
            return (host, port, 0, socket.if_nametoindex(bind_if))
        return (host, port, 0, 0)
    return (host, port)
