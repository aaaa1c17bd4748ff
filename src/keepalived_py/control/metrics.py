"""kpd's Prometheus metrics: declared once here, built from what the parent holds, documented from the
declarations (``python -m keepalived_py.control.metrics`` writes docs/metrics.md).

Every metric is a :class:`Metric` in :data:`METRICS` (name, type, labels, help). :func:`families` turns a
:class:`Snapshot` — the parent's status of its children, the VRRP child's and the Checkers child's status
files, the kernel's IPVS counters — into ``prometheus_client`` metric families; the exposition format is
``prometheus_client``'s (:class:`SnapshotCollector` plugs :func:`families` into a registry). Nothing here
talks to a child or to the kernel: a scrape is answered from what the parent already has.

Names follow Prometheus' conventions: the ``kpd_`` prefix, base units (seconds, bytes), ``_total`` for
counters. Counters count since the child (or the parent) started; a restarted child starts them again,
which ``rate()`` and ``increase()`` handle as a counter reset.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.core import (
    Metric as Family,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

#: the VRRP states an instance can be reported in (UNKNOWN: its child is not running or not heartbeating)
VRRP_STATES = ("INIT", "BACKUP", "MASTER", "FAULT", "STOP", "UNKNOWN")


@dataclass(frozen=True)
class Metric:
    name: str
    type: str  # "gauge", "counter" or "histogram"
    labels: tuple[str, ...]
    help: str
    #: the part of kpd it describes (a heading in docs/metrics.md)
    group: str


def _m(group: str, name: str, type_: str, labels: str, help_: str) -> Metric:
    return Metric(name, type_, tuple(labels.split()), help_, group)


VRRP, CHECK, CHILD = "VRRP instances", "Virtual and real servers", "The daemon and its children"

METRICS: tuple[Metric, ...] = (
    _m(VRRP, "kpd_vrrp_instance_state", "gauge", "instance vrid state",
       "1 for the instance's current state, 0 for the others (INIT, BACKUP, MASTER, FAULT, STOP, UNKNOWN; "
       "UNKNOWN while the VRRP child is not running or not heartbeating)."),
    _m(VRRP, "kpd_vrrp_base_priority", "gauge", "instance", "The configured priority."),
    _m(VRRP, "kpd_vrrp_effective_priority", "gauge", "instance",
       "The priority advertised: the base plus the weights of the tracked objects."),
    _m(VRRP, "kpd_vrrp_transitions_total", "counter", "instance to reason",
       "State transitions by new state and reason (startup, master_down, higher_priority, "
       "equal_priority_higher_address, priority_zero, fault, fault_cleared, sync_group, route_deleted, "
       "address_owner, resumed, shutdown)."),
    _m(VRRP, "kpd_vrrp_adverts_sent_total", "counter", "instance", "Adverts sent."),
    _m(VRRP, "kpd_vrrp_adverts_received_total", "counter", "instance", "Adverts received and accepted."),
    _m(VRRP, "kpd_vrrp_adverts_dropped_total", "counter", "instance reason",
       "Received adverts dropped, by the receive check that refused them (docs/status.md lists them)."),
    _m(VRRP, "kpd_vrrp_priority_zero_sent_total", "counter", "instance",
       "Priority-0 adverts sent (a MASTER giving up)."),
    _m(VRRP, "kpd_vrrp_priority_zero_received_total", "counter", "instance",
       "Priority-0 adverts received."),
    _m(VRRP, "kpd_vrrp_master_info", "gauge", "instance master_address",
       "1, with the address of the MASTER this instance last heard (itself when MASTER)."),
    _m(VRRP, "kpd_vrrp_seconds_since_last_transition", "gauge", "instance",
       "Seconds since the instance last changed state."),
    _m(VRRP, "kpd_vrrp_tracker_up", "gauge", "instance type name",
       "1 while a tracked object (type script, interface, file, process) is up, 0 while it is down "
       "(a file: while its value is not a fault); absent for a script with no result yet."),
    _m(VRRP, "kpd_vrrp_tracker_weight", "gauge", "instance type name",
       "The tracked object's configured weight (negative for reverse)."),
    _m(CHECK, "kpd_virtual_server_quorum_up", "gauge", "virtual_server",
       "1 while the virtual server has its quorum of live weight, else 0."),
    _m(CHECK, "kpd_real_server_up", "gauge", "virtual_server real_server",
       "1 while every checker of the real server passes, else 0."),
    _m(CHECK, "kpd_real_server_weight", "gauge", "virtual_server real_server",
       "The real server's weight in IPVS; absent while it is not in IPVS."),
    _m(CHECK, "kpd_real_server_checks_total", "counter", "virtual_server real_server checker result",
       "Checks run, by checker type (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, ...) and result (success, "
       "failure). A checker shared by several real servers counts for each."),
    _m(CHECK, "kpd_real_server_check_duration_seconds", "histogram", "virtual_server real_server checker",
       "How long the checks took."),
    _m(CHECK, "kpd_real_server_seconds_since_last_change", "gauge", "virtual_server real_server",
       "Seconds since the real server last went up or down (or since the Checkers child started)."),
    _m(CHECK, "kpd_ipvs_operations_total", "counter", "service kind result",
       "IPVS operations by virtual service, kind (add_service, set_service, del_service, add_dest, "
       "set_dest, del_dest) and result (ok, error)."),
    _m(CHECK, "kpd_ipvs_service_connections_total", "counter", "service",
       "The kernel's count of connections scheduled by the virtual service (read from IPVS, at most once "
       "per scrape interval)."),
    _m(CHECK, "kpd_ipvs_service_packets_total", "counter", "service direction",
       "The kernel's count of packets of the virtual service, direction in or out."),
    _m(CHECK, "kpd_ipvs_service_bytes_total", "counter", "service direction",
       "The kernel's count of bytes of the virtual service, direction in or out."),
    _m(CHECK, "kpd_checks_late_total", "counter", "",
       "Checks that started more than 0.1 s after they were due (the Checkers child cannot keep up)."),
    _m(CHILD, "kpd_child_up", "gauge", "child",
       "1 while the child (vrrp, checker) runs and heartbeats, else 0."),
    _m(CHILD, "kpd_child_restarts_total", "counter", "child reason",
       "Child restarts by reason: died (exited or was killed) or hung (silent past its hung timeout)."),
    _m(CHILD, "kpd_child_heartbeat_age_seconds", "gauge", "child",
       "Seconds since the child's last heartbeat."),
    _m(CHILD, "kpd_child_loop_lag_seconds", "histogram", "child",
       "How late the child's event loop ran a timer (sampled every 0.1 s since the child started)."),
    _m(CHILD, "kpd_child_resident_memory_bytes", "gauge", "child", "The child's resident memory."),
    _m(CHILD, "kpd_child_cpu_seconds_total", "counter", "child",
       "CPU time the child has used (user + system)."),
    _m(CHILD, "kpd_child_open_fds", "gauge", "child", "Descriptors the child has open."),
    _m(CHILD, "kpd_reloads_total", "counter", "result",
       "Configuration reloads by result: accepted or rejected (the running configuration kept)."),
    _m(CHILD, "kpd_config_generation", "gauge", "",
       "The configuration generation in force: 0 at start, one more per accepted reload."),
    _m(CHILD, "kpd_last_reload_successful", "gauge", "",
       "0 when the last reload was rejected, else 1 (also before any reload)."),
)

BY_NAME = {m.name: m for m in METRICS}


@dataclass
class Snapshot:
    """What one scrape reports: the parent's ``status()`` document, the Checkers child's status file
    (``virtual_servers``, ``stats``, ``ipvs_ops``), reload counts and the kernel's IPVS counters."""

    status: Mapping[str, Any]
    checker: Mapping[str, Any] = field(default_factory=dict)
    reloads: Mapping[str, int] = field(default_factory=dict)
    #: str(ServiceKey) -> {"connections", "packets_in", ...}; None when IPVS could not be read
    ipvs_stats: Mapping[str, Mapping[str, int]] | None = None
    #: wall-clock time of the scrape
    time: float = field(default_factory=time.time)


