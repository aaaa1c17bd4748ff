"""Probe specs and checker keys as values: equal keys are one checker; a key hashes once."""

from __future__ import annotations

import dataclasses
import pickle

from keepalived_py.check.checker import Timing
from keepalived_py.check.probe_socket import Source
from keepalived_py.check.specs import CheckerKey, TcpSpec


class CountingSource(Source):
    hashed = 0

    def __hash__(self) -> int:
        CountingSource.hashed += 1
        return super().__hash__()


def _key(host: str = "10.0.0.1", source: Source | None = None) -> CheckerKey:
    return CheckerKey(TcpSpec(host, 80, source or Source()), Timing(1.0, 1, 1.0, 0.0, 3.0), False)


def test_equal_keys_are_one_dict_entry_and_distinct_keys_are_not():
    assert _key() == _key() and hash(_key()) == hash(_key())
    assert len({_key(): 1, _key(): 2, _key("10.0.0.2"): 3}) == 2


def test_a_key_hashes_its_probe_once_however_often_it_is_looked_up():
    key = _key(source=CountingSource(bindto="10.0.0.9"))
    before = CountingSource.hashed
    table = {key: 1}
    for _ in range(100):
        assert table[key] == 1
    assert CountingSource.hashed == before


def test_a_key_replaced_or_pickled_hashes_as_a_fresh_one():
    key = _key()
    assert hash(dataclasses.replace(key, alpha=True)) == hash(_key().__class__(key.probe, key.timing, True))
    back = pickle.loads(pickle.dumps(key))
    assert back == key and hash(back) == hash(key)
    assert "_hash" not in key.__getstate__()
