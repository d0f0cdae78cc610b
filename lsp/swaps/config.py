"""Swap settings (``LSP_SWAP_*``): the ``swap`` section of the LSP's Settings (``settings.swap``).

Fees follow the seed's fee structure: a fixed per-transaction fee
(``hosting.transactionFee``: 100 sat) plus a proportional fee (the seed's
liquidity ``utilizationFee``: 500 ppm), plus the miner fee of the on-chain
transaction the LSP itself makes (its claim for a swap-in, its lockup for a
reverse swap) at the fee rate LND estimates when the quote is made.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SwapSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LSP_SWAP_", env_file=".env", extra="ignore")

    enabled: bool = True
    watch: bool = Field(default=True, description="run the swap loop (off: swaps are created but not advanced)")
    min_amount: int = Field(default=10_000, ge=1000, description="sats")
    max_amount: int = Field(default=10_000_000, ge=1000, description="sats")
    base_fee: int = Field(default=100, ge=0, description="sats per swap (the seed's per-transaction fee)")
    fee_ppm: int = Field(default=500, ge=0, le=1_000_000, description="proportional fee, parts per million")
    fee_conf_target: int = Field(default=6, ge=1, description="blocks, for LND's EstimateFee")
    confirmations: int = Field(default=1, ge=1, le=100, description="lockup confirmations before paying")
    # Swap-ins up to this amount may be paid on an unconfirmed lockup the client submits (and the LSP
    # publishes) if it does not signal RBF; 0 turns 0-conf off.
    zero_conf_max_amount: int = Field(default=0, ge=0, description="sats")
    submarine_timeout_blocks: int = Field(default=144, ge=10, description="swap-in refund height = tip + this")
    reverse_timeout_blocks: int = Field(default=72, ge=10, description="reverse refund height = tip + this")
    # Swap-in: never pay the client's invoice with fewer blocks than this left before the refund height, and
    # cap the payment's CLTV so a client holding the HTLC cannot outlast it (then refund AND be paid).
    claim_margin_blocks: int = Field(default=6, ge=2)
    # Reverse: the hold invoice's final CLTV delta exceeds the on-chain timeout by this, so a claim made just
    # before the timeout still leaves the LSP blocks to settle the incoming HTLC with the preimage.
    invoice_cltv_margin_blocks: int = Field(default=24, ge=6)
    invoice_expiry_s: int = Field(default=3600, ge=60, description="reverse: how long the hold invoice is payable")
    poll_s: float = Field(default=2.0, gt=0, description="how often waiting swaps re-check the tip and the DB")
    # Fault injection for tests and drills: the loop stops advancing a swap once it reaches this state.
    halt_at_state: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SwapSettings:
        if self.min_amount > self.max_amount:
            raise ValueError("LSP_SWAP_MIN_AMOUNT is larger than LSP_SWAP_MAX_AMOUNT")
        if self.claim_margin_blocks * 2 >= self.submarine_timeout_blocks:
            raise ValueError("LSP_SWAP_CLAIM_MARGIN_BLOCKS must be under half of LSP_SWAP_SUBMARINE_TIMEOUT_BLOCKS")
        return self

    def service_fee(self, amount_sat: int) -> int:
        return self.base_fee + -(-amount_sat * self.fee_ppm // 1_000_000)
