"""``vrrp_strict`` with ``nftables`` beside keepalived 2.2.7: the same configuration on one node, run by kpd
and by keepalived; as MASTER (strict mode: no accept) the kernel holds the same nftables ruleset, table
``keepalived`` for IPv4 and IPv6 with the VIPs in set ``vips`` (``nft list ruleset``, text compared); the
elements go when the daemon stops (kpd deletes its tables; keepalived 2.2.7 leaves them with empty sets).
kpd used to install nothing; then, without the ``nftables`` keyword, still nothing, where keepalived uses
nftables and table ``keepalived`` whenever a filter is needed ("no firewall configured - using nftables").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from nodes import KEEPALIVED, KPD, Daemon, Vrrp, open_lab, vip_present, wait_until

from lab import Lab

pytestmark = pytest.mark.netns

EXPECTED = """\
table ip keepalived {
\tset vips {
\t\ttype ipv4_addr
\t\telements = { 192.0.2.100, 192.0.2.101 }
\t}

\tchain out {
\t\ttype filter hook output priority filter - 1; policy accept;
\t\tip saddr @vips drop
\t}

\tchain in {
\t\ttype filter hook input priority filter - 1; policy accept;
\t\tip daddr @vips drop
\t}
}
table ip6 keepalived {
\tset vips {
\t\ttype ipv6_addr
\t\telements = { 2001:db8::100 }
\t}

\tset neighbor-discovery {
\t\ttype icmpv6_type
\t\tflags constant
\t\telements = { nd-neighbor-solicit,
\t\t\t     nd-neighbor-advert }
\t}

\tchain out {
\t\ttype filter hook output priority filter - 1; policy accept;
\t\ticmpv6 type @neighbor-discovery accept
\t\tip6 saddr fe80::/10 goto out_link_local
\t\tip6 saddr @vips drop
\t}

\tchain in {
\t\ttype filter hook input priority filter - 1; policy accept;
\t\ticmpv6 type @neighbor-discovery accept
\t\tip6 daddr fe80::/10 goto in_link_local
\t\tip6 daddr @vips drop
\t}

\tchain in_link_local {
\t}

\tchain out_link_local {
\t}
}
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a",), "keepalived", "nft") as the_lab:
        yield the_lab


def ruleset(lab: Lab) -> str:
    return lab.run("a", "nft", "list", "ruleset").stdout


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
@pytest.mark.parametrize("keyword", [("nftables",), ()], ids=["nftables", "no-keyword"])
def test_strict_master_drops_traffic_to_its_addresses_as_keepalived(
    lab: Lab, kind: str, keyword: tuple[str, ...]
) -> None:
    conf = Vrrp(
        priority=100,
        advert_int=1,
        vips=("192.0.2.100/24", "192.0.2.101/24"),
        global_extra=("vrrp_strict", *keyword),
        trailer=(
            "vrrp_instance VI_6 {",
            "    interface eth0",
            "    virtual_router_id 52",
            "    priority 100",
            "    advert_int 1",
            "    virtual_ipaddress {",
            "        2001:db8::100/64",
            "    }",
            "}",
        ),
    )
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    wait_until(lambda: a.holds_vip() and vip_present(lab, "a", "2001:db8::100"), 15, what="both MASTER")
    wait_until(lambda: "2001:db8::100" in ruleset(lab), 5, what="the filter")
    assert ruleset(lab) == EXPECTED
    assert a.stop() == 0
    left = ruleset(lab)
    assert "192.0.2.100" not in left and "2001:db8::100" not in left
    if kind == KPD:
        assert left == ""


def strict_ipv4_master(lab: Lab, kind: str, *global_extra: str) -> Daemon:
    """Node a MASTER of 192.0.2.100 and .101 with vrrp_strict and ``global_extra``, its filter in place."""
    conf = Vrrp(priority=100, advert_int=1, vips=("192.0.2.100/24", "192.0.2.101/24"),
                global_extra=("vrrp_strict", *global_extra))
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    wait_until(lambda: a.holds_vip(), 15, what="MASTER")
    wait_until(lambda: "192.0.2.101" in ruleset(lab), 5, what="the filter")
    return a


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_nftables_priority_and_counters_as_keepalived(lab: Lab, kind: str) -> None:
    """``nftables_priority -5`` moves the chains; ``nftables_counters`` puts a counter in every rule."""
    a = strict_ipv4_master(lab, kind, "nftables", "nftables_priority -5", "nftables_counters")
    text = re.sub(r"packets \d+ bytes \d+", "packets # bytes #", ruleset(lab))
    expected = EXPECTED.split("table ip6")[0].replace("filter - 1", "filter - 5")
    expected = expected.replace("@vips drop", "@vips counter packets # bytes # drop")
    assert text == expected
    assert a.stop() == 0


LINK_LOCAL = {
    "index": ("vips_link_local", "ipv6_addr . iface_index", "iif", "oif"),
    "name": ("vips_link_local_name", "ipv6_addr . ifname", "iifname", "oifname"),
    "nftables_ifindex": ("vips_link_local", "ipv6_addr . iface_index", "iif", "oif"),
}


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
@pytest.mark.parametrize("key", list(LINK_LOCAL))
def test_a_link_local_vip_is_filtered_with_its_interface(lab: Lab, kind: str, key: str) -> None:
    """A link-local VIP means something only with its interface: keepalived keys it by (address, interface
    index) in set vips_link_local -- by name with dont_track_primary, unless nftables_ifindex -- and drops
    it in the link-local chains. kpd used to put it in ``vips``, which link-local traffic never reaches."""
    conf = Vrrp(
        priority=100,
        advert_int=0.5,
        family=6,
        vips=("2001:db8::100/64", "fe80::100/64"),
        global_extra=("vrrp_strict", "nftables", *([key] if key == "nftables_ifindex" else [])),
        instance_extra=("dont_track_primary",) if key != "index" else (),
    )
    a = Daemon(lab, "a", conf, kind=kind)
    a.start()
    wait_until(lambda: a.holds_vip(), 15, what="MASTER")
    wait_until(lambda: "fe80::100" in ruleset(lab), 5, what="the filter")
    name, kind_of, iif, oif = LINK_LOCAL[key]
    text = ruleset(lab)
    elements = '{ fe80::100 . "eth0" }'
    assert f"\tset {name} {{\n\t\ttype {kind_of}\n\t\telements = {elements}\n\t}}" in text, text
    assert f"\tchain in_link_local {{\n\t\tip6 daddr . {iif} @{name} drop\n\t}}" in text, text
    assert f"\tchain out_link_local {{\n\t\tip6 saddr . {oif} @{name} drop\n\t}}" in text, text
    assert "elements = { 2001:db8::100 }" in text  # the global VIP alone in vips
    assert a.stop() == 0


@pytest.mark.parametrize("kind", [KPD, KEEPALIVED])
def test_vrrp_iptables_means_keepalived_s_nftables_filter_as_debian_s_keepalived_takes_it(
    lab: Lab, kind: str
) -> None:
    """keepalived built with nftables and without iptables (Debian 12's 2.2.7) takes ``vrrp_iptables`` for
    ``nftables``: table keepalived at the default priority, whatever a ``nftables`` or ``nftables_priority``
    before it said ("iptables not supported, using nftables instead")."""
    a = strict_ipv4_master(lab, kind, "nftables other", "nftables_priority -5", "vrrp_iptables IN OUT")
    assert ruleset(lab) == EXPECTED.split("table ip6")[0]
    assert "iptables not supported, using nftables instead" in a.log()
    assert a.stop() == 0