class _Families:
    """One family per declared metric, created on first use (a metric with no sample is left out)."""

    def __init__(self) -> None:
        self.out: dict[str, Family] = {}

    def _family(self, name: str) -> Any:
        fam = self.out.get(name)
        if fam is None:
            m = BY_NAME[name]
            kind = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily,
                    "histogram": HistogramMetricFamily}[m.type]
            fam = self.out[name] = kind(m.name, m.help, labels=list(m.labels))
        return fam

    def add(self, name: str, labels: Iterable[object], value: float) -> None:
        self._family(name).add_metric([str(x) for x in labels], value)

    def histogram(self, name: str, labels: Iterable[object], hist: Any) -> None:
        """``hist``: a :meth:`~keepalived_py.histogram.Histogram.to_json` record (ignored if malformed)."""
        if not isinstance(hist, dict):
            return
        bounds, counts, total = hist.get("bounds"), hist.get("counts"), hist.get("sum")
        if not (isinstance(bounds, list) and isinstance(counts, list) and len(counts) == len(bounds) + 1
                and isinstance(total, int | float)):
            return
        buckets, running = [], 0
        for bound, count in zip([*bounds, float("inf")], counts, strict=True):
            if not isinstance(bound, int | float) or not isinstance(count, int):
                return
            running += count
            buckets.append((_go_float(bound), running))
        self._family(name).add_metric([str(x) for x in labels], buckets, total)


