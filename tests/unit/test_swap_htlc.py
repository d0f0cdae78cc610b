"""The lab's own swap-HTLC code (harness.swap_htlc), checked against fixed vectors and against the
LSP's independent implementation: two codebases written apart must agree byte for byte."""

from __future__ import annotations

import hashlib
import random

import pytest
from embit import ec
from embit.script import Script, p2wpkh
from embit.transaction import Transaction

from harness import swap_htlc

pytestmark = pytest.mark.unit

# secp256k1's generator G (private key 1) and 2G, compressed.
G = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
G2 = bytes.fromhex("02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")


def test_script_for_known_inputs_is_the_template_written_out_by_hand() -> None:
    # preimage b"": payment hash SHA256(""), and HASH160("") = b472a266...9fcb.
    script = swap_htlc.expected_script(hashlib.sha256(b"").digest(), G, G2, 700)
    assert script.hex() == (
        "a914b472a266d0bd89c13706a4132ccfb16f7c3b9fcb87"  # OP_HASH160 <20> OP_EQUAL
        "6321" + G.hex() +  # OP_IF <claim>
        "6702bc02b175"  # OP_ELSE <700> OP_CHECKLOCKTIMEVERIFY OP_DROP
        "21" + G2.hex() +  # <refund>
        "68ac"  # OP_ENDIF OP_CHECKSIG
    )


@pytest.mark.parametrize(("height", "push"), [(127, "017f"), (128, "028000"), (65_535, "03ffff00"), (8_388_608, "0400008000")])
def test_timeout_heights_are_minimal_script_numbers(height: int, push: str) -> None:
    script = swap_htlc.expected_script(b"\x00" * 32, G, G2, height)
    assert script[59:].hex().startswith(push)  # right after OP_ELSE


def test_p2wsh_address_matches_bip173() -> None:
    # BIP173's P2WSH vectors: the script <G> OP_CHECKSIG.
    p2pk = b"\x21" + G + b"\xac"
    assert swap_htlc.address_of(p2pk, "mainnet") == "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"
    assert swap_htlc.address_of(p2pk, "testnet") == "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7"


def test_the_lab_and_the_lsp_build_the_same_script_and_address() -> None:
    from lsp.swaps import scripts

    rng = random.Random(7)
    for _ in range(50):
        h = rng.randbytes(32)
        claim = ec.PrivateKey(rng.randbytes(32)).get_public_key().sec()
        refund = ec.PrivateKey(rng.randbytes(32)).get_public_key().sec()
        height = rng.randrange(1, 500_000_000)
        ours = swap_htlc.expected_script(h, claim, refund, height)
        assert ours == scripts.swap_script(h, claim, refund, height)
        assert swap_htlc.address_of(ours) == scripts.p2wsh_address(ours, "regtest")


@pytest.mark.parametrize("claim", [True, False])
def test_a_spend_signs_the_htlc_input_and_pays_the_rate(claim: bool) -> None:
    key = ec.PrivateKey(b"\x01" * 32)
    pre = b"\x02" * 32
    script = swap_htlc.expected_script(hashlib.sha256(pre).digest(), key.get_public_key().sec(), G2, 900)
    dest = p2wpkh(key.get_public_key()).data
    s = swap_htlc.spend(
        outpoint=("cd" * 32, 3), value_sat=50_000, witness_script=script, key=key, dest_script_pubkey=dest,
        sat_per_vb=2.0, preimage=pre if claim else None, timeout_height=None if claim else 900,
    )  # fmt: skip
    tx = Transaction.parse(bytes.fromhex(s.hex))
    assert (tx.vin[0].txid.hex(), tx.vin[0].vout) == ("cd" * 32, 3)
    assert tx.vout[0].value == s.value_sat == 50_000 - s.fee_sat
    assert tx.locktime == (0 if claim else 900) and (tx.vin[0].sequence < 0xFFFFFFFF) == (not claim)
    sig, second, ws = tx.vin[0].witness.items
    assert ws == script and second == (pre if claim else b"")
    digest = tx.sighash_segwit(0, Script(script), 50_000)
    assert key.get_public_key().verify(ec.Signature.parse(sig[:-1]), digest) and sig[-1] == 1
    # Weight from the serialised sizes (BIP141): the fee pays at least the rate asked for.
    tx_nowit = Transaction.parse(bytes.fromhex(s.hex))
    tx_nowit.vin[0].witness.items = []
    vsize = -(-(3 * len(tx_nowit.serialize()) + len(bytes.fromhex(s.hex))) // 4)
    assert 2.0 * vsize <= s.fee_sat <= 2.0 * (vsize + 1)
