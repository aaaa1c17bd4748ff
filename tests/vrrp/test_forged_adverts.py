"""Forged adverts from a third lab node against a kpd master/backup pair.

``a`` (192.0.2.1, priority 200) is master, ``b`` (192.0.2.2, priority 100) backup; ``c`` (192.0.2.3) sends
hand-made IPv4 datagrams from a raw ``IP_HDRINCL`` socket (any source address, any TTL), built here without
kpd's codec. What the RFC (9568 section 6.4, 3768 section 7.1) and keepalived make of each:

* **Invalid adverts** (TTL other than 255, bad checksum, wrong password, wrong auth type, interval
  mismatch, wrong address count or list, wrong version) are dropped and counted by reason; they never move
  a machine, even with priority 254.
* **Priority 0 from a non-master**, heard by everybody: a backup sets its down timer to Skew_Time, but the
  master answers every priority-0 advert with an advert at once, which resets the backup's timer to
  Master_Down_Interval: the backup never takes over; the master's advert rate follows the flood.
* **Priority 0 heard by the backup only** (the master does not hear the forger): the backup takes over
  Skew_Time later (the RFC does not check the sender), sends its advert; the master answers that
  lower-priority advert at once and the backup yields: a flap of a few milliseconds.
* **Higher priority with the right VRID and addresses**: the master yields at once (to an address that may
  not exist, so nobody holds the VIP), the backup waits; when the forgery stops the real master takes over
  again one Master_Down_Interval after the last forged advert.
* Nothing crashes kpd, and its own adverts keep their interval under a flood.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address

import pytest
from nodes import (
    VIP4,
    VRRP_FILTER,
    Daemon,
    Injector,
    Vrrp,
    adverts,
    assert_never_two_masters,
    garps,
    ipv4_datagram,
    mac_bytes,
    next_advert,
    open_lab,
    spacing,
    start_all,
    vrrp_payload,
    wait_until,
)

from lab import Capture, Lab

pytestmark = pytest.mark.netns

LATE = 0.5  # scheduling on a busy machine; the precise figures are benchmarks (docs/benchmarks.md)
EARLY = 0.005
PASSWORD = "s3cret"
SPOOFED = IPv4Address("192.0.2.50")  # nobody's address


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a", "b", "c")) as the_lab:
        yield the_lab


def start_pair(lab: Lab, conf: Vrrp) -> tuple[Daemon, Daemon]:
    a = Daemon(lab, "a", replace(conf, priority=200, state="MASTER"))
    b = Daemon(lab, "b", replace(conf, priority=100))
    start_all(a, b)
    wait_until(lambda: a.state() == "MASTER" and a.holds_vip(), 3 + 2 * conf.advert_int, what="a MASTER")
    time.sleep(conf.advert_int + 0.1)  # b has heard a
    return a, b


def forged(conf: Vrrp, *, src: IPv4Address, ttl: int = 255, **fields: object) -> bytes:
    """A datagram the pair would accept, but for ``fields`` (priority 254 unless given)."""
    args: dict[str, object] = {
        "version": conf.version, "vrid": conf.vrid, "priority": 254, "addresses": conf.addresses,
        "interval": conf.advert_int, "src": src, "password": conf.auth_pass,
    }  # fmt: skip
    args.update(fields)
    return ipv4_datagram(vrrp_payload(**args), src=src, ttl=ttl)  # type: ignore[arg-type]


def alive(*daemons: Daemon) -> None:
    """Running, and nothing raised (asyncio logs an exception in a reader callback and carries on)."""
    for d in daemons:
        assert d.running, f"{d} died:\n{d.log(current=True)[-3000:]}"
        log = d.log(current=True)
        assert "Traceback" not in log and "Exception in callback" not in log, log[-3000:]


# --- invalid adverts ------------------------------------------------------------------------------------


def test_invalid_adverts_are_dropped_and_counted(lab: Lab) -> None:
    conf = Vrrp(version=2, advert_int=1, auth_pass=PASSWORD)
    c = lab.addr("c")
    kinds = {
        "ttl": forged(conf, src=c, ttl=64),
        "checksum": forged(conf, src=c, bad_checksum=True),
        "auth_password": forged(conf, src=c, password="wrong"),
        "auth_type": forged(conf, src=c, password=None),
        "interval": forged(conf, src=c, interval=2),
        "address_count": forged(conf, src=c, addresses=(VIP4, "192.0.2.101/24")),
        "address_list": forged(conf, src=c, addresses=("192.0.2.101/24",)),
        "version": forged(conf, src=c, version=3),
    }
    rounds = 5
    with lab.capture(filter=VRRP_FILTER) as cap:
        a, b = start_pair(lab, conf)
        begin = time.time()
        with Injector(lab, "c") as inject:
            for _ in range(rounds):
                for datagram in kinds.values():
                    inject.send(datagram)
                    time.sleep(0.01)
        # every one of them carries priority 254: accepted, any would make a yield or b wait
        assert_never_two_masters([a, b], 2.1, expect=a)
        end = time.time()
        packets = cap.packets()
    alive(a, b)
    assert a.state() == "MASTER" and b.state() == "BACKUP"
    forgeries = [ad for ad in adverts(packets, c) if begin <= ad.time <= end]
    assert len(forgeries) == rounds * len(kinds), "the capture saw every forgery"
    own = [ad for ad in adverts(packets, a.address) if begin <= ad.time <= end]
    assert len(own) >= 2
    assert all(abs(gap - 1) < LATE for gap in spacing(own)), spacing(own)

    expected = dict.fromkeys(sorted(kinds), rounds)
    assert b.stop() == 0
    assert a.stop() == 0
    for d in (a, b):
        st = d.status()
        assert st is not None
        assert st["drops"] == expected, f"{d} drops"
    assert a.status()["counters"]["released_master"] == 0  # type: ignore[index]
    assert b.status()["counters"]["became_master"] == 0  # type: ignore[index]


def test_flood_neither_crashes_kpd_nor_delays_its_adverts(lab: Lab) -> None:
    """Seconds of invalid and random protocol-112 datagrams at 10,000 per second."""
    conf = Vrrp(version=3, advert_int=0.5)
    c = lab.addr("c")
    rng = random.Random(1234)
    templates = [
        forged(conf, src=c, ttl=1),
        forged(conf, src=c, bad_checksum=True),
        forged(conf, src=c, addresses=("192.0.2.101/24",)),
        forged(conf, src=c, vrid=52),  # another router's: ignored, not counted
        forged(conf, src=c, version=2, password=None),
    ]
    for _ in range(200):  # random bytes of random length, some with a plausible first byte
        payload = bytearray(os.urandom(rng.randrange(0, 80)))
        if payload and rng.random() < 0.5:
            payload[0] = rng.choice((0x21, 0x31))
        templates.append(ipv4_datagram(bytes(payload), src=c))
    a_filter = "ip proto 112 and src host 192.0.2.1"
    duration, rate = 3.0, 10000
    with lab.capture(filter=a_filter) as cap:
        a, b = start_pair(lab, conf)
        # what the start-up exchanged (on a loaded machine b may have advertised once before hearing a), as of
        # a status write after it (the counters are rewritten every second)
        time.sleep(1.2)
        received_before = a.status()["counters"]["adverts_received"]  # type: ignore[index]
        became_before = b.status()["counters"]["became_master"]  # type: ignore[index]
        sent = 0
        begin = time.time()
        with Injector(lab, "c") as inject:
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < duration:
                burst = int(elapsed * rate) - sent
                for _ in range(burst):
                    inject.send(templates[sent % len(templates)])
                    sent += 1
                time.sleep(0.002)
        end = time.time()
        alive(a, b)
        assert_never_two_masters([a, b], 0.5, expect=a)
        packets = cap.packets()
    own = [ad for ad in adverts(packets, a.address) if begin <= ad.time <= end]
    gaps = spacing(own)
    print(f"flood: {sent} datagrams in {duration}s; a's advert gaps {min(gaps):.4f}..{max(gaps):.4f}s")
    assert len(own) >= duration / conf.advert_int - 1
    assert all(abs(gap - conf.advert_int) < LATE for gap in gaps), gaps
    assert a.state() == "MASTER" and b.state() == "BACKUP"
    assert b.stop() == 0
    assert a.stop() == 0
    for d in (a, b):
        st = d.status()
        assert st is not None
        counted = sum(st["drops"].values())
        assert 0 < counted <= sent, f"{d}: {st['drops']}"
    received = a.status()["counters"]["adverts_received"]  # type: ignore[index]
    assert received == received_before, "nothing in the flood was valid"
    assert b.status()["counters"]["became_master"] == became_before  # type: ignore[index]


# --- priority 0 -----------------------------------------------------------------------------------------


def test_priority_zero_flood_from_non_master_is_answered_by_the_master(lab: Lab) -> None:
    conf = Vrrp(version=3, advert_int=0.5)
    c = lab.addr("c")
    count = 20
    with lab.capture(filter=VRRP_FILTER) as cap:
        a, b = start_pair(lab, conf)
        with Injector(lab, "c") as inject:
            for _ in range(count):
                inject.send(forged(conf, src=c, priority=0))
                time.sleep(0.1)
        assert_never_two_masters([a, b], conf.master_down_interval(100), expect=a)
        packets = cap.packets()
    alive(a, b)
    zeros = [ad for ad in adverts(packets, c) if ad.priority == 0]
    assert len(zeros) == count
    answers = adverts(packets, a.address)
    for zero in zeros:
        answer = next((ad for ad in answers if ad.time > zero.time), None)
        assert answer is not None and answer.time - zero.time < LATE, "the master answers priority 0 at once"
        assert answer.priority == 200
    assert not adverts(packets, b.address), "the backup never took over"
    assert b.stop() == 0
    assert a.stop() == 0
    for d in (a, b):
        counters = d.status()["counters"]  # type: ignore[index]
        assert counters["priority_zero_received"] == count
    assert b.status()["counters"]["became_master"] == 0  # type: ignore[index]
    assert a.status()["counters"]["released_master"] == 0  # type: ignore[index]


def flap_backup(lab: Lab, cap: Capture, a: Daemon, b: Daemon) -> None:
    """Make the master deaf to c; send b one priority-0 advert just after a's advert (so a's next advert
    comes after b's Skew_Time); return once b has taken over and yielded again."""
    conf = b.conf
    c = lab.addr("c")
    released = b.status()["counters"]["released_master"]  # type: ignore[index]
    lab.run("a", "iptables", "-w", "-I", "INPUT", "-s", str(c), "-p", "112", "-j", "DROP")
    next_advert(cap, a.address)
    with Injector(lab, "c") as inject:
        inject.send(forged(conf, src=c, priority=0))
    wait_until(lambda: adverts(cap.packets(), b.address), 5, what="b takes over")

    def yielded() -> bool:
        # b's status file lags its adverts (one write per loop turn): until b has recorded leaving MASTER,
        # "BACKUP" there may still be the state from before the takeover, with that state's last_reason.
        st = b.status()
        return (
            st is not None and st["counters"]["released_master"] > released and st["state"] == "BACKUP"
            and a.holds_vip() and not b.holds_vip()
        )  # fmt: skip

    wait_until(yielded, 5, what="b yields")
    assert b.status()["last_reason"] == "advert with higher priority"  # type: ignore[index]


