"""What kpd does not do (yet) of what keepalived does, in words shared by several keyword declarations
(``Keyword.partial``): each use of such a keyword is reported by check-config and listed in the docs."""

from __future__ import annotations

NO_FIREWALL = (
    "with 'nftables' in global_defs kpd installs keepalived's nftables filter (traffic to and from the VIPs "
    "of a MASTER without accept mode dropped); without it none, as Debian's keepalived (built without "
    "iptables): a keepalived built with iptables adds iptables/ipset rules, which kpd does not"
)
