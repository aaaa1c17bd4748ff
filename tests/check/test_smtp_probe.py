"""SMTP_CHECK against scripted SMTP servers on real sockets: keepalived's reading of the conversation."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest

from keepalived_py.check.smtp_probe import probe_smtp

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]


def conversation(greeting: bytes = b"220 mx ESMTP\r\n", helo_reply: bytes = b"250 mx\r\n",
                 quit_reply: bytes = b"221 bye\r\n", seen: list[bytes] | None = None) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(greeting)
            await writer.drain()
            line = await reader.readline()
            if seen is not None:
                seen.append(line)
            writer.write(helo_reply)
            await writer.drain()
            line = await reader.readline()
            if seen is not None:
                seen.append(line)
            writer.write(quit_reply)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle


def probe_against(handler: Handler, **kw: object):
    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            kw.setdefault("timeout", 2.0)
            kw.setdefault("helo_name", "checker.example")
            return await probe_smtp("127.0.0.1", port, **kw)  # type: ignore[arg-type]
        finally:
            server.close()

    return asyncio.run(main())


def test_smtp_check_is_up_after_greeting_helo_and_quit_sending_keepaliveds_bytes():
    seen: list[bytes] = []
    r = probe_against(conversation(seen=seen))
    assert r.ok, r.reason
    assert seen == [b"HELO checker.example\r\n", b"QUIT\r\n"]


@pytest.mark.parametrize(
    ("greeting", "helo", "reason"),
    [
        (b"554 go away\r\n", b"250 ok\r\n", "Bad greeting banner from server [127.0.0.1]:"),
        (b"220-multi line\r\n220 end\r\n", b"250 ok\r\n", "Bad greeting banner"),  # keepalived reads one line
        (b"220\r\n", b"250 ok\r\n", "Bad greeting banner"),  # the CR after the code: not a status for it
        (b"220 ok\r\n", b"501 no\r\n", "Bad HELO response from server"),
        (b"220 ok\r\n", b"250-mx\r\n250 ok\r\n", "Bad HELO response"),
    ],
)
def test_smtp_check_fails_on_what_keepalived_rejects(greeting, helo, reason):
    r = probe_against(conversation(greeting, helo))
    assert not r.ok and reason in r.reason


def test_smtp_check_accepts_a_bare_code_ended_by_a_newline_and_any_quit_reply():
    assert probe_against(conversation(b"220\n", b"250\n", b"500 whatever\r\n")).ok


def test_smtp_check_fails_when_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = asyncio.run(probe_smtp("127.0.0.1", port, helo_name="x", timeout=1.0))
    assert not r.ok and r.reason.startswith(f"Could not connect to server [127.0.0.1]:{port}")


def test_smtp_check_times_out_on_a_silent_server():
    async def silent(reader, writer):
        await asyncio.sleep(10)

    t0 = time.monotonic()
    r = probe_against(silent, timeout=0.5)
    assert not r.ok and r.reason.startswith("Read timeout from server")
    assert time.monotonic() - t0 < 5


def test_a_server_trickling_garbage_forever_is_a_bounded_failure():
    async def endless(reader, writer):
        try:
            while True:
                writer.write(b"x" * 100)  # never a newline; each read well within the timeout
                await writer.drain()
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass

    t0 = time.monotonic()
    r = probe_against(endless, timeout=0.5)
    assert not r.ok
    assert time.monotonic() - t0 < 0.5 * 4 + 3  # the whole conversation is bounded


def test_a_server_closing_early_is_a_read_failure():
    async def rude(reader, writer):
        writer.close()

    r = probe_against(rude)
    assert not r.ok and r.reason.startswith("Read failure from server")


def test_no_port_is_a_failure_not_a_crash():
    r = asyncio.run(probe_smtp("127.0.0.1", 0, helo_name="x", timeout=1.0))
    assert not r.ok and "connect_port" in r.reason