def test_priority_zero_heard_by_backup_only_makes_it_take_over_after_skew(lab: Lab) -> None:
    conf = Vrrp(version=3, advert_int=0.5)
    c = lab.addr("c")
    with lab.capture(filter=VRRP_FILTER) as cap:
        a, b = start_pair(lab, conf)
        flap_backup(lab, cap, a, b)
        assert_never_two_masters([a, b], 2 * conf.advert_int, expect=a)
        packets = cap.packets()
    alive(a, b)
    zero = next(ad for ad in adverts(packets, c) if ad.priority == 0)
    skew = b.conf.skew_time()  # (256 - 100) * 0.5 / 256
    takeover = next(ad for ad in adverts(packets, b.address) if ad.time > zero.time)
    answer = next(ad for ad in adverts(packets, a.address) if ad.time > takeover.time)
    print(
        f"priority 0 to the backup only: b took over after {takeover.time - zero.time:.4f}s "
        f"(Skew_Time {skew:.4f}s), a answered {answer.time - takeover.time:.4f}s later"
    )
    assert skew - EARLY <= takeover.time - zero.time <= skew + LATE
    assert takeover.priority == 100
    assert answer.time - takeover.time < LATE, "the master answers a lower-priority advert at once"
    assert answer.priority == 200
    assert a.state() == "MASTER"
    assert b.stop() == 0
    counters = b.status()["counters"]  # type: ignore[index]
    assert counters["became_master"] == 1 and counters["released_master"] == 1


