"""The chain backends against live nodes: the operations every backend offers,
what only Bitcoin Core allows (restart with its data, network snapshots,
package submission), and labs side by side.

Tests about one backend start their own lab with ``chain=`` so that
``--lab-chain`` (CI's btcd subset) does not change what they are about.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from embit import script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from harness.chain import RpcError, make_chain
from harness.chain.faucet import Faucet, Utxo
from harness.errors import LabError, ProcessDied
from harness.harness import LightningTestHarness
from harness.rpc.base import RpcFailed
from harness.runtime.process import ProcessRuntime
from harness.snapshot import SnapshotStore
from harness.toolchain.build import find_toolchain
from harness.wait import wait_for

StartLab = Callable[..., LightningTestHarness]


@pytest.fixture
def lab_on(request: pytest.FixtureRequest) -> Iterator[StartLab]:
    """``lab_on(topology, chain=..., **kw)``: a started lab, stopped (kept on failure) after the test."""
    labs: list[LightningTestHarness] = []

    def start(topology: str, **kw: bool | str) -> LightningTestHarness:
        lab = LightningTestHarness(topology, **kw)  # type: ignore[arg-type]
        lab.start(retries=1)
        labs.append(lab)
        return lab

    yield start
    failed = bool(getattr(request.node, "_lab_rep_call", None) and request.node._lab_rep_call.failed)
    for lab in labs:
        lab.stop(failed=failed)


@pytest.mark.parametrize("chain", ["bitcoind", "btcd"])
def test_every_backend_mines_relays_and_confirms_for_lnd(lab_on: StartLab, chain: str) -> None:
    lab = lab_on("pair", chain=chain, snapshot=False)
    assert lab.chain.kind == chain
    node = lab.node("nodea")
    before = node.balances().onchain_confirmed_sat
    height, _ = lab.chain.tip()

    txid = lab.send_onchain(node.new_address(), 1_234_567, confirm=False)
    lab.chain.wait_for_tx(txid)
    assert txid in lab.chain.mempool()
    assert lab.chain.confirmations(txid) == 0

    block = lab.mine(1)[0]
    assert lab.chain.tip() == (height + 1, block)
    assert lab.chain.confirmations(txid) == 1
    mined = lab.chain.block(block)
    assert txid in {t["txid"] if isinstance(t, dict) else t for t in (mined.get("rawtx") or mined["tx"])}
    wait_for(lambda: node.balances().onchain_confirmed_sat == before + 1_234_567,
             what="nodea's confirmed balance to grow by exactly the amount sent", timeout_s="WALLET_BALANCE")
    assert node.get_info().block_hash == block


def test_labs_side_by_side_share_no_port_directory_or_zmq_socket(tmp_path: Path) -> None:
    toolchain = find_toolchain()
    runtime = ProcessRuntime()
    a = make_chain("bitcoind", toolchain=toolchain, datadir=tmp_path / "a", runtime=runtime, mining_address=Faucet().address)
    b = make_chain("bitcoind", toolchain=toolchain, datadir=tmp_path / "b", runtime=runtime, mining_address=Faucet().address)
    try:
        a.start()
        b.start()
        ports = [{*c.publish(), c.config.zmq_block_port, c.config.zmq_tx_port} for c in (a, b)]  # type: ignore[attr-defined]
        assert len(ports[0]) == len(ports[1]) == 3 and not ports[0] & ports[1]
        a.mine(5)
        assert (a.height(), b.height()) == (5, 0)
        assert a.datadir != b.datadir and (a.datadir / "regtest").is_dir() and (b.datadir / "regtest").is_dir()
    finally:
        a.stop()
        b.stop()


def test_a_busy_port_stops_bitcoind_with_a_one_line_reason(tmp_path: Path) -> None:
    from harness.chain.bitcoind import Bitcoind, BitcoindConfig

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        cfg = BitcoindConfig(binary=find_toolchain().bitcoind, datadir=tmp_path / "core", rpc_port=port)
        chain = Bitcoind(cfg, ProcessRuntime(), mining_address=Faucet().address)
        with pytest.raises(ProcessDied) as err:
            chain.start()
    first = str(err.value).splitlines()[0]
    assert f"127.0.0.1:{port}" in first and "in use" in first, first


def _pay(lab: LightningTestHarness, payer: str, payee: str, amount_sat: int) -> None:
    invoice = lab.node(payee).add_invoice(amount_sat)
    res = lab.node(payer).pay_invoice(invoice.payment_request, fee_limit_sat=1_000)
    assert res.succeeded, res.failure_reason


def test_bitcoind_restarts_with_its_chain_and_lnd_follows(lab_on: StartLab) -> None:
    lab = lab_on("line3", chain="bitcoind")
    height, tip = lab.chain.tip()
    lab.stop_chain()
    assert not lab.chain.is_running()
    # LND keeps running without its backend, and says what it lacks: GetInfo (and a payment: LND
    # v0.21.2 asks bitcoind for the best block when one starts) fails until the chain is back.
    with pytest.raises(RpcFailed, match="unable to get best block info"):
        lab.node("alice").get_info()
    assert all(n.proc is not None and n.proc.is_running() for n in lab.nodes.values())
    lab.start_chain()
    assert lab.chain.block_hash(height) == tip  # the same chain, plus the block(s) start_chain mined
    new_height, new_tip = lab.chain.tip()
    assert new_height > height
    for node in lab.nodes.values():
        info = node.get_info()
        assert info.synced_to_chain and (info.block_height, info.block_hash) == (new_height, new_tip)
    _pay(lab, "alice", "carol", 3_000)
    # And what needs the chain works again: a new channel, opened, confirmed and used.
    point = lab.open_channel("alice", "carol", 500_000, push_sat=0)
    chan = next(c for c in lab.node("alice").list_channels() if c.channel_point == point)
    invoice = lab.node("carol").add_invoice(4_000)
    res = lab.node("alice").router.pay_invoice(invoice.payment_request, outgoing_chan_ids=[chan.chan_id])
    assert res.succeeded and res.fee_msat == 0  # direct: no routing fee


def test_btcd_cannot_be_restarted_and_says_why(lab_on: StartLab) -> None:
    lab = lab_on("pair", chain="btcd")
    with pytest.raises(LabError, match=r"btcd deletes its regtest chain at every start\..*chain: bitcoind"):
        lab.stop_chain()
    assert lab.chain.is_running()


def test_a_network_starts_from_its_snapshot(lab_on: StartLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    first = lab_on("line3", chain="bitcoind", snapshot=True)
    slot0 = SnapshotStore(first.topology, "process")
    manifest = slot0.manifest()
    assert manifest is not None and slot0.path.is_dir()
    points = {oc.channel_point for oc in first.net.channels}
    assert points == {c.channel_point for c in manifest.channels}
    assert {n: first.node(n).pubkey for n in first.nodes} == manifest.pubkeys
    assert {n: first.node(n).config.p2p_port for n in first.nodes} == manifest.p2p_ports

    # A second lab of the same topology while the first runs: slot 0's ports are taken, so it
    # gets a snapshot (and ports) of its own.
    second = lab_on("line3", chain="bitcoind", snapshot=True)
    slot1 = slot0.slots()[1]
    assert slot1.manifest() is not None
    assert not set(slot1.manifest().p2p_ports.values()) & set(manifest.p2p_ports.values())  # type: ignore[union-attr]
    assert {n: second.node(n).config.p2p_port for n in second.nodes} == slot1.manifest().p2p_ports  # type: ignore[union-attr]
    first.stop()

    started = time.monotonic()
    third = lab_on("line3", chain="bitcoind", snapshot=True)
    restored_in = time.monotonic() - started
    # The same network as slot 0: same node keys, same ports, same channels, usable at once.
    assert {n: third.node(n).pubkey for n in third.nodes} == manifest.pubkeys
    assert {n: third.node(n).config.p2p_port for n in third.nodes} == manifest.p2p_ports
    assert {c.channel_point for c in third.node("bob").list_channels(active_only=True)} == points
    # One fresh block on top of the snapshot's chain, and every node on it.
    assert third.chain.height() == manifest.height + 1
    assert all(n.get_info().block_height == manifest.height + 1 for n in third.nodes.values())
    # Routing fee through bob: his declared policy on the bob->carol channel (topologies/line3.yaml).
    bob_out = next(c for c in third.topology.channels if {c.from_, c.to} == {"bob", "carol"})
    policy = bob_out.policy if bob_out.from_ == "bob" else bob_out.peer_policy
    assert policy is not None
    invoice = third.node("carol").add_invoice(50_000)
    res = third.node("alice").pay_invoice(invoice.payment_request, fee_limit_sat=1_000)
    assert res.succeeded and res.fee_msat == policy.base_fee_msat + 50_000_000 * policy.fee_rate_ppm // 1_000_000
    # A node restarted later finds its peers at once: the addresses in every node's database are
    # the ones they listen on.
    t0 = time.monotonic()
    third.restart_node("bob")
    assert time.monotonic() - t0 < 20
    assert all(c.active for c in third.node("bob").list_channels())
    # The faucet's coins came with the snapshot: funding still works.
    addr = third.node("carol").new_address()
    third.send_onchain(addr, 700_000)
    wait_for(lambda: third.node("carol").balances().onchain_confirmed_sat >= 700_000, what="carol's new coins",
             timeout_s="WALLET_BALANCE")
    print(f"restored line3 in {restored_in:.1f}s")


def _truc_package(faucet: Faucet, coin: Utxo, pay_to: str, child_fee_sat: int) -> tuple[str, str, int]:
    """A v3 (TRUC) parent paying no fee at all and its child paying for both:
    (parent hex, child hex, what the child pays to ``pay_to``)."""
    parent = Transaction(version=3, vin=[TransactionInput(bytes.fromhex(coin.txid), coin.vout)],
                         vout=[TransactionOutput(coin.value_sat, faucet.script_pubkey)])
    faucet.sign(parent, [coin])
    out = Utxo(parent.txid().hex(), 0, coin.value_sat)
    child = Transaction(version=3, vin=[TransactionInput(bytes.fromhex(out.txid), 0)],
                        vout=[TransactionOutput(coin.value_sat - child_fee_sat, script.address_to_scriptpubkey(pay_to))])
    faucet.sign(child, [out])
    return parent.serialize().hex(), child.serialize().hex(), coin.value_sat - child_fee_sat


def test_submit_package_accepts_a_zero_fee_truc_parent_with_its_cpfp_child(lab_on: StartLab) -> None:
    lab = lab_on("pair", chain="bitcoind")
    node = lab.node("nodea")
    before = node.balances().onchain_confirmed_sat
    parent, child, paid = _truc_package(lab.net.faucet, lab.net.take_faucet_utxo(), node.new_address(), 2_000)
    parent_id = Transaction.parse(bytes.fromhex(parent)).txid().hex()
    child_id = Transaction.parse(bytes.fromhex(child)).txid().hex()
    # Alone, the parent pays nothing and no mempool takes it.
    with pytest.raises(RpcError, match="min relay fee not met"):
        lab.chain.send_raw(parent)

    result = node.wallet.submit_package([parent, child])
    assert result.message == "success" and not result.errors
    assert set(result.txids) == {parent_id, child_id}
    assert {parent_id, child_id} <= set(lab.chain.mempool())
    lab.mine(1)
    assert lab.chain.confirmations(parent_id) == lab.chain.confirmations(child_id) == 1
    wait_for(lambda: node.balances().onchain_confirmed_sat == before + paid, what="nodea to see the child's output",
             timeout_s="WALLET_BALANCE", describe=lambda: f"{node.balances()} (was {before}, paid {paid})")
