"""kpd: a keepalived-compatible VRRP and LVS health-checking daemon."""

__version__ = "0.1.0"
