"""Property-based tests: whatever bytes a configuration holds, loading it never raises and stays bounded."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import corpus_samples
from keepalived_py.config import ConfigError, load_config
from keepalived_py.config.diagnostics import Severity

SAMPLE_TEXTS = [p.read_text() for p in corpus_samples()]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Words that steer mutations toward the grammar's corners.
TOKENS = [
    "{",
    "}",
    '"',
    "!",
    "#",
    "include",
    "$X=",
    "$X",
    "${X}",
    "@lb1",
    "@^lb1",
    "~SEQ(i,1,3)",
    "\\",
    "vrrp_instance",
    "virtual_server",
    "real_server",
    "priority",
    "255",
    "-1",
    "\x00",
    "\n",
    " ",
    "\t",
]


def _load(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keepalived.conf"
        path.write_bytes(data)
        result = load_config(path, config_id="lb1", host_checks=False)
    for diag in result.diagnostics:
        assert diag.format()  # every diagnostic renders
    if result.exit_code == 4:
        # raise_if_fatal is the only way the front end raises, and then with its own error type
        try:
            result.raise_if_fatal()
        except ConfigError as err:
            assert err.diagnostics
        else:
            raise AssertionError("a fatal result must raise ConfigError")
    return result


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(data):
    _load(data)


@FAST
@given(st.text(max_size=2048))
def test_arbitrary_text_never_raises(text):
    _load(text.encode("utf-8", "surrogatepass"))


@st.composite
def mutated_sample(draw):
    text = draw(st.sampled_from(SAMPLE_TEXTS))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 40)) :]
        else:
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos + 1 :]
    return text


@FAST
@given(mutated_sample())
def test_mutated_samples_never_raise_and_report_located_errors(text):
    result = _load(text.encode("utf-8", "surrogatepass"))
    for diag in result.diagnostics:
        if diag.severity in (Severity.FATAL, Severity.ERROR):
            assert diag.location is not None
