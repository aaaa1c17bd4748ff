"""The pure helpers of benchmarks/pairlab.py (used by bench_pair.py and soak.py) and bench_run.rounds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_run import rounds
from pairlab import (
    LineFile,
    Request,
    longest,
    mask_stale,
    max_gap,
    outage_after,
    parse_requests,
    percentile,
    runs,
    slope,
    timeline,
)


def test_parse_requests_skips_garbage_and_a_truncated_line() -> None:
    text = "1.0 1.1 1 a\nnoise\n2.0 2.1 0 ConnectionRefusedError\n3.0 3.1 2 x\n4.0 4."
    assert parse_requests(text) == [
        Request(1.0, 1.1, True, "a"),
        Request(2.0, 2.1, False, "ConnectionRefusedError"),
    ]


def _reqs(pattern: str, start: float = 0.0) -> list[Request]:
    """One request per character, 10 ms apart, 1 ms long: '+' answered by b, '-' failed."""
    return [
        Request(start + i * 0.01, start + i * 0.01 + 0.001, c == "+", "b" if c == "+" else "timeout")
        for i, c in enumerate(pattern)
    ]


def test_outage_after() -> None:
    reqs = _reqs("++---+-+")
    outage = outage_after(reqs, 0.0)
    assert outage is not None
    assert outage.first_failed == reqs[2] and outage.first_ok == reqs[5] and outage.failed == 3
    assert outage.span == pytest.approx(0.05 + 0.001 - 0.02)
    assert outage_after(reqs, 0.055) == outage_after(reqs[6:], 0.0)  # the second, one-request outage
    assert outage_after(_reqs("+++"), 0.0) is None  # no failure
    assert outage_after(_reqs("+--"), 0.0) is None  # no success after it
    assert outage_after(reqs, 0.0, until=0.015) is None  # window ends before the failures


def test_runs_and_longest() -> None:
    samples = [(0.0, ("a",)), (0.1, ()), (0.2, ()), (0.3, ("b",)), (0.4, ("a", "b")), (0.5, ())]
    assert runs(samples, lambda h: not h) == [(0.1, 0.3), (0.5, 0.5)]
    assert runs(samples, lambda h: len(h) == 2) == [(0.4, 0.5)]
    assert longest(runs(samples, lambda h: not h)) == pytest.approx(0.2)
    assert longest([]) == 0.0
    assert runs([], lambda h: True) == []


def test_mask_stale_discounts_the_dead_nodes_leftover_until_it_is_gone() -> None:
    samples = [
        (0.0, ("a",)),
        (1.0, ("a",)),  # killed at 0.5: a leftover
        (2.0, ("a", "b")),  # b took over; a's still the leftover
        (3.0, ("b",)),  # a's restarted daemon removed it
        (4.0, ("a", "b")),  # a live again: counts
        (5.0, ("a",)),
    ]
    masked, gone = mask_stale(samples, "a", 0.5)
    assert gone == 3.0
    assert [h for _, h in masked] == [("a",), (), ("b",), ("b",), ("a", "b"), ("a",)]
    _, never = mask_stale(samples[:3], "a", 0.5)
    assert never is None


def test_max_gap_slope_percentile() -> None:
    assert max_gap([(0.0, ()), (0.005, ()), (0.05, ())]) == pytest.approx(0.045)
    assert max_gap([]) == 0.0
    assert slope([5.0, 7.0, 9.0, 11.0]) == pytest.approx(2.0)
    assert slope([3.0, 3.0, 3.0]) == 0.0
    assert slope([1.0]) == 0.0
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.0
    assert percentile(values, 90) == 9.0
    assert percentile(values, 100) == 10.0
    assert percentile([4.0], 90) == 4.0


def test_line_file_returns_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "log"
    reader = LineFile(path)
    assert reader.read() == ""  # not there yet
    path.write_text("one\ntw")
    assert reader.read() == "one\n"
    with path.open("a") as f:
        f.write("o\nthree\n")
    assert reader.read() == "two\nthree\n"
    assert reader.read() == ""


def test_timeline() -> None:
    samples = [(0.9, ("a",)), (0.95, ("a",)), (1.3, ()), (1.31, ("b",)), (1.5, ("a", "b"))]
    assert timeline(samples, 1.0) == "-100:a +300:- +310:b +500:a,b"
    assert timeline([], 0.0) == ""


def test_rounds_alternate_the_implementations_and_split_the_trials() -> None:
    assert list(rounds(["kpd", "keepalived"], 5, 2)) == [
        (1, 2, "kpd", 3), (1, 2, "keepalived", 3), (2, 2, "kpd", 2), (2, 2, "keepalived", 2)]
    assert list(rounds(["kpd"], 1, 4)) == [(1, 1, "kpd", 1)]  # never more rounds than trials
