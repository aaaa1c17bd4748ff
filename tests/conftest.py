"""Fixtures shared by every test module; the tests directory is importable (``import lab``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

#: run_in_vm, vm_cache, vm_harness: for tests/vm and tests/ipvs
pytest_plugins = ("vm_fixtures",)


@pytest.fixture
def write_conf(tmp_path: Path):
    """Write a config text to a file and return its path."""

    def write(text: str, name: str = "keepalived.conf") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