def _go_float(value: float) -> str:
    """A bucket bound as Prometheus writes it ("0.25", "+Inf")."""
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def families(snap: Snapshot) -> list[Family]:
    """The metric families of a snapshot, in declaration order."""
    f = _Families()
    _vrrp(f, snap)
    _checker(f, snap)
    _children(f, snap)
    return [f.out[m.name] for m in METRICS if m.name in f.out]


def _vrrp(f: _Families, snap: Snapshot) -> None:
    for inst in _list(snap.status.get("instances")):
        if not isinstance(inst, dict) or not isinstance(inst.get("name"), str):
            continue
        name = inst["name"]
        state, vrid = inst.get("state"), inst.get("vrid")
        vrid = vrid if isinstance(vrid, int) and not isinstance(vrid, bool) else ""
        for s in VRRP_STATES:
            f.add("kpd_vrrp_instance_state", (name, vrid, s), 1.0 if s == state else 0.0)
        for metric, key in (("kpd_vrrp_base_priority", "base_priority"),
                            ("kpd_vrrp_effective_priority", "effective_priority")):
            value = _number(inst.get(key))
            if value is not None:
                f.add(metric, (name,), value)
        for t in _list(inst.get("transitions")):
            if isinstance(t, dict) and _number(t.get("count")) is not None:
                f.add("kpd_vrrp_transitions_total", (name, t.get("to"), t.get("reason")), t["count"])
        counters = _dict(inst.get("counters"))
        for metric, key in (("kpd_vrrp_adverts_sent_total", "adverts_sent"),
                            ("kpd_vrrp_adverts_received_total", "adverts_received"),
                            ("kpd_vrrp_priority_zero_sent_total", "priority_zero_sent"),
                            ("kpd_vrrp_priority_zero_received_total", "priority_zero_received")):
            value = _number(counters.get(key))
            if value is not None:
                f.add(metric, (name,), value)
        for reason, count in sorted(_dict(inst.get("drops")).items()):
            if _number(count) is not None:
                f.add("kpd_vrrp_adverts_dropped_total", (name, reason), count)
        if isinstance(inst.get("master_address"), str):
            f.add("kpd_vrrp_master_info", (name, inst["master_address"]), 1.0)
        since = _number(inst.get("last_transition"))
        if since is not None:
            f.add("kpd_vrrp_seconds_since_last_transition", (name,), max(0.0, snap.time - since))
        for tr in _list(inst.get("trackers")):
            if not isinstance(tr, dict):
                continue
            labels = (name, tr.get("type"), tr.get("name"))
            if isinstance(tr.get("up"), bool):
                f.add("kpd_vrrp_tracker_up", labels, 1.0 if tr["up"] else 0.0)
            weight = _number(tr.get("weight"))
            if weight is not None:
                f.add("kpd_vrrp_tracker_weight", labels, -weight if tr.get("reverse") else weight)


