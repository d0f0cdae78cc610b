"""Network snapshots: a built, funded, channel-open lab saved once per
topology, so later bring-ups start from a copy instead of building it again.

A snapshot holds the chain backend's data directory, every LND node's data
directory (wallet, channel database, graph, TLS certificate and macaroons;
logs left out) and a manifest: the faucet's unspent outputs, the channels
with their channel points, the node pubkeys. A bring-up from a snapshot
copies it into the new lab directory, starts the chain on it, mines one block
(a tip from the snapshot's day would keep Core in initial block download and
LND from calling itself synced), starts the LND nodes, connects the channel
peers and waits until every channel is usable again. The graph in each node's
database is already complete.

The LND nodes listen on the snapshot's own P2P ports: every node's database
holds its peers' addresses (link nodes, node announcements), and LND keeps
dialling those after a restart. At other ports they would be stale, and a
node restarted in a test would wait minutes for its peers to find it (LND's
reconnection backoff doubles with every refused dial). So a topology has up
to ``MAX_SLOTS`` snapshots, each with ports of its own: a bring-up restores
the first slot whose ports are free (parallel labs take different slots) and
builds the next slot when all built ones are busy.

Only Bitcoin Core keeps its chain across a restart, so only ``chain:
bitcoind`` labs have snapshots (btcd deletes its regtest database at every
start). Snapshots live in the cache (``<cache>/snapshots/``), keyed by the
topology's content, the runtime and every pin that shapes the data; one
older than ``MAX_AGE_S`` is rebuilt (LND prunes graph edges whose updates
are two weeks old). Building one takes a lock, so parallel labs (pytest-xdist
workers) build each snapshot once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.chain.faucet import Utxo
from harness.topology import Channel, Topology
from lncore.stubs import cache_root
from lncore.versions import BITCOIN_CORE_SDIST_SHA256, LND_LAB_TAGS, LND_VERSION

# Bump when what a snapshot holds or how it is restored changes.
FORMAT = 2
MAX_AGE_S = 7 * 24 * 3600
# Snapshots (port sets) per topology and runtime: as many labs of it can start
# from a snapshot at the same time (pytest-xdist workers); more build cold.
MAX_SLOTS = 3
# What snapshot_key() and the slot suffix name (prune() touches nothing else).
_SNAPSHOT_NAME = re.compile(r".+-[a-z]+-[a-z]+-[0-9a-f]{16}-s\d+")
MANIFEST = "manifest.json"
CHAIN_DIR = "chain"
NODES_DIR = "nodes"
# Logs stay with the lab that wrote them: LND's logs/ and stdout, Core's
# debug.log and stdout. (Not "*.log": LevelDB's write-ahead logs in Core's
# block index and chainstate are named NNNNNN.log.)
_IGNORE = shutil.ignore_patterns("logs", "debug.log", "*stdout.log")


def snapshots_root() -> Path:
    return Path(os.environ.get("LAB_SNAPSHOT_DIR") or cache_root() / "snapshots")


@dataclass(frozen=True)
class SavedChannel:
    spec: Channel
    channel_point: str


@dataclass(frozen=True)
class Manifest:
    topology: str
    chain: str
    height: int
    created: float
    utxos: list[Utxo]
    channels: list[SavedChannel]
    pubkeys: dict[str, str]
    p2p_ports: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "topology": self.topology,
            "chain": self.chain,
            "height": self.height,
            "created": self.created,
            "utxos": [[u.txid, u.vout, u.value_sat, u.height] for u in self.utxos],
            "channels": [
                {"spec": c.spec.model_dump(mode="json", by_alias=True), "channel_point": c.channel_point}
                for c in self.channels
            ],
            "pubkeys": self.pubkeys,
            "p2p_ports": self.p2p_ports,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        return cls(
            topology=str(d["topology"]),
            chain=str(d["chain"]),
            height=int(d["height"]),
            created=float(d["created"]),
            utxos=[Utxo(str(t), int(v), int(s), int(h)) for t, v, s, h in d["utxos"]],
            channels=[
                SavedChannel(Channel.model_validate(c["spec"]), str(c["channel_point"])) for c in d["channels"]
            ],
            pubkeys={str(k): str(v) for k, v in d["pubkeys"].items()},
            p2p_ports={str(k): int(v) for k, v in d["p2p_ports"].items()},
        )


class SnapshotStore:
    """One snapshot (``slot``) of one topology on one runtime."""

    def __init__(self, topology: Topology, runtime: str, root: Path | None = None, *, slot: int = 0):
        self.topology = topology
        self.runtime = runtime
        self.slot = slot
        self.root = root or snapshots_root()
        self.key = f"{snapshot_key(topology, runtime)}-s{slot}"
        self.path = self.root / self.key

    def slots(self) -> list[SnapshotStore]:
        """Every slot of this topology and runtime, this one's numbering."""
        return [SnapshotStore(self.topology, self.runtime, self.root, slot=i) for i in range(MAX_SLOTS)]

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Held while checking for and building this snapshot (one builder across processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{self.key}.lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def manifest(self) -> Manifest | None:
        """The saved manifest, or None when there is no usable snapshot (absent, another format, too old)."""
        path = self.path / MANIFEST
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if data.get("format") != FORMAT or time.time() - float(data.get("created", 0)) > MAX_AGE_S:
            return None
        try:
            return Manifest.from_json(data)
        except (KeyError, TypeError, ValueError):
            return None

    def save(self, chain_dir: Path, node_dirs: dict[str, Path], manifest: Manifest) -> None:
        """Copy the (stopped) lab's data in; replaces an older snapshot atomically."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copytree(chain_dir, tmp / CHAIN_DIR, ignore=_IGNORE)
        for name, d in node_dirs.items():
            shutil.copytree(d, tmp / NODES_DIR / name, ignore=_IGNORE)
        (tmp / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=1))
        old = self.path.with_name(self.path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            self.path.rename(old)
        tmp.rename(self.path)
        shutil.rmtree(old, ignore_errors=True)
        prune(self.root)

    def restore(self, chain_dir: Path, node_dirs: dict[str, Path]) -> Manifest:
        """Copy the snapshot into a new lab's directories; returns its manifest."""
        manifest = self.manifest()
        if manifest is None:
            raise FileNotFoundError(f"no usable snapshot at {self.path}")
        shutil.copytree(self.path / CHAIN_DIR, chain_dir, dirs_exist_ok=True)
        for name, d in node_dirs.items():
            shutil.copytree(self.path / NODES_DIR / name, d, dirs_exist_ok=True)
        return manifest

    def discard(self) -> None:
        """Drop this snapshot (a restore from it failed): the next bring-up builds it again."""
        shutil.rmtree(self.path, ignore_errors=True)


def prune(root: Path) -> list[Path]:
    """Remove snapshots nobody can use any more (another format, or too old); returns them.
    Pins changing leave snapshots under keys no lab asks for: those age out the same way."""
    removed = []
    for d in root.iterdir() if root.is_dir() else []:
        if not d.is_dir() or not _SNAPSHOT_NAME.fullmatch(d.name):
            continue
        try:
            data = json.loads((d / MANIFEST).read_text())
            usable = data.get("format") == FORMAT and time.time() - float(data.get("created", 0)) <= MAX_AGE_S
        except (OSError, ValueError, TypeError):
            usable = False
        if not usable:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def snapshot_key(topology: Topology, runtime: str) -> str:
    """Names a snapshot by everything that shapes its data."""
    ident = {
        "format": FORMAT,
        "topology": topology.model_dump(mode="json", by_alias=True),
        "runtime": runtime,
        "lnd": f"{LND_VERSION} {LND_LAB_TAGS}",
        "bitcoin_core": BITCOIN_CORE_SDIST_SHA256,
    }
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return f"{topology.name}-{topology.chain}-{runtime}-{digest}"
