"""The client side of a swap, for tests and scenarios: keys the harness holds, verify, fund, claim, refund.

    client = SwapClient()                                  # a fresh key (or SwapClient(seed=b"..."))
    swap = api.request("POST", "/api/swaps/submarine", json={"invoice": inv, "refundPublicKey": client.pubkey})
    client.verify(swap, payment_hash=inv_hash, lsp_claims=True)
    lockup = client.fund(lab, swap)                        # from the lab's faucet, unconfirmed
    ...
    client.refund(lab, swap, lockup, to_address)           # after the timeout height

The script check and the spends use the lab's own code (``harness.swap_htlc``, from
the published template; never the LSP's ``lsp.swaps``): the client rebuilds the
script from what it expects and compares bytes, and the chain accepts or refuses
its spends. ``swap_in`` / ``swap_out`` run a whole swap for the scenario engine.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from embit import ec
from embit import script as escript

from harness import swap_htlc
from harness.errors import LabError
from harness.wait import wait_for

if TYPE_CHECKING:
    from harness.harness import LightningTestHarness


@dataclass(frozen=True)
class Lockup:
    txid: str
    vout: int
    value_sat: int


class SwapClient:
    def __init__(self, *, seed: bytes | None = None):
        raw = hashlib.sha256(seed).digest() if seed is not None else secrets.token_bytes(32)
        self.key = ec.PrivateKey(raw)
        self.pubkey = self.key.get_public_key().sec().hex()

    @staticmethod
    def new_preimage() -> tuple[str, str]:
        """(preimage hex, payment hash hex) for a reverse swap."""
        pre = secrets.token_bytes(32)
        return pre.hex(), hashlib.sha256(pre).hexdigest()

    def verify(self, swap: dict[str, Any], *, payment_hash: str, network: str = "regtest") -> bytes:
        """Check the LSP's script is the HTLC we agreed to (our key on our side, the right hash, the address
        matches); returns the script. A client must do this before funding or paying anything."""
        submarine = swap["kind"] == "submarine"
        claim, refund = (swap["lspPublicKey"], self.pubkey) if submarine else (self.pubkey, swap["lspPublicKey"])
        expected = swap_htlc.expected_script(
            bytes.fromhex(payment_hash), bytes.fromhex(claim), bytes.fromhex(refund), int(swap["timeoutHeight"])
        )
        got = bytes.fromhex(swap["witnessScript"])
        if got != expected:
            raise LabError(f"swap {swap['swapId']}: the LSP's script is not the agreed HTLC")
        if swap_htlc.address_of(got, network) != swap["address"]:
            raise LabError(f"swap {swap['swapId']}: address does not match the script")
        return got

    def fund(self, lab: LightningTestHarness, swap: dict[str, Any], amount_sat: int | None = None) -> Lockup:
        """Pay the lockup from the lab faucet (unconfirmed); ``amount_sat`` defaults to the quoted amount."""
        amount = int(amount_sat if amount_sat is not None else swap["onchainAmount"])
        txid = lab.send_onchain(swap["address"], amount, confirm=False)
        return find_output(lab, txid, swap["address"])

    def _spend(
        self, swap: dict[str, Any], lockup: Lockup, to_address: str, *, sat_per_vb: float, preimage: str | None
    ) -> swap_htlc.Spend:
        return swap_htlc.spend(
            outpoint=(lockup.txid, lockup.vout),
            value_sat=lockup.value_sat,
            witness_script=bytes.fromhex(swap["witnessScript"]),
            key=self.key,
            dest_script_pubkey=bytes(escript.address_to_scriptpubkey(to_address).data),
            sat_per_vb=sat_per_vb,
            preimage=bytes.fromhex(preimage) if preimage else None,
            timeout_height=None if preimage else int(swap["timeoutHeight"]),
        )

    def claim(
        self, lab: LightningTestHarness, swap: dict[str, Any], lockup: Lockup, preimage: str, to_address: str,
        *, sat_per_vb: float = 2.0,
    ) -> swap_htlc.Spend:  # fmt: skip
        """Reverse swap: claim the LSP's lockup with the preimage; broadcast through the chain backend."""
        signed = self._spend(swap, lockup, to_address, sat_per_vb=sat_per_vb, preimage=preimage)
        lab.chain.send_raw(signed.hex)
        return signed

    def refund(
        self, lab: LightningTestHarness, swap: dict[str, Any], lockup: Lockup, to_address: str,
        *, sat_per_vb: float = 2.0,
    ) -> swap_htlc.Spend:  # fmt: skip
        """Swap-in: take the lockup back once the tip has reached the timeout height."""
        signed = self._spend(swap, lockup, to_address, sat_per_vb=sat_per_vb, preimage=None)
        lab.chain.send_raw(signed.hex)
        return signed


