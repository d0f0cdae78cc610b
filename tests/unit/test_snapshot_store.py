"""The snapshot store's bookkeeping (pure logic; the live round trip is in tests/lab/test_chain.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.chain.faucet import Utxo
from harness.snapshot import FORMAT, MANIFEST, MAX_AGE_S, Manifest, SavedChannel, SnapshotStore, snapshot_key
from harness.topology import Channel, load_topology

pytestmark = pytest.mark.unit


def _manifest(created: float | None = None) -> Manifest:
    ch = Channel.model_validate({"from": "alice", "to": "bob", "capacity_sat": 1_000_000, "push_sat": 10_000})
    return Manifest(
        topology="line3", chain="bitcoind", height=128, created=created or time.time(),
        utxos=[Utxo("ab" * 32, 1, 4_999_000_000, 0)], channels=[SavedChannel(ch, "cd" * 32 + ":0")],
        pubkeys={"alice": "02" + "11" * 32}, p2p_ports={"alice": 23456},
    )


def _lab_dirs(root: Path) -> tuple[Path, dict[str, Path]]:
    chain, alice = root / "bitcoind", root / "alice"
    (chain / "regtest" / "blocks").mkdir(parents=True)
    (chain / "regtest" / "blocks" / "blk00000.dat").write_bytes(b"\0" * 100)
    (chain / "regtest" / "debug.log").write_text("log lines stay with the lab\n")
    (chain / "regtest" / "chainstate").mkdir()
    (chain / "regtest" / "chainstate" / "000003.log").write_bytes(b"leveldb's write-ahead log is data")
    (alice / "data" / "graph" / "regtest").mkdir(parents=True)
    (alice / "data" / "graph" / "regtest" / "channel.db").write_bytes(b"db")
    (alice / "logs" / "bitcoin" / "regtest").mkdir(parents=True)
    (alice / "logs" / "bitcoin" / "regtest" / "lnd.log").write_text("x")
    return chain, {"alice": alice}


def test_save_and_restore_round_trip_without_logs(tmp_path: Path) -> None:
    store = SnapshotStore(load_topology("line3"), "process", root=tmp_path / "snaps")
    assert store.manifest() is None
    chain, nodes = _lab_dirs(tmp_path / "lab")
    saved = _manifest()
    store.save(chain, nodes, saved)
    assert store.manifest() == saved

    new = tmp_path / "lab2"
    got = store.restore(new / "bitcoind", {"alice": new / "alice"})
    assert got == saved
    assert (new / "bitcoind" / "regtest" / "blocks" / "blk00000.dat").read_bytes() == b"\0" * 100
    assert (new / "alice" / "data" / "graph" / "regtest" / "channel.db").read_bytes() == b"db"
    assert not (new / "bitcoind" / "regtest" / "debug.log").exists()
    assert (new / "bitcoind" / "regtest" / "chainstate" / "000003.log").read_bytes() == b"leveldb's write-ahead log is data"
    assert not (new / "alice" / "logs").exists()


def test_an_old_or_other_format_snapshot_is_not_used(tmp_path: Path) -> None:
    store = SnapshotStore(load_topology("line3"), "process", root=tmp_path / "snaps")
    chain, nodes = _lab_dirs(tmp_path / "lab")
    store.save(chain, nodes, _manifest())
    data = json.loads((store.path / MANIFEST).read_text())
    data.update(created=time.time() - MAX_AGE_S - 60)
    (store.path / MANIFEST).write_text(json.dumps(data))
    assert store.manifest() is None  # LND would prune its graph's two-week-old edges
    data.update(created=time.time(), format=FORMAT + 1)
    (store.path / MANIFEST).write_text(json.dumps(data))
    assert store.manifest() is None
    other = SnapshotStore(load_topology("line3"), "process", root=tmp_path / "snaps", slot=1)
    other.save(chain, nodes, _manifest())  # saving prunes what nobody can use any more
    assert not store.path.exists() and other.path.exists() and chain.is_dir()
    other.discard()
    assert not other.path.exists()


def test_each_slot_is_a_snapshot_of_its_own(tmp_path: Path) -> None:
    store = SnapshotStore(load_topology("line3"), "process", root=tmp_path)
    slots = store.slots()
    assert [s.slot for s in slots] == list(range(len(slots))) and len(slots) >= 2
    assert len({s.path for s in slots}) == len(slots)
    chain, nodes = _lab_dirs(tmp_path / "lab")
    slots[1].save(chain, nodes, _manifest())
    assert slots[0].manifest() is None and slots[1].manifest() is not None


def test_the_key_follows_everything_that_shapes_the_data() -> None:
    line3 = load_topology("line3")
    key = snapshot_key(line3, "process")
    assert key.startswith("line3-bitcoind-process-")
    assert snapshot_key(load_topology("line3"), "process") == key
    assert snapshot_key(line3, "docker") != key
    bigger = line3.model_copy(update={"channels": [c.model_copy(update={"capacity_sat": c.capacity_sat + 1})
                                                    for c in line3.channels]})
    assert snapshot_key(bigger, "process") != key
