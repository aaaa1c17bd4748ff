"""keepalived's text dumps, written beside kpd's JSON ones: SIGUSR1 writes ``state_dump_file`` (default
``/tmp/keepalived.data``) and SIGUSR2 ``stats_dump_file`` (default ``/tmp/keepalived.stats``).

Pure rendering from the configuration and the status records the parent already has (the JSON dumps'
contents). The statistics file has keepalived 2.2.7's layout line for line (``vrrp_print_stats``), so
scripts that read it keep working. The data file has keepalived's sections and ``Name = value`` lines for
what kpd knows -- the global settings, and each instance's state, timers, priorities and addresses
(``dump_data_vrrp``); keepalived's lines about its own internals (file descriptors, interface debounce
timers, socket pools) are not there.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from keepalived_py.config.model import Config, VirtualAddress, VrrpInstance

__all__ = ["data_text", "stats_text"]


def _n(counts: Mapping[str, Any], *keys: str) -> int:
    return sum(int(counts.get(k, 0) or 0) for k in keys)


def stats_text(instances: Mapping[str, Mapping[str, Any]]) -> str:
    """keepalived.stats: per instance, its advert counters and the adverts dropped, by keepalived's
    classes of error."""
    lines: list[str] = []
    for name, record in instances.items():
        c = record.get("counters", {}) or {}
        d = record.get("drops", {}) or {}
        lines += [
            f"VRRP Instance: {name}",
            "  Advertisements:",
            f"    Received: {_n(c, 'adverts_received')}",
            f"    Sent: {_n(c, 'adverts_sent')}",
            f"  Became master: {_n(c, 'became_master')}",
            f"  Released master: {_n(c, 'released_master')}",
            "  Packet Errors:",
            f"    Length: {_n(d, 'length', 'too_short', 'ip_header')}",
            f"    TTL: {_n(d, 'ttl')}",
            f"    Invalid Type: {_n(d, 'type')}",
            f"    Advertisement Interval: {_n(d, 'interval', 'zero_interval')}",
            f"    Address List: {_n(d, 'address_list', 'address_count', 'zero_count')}",
            "  Authentication Errors:",
            "    Invalid Type: 0",
            f"    Type Mismatch: {_n(d, 'auth_type')}",
            f"    Failure: {_n(d, 'auth_password')}",
            "  Priority Zero:",
            f"    Received: {_n(c, 'priority_zero_received')}",
            f"    Sent: {_n(c, 'priority_zero_sent')}",
        ]
    return "".join(f"{line}\n" for line in lines)


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "0.000000 (never)"
    local = time.localtime(stamp)
    micro = round((stamp % 1) * 1_000_000) % 1_000_000
    return f"{stamp:.6f} ({time.strftime('%a %b %e %H:%M:%S', local)}.{micro:06d} {local.tm_year})"


def _vip(vip: VirtualAddress, dev: str, holding: bool) -> str:
    scope = vip.scope if isinstance(vip.scope, str) and vip.scope else "global"
    text = f"{vip.address} dev {vip.dev or dev} scope {scope}"
    if vip.label:
        text += f" label {vip.label}"
    return text + (" set" if holding else "")


def _instance_lines(inst: VrrpInstance, record: Mapping[str, Any], config: Config) -> list[str]:
    gd = config.global_defs
    dev = record.get("interface") or inst.interface or gd.default_interface or ""
    state = str(record.get("state", "INIT"))
    holding = state == "MASTER"
    lines = [
        f" VRRP Instance = {inst.name}",
        f"   VRRP Version = {record.get('version', inst.version or gd.vrrp_version)}",
        f"   State = {state}",
        f"   Last transition = {_when(record.get('last_transition'))}",
        f"   Interface = {dev}",
    ]
    if record.get("master_address"):
        lines.append(f"   Master router = {record['master_address']}")
    if inst.unicast_peer:
        lines.append("   Unicast Peer = " + ", ".join(str(p.address) for p in inst.unicast_peer))
    else:
        group = gd.vrrp_mcast_group6 if inst.family == 6 else gd.vrrp_mcast_group4
        lines.append(f"   Multicast address {group}")
    lines += [
        f"   Virtual Router ID = {inst.virtual_router_id}",
        f"   Priority = {record.get('base_priority', inst.priority)}",
        f"   Effective priority = {record.get('effective_priority', inst.priority)}",
        f"   Advert interval = {round(inst.advert_int * 1000)} milli-sec",
        f"   Preempt = {'disabled' if inst.nopreempt else 'enabled'}",
    ]
    vips = [v for v in inst.virtual_ipaddress if v.address.version == inst.family]
    lines.append(f"   Virtual IP ({len(vips)}):")
    lines += [f"     {_vip(v, dev, holding)}" for v in vips]
    if inst.virtual_ipaddress_excluded:
        lines.append(f"   Virtual IP Excluded ({len(inst.virtual_ipaddress_excluded)}):")
        lines += [f"     {_vip(v, dev, holding)}" for v in inst.virtual_ipaddress_excluded]
    for reason in record.get("tracking", []) or []:
        lines.append(f"   Tracking: {reason}")
    return lines


def data_text(config: Config, instances: Iterable[Mapping[str, Any]]) -> str:
    """keepalived.data: the global settings, then each VRRP instance as it runs now."""
    gd = config.global_defs
    lines = [
        "------< Global definitions >------",
        f" Network namespace = {config.net_namespace or '(default)'}",
        f" Router ID = {gd.router_id or ''}",
        f" Dynamic interfaces = {'true' if gd.dynamic_interfaces else 'false'}",
        f" Default interface = {gd.default_interface or ''}",
        f" VRRP IPv4 mcast group = {gd.vrrp_mcast_group4}",
        f" VRRP IPv6 mcast group = {gd.vrrp_mcast_group6}",
        f" Gratuitous ARP delay = {gd.vrrp_garp_master_delay:g}",
        f" Gratuitous ARP repeat = {gd.vrrp_garp_master_repeat}",
        f" Gratuitous ARP interval = {gd.vrrp_garp_interval:.6f}",
        f" Gratuitous NA interval = {gd.vrrp_gna_interval:.6f}",
        f" VRRP default protocol version = {gd.vrrp_version}",
        f" VRRP strict mode = {'true' if gd.vrrp_strict else 'false'}",
        f" Max auto priority = {gd.max_auto_priority}",
        f" VRRP realtime priority = {gd.vrrp_rt_priority}",
        "------< VRRP Topology >------",
    ]
    by_name = {str(r.get("name")): r for r in instances}
    for inst in config.vrrp_instances:
        lines += _instance_lines(inst, by_name.get(inst.name, {}), config)
    return "".join(f"{line}\n" for line in lines)
