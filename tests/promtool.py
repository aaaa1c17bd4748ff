"""Test support: run the real ``promtool`` on rule files and on unit tests of their alerts.

::

    from promtool import check_rules, run_rule_test, values

    result = run_rule_test(
        RULES,
        {'kpd_virtual_server_quorum_up{job="kpd",instance="127.0.0.1:9650",virtual_server="vs"}': "1x9 0x60"},
        alert="KpdQuorumLost",
        eval_time="60s",
        exp_alerts=[{"exp_labels": {...}, "exp_annotations": {...}}],   # [] = must not fire
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr

``promtool`` comes with the Debian package ``prometheus``, which ``make test`` installs
(scripts/install-system-deps.sh); when it is missing these helpers fail the calling test, never skip it.
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

PROMTOOL_MISSING = (
    "promtool is not installed (it comes with the Debian package `prometheus`); "
    "`make test` installs it (scripts/install-system-deps.sh)"
)

_counter = itertools.count()


def promtool() -> str:
    """The path of ``promtool``; fails the calling test when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(PROMTOOL_MISSING, pytrace=False)
    return path


def check_rules(rules_path: Path | str) -> subprocess.CompletedProcess[str]:
    """``promtool check rules <rules_path>`` (parses the YAML and every PromQL expression)."""
    return subprocess.run(
        [promtool(), "check", "rules", str(rules_path)], capture_output=True, text=True, timeout=60
    )


def load_rules(rules_path: Path | str) -> list[dict[str, Any]]:
    """Every rule (alerting and recording) of a rules file, in file order."""
    data = yaml.safe_load(Path(rules_path).read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def alert_names(rules_path: Path | str) -> set[str]:
    return {rule["alert"] for rule in load_rules(rules_path) if "alert" in rule}


def values(samples: Iterable[float | None]) -> str:
    """A promtool ``values`` string of one sample per ``interval``: ``None`` is a missing sample (``_``)."""
    out = []
    for sample in samples:
        if sample is None:
            out.append("_")
        elif math.isnan(sample):
            out.append("NaN")
        elif math.isinf(sample):
            out.append("Inf" if sample > 0 else "-Inf")
        else:
            out.append(repr(float(sample)) if not float(sample).is_integer() else str(int(sample)))
    return " ".join(out)


def _strip_annotations(rules_path: Path, dest: Path) -> Path:
    data = yaml.safe_load(rules_path.read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def run_rule_test(
    rules_path: Path | str,
    input_series: Mapping[str, str] | Sequence[tuple[str, str]],
    alert: str,
    eval_time: str,
    exp_alerts: list[dict[str, Any]],
    tmp_path: Path,
    *,
    interval: str = "1s",
    ignore_annotations: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Write a promtool unit test of one alert at one time, run ``promtool test rules``, return its result.

    ``input_series``: series selector (``'name{label="v",...}'``) -> promtool values string (``"0 1 1"``,
    ``"1x30 0x30"``, see :func:`values`), one sample per ``interval`` from time 0; the rules are evaluated
    every second (``evaluation_interval: 1s``). ``exp_alerts``: the alerts expected to be *firing* at
    ``eval_time`` (a duration such as ``"30s"``), each ``{"exp_labels": {...}, "exp_annotations": {...}}``
    as promtool compares them exactly (``alertname`` is added by promtool); ``[]`` means it must not fire.
    ``ignore_annotations``: test a copy of the rules without annotations (for expectations that cannot
    know the rendered text); then ``exp_annotations`` must be left out.

    Returns promtool's result: ``returncode == 0`` when every expectation held; its ``stdout``/``stderr``
    show the got/expected alerts otherwise. Raises ``ValueError`` when ``alert`` is not an alert of the
    file (an expectation of "no alert" would hold trivially). Files are written to ``tmp_path`` under
    unique names, so one test can call this several times.
    """
    rules_path = Path(rules_path).resolve()
    if alert not in alert_names(rules_path):
        raise ValueError(f"{alert!r} is not an alert of {rules_path}: {sorted(alert_names(rules_path))}")
    n = next(_counter)
    if ignore_annotations:
        rules_path = _strip_annotations(rules_path, tmp_path / f"rules-without-annotations-{n}.yml")
    series = input_series.items() if isinstance(input_series, Mapping) else input_series
    test = {
        "rule_files": [str(rules_path)],
        "evaluation_interval": "1s",
        "tests": [
            {
                "interval": interval,
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": exp_alerts}],
            }
        ],
    }
    test_file = tmp_path / f"promtool-test-{n}.yml"
    test_file.write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run(
        [promtool(), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120
    )
