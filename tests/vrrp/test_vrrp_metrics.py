"""The VRRP metrics as Prometheus scrapes them: a kpd pair with ``kpd_metrics_listen``, each node's
``/metrics`` fetched over HTTP in its namespace and parsed with ``prometheus_client``'s parser, across a
failover, a preemption and forged adverts."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from nodes import (
    Daemon,
    Injector,
    Script,
    Vrrp,
    ipv4_datagram,
    open_lab,
    start_all,
    vrrp_payload,
    wait_until,
)
from prometheus_client.parser import text_string_to_metric_families

import promtool
from lab import Lab

pytestmark = pytest.mark.netns

METRICS_PORT = 9650
LISTEN = f"kpd_metrics_listen 127.0.0.1:{METRICS_PORT}"

RULES = Path(__file__).resolve().parents[2] / "etc" / "prometheus" / "kpd.rules.yml"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def lab() -> Iterator[Lab]:
    with open_lab(("a", "b", "c")) as the_lab:
        yield the_lab


def scrape_text(lab: Lab, node: str, path: str = "/metrics") -> str:
    url = f"http://127.0.0.1:{METRICS_PORT}{path}"
    with lab.enter(node), urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return str(answer.read().decode())


def scrape(lab: Lab, node: str) -> Samples:
    """Every sample of the node's exposition, by (sample name, labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(scrape_text(lab, node)):
        for s in family.samples:
            out[s.name, frozenset(s.labels.items())] = s.value
    return out


def value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def state_of(samples: Samples, instance: str = "VI_1", vrid: str = "51") -> str | None:
    """The state whose series is 1 (exactly one must be)."""
    on = [s for (n, labels), v in samples.items() if n == "kpd_vrrp_instance_state" and v == 1
          for k, s in labels
          if k == "state" and ("instance", instance) in labels and ("vrid", vrid) in labels]
    assert len(on) <= 1, on
    return on[0] if on else None


def test_state_transitions_and_drops_are_scraped_across_a_failover_and_forged_adverts(lab: Lab) -> None:
    conf = Vrrp(version=2, advert_int=1, global_extra=(LISTEN,))
    a = Daemon(lab, "a", replace(conf, priority=200))
    b = Daemon(lab, "b", replace(conf, priority=100))
    start_all(a, b)
    wait_until(lambda: state_of(scrape(lab, "a")) == "MASTER" and state_of(scrape(lab, "b")) == "BACKUP",
               20, what="a MASTER and b BACKUP in the metrics")
    sa, sb = scrape(lab, "a"), scrape(lab, "b")
    assert value(sa, "kpd_vrrp_base_priority", instance="VI_1") == 200
    assert value(sa, "kpd_vrrp_effective_priority", instance="VI_1") == 200
    assert value(sa, "kpd_vrrp_transitions_total", instance="VI_1", to="MASTER", reason="master_down") == 1
    assert value(sb, "kpd_vrrp_transitions_total", instance="VI_1", to="BACKUP", reason="startup") == 1
    assert value(sb, "kpd_vrrp_master_info", instance="VI_1", master_address=str(a.address)) == 1
    assert value(sa, "kpd_child_up", child="vrrp") == 1
    assert value(sa, "kpd_config_generation") == 0
    wait_until(lambda: (value(scrape(lab, "b"), "kpd_vrrp_adverts_received_total", instance="VI_1") or 0)
               >= 2
               and (value(scrape(lab, "a"), "kpd_vrrp_adverts_sent_total", instance="VI_1") or 0) >= 2,
               15, what="adverts sent by a and received by b counted")

    # Forged adverts from c: TTL 64 and a wrong VRRP version are dropped by both and counted by reason.
    c = lab.addr("c")
    args = {"version": 2, "vrid": 51, "priority": 254, "addresses": conf.addresses, "interval": 1.0,
            "password": None}
    with Injector(lab, "c") as inject:
        for _ in range(3):
            inject.send(ipv4_datagram(vrrp_payload(src=c, **args), src=c, ttl=64))  # type: ignore[arg-type]
            inject.send(ipv4_datagram(vrrp_payload(src=c, **{**args, "version": 3}),  # type: ignore[arg-type]
                                      src=c, ttl=255))
            time.sleep(0.05)

    def dropped(node: str) -> bool:
        s = scrape(lab, node)
        return (value(s, "kpd_vrrp_adverts_dropped_total", instance="VI_1", reason="ttl") == 3
                and value(s, "kpd_vrrp_adverts_dropped_total", instance="VI_1", reason="version") == 3)

    wait_until(lambda: dropped("a") and dropped("b"), 15, what="3 ttl and 3 version drops on both")
    assert state_of(scrape(lab, "a")) == "MASTER", "the forgeries changed nothing"

    # Failover: a stops (priority 0), b takes over at once.
    assert a.stop() == 0
    wait_until(lambda: state_of(scrape(lab, "b")) == "MASTER", 15, what="b MASTER in its metrics")
    sb = scrape(lab, "b")
    assert value(sb, "kpd_vrrp_transitions_total", instance="VI_1", to="MASTER", reason="priority_zero") == 1
    assert (value(sb, "kpd_vrrp_priority_zero_received_total", instance="VI_1") or 0) >= 1
    assert (value(sb, "kpd_vrrp_seconds_since_last_transition", instance="VI_1") or 99) < 10

    # Preemption: a comes back with the higher priority, b yields.
    a.start()
    a.wait_started()
    wait_until(lambda: state_of(scrape(lab, "a")) == "MASTER" and state_of(scrape(lab, "b")) == "BACKUP",
               20, what="a MASTER again, b BACKUP")
    sb = scrape(lab, "b")
    assert value(sb, "kpd_vrrp_transitions_total", instance="VI_1", to="BACKUP",
                 reason="higher_priority") == 1
    assert value(sb, "kpd_vrrp_transitions_total", instance="VI_1", to="MASTER", reason="priority_zero") == 1


