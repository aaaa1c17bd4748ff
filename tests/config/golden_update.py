"""Regenerates the golden expectations of the corpus tests: ``python tests/config/golden_update.py``.

Review the diff before committing: goldens record what kpd should do, not merely what it does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import corpus_samples
from keepalived_py.config import load_config
from keepalived_py.config.serialize import to_data

GOLDEN = Path(__file__).resolve().parent / "golden"
#: Samples whose whole normalized model is compared with golden JSON.
MODEL_SAMPLES = (
    "keepalived.conf.sample",
    "keepalived.conf.vrrp",
    "keepalived.conf.vrrp.sync",
    "keepalived.conf.vrrp.scripts",
    "keepalived.conf.virtual_server_group",
    "keepalived.conf.fwmark",
    "keepalived.conf.misc_check_arg",
    "keepalived.conf.status_code",
    "keepalived.conf.HTTP_GET.port",
    "keepalived.conf.IPv6",
    "keepalived.conf.quorum",
    "keepalived.conf.conditional_conf",
)


def expectations() -> dict[str, dict[str, object]]:
    out = {}
    for path in corpus_samples():
        result = load_config(path, config_id="lb1", host_checks=False)
        out[path.name] = {
            "exit_code": int(result.exit_code),
            "unsupported": result.unsupported,
            "diagnostics": sorted({f"{d.severity.value}: {d.message}" for d in result.diagnostics}),
        }
    return out


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    (GOLDEN / "corpus.json").write_text(json.dumps(expectations(), indent=2, sort_keys=True) + "\n")
    for name in MODEL_SAMPLES:
        result = load_config(Path(corpus_samples()[0].parent, name), config_id="lb1", host_checks=False)
        (GOLDEN / f"{name}.json").write_text(
            json.dumps(to_data(result.config), indent=2, sort_keys=True) + "\n"
        )


if __name__ == "__main__":
    main()
