"""FILE_CHECK: keepalived's rule for a track_file's value on a real server, and the engine acting on it."""

from __future__ import annotations

import asyncio

import pytest
from fake_ipvs import FakeIpvs

from keepalived_py.check.engine import CheckEngine
from keepalived_py.check.file_check import FileChecks, file_status
from keepalived_py.check.probe import ProbeResult
from keepalived_py.check.specs import CheckerKey, FileSpec, build
from keepalived_py.config import load_config
from lab import wait_for_async


@pytest.mark.parametrize(
    ("value", "weight", "reverse", "up", "offset"),
    [
        (0, 0, False, True, 0),
        (3, 0, False, False, 0),  # weight 0: non-zero is down
        (0, 0, True, False, 0),  # ... reverse: zero is down
        (3, 0, True, True, 0),
        (5, 2, False, True, 10),
        (5, 2, True, True, -10),
        (-7, 1, False, True, -7),  # negative: a lower weight, not down
        (-(2**31), 1, False, False, 0),  # only a product at or below -2^31 takes it down
        (2**31, 2, False, True, 2**31 - 1),  # clamped
    ],
)
def test_file_status_follows_keepalived(value, weight, reverse, up, offset):
    v = file_status(value, weight, reverse)
    assert (v.up, v.offset) == (up, offset)


def test_a_new_value_is_taken_once_two_reads_agree(tmp_path):
    path = tmp_path / "f"
    path.write_text("0\n")
    key = CheckerKey(FileSpec("tf", str(path), 0, False), None, False)  # type: ignore[arg-type]
    files = FileChecks()
    assert [v.up for _, v in files.load([key])] == [True]
    path.write_text("")  # caught half-written: not taken for anything yet
    assert files.poll() == []
    path.write_text("1\n")
    assert files.poll() == []  # changed since the last read
    (changed,) = files.poll()
    assert not changed[1].up
    assert files.poll() == []


CONF = """
track_file tf {
    file %s
    weight 1
}
virtual_server 192.0.2.10 80 {
    protocol TCP
    lb_algo wrr
    lb_kind NAT
    delay_loop 0.2
    quorum 4
    quorum_down "%s down"
    quorum_up "%s up"
    real_server 10.0.0.1 8080 {
        weight 5
        FILE_CHECK {
            track_file tf
            weight %s
        }
    }
}
"""


def mark_script(tmp_path):
    """A quorum script appending its argument to a marks file: (script, marks)."""
    marks = tmp_path / "marks"
    script = tmp_path / "mark"
    script.write_text(f"#!/bin/sh\necho $1 >> {marks}\n")
    script.chmod(0o755)
    return script, marks


async def always_up(spec):
    return ProbeResult.up()


def engine_table(write_conf, tmp_path, weight: str, initial: str, steps: list[str]):
    path = tmp_path / "value"
    path.write_text(initial)
    script, marks = mark_script(tmp_path)
    result = load_config(write_conf(CONF % (path, script, script, weight)), host_checks=False)
    assert int(result.exit_code) == 0, result.diagnostics
    ipvs = FakeIpvs()

    async def main():
        engine = CheckEngine(result.config, ipvs, probe=always_up)
        engine.open()
        await engine.settled()
        tables = [ipvs.weights()]
        task = asyncio.create_task(engine.run())
        for text, want in steps:
            path.write_text(text)
            await wait_for_async(lambda w=want: ipvs.weights() == w, timeout=10)
            tables.append(ipvs.weights())
        engine.stop()
        await task
        await engine.shutdown()
        return tables

    tables = asyncio.run(main())
    return tables, marks


def test_file_value_moves_the_weight_and_zero_quiesces(write_conf, tmp_path):
    vs = "TCP 192.0.2.10:80"
    tables, _ = engine_table(write_conf, tmp_path, "2", "1\n", [
        ("3\n", {vs: {"10.0.0.1:8080": 11}}),
        ("-2\n", {vs: {"10.0.0.1:8080": 1}}),
        ("-10\n", {vs: {"10.0.0.1:8080": 0}}),  # quiesced: still in the table, weight 0
        ("0\n", {vs: {"10.0.0.1:8080": 5}}),
    ])
    assert tables[0] == {vs: {"10.0.0.1:8080": 7}}  # read before the first programming: 5 + 1 * 2


def test_weight_zero_file_check_takes_the_server_down_and_back(write_conf, tmp_path):
    vs = "TCP 192.0.2.10:80"
    tables, marks = engine_table(write_conf, tmp_path, "0", "1\n", [
        ("0\n", {vs: {"10.0.0.1:8080": 5}}),
        ("7\n", {vs: {}}),
    ])
    assert tables[0] == {vs: {}}  # down from the start: never added
    asyncio.run(asyncio.sleep(0.5))
    assert marks.read_text().split() == ["down", "up", "down"]


def test_file_check_weight_overrides_the_track_files_weight_and_reverse(write_conf, tmp_path):
    text = """
track_file tf {
    file /nonexistent/kpd-value
    weight 3 reverse
}
virtual_server 192.0.2.10 80 {
    protocol TCP
    real_server 10.0.0.1 8080 {
        FILE_CHECK {
            track_file tf
        }
        FILE_CHECK {
            track_file tf
            weight 2
        }
    }
}
"""
    result = load_config(write_conf(text), host_checks=False)
    (vs,) = build(result.config)
    specs = [key.probe for key in vs.real_servers[0].checkers]
    assert [(s.weight, s.reverse) for s in specs] == [(3, True), (2, False)]


def test_file_check_naming_a_missing_or_later_track_file_is_dropped_and_reported(write_conf):
    text = """
virtual_server 192.0.2.10 80 {
    protocol TCP
    real_server 10.0.0.1 8080 {
        FILE_CHECK {
            track_file later
        }
        FILE_CHECK {
            track_file nowhere
        }
    }
}
track_file later {
    file /tmp/x
}
"""
    result = load_config(write_conf(text), host_checks=False)
    messages = [d.message for d in result.diagnostics]
    assert any("track_file later not found" in m and "define it above" in m for m in messages), messages
    assert any("track_file nowhere not found" in m for m in messages), messages
    (vs,) = build(result.config)
    assert vs.real_servers[0].checkers == ()


def test_a_reload_keeps_what_the_file_says_without_a_quorum_flap(write_conf, tmp_path):
    path = tmp_path / "value"
    path.write_text("-2\n")  # 5 + (-2 * 2) = 1 < quorum 4: quorum down from the start
    script, marks = mark_script(tmp_path)
    conf = write_conf(CONF % (path, script, script, "2"))
    result = load_config(conf, host_checks=False)
    ipvs = FakeIpvs()

    async def main():
        engine = CheckEngine(result.config, ipvs, probe=always_up)
        engine.open()
        await engine.settled()
        task = asyncio.create_task(engine.run())
        before = ipvs.weights()
        await engine.reload(load_config(conf, host_checks=False).config)
        await engine.settled()
        await asyncio.sleep(0.6)
        after = ipvs.weights()
        engine.stop()
        await task
        return before, after

    before, after = asyncio.run(main())
    assert before == after == {"TCP 192.0.2.10:80": {"10.0.0.1:8080": 1}}
    assert marks.read_text().split() == ["down"]  # the start's; the reload says nothing
