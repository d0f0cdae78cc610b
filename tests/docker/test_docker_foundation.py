"""Proof that the Docker pieces work end to end against a real daemon.

Builds the FROM-scratch images (twice: the second time must not rebuild),
starts btcd in a per-lab network, talks to its RPC over TLS from the host
through a 127.0.0.1-published port, mines, starts one LND container that
reaches btcd by name, calls GetInfo over gRPC from the host, and checks that
``cleanup_lab`` leaves nothing labelled with the lab behind.

Start a daemon with ``scripts/dockerd.sh start`` and export the DOCKER_HOST it
prints; without one, every test here is skipped.
"""

from __future__ import annotations

import os
import re
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.chain.base import RPC_PASS, RPC_USER
from harness.errors import ToolchainError
from harness.runtime import compose_pins, images
from harness.runtime import docker_resources as res
from harness.runtime.docker_client import client as docker_client
from harness.runtime.docker_client import docker_available, docker_host
from harness.wait import wait_for

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]


def _mining_address() -> str:
    """A regtest P2WPKH address of a fixed TEST-ONLY key (32 bytes of 0x01)."""
    from embit import ec, script
    from embit.networks import NETWORKS

    key = ec.PrivateKey(bytes([1] * 32))
    return str(script.p2wpkh(key.get_public_key()).address(NETWORKS["regtest"]))


@pytest.fixture(scope="module")
def docker() -> Iterator[Any]:
    if not docker_available():
        pytest.skip(
            f"no Docker daemon answers at {docker_host()}: run `scripts/dockerd.sh start` "
            "and export the DOCKER_HOST it prints"
        )
    c = docker_client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def lab_images(docker: Any) -> images.LabImages:
    try:
        return images.ensure_images(docker)
    except ToolchainError as exc:
        pytest.skip(f"pinned binaries not built: {exc}")


@pytest.fixture
def lab_id(docker: Any) -> Iterator[str]:
    lid = f"t{uuid.uuid4().hex[:10]}"
    yield lid
    res.cleanup_lab(docker, lid)  # also after a failed test


def test_images_build_once(docker: Any, lab_images: images.LabImages) -> None:
    tags = [t for t in (lab_images.bitcoind, lab_images.btcd, lab_images.lnd) if t]
    ids = {tag: docker.images.get(tag).id for tag in tags}
    again = images.ensure_images(docker)
    assert again.built == ()
    assert {tag: docker.images.get(tag).id for tag in tags} == ids
    for spec in images.image_specs():
        labels = docker.images.get(spec.tag).labels
        assert labels[images.LABEL_PIN] == spec.pin
        for name, path in spec.binaries.items():
            assert labels[images.LABEL_SHA_PREFIX + name] == images.sha256_file(path)


def test_the_bitcoind_image_holds_every_library_its_binaries_load(docker: Any, lab_images: images.LabImages) -> None:
    """FROM scratch plus exactly what ldd lists: both binaries start inside it (a missing
    library would stop them in the loader, before --version prints anything)."""
    if lab_images.bitcoind is None:
        pytest.skip("Bitcoin Core is not built (lab setup)")
    spec = next(s for s in images.image_specs() if s.kind == "bitcoind")
    assert "/lib64/ld-linux-x86-64.so.2" in spec.libraries
    assert any("libzmq.so" in p for p in spec.libraries) and any("libevent" in p for p in spec.libraries)
    banners = {"/bin/bitcoind": "Bitcoin Core daemon version v", "/bin/bitcoin-cli": "Bitcoin Core RPC client version v"}
    for binary, banner in banners.items():
        out = docker.containers.run(lab_images.bitcoind, entrypoint=[binary], command=["--version"], remove=True)
        assert out.decode().startswith(banner), out