def _checker(f: _Families, snap: Snapshot) -> None:
    for vs in _list(snap.checker.get("virtual_servers")):
        if not isinstance(vs, dict) or not isinstance(vs.get("name"), str):
            continue
        vname = vs["name"]
        f.add("kpd_virtual_server_quorum_up", (vname,), 1.0 if vs.get("quorum") == "UP" else 0.0)
        for rs in _list(vs.get("real_servers")):
            if not isinstance(rs, dict) or not isinstance(rs.get("name"), str):
                continue
            labels = (vname, rs["name"])
            f.add("kpd_real_server_up", labels, 1.0 if rs.get("state") == "UP" else 0.0)
            weight = _number(rs.get("weight"))
            if rs.get("in_ipvs") and weight is not None:
                f.add("kpd_real_server_weight", labels, weight)
            changed = _number(rs.get("last_change"))
            if changed is not None:
                f.add("kpd_real_server_seconds_since_last_change", labels, max(0.0, snap.time - changed))
            _checks(f, labels, _list(rs.get("checks")))
    for op in _list(snap.checker.get("ipvs_ops")):
        if isinstance(op, dict) and _number(op.get("count")) is not None:
            f.add("kpd_ipvs_operations_total", (op.get("service"), op.get("kind"), op.get("result")),
                  op["count"])
    for service, stats in sorted((snap.ipvs_stats or {}).items()):
        if "connections" in stats:
            f.add("kpd_ipvs_service_connections_total", (service,), stats["connections"])
        for direction in ("in", "out"):
            if f"packets_{direction}" in stats:
                f.add("kpd_ipvs_service_packets_total", (service, direction), stats[f"packets_{direction}"])
            if f"bytes_{direction}" in stats:
                f.add("kpd_ipvs_service_bytes_total", (service, direction), stats[f"bytes_{direction}"])


def _checks(f: _Families, labels: tuple[str, str], checks: Iterable[Any]) -> None:
    """A real server's checks, summed by checker type (two HTTP_GETs of one server make one series)."""
    runs: dict[tuple[str, str], float] = {}
    durations: dict[str, dict[str, Any]] = {}
    for c in checks:
        if not isinstance(c, dict) or not isinstance(c.get("type"), str):
            continue
        kind = c["type"]
        probes, failures = _number(c.get("probes")), _number(c.get("failures"))
        if probes is None or failures is None:
            continue
        runs[kind, "success"] = runs.get((kind, "success"), 0.0) + probes - failures
        runs[kind, "failure"] = runs.get((kind, "failure"), 0.0) + failures
        hist = c.get("durations")
        if (isinstance(hist, dict) and isinstance(hist.get("counts"), list)
                and _number(hist.get("sum")) is not None
                and all(isinstance(n, int) and not isinstance(n, bool) for n in hist["counts"])):
            have = durations.get(kind)
            if have is None:
                durations[kind] = {**hist, "counts": list(hist["counts"])}
            elif have.get("bounds") == hist.get("bounds") and len(have["counts"]) == len(hist["counts"]):
                have["counts"] = [a + b for a, b in zip(have["counts"], hist["counts"], strict=True)]
                have["sum"] = have["sum"] + hist["sum"]
    for (kind, result), n in sorted(runs.items()):
        f.add("kpd_real_server_checks_total", (*labels, kind, result), n)
    for kind, hist in sorted(durations.items()):
        f.histogram("kpd_real_server_check_duration_seconds", (*labels, kind), hist)


