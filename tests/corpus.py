"""Where the shared test corpus lives (``../shared/corpus`` beside the repository).

A missing corpus fails loudly instead of skipping tests.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
SAMPLES_DIR = CORPUS / "keepalived-samples"
PCAPS_DIR = CORPUS / "vrrp-pcaps"


def corpus_samples() -> list[Path]:
    """Every keepalived sample configuration, sorted by name."""
    if not SAMPLES_DIR.is_dir():
        raise FileNotFoundError(f"keepalived sample corpus not found at {SAMPLES_DIR}")
    return sorted(SAMPLES_DIR.iterdir())
