"""SMTP alerts beside keepalived 2.2.7: the same configuration run by kpd and by keepalived against a real
SMTP server (aiosmtpd) in the node's namespace; the mails (envelope, headers, subjects, bodies) must match.

The node runs a sync group of two instances alone, so it goes BACKUP then MASTER, then stops: keepalived
mails each instance's and the group's transitions, and nothing at stop (its "Stopping" mails are queued as
the process exits and never leave); kpd used to parse the SMTP keywords and send nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, open_lab, wait_until

from lab import Lab

aiosmtpd = pytest.importorskip("aiosmtpd.controller")

pytestmark = pytest.mark.netns


@dataclass
class Mail:
    helo: str
    sender: str
    recipients: list[str]
    headers: dict[str, str]
    body: str


@dataclass
class Inbox:
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        text = envelope.content.decode()
        head, _, body = text.partition("\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.split("\r\n"))
        with self.lock:
            mail = Mail(session.host_name, envelope.mail_from, list(envelope.rcpt_tos), headers, body)
            self.mails.append(mail)
        return "250 OK"

    def subjects(self) -> list[str]:
        with self.lock:
            return [m.headers["Subject"] for m in self.mails]


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived") as the_lab:
        yield the_lab


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_vrrp_transitions_are_mailed_as_keepalived_mails_them(lab: Lab, kind: str) -> None:
    inbox = Inbox()
    with lab.enter("a"):  # the server's thread is created in the node's namespace
        controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=2525)
        controller.start()
    try:
        conf = Vrrp(
            priority=100,
            advert_int=0.5,
            global_extra=(
                "router_id lb-test",
                "notification_email {",
                "    ops@example.com",
                "    oncall@example.com",
                "}",
                "notification_email_from kpd@example.com",
                "smtp_server 127.0.0.1 2525",
                "smtp_helo_name lb-test.example.com",
                "smtp_connect_timeout 5",
                "smtp_alert",
            ),
            trailer=(
                "vrrp_instance VI_2 {",
                "    interface eth0",
                "    virtual_router_id 52",
                "    priority 100",
                "    advert_int 0.5",
                "    virtual_ipaddress {",
                "        192.0.2.101/24",
                "    }",
                "}",
                "vrrp_sync_group G {",
                "    group {",
                "        VI_1",
                "        VI_2",
                "    }",
                "}",
            ),
        )
        a = Daemon(lab, "a", conf, kind=kind)
        a.start()
        expected_up = {
            "[lb-test] VRRP Instance VI_1 - Entering BACKUP state",
            "[lb-test] VRRP Instance VI_2 - Entering BACKUP state",
            "[lb-test] VRRP Group G - Entering BACKUP state",
            "[lb-test] VRRP Instance VI_1 - Entering MASTER state",
            "[lb-test] VRRP Instance VI_2 - Entering MASTER state",
            "[lb-test] VRRP Group G - Entering MASTER state",
        }
        wait_until(lambda: expected_up <= set(inbox.subjects()), 20, what=f"mails: {inbox.subjects()}")
        a.stop()
        time.sleep(2)  # keepalived's "Stopping" mails never leave the exiting process: none from kpd either
    finally:
        controller.stop()
    subjects = inbox.subjects()
    assert sorted(subjects) == sorted(expected_up), subjects  # each once
    by_subject = {m.headers["Subject"]: m for m in inbox.mails}
    master = by_subject["[lb-test] VRRP Instance VI_1 - Entering MASTER state"]
    assert master.helo == "lb-test.example.com"
    assert master.sender == "kpd@example.com"
    assert master.recipients == ["ops@example.com", "oncall@example.com"]
    assert master.headers["From"] == "kpd@example.com"
    assert master.headers["To"] == "ops@example.com, oncall@example.com"
    assert master.headers["X-Mailer"] == "Keepalived"
    assert "Date" in master.headers
    assert master.body.strip() == "=> VRRP Instance is now owning VRRP VIPs <="
    group = by_subject["[lb-test] VRRP Group G - Entering MASTER state"]
    assert group.body.strip() == "=> All VRRP group instances are now in MASTER state <="