def _children(f: _Families, snap: Snapshot) -> None:
    status = snap.status
    for kind, child in sorted(_dict(status.get("children")).items()):
        if not isinstance(child, dict):
            continue
        f.add("kpd_child_up", (kind,), 1.0 if child.get("healthy") else 0.0)
        by_reason = _dict(child.get("restarts_by_reason"))
        for reason in ("died", "hung"):
            f.add("kpd_child_restarts_total", (kind, reason), _number(by_reason.get(reason)) or 0.0)
        for metric, key in (("kpd_child_heartbeat_age_seconds", "heartbeat_age"),
                            ("kpd_child_resident_memory_bytes", "rss_bytes"),
                            ("kpd_child_cpu_seconds_total", "cpu_seconds"),
                            ("kpd_child_open_fds", "open_fds")):
            value = _number(child.get(key))
            if value is not None:
                f.add(metric, (kind,), value)
        lag = child.get("loop_lag")
        if isinstance(lag, dict):
            f.histogram("kpd_child_loop_lag_seconds", (kind,), lag.get("histogram"))
        if kind == "checker" and _number(child.get("late_checks")) is not None:
            f.add("kpd_checks_late_total", (), child["late_checks"])
    for result in ("accepted", "rejected"):
        f.add("kpd_reloads_total", (result,), snap.reloads.get(result, 0))
    generation = _number(status.get("config_generation"))
    if generation is not None:
        f.add("kpd_config_generation", (), generation)
    reload = status.get("reload")
    f.add("kpd_last_reload_successful", (),
          0.0 if isinstance(reload, dict) and reload.get("ok") is False else 1.0)


class SnapshotCollector(Collector):
    """A ``prometheus_client`` collector answering from ``take()``, a fresh :class:`Snapshot` per scrape."""

    def __init__(self, take: Any) -> None:
        self._take = take

    def collect(self) -> Iterator[Family]:
        yield from families(self._take())

    def describe(self) -> list[Family]:
        return []  # no samples at registration: the registry must not call collect() then


def reference() -> str:
    """docs/metrics.md: every metric with its type, labels and meaning."""
    lines = [
        "# Metrics",
        "",
        "<!-- generated by `make docs` (python -m keepalived_py.control.metrics) from the declarations "
        "in src/keepalived_py/control/metrics.py: do not edit -->",
        "",
        "kpd's parent serves these at `http://ADDR:PORT/metrics` when `kpd_metrics_listen ADDR:PORT` "
        "(global_defs) or `kpd start --metrics-listen ADDR:PORT` says where (the flag wins; off by default).",
        "The exposition is `prometheus_client`'s. A scrape is answered from what the parent already holds "
        "(the children's heartbeats and status files): it never waits for a child and costs the children "
        "nothing. The answer is computed at most once per second, and at most once per ten times its own "
        "computing time (scrapes in between get the same one; it is never older than 10 s). The kernel's "
        "IPVS counters are read by a thread of the parent when a scrape asks, at most once a second, and "
        "shown by the next scrape: a scrape never waits for the kernel.",
        "",
        "Counters count since the process that keeps them started (a child's since the child started): a "
        "restarted child starts again from 0, which `rate()` and `increase()` treat as a counter reset.",
        "",
        "The label `instance` is the VRRP instance's name. Prometheus gives a scrape target's own label "
        "that name too, and renames the scraped one to `exported_instance` unless the scrape job sets "
        "`honor_labels: true`; the alert rules in etc/prometheus/kpd.rules.yml group by `vrid` and `job`, "
        "never by it (docs/alerting.md).",
        "",
        "The listener serves at most 16 connections at a time, gives each 5 s to send its request (at most "
        "8 KiB) and 10 s to take the answer, and closes it after one answer; past 16, the oldest is "
        "closed. Only `GET` and `HEAD` of `/metrics` are answered (`/` says where the metrics are).",
        "",
    ]
    for group in (VRRP, CHECK, CHILD):
        lines += [f"## {group}", "", "| metric | type | labels | meaning |", "|---|---|---|---|"]
        for m in METRICS:
            if m.group == group:
                labels = ", ".join(f"`{x}`" for x in m.labels) or "—"
                lines.append(f"| `{m.name}` | {m.type} | {labels} | {m.help} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference())
