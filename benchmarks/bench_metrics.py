"""What a Prometheus scrape costs the parent: rendering the metrics of N VRRP instances and M real servers.

    .venv/bin/python benchmarks/bench_metrics.py [--trials 5]

In-process, no daemon: the snapshot is what the parent builds from its children's status files (the
instances as the VRRP child writes them, with two trackers, three transitions and two drop reasons each;
the real servers with an HTTP_GET each, its duration histogram, in virtual servers of 10), rendered by
``prometheus_client`` as the endpoint does. The parent renders at most once per second whatever the scrapes
(control/metrics_http.py), and its loop does nothing else meanwhile: this is how long that is.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from keepalived_py.control.metrics import Snapshot, SnapshotCollector
from keepalived_py.histogram import DURATION_BUCKETS, LAG_BUCKETS, Histogram


def snapshot(instances: int, real_servers: int) -> Snapshot:
    durations = Histogram(DURATION_BUCKETS)
    for x in (0.002, 0.004, 0.03):
        durations.observe(x)
    lag = Histogram(LAG_BUCKETS)
    lag.observe(0.001)

    def instance(i: int) -> dict[str, Any]:
        return {
            "name": f"VI_{i}", "vrid": i % 255 + 1, "state": "MASTER", "base_priority": 150,
            "effective_priority": 150, "master_address": "192.0.2.1", "last_transition": time.time() - 60,
            "transitions": [{"to": "BACKUP", "reason": "startup", "count": 1},
                            {"to": "MASTER", "reason": "master_down", "count": 1},
                            {"to": "BACKUP", "reason": "higher_priority", "count": 1}],
            "counters": {"adverts_sent": 1000, "adverts_received": 10, "priority_zero_sent": 0,
                         "priority_zero_received": 1},
            "drops": {"ttl": 1, "auth_password": 2},
            "trackers": [{"type": "script", "name": "chk", "weight": -20, "reverse": False, "up": True},
                         {"type": "interface", "name": "eth1", "weight": 0, "reverse": False, "up": True}],
        }

    def real_server(j: int) -> dict[str, Any]:
        return {"name": f"[10.0.{j // 250}.{j % 250}]:tcp:8080", "state": "UP", "weight": 1,
                "in_ipvs": True, "last_change": time.time() - 60,
                "checks": [{"type": "HTTP_GET", "probes": 100, "failures": 1,
                            "durations": durations.to_json()}]}

    vss = [{"name": f"[192.0.2.{v}]:tcp:80", "quorum": "UP",
            "real_servers": [real_server(v * 10 + k) for k in range(10)]} for v in range(real_servers // 10)]
    child = {"healthy": True, "restarts_by_reason": {}, "heartbeat_age": 0.1, "rss_bytes": 1 << 25,
             "cpu_seconds": 3.0, "open_fds": 20, "loop_lag": {"histogram": lag.to_json()}}
    return Snapshot(
        status={"instances": [instance(i) for i in range(instances)], "config_generation": 0,
                "children": {"vrrp": child, "checker": {**child, "late_checks": 0}}},
        checker={"virtual_servers": vss,
                 "ipvs_ops": [{"service": f"TCP 192.0.2.{v}:80", "kind": "add_dest", "result": "ok",
                               "count": 10} for v in range(real_servers // 10)]},
        ipvs_stats={f"TCP 192.0.2.{v}:80": {"connections": 1, "packets_in": 2, "packets_out": 2,
                                            "bytes_in": 100, "bytes_out": 100}
                    for v in range(real_servers // 10)},
    )


def render(snap: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snap))
    return bytes(generate_latest(registry))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    print("| instances | real servers | series | exposition | render (median of "
          f"{args.trials}) |\n|---|---|---|---|---|")
    for instances, real_servers in ((10, 10), (100, 100), (1000, 0), (0, 1000), (1000, 1000)):
        snap = snapshot(instances, real_servers)
        times = []
        for _ in range(args.trials):
            began = time.perf_counter()
            text = render(snap)
            times.append(time.perf_counter() - began)
        series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
        print(f"| {instances} | {real_servers} | {series:,} | {len(text) / 1e6:.2f} MB | "
              f"{statistics.median(times) * 1000:.1f} ms |", flush=True)


if __name__ == "__main__":
    main()