def submit_lockup(lab: LightningTestHarness, api: Any, swap: dict[str, Any], lockup: Lockup) -> dict[str, Any]:
    """Hand the LSP the raw lockup transaction (how a swap-in gets paid at 0-conf)."""
    raw = str(lab.chain.rpc.call("getrawtransaction", lockup.txid, 0))
    return dict(api.request("POST", f"/api/swaps/{swap['swapId']}/lockup", json={"transaction": raw}))


def find_output(lab: LightningTestHarness, txid: str, address: str) -> Lockup:
    raw = lab.chain.raw_tx(txid)
    for out in raw["vout"]:
        if out["scriptPubKey"].get("address") == address or address in out["scriptPubKey"].get("addresses", []):
            return Lockup(txid, int(out["n"]), round(float(out["value"]) * 100_000_000))
    raise LabError(f"{txid} pays nothing to {address}")


def lockup_of(swap: dict[str, Any]) -> Lockup:
    """The LSP's lockup of a reverse swap, as the swap view reports it."""
    if not swap.get("lockupTxid"):
        raise LabError(f"swap {swap['swapId']} has no lockup yet (state {swap['state']})")
    return Lockup(swap["lockupTxid"], int(swap["lockupVout"]), int(swap["lockupValue"]))


def wait_state(api: Any, swap_id: str, states: set[str] | str, *, timeout_s: str | float = 60.0) -> dict[str, Any]:
    """Poll GET /api/swaps/{id} until its state is one of ``states``."""
    want = {states} if isinstance(states, str) else states
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        nonlocal last
        last = api.request("GET", f"/api/swaps/{swap_id}")
        return last if last["state"] in want else None

    return wait_for(
        check,
        what=f"swap {swap_id} to reach {sorted(want)}",
        timeout_s=timeout_s,
        describe=lambda: f"last state {last.get('state')!r}",
    )


def wait_claim_broadcast(lab: LightningTestHarness, view: dict[str, Any], *, timeout_s: float = 60) -> None:
    """Wait until the LSP's claim of a swap in ``claim_pending`` is in the mempool (or mined).

    ``claim_pending`` is recorded *before* the claim is broadcast (a restart rebroadcasts exactly
    that transaction, never a second one), so a block mined the moment the state shows may not
    hold it; mine after this."""
    txid = view.get("spendTxid")
    if not txid:
        raise LabError(f"swap {view['swapId']} has no claim yet (state {view['state']})")
    lab.chain.wait_for_tx(txid, timeout_s=timeout_s)


SWAP_IN_FAILED = {"lockup_failed", "invoice_failed", "expired"}


def swap_in(
    lab: LightningTestHarness, api: Any, node: str, amount_sat: int, *, timeout_s: float = 120
) -> dict[str, Any]:
    """Chain -> Lightning for ``node``: it invoices ``amount_sat``, the faucet funds the lockup, one block
    confirms it and one more the LSP's claim. Returns the final swap view (raises if the swap failed)."""
    client = SwapClient()
    inv = lab.node(node).add_invoice(amount_sat, memo="swap in")
    swap = api.request(
        "POST", "/api/swaps/submarine", json={"invoice": inv.payment_request, "refundPublicKey": client.pubkey}
    )
    client.verify(swap, payment_hash=inv.payment_hash)
    client.fund(lab, swap)
    lab.mine(1)
    view = wait_state(api, swap["swapId"], {"claim_pending", "claimed", *SWAP_IN_FAILED}, timeout_s=timeout_s)
    if view["state"] == "claim_pending":
        wait_claim_broadcast(lab, view, timeout_s=timeout_s)
    lab.mine(1)
    done = wait_state(api, swap["swapId"], {"claimed", *SWAP_IN_FAILED}, timeout_s=timeout_s)
    if done["state"] != "claimed":
        raise LabError(f"swap-in {swap['swapId']} failed: {done['state']} {done.get('failureReason')}")
    return done


def swap_out(
    lab: LightningTestHarness, api: Any, node: str, amount_sat: int, to_address: str, *, timeout_s: float = 120
) -> dict[str, Any]:
    """Lightning -> chain for ``node``: it pays the hold invoice (in the background), claims the lockup to
    ``to_address``; returns the swap view once the LSP settled the invoice."""
    import threading

    client = SwapClient()
    preimage, payment_hash = client.new_preimage()
    swap = api.request(
        "POST",
        "/api/swaps/reverse",
        json={"amount": amount_sat, "paymentHash": payment_hash, "claimPublicKey": client.pubkey},
    )
    client.verify(swap, payment_hash=payment_hash)
    payer = threading.Thread(target=lambda: lab.node(node).pay_invoice(swap["invoice"]), daemon=True)
    payer.start()
    locked = wait_state(api, swap["swapId"], {"lockup_mempool", "lockup_confirmed"}, timeout_s=timeout_s)
    client.claim(lab, locked, lockup_of(locked), preimage, to_address)
    lab.mine(1)
    done = wait_state(api, swap["swapId"], "invoice_settled", timeout_s=timeout_s)
    payer.join(timeout=timeout_s)
    return done
