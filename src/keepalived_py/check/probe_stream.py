"""A probe's byte stream over its connected, non-blocking socket: plain, or TLS through memory BIOs.

TLS runs through :class:`ssl.SSLObject` rather than asyncio's SSL transport so that the end of a connection
is keepalived's: its checkers set ``SSL_set_quiet_shutdown`` (no close_notify is sent, not even in answer
to the server's own) unless ``tls_compliant`` asks for one; asyncio's transport always answers a
close_notify. A stream holds no task, transport or buffer beyond the call in progress; the caller bounds
the time (every call here waits on the network only) and closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import TypeVar

READ_SIZE = 16 * 1024

T = TypeVar("T")


class PlainStream:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def recv(self, size: int = READ_SIZE) -> bytes:
        """Up to ``size`` bytes; b"" at the end of the stream."""
        return await self.loop.sock_recv(self.sock, size)

    async def finish(self) -> None:
        """Nothing to say before the socket is closed."""


class TlsStream(PlainStream):
    """The client side of a TLS connection on ``sock``; :meth:`handshake` first."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None,
                 compliant: bool = False) -> None:
        super().__init__(sock)
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname or None)
        self.compliant = compliant

    async def _flush(self) -> None:
        if self.outgoing.pending:
            await self.loop.sock_sendall(self.sock, self.outgoing.read())

    async def _drive(self, step: Callable[[], T]) -> T:
        """Run ``step`` until it no longer wants the peer's bytes, sending what it produces."""
        while True:
            try:
                result = step()
            except ssl.SSLWantReadError:
                await self._flush()
                if self.incoming.eof:
                    raise ConnectionResetError("the peer closed the connection mid-record") from None
                data = await self.loop.sock_recv(self.sock, READ_SIZE)
                if data:
                    self.incoming.write(data)
                else:
                    self.incoming.write_eof()
                continue
            await self._flush()
            return result

    async def handshake(self) -> None:
        await self._drive(self.tls.do_handshake)

    async def send(self, data: bytes) -> None:
        await self._drive(lambda: self.tls.write(data))  # a memory BIO takes the whole record at once

    async def recv(self, size: int = READ_SIZE) -> bytes:
        """Up to ``size`` bytes; b"" at the end: the server's close_notify or its bare TCP close (keepalived
        reads the response to the end either way)."""
        try:
            return await self._drive(lambda: self.tls.read(size))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    async def finish(self) -> None:
        """With ``tls_compliant`` send a close_notify (not waiting for the server's answer, as keepalived's
        single SSL_shutdown); otherwise close quietly."""
        if not self.compliant:
            return
        with contextlib.suppress(ssl.SSLError):  # the server's not there yet: ours is written all the same
            self.tls.unwrap()
        await self._flush()
