"""Fee estimates the lab serves to LND's ``--fee.url``.

btcd's own estimator cannot answer targets above 25 blocks (LND logs an error
each time its sweeper asks), and tests need to change fees on purpose. The
lab runs ``harness/feeservice`` (a tiny static Go server, so the same binary
runs as a process and inside a FROM-scratch container on a lab's Docker
network) which serves this file on every request; rewriting the file changes
what every node's estimator sees on its next poll.
"""

from __future__ import annotations

import json
from pathlib import Path

PATH = "/fee-estimates.json"
# sat/kvB by confirmation target, LND's chainfee.WebAPIResponse shape.
DEFAULT_FEES = {"1": 20000, "2": 15000, "6": 10000, "25": 5000, "144": 2000, "1008": 1012}
MIN_RELAY_SAT_PER_KVB = 1012  # LND's fee floor (253 sat/kw)


def write_fees(path: Path, by_target: dict[str, int] | None = None, *, min_relay: int = MIN_RELAY_SAT_PER_KVB) -> None:
    body = {"fee_by_block_target": by_target or DEFAULT_FEES, "min_relay_feerate": min_relay}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)
