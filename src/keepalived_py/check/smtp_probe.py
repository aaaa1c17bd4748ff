"""SMTP_CHECK: the server greets with 220, answers ``HELO name`` with 250, and answers ``QUIT``.

As keepalived's ``check_smtp.c`` (2.2.7) reads a conversation:

* a reply is the text up to the first newline of what arrived; the rest of that read (further lines of a
  multi-line reply) is dropped, and the carriage return is kept. Its status is the first three characters
  when they are digits followed by a space or nothing: so ``220 text\\r\\n`` and ``220\\n`` are a 220, while
  ``220-`` (a multi-line greeting) and a bare ``220\\r\\n`` are not, and fail the check, as in keepalived;
* a line longer than 511 bytes is dropped and the reading goes on;
* ``HELO name\\r\\n`` follows a 220 greeting, ``QUIT\\r\\n`` follows a 250, and any line answers the QUIT;
* ``connect_timeout`` bounds each wait (the connection, each read and each write). Unlike keepalived, the
  whole conversation is also bounded, at four times connect_timeout: a server trickling a byte at a time
  never holds a check for longer.

The failure reasons are keepalived's texts (they make the body of its alert mail).
"""

from __future__ import annotations

import asyncio
import socket

from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.probe_deadline import network_timeout
from keepalived_py.check.probe_socket import NO_SOURCE, Source, destination, open_probe_socket

#: keepalived's SMTP_BUFF_MAX less its terminating NUL: a longer line is dropped
LINE_MAX = 511
#: the conversation's waits: connect, greeting, HELO reply, QUIT reply
WAITS = 4


class _Failed(Exception):
    pass


async def probe_smtp(
    host: str,
    port: int,
    *,
    helo_name: str,
    timeout: float,
    source: Source = NO_SOURCE,
) -> ProbeResult:
    """One SMTP conversation; never raises."""
    where = f"[{host}]:{port}"
    try:
        async with network_timeout(timeout * WAITS):
            return await _converse(host, port, where, helo_name, timeout, source)
    except TimeoutError:
        return ProbeResult.down(f"Read timeout from server {where}")
    except _Failed as failed:
        return ProbeResult.down(str(failed))


async def _converse(
    host: str,
    port: int,
    where: str,
    helo_name: str,
    timeout: float,
    source: Source,
) -> ProbeResult:
    if not port:
        raise _Failed(f"Could not connect to server {where} (no port: set connect_port)")
    loop = asyncio.get_running_loop()
    try:
        sock = open_probe_socket(host, socket.SOCK_STREAM, source)
    except OSError as err:
        raise _Failed(f"socket bind failed: {err.strerror or err}") from None
    try:
        try:
            async with network_timeout(timeout):
                await loop.sock_connect(sock, destination(host, port, source))
        except TimeoutError:
            raise _Failed(f"Connection timeout to server {where}") from None
        except OSError:
            raise _Failed(f"Could not connect to server {where}") from None
        reader = _LineReader(sock, where, timeout)
        if _status(await reader.line()) != 220:
            raise _Failed(f"Bad greeting banner from server {where}")
        await _send(sock, f"HELO {helo_name}\r\n".encode(), where, timeout)
        if _status(await reader.line()) != 250:
            raise _Failed(f"Bad HELO response from server {where}")
        await _send(sock, b"QUIT\r\n", where, timeout)
        await reader.line()  # whatever it says
        return ProbeResult.up()
    finally:
        sock.close()


def _status(line: bytes) -> int | None:
    """keepalived's ``smtp_get_status``: three digits, then a space or the end of the line."""
    if len(line) >= 3 and line[:3].isdigit() and (len(line) == 3 or line[3:4] == b" "):
        return int(line[:3])
    return None


async def _send(sock: socket.socket, data: bytes, where: str, timeout: float) -> None:
    try:
        async with network_timeout(timeout):
            await asyncio.get_running_loop().sock_sendall(sock, data)
    except TimeoutError:
        raise _Failed(f"Write timeout to server {where}") from None
    except OSError:
        raise _Failed(f"Write failure to server {where}") from None


class _LineReader:
    def __init__(self, sock: socket.socket, where: str, timeout: float):
        self.sock = sock
        self.where = where
        self.timeout = timeout

    async def line(self) -> bytes:
        """The next reply line (without its newline): what keepalived's ``smtp_get_line`` returns."""
        loop = asyncio.get_running_loop()
        buf = b""
        while True:
            try:
                async with network_timeout(self.timeout):
                    data = await loop.sock_recv(self.sock, 4096)
            except TimeoutError:
                raise _Failed(f"Read timeout from server {self.where}") from None
            except OSError:
                raise _Failed(f"Read failure from server {self.where}") from None
            if not data:
                raise _Failed(f"Read failure from server {self.where}")
            buf += data
            end = buf.find(b"\n")
            if 0 <= end <= LINE_MAX:
                return buf[:end]  # the rest of this read is dropped, as keepalived drops it
            if len(buf) >= LINE_MAX:
                buf = b""  # keepalived: "Buffer overflow reading from server", and reads on
