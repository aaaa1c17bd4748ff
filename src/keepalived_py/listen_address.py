"""``ADDR:PORT`` of a TCP listener (the metrics endpoint): ``127.0.0.1:9650``, ``[::1]:9650``.

An address is required (never a bare port, so nothing listens on every address unless ``0.0.0.0`` or
``[::]`` says so); shared by the ``kpd_metrics_listen`` keyword and ``kpd start --metrics-listen``.
"""

from __future__ import annotations

from ipaddress import ip_address


def parse_listen_address(text: str) -> tuple[str, int]:
    """``(address, port)``; ValueError with a message saying what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"'{text[:60]}' is not ADDR:PORT (e.g. 127.0.0.1:9650 or [::1]:9650)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ValueError(f"'{text[:60]}': only an IPv6 address goes in brackets")
    elif ":" in host:
        raise ValueError(f"'{text[:60]}': an IPv6 address goes in brackets ([::1]:9650)")
    try:
        ip_address(host)
    except ValueError:
        raise ValueError(f"'{host[:60]}' is not an IP address") from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"'{port_text[:20]}' is not a port (1-65535)")
    return host, int(port_text)