class BtcdRpc:
    """btcd's JSON-RPC over HTTPS (basic auth), from the host."""

    def __init__(self, port: int, cert_pem: bytes):
        import httpx

        ctx = ssl.create_default_context(cadata=cert_pem.decode())
        self._http = httpx.Client(
            base_url=f"https://127.0.0.1:{port}", auth=(RPC_USER, RPC_PASS), verify=ctx, timeout=10
        )

    def call(self, method: str, *params: Any) -> Any:
        r = self._http.post("/", json={"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)})
        r.raise_for_status()
        body = r.json()
        if body.get("error"):
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def close(self) -> None:
        self._http.close()


def test_btcd_and_lnd_in_a_lab_network(docker: Any, lab_images: images.LabImages, lab_id: str) -> None:
    import grpc
    from cryptography import x509

    from lncore import stubs

    net = res.create_network(docker, lab_id)
    assert res.create_network(docker, lab_id).id == net.id  # idempotent
    btcd_cfg = res.btcd_config(mining_address=_mining_address())

    # --- btcd
    btcd = res.run_container(
        docker,
        lab_id=lab_id,
        role="btcd",
        node="btcd",
        image=lab_images.btcd,
        command=btcd_cfg.argv()[1:],  # the lab's own btcd flags
        network=net,
        publish=[res.BTCD_RPC_PORT],
    )
    want = {res.LABEL_LAB: lab_id, res.LABEL_ROLE: "btcd", res.LABEL_NODE: "btcd"}
    assert {k: btcd.container.labels.get(k) for k in want} == want
    btcd_cert = res.wait_file(btcd.container, res.BTCD_CERT, what="btcd's RPC certificate", timeout_s="CHAIN_READY")
    san = x509.load_pem_x509_certificate(btcd_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "btcd" in san.value.get_values_for_type(x509.DNSName)  # LND reaches it by that name

    rpc = BtcdRpc(btcd.ports[res.BTCD_RPC_PORT], btcd_cert)
    try:
        assert wait_for(lambda: rpc.call("getblockcount") == 0, what="btcd RPC", timeout_s="CHAIN_READY")
        # The genesis tip is years old: LND would not finish starting on it.
        hashes = rpc.call("generate", 1)
        assert len(hashes) == 1
        assert rpc.call("getblockcount") == 1

        # --- LND, reaching btcd by its name inside the lab network
        lnd = res.run_container(
            docker,
            lab_id=lab_id,
            role="lnd",
            node="alice",
            image=lab_images.lnd,
            # The lab's own LND flags (harness.node.LndConfig), reaching btcd by its name.
            command=res.lnd_config(
                "alice", chain_flags=btcd_cfg.lnd_flags(btcd_cert), advertise_host=res.container_name(lab_id, "alice")
            ).argv()[1:],
            network=net,
            publish=[res.LND_GRPC_PORT, res.LND_P2P_PORT, res.LND_REST_PORT],
        )
        assert all(0 < p < 65536 for p in lnd.ports.values())
        tls_cert = res.wait_file(lnd.container, res.LND_TLS_CERT, what="LND tls.cert", timeout_s="LND_READY")
        macaroon = res.wait_file(
            lnd.container, res.LND_ADMIN_MACAROON, what="LND admin.macaroon", timeout_s="LND_READY"
        )

        os.environ.setdefault("GRPC_SSL_CIPHER_SUITES", "HIGH+ECDSA")
        s = stubs.load()
        channel = grpc.secure_channel(
            f"127.0.0.1:{lnd.ports[res.LND_GRPC_PORT]}", grpc.ssl_channel_credentials(tls_cert)
        )
        try:
            ln = s.lnrpc.LightningStub(channel)
            meta = [("macaroon", macaroon.hex())]

            def get_info() -> Any:
                return ln.GetInfo(s.ln.GetInfoRequest(), metadata=meta, timeout=5)

            info = wait_for(
                get_info, what="LND GetInfo", timeout_s="LND_READY", describe=lambda: res.logs_tail(lnd.container)
            )
            assert re.fullmatch(r"[0-9a-f]{66}", info.identity_pubkey)

            tip = rpc.call("generate", 1)[0]

            def synced() -> bool:
                i = get_info()
                return bool(i.synced_to_chain and i.block_hash == tip and i.block_height == 2)

            wait_for(synced, what="LND synced to the new tip", timeout_s="LND_SYNC")
        finally:
            channel.close()
    finally:
        rpc.close()

    # --- cleanup by label leaves nothing of this lab
    removed = res.cleanup_lab(docker, lab_id)
    assert f"network {res.network_name(lab_id)}" in removed
    assert res.lab_containers(docker, lab_id) == []
    assert res.lab_networks(docker, lab_id) == []


def test_cleanup_after_an_interrupted_run(docker: Any, lab_images: images.LabImages, lab_id: str) -> None:
    """A lab left behind (say, by a killed test run) is found and removed by its labels alone.

    ``cleanup_all`` is not called here: on a shared daemon it would also remove
    other runs' labs. It differs from ``cleanup_lab`` only in its label filter,
    which ``lab_containers(docker)`` exercises below.
    """
    net = res.create_network(docker, lab_id)
    res.run_container(
        docker,
        lab_id=lab_id,
        role="btcd",
        node="btcd",
        image=lab_images.btcd,
        command=res.btcd_config(mining_address=_mining_address()).argv()[1:],
        network=net,
        publish=[res.BTCD_RPC_PORT],
    )
    del net  # the "interrupted" run forgets everything it created
    fresh = docker_client()
    try:
        assert len(res.lab_containers(fresh, lab_id)) == 1
        assert res.container_name(lab_id, "btcd") in {c.name for c in res.lab_containers(fresh)}
        started = time.monotonic()
        removed = res.cleanup_lab(fresh, lab_id)
        assert time.monotonic() - started < 60
        assert sorted(removed) == sorted(
            [f"container {res.container_name(lab_id, 'btcd')}", f"network {res.network_name(lab_id)}"]
        )
        assert res.lab_containers(fresh, lab_id) == []
        assert res.lab_networks(fresh, lab_id) == []
    finally:
        fresh.close()


def test_compose_file_names_the_pinned_images() -> None:
    """docker-compose.regtest.yml repeats image tags as defaults: they must match the pins."""
    text = (REPO / "docker-compose.regtest.yml").read_text()
    compose = yaml.safe_load(text)
    defaults = {
        m.group(1): m.group(2) for m in re.finditer(r"\$\{(\w+):-([^}]+)\}", text) if m.group(1).endswith("_IMAGE")
    }
    assert defaults == {
        "LAB_BITCOIND_IMAGE": compose_pins.LAB_BITCOIND_IMAGE,
        "LAB_LND_IMAGE": compose_pins.LAB_LND_IMAGE,
        "UPSTREAM_BITCOIND_IMAGE": compose_pins.UPSTREAM_BITCOIND_IMAGE,
        "UPSTREAM_LND_IMAGE": compose_pins.UPSTREAM_LND_IMAGE,
    }
    lab = {name for name, svc in compose["services"].items() if "lab" in svc.get("profiles", [])}
    assert {"bitcoind", "alice", "bob", "carol"} <= lab
    for svc in compose["services"].values():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
