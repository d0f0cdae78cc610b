"""Measure the Docker foundations: image build time (cold), btcd and LND container start.

    PYTHONPATH=. python scripts/docker_timings.py [--rebuild] [--runs N]

btcd start = create+start of the container until its RPC answers getblockcount
over TLS from the host; LND start = create+start until GetInfo answers over
gRPC from the host. Needs a daemon (scripts/dockerd.sh start) and the binaries.
"""

from __future__ import annotations

import argparse
import os
import ssl
import statistics
import time
import uuid
from typing import Any

import grpc
import httpx

from harness.chain.base import RPC_PASS, RPC_USER
from harness.runtime import docker_resources as res
from harness.runtime import images
from harness.runtime.docker_client import require_docker
from harness.wait import wait_for
from lncore import stubs


def one_run(docker: Any, imgs: images.LabImages) -> tuple[float, float]:
    lab = f"bench{uuid.uuid4().hex[:8]}"
    try:
        net = res.create_network(docker, lab)
        btcd_cfg = res.btcd_config(mining_address="bcrt1q0xcqpzrky6eff2g52qdye53xkk9jxkvrl4xfg5")
        t0 = time.monotonic()
        btcd = res.run_container(
            docker, lab_id=lab, role="btcd", node="btcd", image=imgs.btcd, network=net,
            command=btcd_cfg.argv()[1:],
            publish=[res.BTCD_RPC_PORT],
        )
        cert = res.wait_file(btcd.container, res.BTCD_CERT, what="btcd cert")
        ctx = ssl.create_default_context(cadata=cert.decode())
        url = f"https://127.0.0.1:{btcd.ports[res.BTCD_RPC_PORT]}"

        def call(method: str, *params: Any) -> Any:
            body = {"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)}
            r = httpx.post(url, json=body, auth=(RPC_USER, RPC_PASS), verify=ctx, timeout=10)
            r.raise_for_status()
            return r.json()["result"]

        wait_for(lambda: call("getblockcount") == 0, what="btcd rpc")
        t_btcd = time.monotonic() - t0
        call("generate", 1)
        t1 = time.monotonic()
        lnd = res.run_container(
            docker, lab_id=lab, role="lnd", node="alice", image=imgs.lnd, network=net,
            command=res.lnd_config("alice", chain_flags=btcd_cfg.lnd_flags(cert), advertise_host="alice").argv()[1:],
            publish=[res.LND_GRPC_PORT],
        )
        tls = res.wait_file(lnd.container, res.LND_TLS_CERT, what="tls.cert", timeout_s="LND_READY")
        mac = res.wait_file(lnd.container, res.LND_ADMIN_MACAROON, what="macaroon", timeout_s="LND_READY")
        s = stubs.load()
        ch = grpc.secure_channel(f"127.0.0.1:{lnd.ports[res.LND_GRPC_PORT]}", grpc.ssl_channel_credentials(tls))
        stub = s.lnrpc.LightningStub(ch)
        wait_for(lambda: stub.GetInfo(s.ln.GetInfoRequest(), metadata=[("macaroon", mac.hex())], timeout=5),
                 what="GetInfo", timeout_s="LND_READY")
        t_lnd = time.monotonic() - t1
        ch.close()
        return t_btcd, t_lnd
    finally:
        res.cleanup_lab(docker, lab)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rebuild", action="store_true", help="remove the images first (cold build)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("GRPC_SSL_CIPHER_SUITES", "HIGH+ECDSA")
    docker = require_docker()
    if args.rebuild:
        for tag in (images.BTCD_IMAGE, images.LND_IMAGE):
            if docker.images.list(name=tag):
                docker.images.remove(tag, force=True)
    for label in ("first", "second"):
        t = time.monotonic()
        built = images.ensure_images(docker, progress=lambda m: print("  " + m)).built
        print(f"ensure_images ({label} call): {time.monotonic() - t:.2f}s (built: {len(built)} images)")
    b, ln = zip(*(one_run(docker, images.ensure_images(docker)) for _ in range(args.runs)), strict=True)
    print(f"btcd start->RPC answers: median {statistics.median(b):.2f}s  all {[round(x, 2) for x in b]}")
    print(f"lnd  start->GetInfo answers: median {statistics.median(ln):.2f}s  all {[round(x, 2) for x in ln]}")


if __name__ == "__main__":
    main()
