"""Test support: the metrics kpd's Prometheus endpoint exposes, the one list the etc/ checks compare with.

TODO: replace this list by the declarations in ``keepalived_py.control.metrics`` once that module is
merged (it is written on another branch); the tests of etc/prometheus and etc/grafana then follow it.
"""

from __future__ import annotations

import re

#: metric family name -> type, exactly as kpd exposes them (counters with their ``_total``)
EXPECTED_METRICS: dict[str, str] = {
    "kpd_vrrp_instance_state": "gauge",
    "kpd_vrrp_base_priority": "gauge",
    "kpd_vrrp_effective_priority": "gauge",
    "kpd_vrrp_transitions_total": "counter",
    "kpd_vrrp_adverts_sent_total": "counter",
    "kpd_vrrp_adverts_received_total": "counter",
    "kpd_vrrp_adverts_dropped_total": "counter",
    "kpd_vrrp_master_info": "gauge",
    "kpd_vrrp_seconds_since_last_transition": "gauge",
    "kpd_vrrp_tracker_up": "gauge",
    "kpd_vrrp_tracker_weight": "gauge",
    "kpd_virtual_server_quorum_up": "gauge",
    "kpd_real_server_up": "gauge",
    "kpd_real_server_weight": "gauge",
    "kpd_real_server_checks_total": "counter",
    "kpd_real_server_check_duration_seconds": "histogram",
    "kpd_real_server_seconds_since_last_change": "gauge",
    "kpd_ipvs_operations_total": "counter",
    "kpd_ipvs_service_connections_total": "counter",
    "kpd_ipvs_service_packets_total": "counter",
    "kpd_ipvs_service_bytes_total": "counter",
    "kpd_child_up": "gauge",
    "kpd_child_restarts_total": "counter",
    "kpd_child_heartbeat_age_seconds": "gauge",
    "kpd_child_loop_lag_seconds": "histogram",
    "kpd_child_resident_memory_bytes": "gauge",
    "kpd_child_cpu_seconds_total": "counter",
    "kpd_child_open_fds": "gauge",
    "kpd_checks_late_total": "counter",
    "kpd_reloads_total": "counter",
    "kpd_config_generation": "gauge",
    "kpd_last_reload_successful": "gauge",
}

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# a metric name in PromQL: not part of a longer identifier, nor of a recording rule name (``a:kpd_b``)
_METRIC_RE = re.compile(r"(?<![\w:])kpd_[A-Za-z0-9_]*(?![\w:])")


def exposed_series_names() -> set[str]:
    """The ``__name__`` values a scrape of kpd yields (a histogram: ``_bucket``, ``_sum``, ``_count``)."""
    names = set()
    for name, kind in EXPECTED_METRICS.items():
        if kind == "histogram":
            names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
        else:
            names.add(name)
    return names


def metric_names_in(expr: str) -> set[str]:
    """The ``kpd_...`` names a PromQL expression selects (string literals removed first)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    return set(_METRIC_RE.findall(without_strings))


def family_of(series_name: str) -> str:
    """The metric family of an exposed series name (``..._bucket`` of a histogram -> the histogram)."""
    for suffix in HISTOGRAM_SUFFIXES:
        base = series_name.removesuffix(suffix)
        if base != series_name and EXPECTED_METRICS.get(base) == "histogram":
            return base
    return series_name