def test_backup_that_yields_at_once_announces_nothing_after_yielding(lab: Lab) -> None:
    """Whatever made a backup MASTER for a moment, its GARPs must not outlive its mastership.

    keepalived sends the burst synchronously on becoming MASTER, before it can read the master's answer,
    so the master's GARPs (answering the lower-priority advert) come last and neighbours end on it.
    """
    conf = Vrrp(version=3, advert_int=0.5)
    vip = conf.addresses[0].split("/")[0]
    with lab.capture(filter=VRRP_FILTER) as cap:
        a, b = start_pair(lab, conf)
        with lab.enter("c"):  # c talks to the VIP: its neighbour entry points at a
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with udp:
            udp.sendto(b"x", (vip, 9))
        wait_until(lambda: neighbour_mac(lab, "c", vip) == lab.mac("a"), 2, what="c resolved the VIP")
        flap_backup(lab, cap, a, b)
        takeover = adverts(cap.packets(), b.address)[0].time
        a_mac = mac_bytes(lab.mac("a"))

        def answered() -> bool:  # a's burst answering b's lower-priority advert (garp_lower_prio_repeat 5)
            return len([t for t, mac in garps(cap.packets(), vip) if mac == a_mac and t > takeover]) >= 5

        wait_until(answered, 5, what="a's GARP burst")
        time.sleep(0.3)  # a window for any late GARP of b to show (there must be none)
        packets = cap.packets()
    yielded = b.status()["last_transition"]  # type: ignore[index]
    late = [t - yielded for t, mac in garps(packets, vip) if mac == mac_bytes(lab.mac("b")) and t > yielded]
    last = max(garps(packets, vip))[1]
    assert not late, f"b announced the VIP {late[0] * 1000:.1f} ms after it left MASTER"
    assert last == a_mac, "the last announcement of the VIP is the master's"
    wait_until(lambda: neighbour_mac(lab, "c", vip) == lab.mac("a"), 5,
               what="neighbours send the VIP's traffic to the master")  # fmt: skip


