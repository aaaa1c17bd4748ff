"""Receive-path checks: each way an advert can be wrong for an instance is dropped with its reason."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

import pytest

from keepalived_py.vrrp.packet import AUTH_SIMPLE, VrrpPacket, decode, encode
from keepalived_py.vrrp.receive import DropReason, Expect, check, password_field

VIPS = frozenset({IPv4Address("192.0.2.100"), IPv4Address("192.0.2.101")})
SORTED_VIPS = tuple(sorted(VIPS))
PEER = IPv4Address("192.0.2.2")
GROUP = IPv4Address("224.0.0.18")


def _expect(**kw):
    base = dict(
        version=2, advert_int=1.0, addresses=VIPS, local_addresses=frozenset({IPv4Address("192.0.2.1")})
    )
    base.update(kw)
    return Expect(**base)


def _advert(
    version=2,
    priority=100,
    interval_cs=100,
    addresses=SORTED_VIPS,
    auth_type=0,
    auth=b"",
    src=PEER,
    dst=GROUP,
):
    pkt = VrrpPacket(version, 1, 51, priority, interval_cs, addresses, auth_type, auth)
    return decode(encode(pkt, src=src, dst=dst), src=src, dst=dst)


def test_good_multicast_advert_is_accepted():
    assert check(_expect(), _advert(), src=PEER, dst=GROUP, ttl=255).ok


@pytest.mark.parametrize(
    ("expect_kw", "advert_kw", "ttl", "dst", "reason"),
    [
        ({}, {}, 64, GROUP, DropReason.TTL),
        ({}, {"version": 3}, 255, GROUP, DropReason.VERSION),
        ({}, {"interval_cs": 200}, 255, GROUP, DropReason.INTERVAL),
        (
            {"auth_type": AUTH_SIMPLE, "auth_data": password_field("secret")},
            {},
            255,
            GROUP,
            DropReason.AUTH_TYPE,
        ),
        (
            {"auth_type": AUTH_SIMPLE, "auth_data": password_field("secret")},
            {"auth_type": AUTH_SIMPLE, "auth": b"wrong"},
            255,
            GROUP,
            DropReason.AUTH_PASSWORD,
        ),
        ({}, {"addresses": (IPv4Address("192.0.2.100"),)}, 255, GROUP, DropReason.ADDRESS_COUNT),
        (
            {},
            {"addresses": (IPv4Address("192.0.2.100"), IPv4Address("192.0.2.9"))},
            255,
            GROUP,
            DropReason.ADDRESS_LIST,
        ),
        ({"unicast": True}, {}, 255, GROUP, DropReason.CAST),
        ({}, {"dst": IPv4Address("192.0.2.1")}, 255, IPv4Address("192.0.2.1"), DropReason.CAST),
    ],
)
def test_wrong_adverts_are_dropped_with_their_reason(expect_kw, advert_kw, ttl, dst, reason):
    advert_kw.setdefault("dst", dst)
    verdict = check(_expect(**expect_kw), _advert(**advert_kw), src=PEER, dst=dst, ttl=ttl)
    assert not verdict.ok and verdict.reason is reason and verdict.detail


def test_password_matches_after_truncation_to_eight_bytes():
    expect = _expect(auth_type=AUTH_SIMPLE, auth_data=password_field("longpassword"))
    advert = _advert(auth_type=AUTH_SIMPLE, auth=b"longpass")
    assert check(expect, advert, src=PEER, dst=GROUP, ttl=255).ok


def test_our_own_looped_back_advert_is_dropped():
    me = IPv4Address("192.0.2.1")
    verdict = check(_expect(), _advert(src=me), src=me, dst=GROUP, ttl=255)
    assert verdict.reason is DropReason.OWN


def test_unicast_ttl_range_and_unknown_source():
    me = IPv4Address("192.0.2.1")
    expect = _expect(unicast=True, peers=((PEER, 250, 255),), check_unicast_src=True)
    assert check(expect, _advert(dst=me), src=PEER, dst=me, ttl=255).ok
    assert check(expect, _advert(dst=me), src=PEER, dst=me, ttl=64).reason is DropReason.TTL
    stranger = ip_address("192.0.2.77")
    verdict = check(expect, _advert(src=stranger, dst=me), src=stranger, dst=me, ttl=255)
    assert verdict.reason is DropReason.UNICAST_SOURCE


def test_v3_interval_differences_are_accepted_for_adoption():
    expect = _expect(version=3, advert_int=1.0)
    assert check(expect, _advert(version=3, interval_cs=10), src=PEER, dst=GROUP, ttl=255).ok


def test_priority_zero_skips_the_address_check():
    verdict = check(_expect(), _advert(priority=0, addresses=()), src=PEER, dst=GROUP, ttl=255)
    assert verdict.ok


def test_skip_check_adv_addr_trusts_the_current_master():
    expect = _expect(skip_check_adv_addr=True)
    other = _advert(addresses=(IPv4Address("192.0.2.100"),))
    assert check(expect, other, src=PEER, dst=GROUP, ttl=255, current_master=PEER).ok
    assert not check(expect, other, src=PEER, dst=GROUP, ttl=255, current_master=None).ok
