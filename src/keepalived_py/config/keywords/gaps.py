"""What kpd does not do (yet) of what keepalived does, in words shared by several keyword declarations
(``Keyword.partial``): each use of such a keyword is reported by check-config and listed in the docs."""

from __future__ import annotations

NO_FIREWALL = (
    "the packet-filter rules keepalived installs (nftables or iptables: traffic to the VIPs dropped while "
    "BACKUP, and while MASTER without accept mode) are not installed by kpd, so the VIPs accept traffic"
)