def neighbour_mac(lab: Lab, node: str, address: str) -> str | None:
    """The link-layer address ``node``'s neighbour table holds for ``address``."""
    words = lab.run(node, "ip", "neigh", "show", address).stdout.split()
    return words[words.index("lladdr") + 1] if "lladdr" in words else None


# --- higher priority --------------------------------------------------------------------------------------


def test_higher_priority_forgery_makes_the_master_yield(lab: Lab) -> None:
    conf = Vrrp(version=3, advert_int=0.5)
    count = 5
    with lab.capture(filter=VRRP_FILTER) as cap:
        a, b = start_pair(lab, conf)
        with Injector(lab, "c") as inject:
            inject.send(forged(conf, src=SPOOFED, priority=250))
            wait_until(lambda: a.state() == "BACKUP" and not a.holds_vip(), 1, what="a yields")
            st = a.status()
            assert st is not None
            assert (st["last_reason"], st["master_address"]) == ("advert with higher priority", str(SPOOFED))
            for _ in range(count - 1):
                time.sleep(conf.advert_int)
                inject.send(forged(conf, src=SPOOFED, priority=250))
                assert not a.holds_vip() and not b.holds_vip(), "the VIP went to the forger's address"
                assert a.state() == "BACKUP" and b.state() == "BACKUP"
        mdi_a = a.conf.master_down_interval()
        wait_until(lambda: a.state() == "MASTER" and a.holds_vip(), mdi_a + 1, what="a takes back")
        packets = cap.packets()
    alive(a, b)
    fake = adverts(packets, SPOOFED)
    assert len(fake) == count
    own = adverts(packets, a.address)
    assert not [ad for ad in own if fake[0].time + LATE < ad.time <= fake[-1].time], "a stayed silent"
    back = next(ad for ad in own if ad.time > fake[-1].time)
    print(f"higher-priority forgery: a took back {back.time - fake[-1].time:.4f}s after the last one "
          f"(MDI {mdi_a:.4f}s)")  # fmt: skip
    assert mdi_a - EARLY <= back.time - fake[-1].time <= mdi_a + LATE
    assert b.state() == "BACKUP"
    assert not adverts(packets, b.address)


def test_a_replay_of_the_masters_own_advert_is_checked_again_for_what_differs(lab: Lab) -> None:
    """The backup accepts the master's unchanged advert without decoding it again (issue 13); a copy of the
    very bytes with another TTL, or from another source, is still judged: dropped and counted."""
    conf = Vrrp(version=3, advert_int=0.5)
    with lab.capture(filter=VRRP_FILTER) as cap:
        a, b = start_pair(lab, conf)
        time.sleep(1.2)  # b has taken a's identical adverts for a while
        packets = cap.packets()
    real = adverts(packets, a.address)[-1]
    assert real.ttl == 255 and real.priority == 200
    with Injector(lab, "c") as inject:
        for _ in range(3):
            inject.send(ipv4_datagram(real.payload, src=a.address, ttl=64))  # type: ignore[arg-type]
            inject.send(ipv4_datagram(real.payload, src=lab.addr("c")))  # its checksum covers a's address
            time.sleep(0.05)
    time.sleep(conf.advert_int * 2)
    alive(a, b)
    assert b.state() == "BACKUP"
    assert b.stop() == 0
    st = b.status()
    assert st is not None and st["drops"] == {"checksum": 3, "ttl": 3}, st["drops"]
    assert a.stop() == 0
