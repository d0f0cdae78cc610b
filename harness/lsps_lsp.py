"""Run the LSP's LSPS daemon (``lsp lsps``) against a lab node, as a process, the way an operator runs it.

The daemon answers LSPS0 peer messages (LSPS1 orders, LSPS2 JIT buys) and intercepts the HTLCs
of JIT SCIDs on the node's LND. It is configured only through ``LSP_*`` variables (its fee menu
is ``LSP_LSPS2_MENU``) and keeps its state in a SQLite file migrated by ``lsp migrate``; the lab
reaches it over the wire only (``harness.lsps_client``). Its log is ``lsps-service.log`` beside
its LND's, so a failed test's kept lab directory shows the LSP side too.

    with LspsRunner(lab.node("lsp"), tmp_path / "lsps.db") as lsp:
        ...                                  # LSPS over peer messages, HTLCs intercepted
        lsp.restart()                        # a new process, same database
        lsp.restart(LSP_LSPS1_ORDER_EXPIRY_S="8")   # ... with a setting changed
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.lsp_process import LspsDaemon, lsp_env, migrate
from harness.node import LndNode

# The lab's LSPS2 price list (LSP_LSPS2_MENU): two lines, the second costlier on both components
# (bLIP-52), payments from 1 sat.
LAB_MENU: list[dict[str, Any]] = [
    {"min_fee_msat": 2_000_000, "proportional": 5_000, "valid_for_s": 3600, "min_payment_size_msat": 1_000},
    {"min_fee_msat": 3_000_000, "proportional": 8_000, "valid_for_s": 86_400, "min_payment_size_msat": 1_000},
]


class LspsRunner:
    def __init__(
        self,
        node: LndNode,
        db_path: Path,
        *,
        menu: list[dict[str, Any]] | None = None,
        mpp_timeout_s: float = 90.0,
        probe: LndNode | None = None,
        **settings: str,
    ):
        """``menu``: LSP_LSPS2_MENU's lines (default ``LAB_MENU``); ``settings``: more ``LSP_*``
        variables (e.g. ``LSP_LSPS1_ORDER_EXPIRY_S="8"``). ``probe``: an LND peer of ``node``;
        when given, ``start`` returns only once the daemon answers LSPS0 from it over the wire
        (``harness.lsps_client.wait_answering``)."""
        self.node = node
        self.probe = probe
        self.env = lsp_env(
            node,
            f"sqlite:///{db_path}",
            LSP_LSPS2_MENU=json.dumps(menu or LAB_MENU),
            LSP_LSPS2_MPP_TIMEOUT_S=str(mpp_timeout_s),
            LSP_LOG_LEVEL="DEBUG",  # every LSPS0 message in and answer out
            **settings,
        )
        self.daemon = LspsDaemon(self.env, 0, node.config.lnddir / "lsps-service.log")
        self._migrated = False

    def start(self) -> LspsRunner:
        if not self._migrated:
            migrate(self.env)
            self._migrated = True
        self.daemon.start()
        if self.probe is not None:
            from harness.lsps_client import wait_answering

            wait_answering(self.probe, self.node.pubkey)
        return self

    def stop(self) -> None:
        self.daemon.stop()

    def restart(self, **settings: str) -> None:
        """A new daemon process on the same database (every in-memory object gone: streams, held
        groups); ``settings`` change ``LSP_*`` variables for it."""
        self.stop()
        self.env.update(settings)
        self.start()

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> LspsRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
