"""Pure swap logic: the HTLC script bytes, claim/refund transactions and fees, the state machines."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from embit import script as escript

from lsp.swaps import keys, scripts, state, tx
from lsp.swaps.config import SwapSettings

pytestmark = pytest.mark.unit

PRE = bytes(range(32))
HASH = hashlib.sha256(PRE).digest()
CLAIM = keys.derive("secret", "claim")
REFUND = keys.derive("secret", "refund")


def _script(timeout: int = 700) -> bytes:
    return scripts.swap_script(HASH, CLAIM.get_public_key().sec(), REFUND.get_public_key().sec(), timeout)


def test_script_is_boltz_template_with_hash160_of_the_preimage() -> None:
    s = _script(700)
    # OP_HASH160 <20> OP_EQUAL OP_IF <33> OP_ELSE <2-byte 700> OP_CLTV OP_DROP <33> OP_ENDIF OP_CHECKSIG
    assert s[0] == 0xA9 and s[1] == 20
    assert s[2:22] == scripts.hash160(PRE) == scripts.ripemd160(HASH)
    assert s[22:24] == bytes([0x87, 0x63])
    assert s[24] == 33 and s[25:58] == CLAIM.get_public_key().sec()
    assert s[58] == 0x67 and s[59:62] == bytes([2]) + (700).to_bytes(2, "little")
    assert s[62:64] == bytes([0xB1, 0x75])
    assert s[64] == 33 and s[65:98] == REFUND.get_public_key().sec()
    assert s[98:] == bytes([0x68, 0xAC])


def test_parse_round_trips_and_rejects_other_scripts() -> None:
    p = scripts.parse_swap_script(_script(123_456))
    assert p.timeout_height == 123_456 and p.claim_pubkey == CLAIM.get_public_key().sec()
    with pytest.raises(scripts.ScriptError):
        scripts.parse_swap_script(_script()[:-1])
    with pytest.raises(scripts.ScriptError):
        scripts.parse_swap_script(bytes([0x76]) + _script()[1:])


@pytest.mark.parametrize(("n", "enc"), [(127, "7f"), (128, "8000"), (255, "ff00"), (256, "0001"), (700, "bc02")])
def test_script_numbers_are_minimal(n: int, enc: str) -> None:
    assert scripts.script_num(n).hex() == enc


def test_bad_swap_parameters_are_refused() -> None:
    with pytest.raises(scripts.ScriptError, match="payment_hash"):
        scripts.swap_script(b"\x00" * 31, CLAIM.get_public_key().sec(), REFUND.get_public_key().sec(), 100)
    with pytest.raises(scripts.ScriptError, match="block height"):
        scripts.swap_script(HASH, CLAIM.get_public_key().sec(), REFUND.get_public_key().sec(), 500_000_000)
    with pytest.raises(scripts.ScriptError, match="claim_pubkey"):
        scripts.swap_script(HASH, b"\x04" * 33, REFUND.get_public_key().sec(), 100)


def test_regtest_address_is_p2wsh_of_the_script() -> None:
    addr = scripts.p2wsh_address(_script(), "regtest")
    assert addr.startswith("bcrt1q") and len(addr) == 64
    assert escript.address_to_scriptpubkey(addr).data == scripts.p2wsh_script_pubkey(_script())


DEST = bytes(escript.p2wpkh(CLAIM.get_public_key()).data)


def test_claim_reveals_the_preimage_and_pays_the_rate() -> None:
    s = _script()
    signed = tx.build_spend(
        lockup_txid="ab" * 32, lockup_vout=1, lockup_value_sat=100_000, witness_script=s, key=CLAIM,
        dest_script_pubkey=DEST, sat_per_vb=3.0, preimage=PRE,
    )  # fmt: skip
    parsed = tx.parse(signed.hex)
    assert tx.spends(parsed, "ab" * 32, 1) == 0
    assert tx.witness_preimage(parsed, 0) == PRE
    assert parsed.locktime == 0
    assert signed.value_sat + signed.fee_sat == 100_000
    assert signed.fee_sat >= 3 * signed.vsize  # the estimate never undershoots the real size
    assert signed.vsize <= tx.spend_vsize(s, DEST, claim=True)


def test_refund_sets_locktime_and_non_final_sequence() -> None:
    signed = tx.build_spend(
        lockup_txid="cd" * 32, lockup_vout=0, lockup_value_sat=50_000, witness_script=_script(800), key=REFUND,
        dest_script_pubkey=DEST, sat_per_vb=1.0, timeout_height=800,
    )  # fmt: skip
    parsed = tx.parse(signed.hex)
    assert parsed.locktime == 800
    assert parsed.vin[0].sequence == 0xFFFFFFFE
    assert tx.witness_preimage(parsed, 0) is None
    assert not tx.signals_rbf(parsed)


def test_output_that_cannot_pay_its_fee_is_refused() -> None:
    with pytest.raises(tx.TxBuildError, match="dust"):
        tx.build_spend(
            lockup_txid="ab" * 32, lockup_vout=0, lockup_value_sat=600, witness_script=_script(), key=CLAIM,
            dest_script_pubkey=DEST, sat_per_vb=5.0, preimage=PRE,
        )  # fmt: skip


def test_lnd_fee_units_convert_to_sat_per_vbyte() -> None:
    assert tx.sat_per_kw_to_vb(253) == pytest.approx(1.012)
    assert tx.fee_for(135, 1.012) == 137


def test_service_fee_is_seed_base_plus_ppm_rounded_up() -> None:
    s = SwapSettings(_env_file=None)  # type: ignore[call-arg]
    assert s.service_fee(50_000) == 100 + 25
    assert s.service_fee(1) == 101


def test_keys_are_deterministic_and_detect_a_changed_secret() -> None:
    k = keys.derive("secret", "swap1")
    assert keys.derive("secret", "swap1", expected_pubkey=keys.pubkey_hex(k)).secret == k.secret
    with pytest.raises(keys.KeyMismatch):
        keys.derive("other", "swap1", expected_pubkey=keys.pubkey_hex(k))


def test_submarine_happy_path_is_legal_and_ends_final() -> None:
    path = [
        "created",
        "lockup_mempool",
        "lockup_confirmed",
        "invoice_pending",
        "invoice_paid",
        "claim_pending",
        "claimed",
    ]
    for a, b in itertools.pairwise(path):
        state.check_transition("submarine", a, b)
    assert state.is_final("submarine", "claimed")


def test_reverse_happy_and_refund_paths() -> None:
    for path in (
        ["created", "invoice_accepted", "lockup_mempool", "lockup_confirmed", "claimed", "invoice_settled"],
        ["created", "invoice_accepted", "lockup_mempool", "refund_pending", "refunded"],
    ):
        for a, b in itertools.pairwise(path):
            state.check_transition("reverse", a, b)
        assert state.is_final("reverse", path[-1])


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        ("submarine", "claimed", "claim_pending"),  # a second claim after the first confirmed
        ("submarine", "created", "invoice_paid"),  # paying without a confirmed lockup
        ("submarine", "invoice_paid", "invoice_failed"),
        ("reverse", "created", "lockup_mempool"),  # locking funds before the invoice is paid
        ("reverse", "refunded", "claimed"),
        ("reverse", "invoice_settled", "refund_pending"),
    ],
)
def test_illegal_moves_are_refused(kind: str, old: str, new: str) -> None:
    with pytest.raises(state.IllegalTransition):
        state.check_transition(kind, old, new)
