"""SMTP alerts: keepalived's message format, and a mail server that is down, silent or rude never blocks the
event loop nor grows memory without bound."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import SimpleNamespace

import pytest

from keepalived_py.smtp_alert import Mailer, MailSettings, format_message


def _settings(port: int, timeout: float = 0.5) -> MailSettings:
    return MailSettings(
        host="127.0.0.1",
        port=port,
        helo="lb1",
        sender="kpd@example.com",
        recipients=("a@example.com", "b@example.com"),
        router_id="lb1",
        connect_timeout=timeout,
    )


def test_message_has_keepalived_headers_and_body() -> None:
    subject = "[lb1] VRRP Instance VI_1 - Entering MASTER state"
    text = format_message(_settings(25), subject, "=> body <=", 0.0)
    head, _, body = text.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    assert [line.split(":")[0] for line in lines] == ["Date", "From", "Subject", "X-Mailer", "To"]
    assert "From: kpd@example.com" in lines and "X-Mailer: Keepalived" in lines
    assert "To: a@example.com, b@example.com" in lines
    assert body == "=> body <=\r\n\r\n"


def test_no_mail_without_recipients_or_server() -> None:
    gd = SimpleNamespace(
        notification_email=(),
        notification_email_from=None,
        smtp_server=("127.0.0.1", None),
        smtp_helo_name=None,
        smtp_connect_timeout=30.0,
        router_id=None,
    )
    assert MailSettings.of(gd) is None  # type: ignore[arg-type]
    gd.notification_email = ("ops@example.com",)
    settings = MailSettings.of(gd)  # type: ignore[arg-type]
    assert settings is not None and settings.port == 25
    assert settings.sender.endswith("@" + socket.gethostname())
    gd.smtp_server = None
    assert MailSettings.of(gd) is None  # type: ignore[arg-type]


class _Silent:
    """A TCP server that accepts and never says a word (or says garbage)."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.greeting = greeting
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.greeting:
                conn.sendall(self.greeting)

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.parametrize("greeting", [b"", b"\x00garbage\r\n" * 3, b"554 go away\r\n"])
def test_a_silent_or_rude_server_costs_a_logged_failure_and_never_blocks_the_loop(greeting: bytes) -> None:
    server = _Silent(greeting)

    async def main() -> tuple[float, Mailer]:
        mailer = Mailer(_settings(server.port, timeout=2.0))
        for i in range(2):
            mailer.send(f"alert {i}", "body")
        worst = 0.0
        start = time.monotonic()
        while mailer.failed + mailer.sent < 2 and time.monotonic() - start < 30:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            worst = max(worst, time.monotonic() - before)
        await mailer.close(timeout=0)
        return worst, mailer

    try:
        worst, mailer = asyncio.run(main())
    finally:
        server.close()
    assert mailer.failed == 2 and mailer.sent == 0
    # each mail waits up to 2 s for the server, in the worker thread: the loop never waits that long
    assert worst < 1.5, f"the loop stalled {worst:.2f} s"


def test_the_queue_is_bounded_and_drops_the_oldest() -> None:
    async def main() -> Mailer:
        mailer = Mailer(_settings(9, timeout=0.2), max_pending=5)  # discard port: refused at once
        for i in range(50):
            mailer.send(f"alert {i}", "body")
        assert len(mailer._queue) <= 5
        await mailer.close(timeout=0)
        return mailer

    mailer = asyncio.run(main())
    assert mailer.dropped >= 45
