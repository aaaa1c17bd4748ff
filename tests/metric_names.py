"""Test support: the metrics kpd's Prometheus endpoint exposes (from their declarations in
``keepalived_py.control.metrics``), which the etc/prometheus and etc/grafana checks compare with."""

from __future__ import annotations

import re

from keepalived_py.control.metrics import METRICS

#: metric family name -> type, exactly as kpd exposes them (counters with their ``_total``)
EXPECTED_METRICS: dict[str, str] = {m.name: m.type for m in METRICS}

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