def test_tracked_script_state_and_weight_are_scraped(lab: Lab) -> None:
    flag = lab.workdir / "healthy"
    flag.write_text("")
    check = lab.workdir / "chk.sh"
    check.write_text(f"#!/bin/sh\ntest -e {flag}\n")
    check.chmod(0o755)
    conf = Vrrp(priority=150, global_extra=(LISTEN,), scripts=(Script("chk", str(check), weight=-20),))
    a = Daemon(lab, "a", conf)
    start_all(a)
    labels = {"instance": "VI_1", "type": "script", "name": "chk"}
    wait_until(lambda: value(scrape(lab, "a"), "kpd_vrrp_tracker_up", **labels) == 1, 15,
               what="the script up")
    s = scrape(lab, "a")
    assert value(s, "kpd_vrrp_tracker_weight", **labels) == -20
    assert value(s, "kpd_vrrp_effective_priority", instance="VI_1") == 150
    flag.unlink()
    wait_until(lambda: value(scrape(lab, "a"), "kpd_vrrp_tracker_up", **labels) == 0, 15,
               what="the script down")
    wait_until(lambda: value(scrape(lab, "a"), "kpd_vrrp_effective_priority", instance="VI_1") == 130, 15,
               what="the priority lowered by the script's weight")


def record(lab: Lab, nodes: tuple[str, ...], metric: str, samples: int,
           series: dict[str, list[float | None]]) -> None:
    """Scrape ``nodes`` once a second, ``samples`` times, adding ``metric``'s samples to ``series`` as
    Prometheus stores them from a job ``kpd`` with one target per node: the target's ``instance`` label
    (``a:9650``) and the scraped one renamed ``exported_instance``. A series absent from a scrape gets a
    gap (None) in that step."""
    for _ in range(samples):
        began = time.monotonic()
        for node in nodes:
            for (name, labels), v in scrape(lab, node).items():
                if name != metric:
                    continue
                stored = {("exported_instance" if k == "instance" else k): val for k, val in labels}
                stored.update(job="kpd", instance=f"{node}:{METRICS_PORT}")
                key = name + "{" + ",".join(f'{k}="{val}"' for k, val in sorted(stored.items())) + "}"
                steps = series.setdefault(key, [None] * len(next(iter(series.values()), [])))
                steps.append(v)
        length = max(len(s) for s in series.values())
        for s in series.values():
            s.extend([None] * (length - len(s)))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))


def test_split_brain_alert_fires_on_series_recorded_from_a_partitioned_pair(lab: Lab, tmp_path: Path) -> None:
    conf = Vrrp(version=3, advert_int=1, global_extra=(LISTEN,))
    a = Daemon(lab, "a", replace(conf, priority=200))
    b = Daemon(lab, "b", replace(conf, priority=100))
    start_all(a, b)
    wait_until(lambda: state_of(scrape(lab, "a")) == "MASTER" and state_of(scrape(lab, "b")) == "BACKUP",
               20, what="a MASTER and b BACKUP")
    series: dict[str, list[float | None]] = {}
    healthy = 15
    record(lab, ("a", "b"), "kpd_vrrp_instance_state", healthy, series)
    lab.cut("b")  # b hears no adverts any more (nor does a hear b's): both MASTER
    wait_until(lambda: state_of(scrape(lab, "b")) == "MASTER", 15, what="b MASTER behind the partition")
    record(lab, ("a", "b"), "kpd_vrrp_instance_state", 15, series)
    assert state_of(scrape(lab, "a")) == "MASTER"
    masters = [key for key in series if 'state="MASTER"' in key]
    assert len(masters) == 2, masters
    inputs = {key: promtool.values(steps) for key, steps in series.items()}
    split = {"exp_labels": {"severity": "critical", "job": "kpd", "vrid": "51"}}
    fired = promtool.run_rule_test(RULES, inputs, "KpdVrrpSplitBrain", f"{healthy + 14}s", [split], tmp_path,
                                   ignore_annotations=True)
    assert fired.returncode == 0, fired.stdout + fired.stderr
    quiet = promtool.run_rule_test(RULES, inputs, "KpdVrrpSplitBrain", f"{healthy - 1}s", [], tmp_path)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    no_master = promtool.run_rule_test(RULES, inputs, "KpdVrrpNoMaster", f"{healthy + 14}s", [], tmp_path)
    assert no_master.returncode == 0, no_master.stdout + no_master.stderr
