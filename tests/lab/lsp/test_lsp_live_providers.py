"""``GET /api/liquidity/providers``: this LSP's terms and its peer LSPs', asked live over LSPS0.

c1 runs a second LSP's LSPS daemon (``lsp lsps``) with its own price list; c2 runs none. The hub's
LSP names both in LSP_PEER_LSPS. The expected terms are the ones each side was configured with here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.harness import LightningTestHarness
from harness.lsps_lsp import LspsRunner
from tests.lab.lsp.conftest import LiveLsp  # type: ignore[import-not-found]

HUB_MENU = [{"min_fee_msat": 1_500_000, "proportional": 4_000, "valid_for_s": 3600, "min_payment_size_msat": 1_000}]
PEER_MENU = [{"min_fee_msat": 9_000_000, "proportional": 1_234, "valid_for_s": 600, "min_payment_size_msat": 5_000}]


def menu_terms(menu: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    return [(line["min_fee_msat"], line["proportional"], line["min_payment_size_msat"]) for line in menu]


@pytest.mark.topology("star5")
def test_providers_lists_this_lsp_and_peer_lsps_with_their_live_terms(
    lab: LightningTestHarness, lsp_factory: Any, tmp_path: Path
) -> None:
    c1, c2 = lab.node("c1"), lab.node("c2")
    with LspsRunner(c1, tmp_path / "peer-lsp.db", menu=PEER_MENU, LSP_LSPS1_MIN_CHANNEL_BALANCE_SAT="123456"):
        live: LiveLsp = lsp_factory(
            LSP_LSPS2_MENU=json.dumps(HUB_MENU),
            LSP_PEER_LSPS=f"{c1.pubkey}@{c1.p2p_address},{c2.pubkey}@{c2.p2p_address}",
            LSP_PEER_LSPS_TIMEOUT="5",
        )
        got = live.client.liquidity_providers()["providers"]

    assert [p["nodeId"] for p in got] == [lab.node("hub").pubkey, c1.pubkey, c2.pubkey]
    me, peer, silent = got
    assert me["thisLsp"] and not peer["thisLsp"] and not silent["thisLsp"]
    # This LSP's entry is what its API serves in-process (LSPS5 is peer messages only, so not listed);
    # the peer answered over peer messages, where its daemon serves LSPS5 too.
    for offer, menu, protocols in ((me, HUB_MENU, [1, 2]), (peer, PEER_MENU, [1, 2, 5])):
        assert offer["error"] is None, offer
        assert offer["protocols"] == protocols
        lines = offer["lsps2"]["opening_fee_params_menu"]
        expected = [(str(m["min_fee_msat"]), m["proportional"], str(m["min_payment_size_msat"])) for m in menu]
        assert menu_terms(lines) == expected
        assert all("promise" not in line for line in lines)  # bound to whoever asked: not the reader's
    assert peer["lsps1"]["min_initial_lsp_balance_sat"] == "123456"
    assert peer["address"] == c1.p2p_address and peer["latencyMs"] > 0
    # c2 is reachable but runs no LSP: it never answers, and that does not hold up the others.
    assert silent["protocols"] == [] and silent["lsps2"] is None
    assert "no answer to lsps0.list_protocols in time" in silent["error"]
