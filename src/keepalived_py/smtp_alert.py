"""keepalived's SMTP alerts: one short mail per event, as keepalived sends them (``core/smtp.c``).

A small shared base used by both children. Mail goes out only when global_defs has ``notification_email``
and ``smtp_server``. Each mail is ``HELO`` (``smtp_helo_name``, default the host name), ``MAIL FROM``
(``notification_email_from``, default ``user@host``), one ``RCPT TO`` per address, and a message with
keepalived's headers (``Date``, ``From``, ``Subject``, ``X-Mailer: Keepalived``, ``To``) and one-line body.
Subjects start with ``[router_id]`` (default the host name): ``[lb1] VRRP Instance VI_1 - Entering MASTER
state``, ``[lb1] Realserver [10.0.0.2]:tcp:80 of virtual server [192.0.2.1]:tcp:80 - DOWN``.

:class:`Mailer` never blocks the event loop: mails wait in a bounded queue (the oldest is dropped when it is
full, and counted) and one worker thread sends them one at a time with :mod:`smtplib`, each connection
bounded by ``smtp_connect_timeout``. A server that is down, slow or answers garbage costs a logged failure.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import pwd
import socket
import time
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MailSettings", "Mailer", "format_message"]

logger = logging.getLogger(__name__)

#: keepalived's buffers: a subject is cut at 255 characters, a body at 511
MAX_SUBJECT = 255
MAX_BODY = 511


class SmtpDefs(Protocol):
    """What the mail settings are read from (the config model's ``GlobalDefs``)."""

    @property
    def notification_email(self) -> tuple[str, ...]: ...

    @property
    def notification_email_from(self) -> str | None: ...

    @property
    def smtp_server(self) -> tuple[object, int | None] | None: ...

    @property
    def smtp_helo_name(self) -> str | None: ...

    @property
    def smtp_connect_timeout(self) -> float: ...

    @property
    def router_id(self) -> str | None: ...


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    helo: str
    sender: str
    recipients: tuple[str, ...]
    router_id: str
    connect_timeout: float

    @classmethod
    def of(cls, gd: SmtpDefs) -> MailSettings | None:
        """The settings of ``global_defs``, with keepalived's defaults; None when no mail can be sent."""
        if not gd.notification_email or gd.smtp_server is None:
            return None
        host, port = gd.smtp_server
        local = socket.gethostname() or "unknown"
        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            user = "root"
        return cls(
            host=str(host),
            port=port or 25,
            helo=gd.smtp_helo_name or local,
            sender=gd.notification_email_from or f"{user}@{local}",
            recipients=tuple(gd.notification_email),
            router_id=gd.router_id or local,
            connect_timeout=gd.smtp_connect_timeout,
        )


def format_message(settings: MailSettings, subject: str, body: str, when: float | None = None) -> bytes:
    """The message as keepalived writes it after DATA (smtplib adds the final ``.``)."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S %z", time.localtime(when))
    text = (
        f"Date: {date}\r\nFrom: {settings.sender}\r\nSubject: {subject[:MAX_SUBJECT]}\r\n"
        f"X-Mailer: Keepalived\r\nTo: {', '.join(settings.recipients)}\r\n\r\n{body[:MAX_BODY]}\r\n\r\n"
    )
    return text.encode("utf-8", "replace")


class Mailer:
    """Queue of alerts for one child; :meth:`send` returns at once."""

    def __init__(self, settings: MailSettings, *, max_pending: int = 100) -> None:
        self.settings = settings
        self.max_pending = max_pending
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: collections.deque[tuple[str, str, float]] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="smtp")

    def send(self, subject: str, body: str) -> None:
        """Queue a mail (``subject`` without the ``[router_id]`` prefix, which is added)."""
        if len(self._queue) >= self.max_pending:
            self._queue.popleft()
            self.dropped += 1
            logger.warning("SMTP alert queue full: the oldest alert is dropped (%d so far)", self.dropped)
        self._queue.append((f"[{self.settings.router_id}] {subject}", body, time.time()))
        if self._worker is None:
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="smtp alerts")
        assert self._wake is not None
        self._wake.set()

    async def _work(self) -> None:
        import smtplib  # here, at the first alert: smtplib and the email package cost a child 0.5 MiB

        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            subject, body, when = self._queue.popleft()
            message = format_message(self.settings, subject, body, when)
            try:
                await loop.run_in_executor(self._pool, self._deliver, message)
            except (OSError, smtplib.SMTPException, UnicodeError) as err:
                self.failed += 1
                where = f"{self.settings.host}:{self.settings.port}"
                why = str(err) or type(err).__name__
                logger.warning("SMTP alert '%s' not sent through %s: %s", subject, where, why)
            else:
                self.sent += 1
                logger.info("SMTP alert '%s' sent", subject)

    def _deliver(self, message: bytes) -> None:
        import smtplib

        s = self.settings
        with smtplib.SMTP(timeout=s.connect_timeout) as smtp:
            smtp.connect(s.host, s.port)
            code, reply = smtp.helo(s.helo)
            if code != 250:
                raise smtplib.SMTPHeloError(code, reply)
            smtp.sendmail(s.sender, list(s.recipients), message)

    async def close(self, timeout: float = 5.0) -> None:
        """Give queued alerts ``timeout`` seconds to go out, then stop."""
        deadline = time.monotonic() + timeout
        while self._queue and self._worker is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._pool.shutdown(wait=False, cancel_futures=True)
