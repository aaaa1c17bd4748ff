"""keepalived's own sample configurations: never a crash, golden diagnostics and models, and agreement with
real ``keepalived -t`` where kpd implements everything the sample uses."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
from pathlib import Path

import pytest

from corpus import corpus_samples
from keepalived_py.config import load_config
from keepalived_py.config.diagnostics import worst_exit_code
from keepalived_py.config.serialize import to_data
from keepalived_py.exitcodes import ExitCode
from netns_run import fresh_netns, in_netns, run_kpd

GOLDEN = Path(__file__).resolve().parent / "golden"
SAMPLES = corpus_samples()
EXPECTED = json.loads((GOLDEN / "corpus.json").read_text())
MODEL_GOLDENS = sorted(p.name.removesuffix(".json") for p in GOLDEN.glob("keepalived.conf*.json"))


def test_golden_covers_every_sample_and_at_least_eight_models():
    assert sorted(EXPECTED) == sorted(p.name for p in SAMPLES)
    assert len(MODEL_GOLDENS) >= 8


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_loads_with_golden_exit_code_and_unsupported_keywords(sample):
    result = load_config(sample, config_id="lb1", host_checks=False)
    assert result.config is not None
    expected = EXPECTED[sample.name]
    assert int(result.exit_code) == expected["exit_code"]
    assert result.unsupported == expected["unsupported"]
    assert sorted({f"{d.severity.value}: {d.message}" for d in result.diagnostics}) == expected["diagnostics"]
    for diag in result.diagnostics:
        assert diag.location is not None and diag.location.line >= 1, diag.format()


@pytest.mark.parametrize("name", MODEL_GOLDENS)
def test_sample_normalized_model_matches_golden_json(name):
    result = load_config(SAMPLES[0].parent / name, config_id="lb1", host_checks=False)
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    assert json.loads(json.dumps(to_data(result.config))) == expected


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_model_is_frozen_and_picklable(sample):
    config = load_config(sample, config_id="lb1", host_checks=False).config
    assert config is not None
    assert pickle.loads(pickle.dumps(config)) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.global_defs = None  # type: ignore[misc]


def test_conditional_config_follows_config_id():
    sample = SAMPLES[0].parent / "keepalived.conf.conditional_conf"
    high = load_config(sample, config_id="high", host_checks=False).config
    low = load_config(sample, config_id="low", host_checks=False).config
    neither = load_config(sample, config_id="lb1", host_checks=False).config
    assert high is not None and low is not None and neither is not None
    assert [i.priority for i in high.vrrp_instances] == [170]
    assert [i.priority for i in low.vrrp_instances] == [85]
    assert [i.priority for i in neither.vrrp_instances] == [100]
    assert high.vrrp_scripts[0].script == ("/etc/keepalived/scripts/check_high_VI_0.sh",)


def _partial_only(name: str) -> bool:
    """kpd reads every keyword of the sample; some it acts on only in part (reported, exit 5)."""
    return not any("not implemented by kpd" in d for d in EXPECTED[name]["diagnostics"])


@pytest.mark.netns
@pytest.mark.interop
@pytest.mark.parametrize("sample", [s for s in SAMPLES if _partial_only(s.name)], ids=lambda p: p.name)
def test_check_config_exit_code_agrees_with_keepalived(sample):
    """In an empty network namespace (so interface checks agree), kpd and keepalived -t give the same code,
    except that kpd adds exit 5 for what it does not fully act on (keepalived's precedence: 4, 5, 6)."""
    assert shutil.which("keepalived"), "real keepalived is required (make test installs it)"
    with fresh_netns() as ns:
        kpd = run_kpd(ns, "check-config", "--config", str(sample), "--config-id", "lb1")
        keepalived = in_netns(ns, "keepalived", "-t", "-l", "-f", str(sample))
    partial = [ExitCode.CONFIG_ERRORS] if EXPECTED[sample.name]["unsupported"] else []
    expected = worst_exit_code([ExitCode(keepalived.returncode), *partial])
    assert kpd.returncode == expected, (kpd.stderr, keepalived.stdout + keepalived.stderr)


def test_exit_codes_are_keepalived_chk_exit_codes():
    assert (ExitCode.OK, ExitCode.CONFIG_FATAL, ExitCode.CONFIG_ERRORS, ExitCode.CONFIG_SCRIPT_SECURITY) == (
        0,
        4,
        5,
        6,
    )
