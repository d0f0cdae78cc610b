"""The HTTP face of LSPS2 (``POST /api/liquidity/jit``): a JIT channel bought for a client's node.

The same LSPS2 methods as over peer messages (one dispatcher), called on behalf of the client's
node: ``lsps2.get_info`` issues the fee menu bound to that node id, the cheapest line that
accepts the payment size is chosen, and ``lsps2.buy`` returns the JIT SCID. The invoice the
client's node then issues carries a route hint ``LSP --jit scid--> client`` with zero fees and the
LSP's CLTV delta (bLIP-52); the LSPS daemon (``lsp lsps``) opens the channel when the first HTLC
for the SCID arrives, minus the opening fee.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lsp.errors import Conflict, ValidationFailed
from lsp.lsps import lsps2
from lsp.lsps.jsonrpc import Caller, Dispatcher, RpcError


@dataclass(frozen=True)
class JitBuy:
    params: lsps2.OpeningFeeParams
    opening_fee_params: dict[str, Any]  # as the LSP issued them (with the promise)
    jit_channel_scid: str
    lsp_cltv_expiry_delta: int
    client_trusts_lsp: bool
    payment_size_msat: int | None
    opening_fee_msat: int | None


# LSPS2's errors, as the request's fields (HTTP 422): the client can correct these.
_FIELD_OF = {
    lsps2.UNRECOGNIZED_OR_STALE_TOKEN: "body.token",
    lsps2.PAYMENT_SIZE_TOO_SMALL: "body.paymentSizeMsat",
    lsps2.PAYMENT_SIZE_TOO_LARGE: "body.paymentSizeMsat",
}


async def _call(d: Dispatcher, method: str, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    try:
        return await d.invoke(method, params, caller)
    except RpcError as err:
        field = _FIELD_OF.get(err.code)
        if field is not None:
            raise ValidationFailed(f"LSPS2 {method}: {err.message}", field=field) from None
        raise Conflict(f"LSPS2 {method} refused: {err.message} (code {err.code})") from None


def cheapest(menu: list[lsps2.OpeningFeeParams], payment_size_msat: int | None) -> lsps2.OpeningFeeParams:
    """The menu line with the lowest fee for that size (any size: the lowest minimum fee). A size no
    line accepts is the client's 422 naming the field, with the range the menu covers."""
    if payment_size_msat is None:
        return min(menu, key=lambda p: (p.min_fee_msat, p.proportional))
    fits: list[tuple[int, lsps2.OpeningFeeParams]] = []
    for p in menu:
        try:
            fits.append((lsps2.check_payment_size(p, payment_size_msat), p))
        except RpcError:
            continue
    if not fits:
        low = min(p.min_payment_size_msat for p in menu)
        high = max(p.max_payment_size_msat for p in menu)
        raise ValidationFailed(
            f"no fee line accepts {payment_size_msat} msat (the menu covers {low}..{high} msat, and the size must "
            "exceed the opening fee)",
            field="body.paymentSizeMsat",
        )
    return min(fits, key=lambda fp: fp[0])[1]


async def buy(d: Dispatcher, client_node_id: str, *, payment_size_msat: int | None, token: str | None) -> JitBuy:
    caller = Caller(node_id=client_node_id, transport="https")
    info = await _call(d, "lsps2.get_info", {"token": token} if token is not None else {}, caller)
    menu = [lsps2.OpeningFeeParams.from_json(p) for p in info["opening_fee_params_menu"]]
    chosen = cheapest(menu, payment_size_msat)
    params: dict[str, Any] = {"opening_fee_params": chosen.to_json()}
    if payment_size_msat is not None:
        params["payment_size_msat"] = str(payment_size_msat)
    bought = await _call(d, "lsps2.buy", params, caller)
    return JitBuy(
        params=chosen,
        opening_fee_params=chosen.to_json(),
        jit_channel_scid=str(bought["jit_channel_scid"]),
        lsp_cltv_expiry_delta=int(bought["lsp_cltv_expiry_delta"]),
        client_trusts_lsp=bool(bought["client_trusts_lsp"]),
        payment_size_msat=payment_size_msat,
        opening_fee_msat=chosen.fee(payment_size_msat) if payment_size_msat is not None else None,
    )
