"""Thin Linux I/O shells for VRRP: raw advert sockets, virtual addresses, GARP/NA, link state.

Every object here works in the network namespace of the thread that created it (its sockets stay there),
never blocks an event loop, and takes plain data (addresses, interface names), not configuration objects.

* :mod:`.sockets` -- :class:`VrrpSocket` (multicast / unicast, IPv4 / IPv6, protocol 112);
* :mod:`.addresses` -- :class:`AddressManager`, :class:`AddressSpec`, :func:`primary_address`;
* :mod:`.announce` -- :class:`Announcer` (gratuitous ARP, unsolicited neighbour advertisements);
* :mod:`.links` -- :class:`LinkMonitor` (up/down from rtnetlink), :class:`RtNetlink`.
"""

from __future__ import annotations

from keepalived_py.vrrp.net.addresses import AddressError, AddressManager, AddressSpec, primary_address
from keepalived_py.vrrp.net.announce import Announcer, Frame, Scheduled
from keepalived_py.vrrp.net.links import LinkEvent, LinkInfo, LinkMonitor, RtNetlink, flags_up, link_state
from keepalived_py.vrrp.net.sockets import (
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    VRRP_TTL,
    Received,
    VrrpSocket,
    ttl_acceptable,
)

__all__ = [
    "VRRP_GROUP_V4",
    "VRRP_GROUP_V6",
    "VRRP_TTL",
    "AddressError",
    "AddressManager",
    "AddressSpec",
    "Announcer",
    "Frame",
    "LinkEvent",
    "LinkInfo",
    "LinkMonitor",
    "Received",
    "RtNetlink",
    "Scheduled",
    "VrrpSocket",
    "flags_up",
    "link_state",
    "primary_address",
    "ttl_acceptable",
]
