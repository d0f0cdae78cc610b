"""Python gRPC stubs for LND, generated at setup from the pinned LND module.

Neither LND's ``.proto`` files nor stubs generated from them are committed:
``generate()`` (run by ``lsp stubs`` and ``lab setup``) fetches the pinned module
through the Go module proxy (``go mod download``) and runs grpcio-tools over its
``lnrpc/`` tree into a cache directory keyed by LND's and grpcio-tools' versions.
``load()`` puts that directory on ``sys.path`` (the generated modules import each
other by top-level name) and returns the modules; it never generates.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from lncore.versions import GO_MIN_VERSION, LND_MODULE, LND_PROTOS, LND_VERSION

STAMP = ".complete"


class StubsError(RuntimeError):
    """The stubs are missing and cannot be generated here."""


def cache_root() -> Path:
    """The per-user cache shared by the lab and the LSP (``LAB_CACHE_DIR``)."""
    env = os.environ.get("LAB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "lightning-lab"


def generator_version() -> str:
    """The installed grpcio-tools: its bundled protoc decides which protobuf runtime the
    generated code demands, so stubs are cached per generator as well as per LND version."""
    try:
        return importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        raise StubsError("grpcio-tools is not installed: `pip install .` brings it (it generates LND's stubs)") from None


def stubs_dir(version: str = LND_VERSION) -> Path:
    env = os.environ.get("LND_STUBS_DIR")
    if env:
        return Path(env).expanduser()
    return cache_root() / "stubs" / f"lnd-{version}-grpcio-tools-{generator_version()}"


def lnd_module_dir(version: str = LND_VERSION) -> Path:
    """Download (or find) the pinned LND module and return its source dir."""
    go = shutil.which("go")
    if go is None:
        raise StubsError(
            f"Go is needed to fetch LND's .proto files: install Go >= {'.'.join(map(str, GO_MIN_VERSION))} "
            "(https://go.dev/dl or Debian's golang package) and run again"
        )
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"{LND_MODULE}@{version}"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    if proc.returncode != 0:
        raise StubsError(f"go mod download {LND_MODULE}@{version} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    info = json.loads(proc.stdout)
    return Path(info["Dir"])


def generate(version: str = LND_VERSION, *, force: bool = False) -> Path:
    """Generate the stubs into ``stubs_dir(version)``; idempotent."""
    out = stubs_dir(version)
    if (out / STAMP).exists() and not force:
        return out
    src = lnd_module_dir(version) / "lnrpc"
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{src}",
        f"--python_out={tmp}",
        f"--grpc_python_out={tmp}",
        f"--pyi_out={tmp}",
        *LND_PROTOS,
    ]
    proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StubsError(f"protoc failed: {proc.stderr.strip()}")
    (tmp / STAMP).write_text(version + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


@dataclass(frozen=True)
class Stubs:
    """The generated modules, by service."""

    ln: ModuleType  # lightning_pb2
    lnrpc: ModuleType  # lightning_pb2_grpc
    state: ModuleType
    state_grpc: ModuleType
    router: ModuleType
    router_grpc: ModuleType
    invoices: ModuleType
    invoices_grpc: ModuleType
    walletkit: ModuleType
    walletkit_grpc: ModuleType
    signer: ModuleType
    signer_grpc: ModuleType
    chainnotifier: ModuleType
    chainnotifier_grpc: ModuleType
    chainkit: ModuleType
    chainkit_grpc: ModuleType
    peers: ModuleType
    peers_grpc: ModuleType
    watchtower: ModuleType
    watchtower_grpc: ModuleType
    wtclient: ModuleType
    wtclient_grpc: ModuleType
    verrpc: ModuleType
    verrpc_grpc: ModuleType


_loaded: Stubs | None = None


def require(version: str = LND_VERSION) -> Path:
    """The generated stubs' directory, or a StubsError that says how to make them.

    Nothing is generated here: importing or starting the LSP never runs Go or protoc
    (``lsp stubs`` and ``lab setup`` do, once, at setup)."""
    out = stubs_dir(version)
    if not (out / STAMP).exists():
        raise StubsError(
            f"LND's gRPC stubs for {version} are not generated (expected in {out}): run `lsp stubs` "
            f"(needs Go >= {'.'.join(map(str, GO_MIN_VERSION))}; fetches the pinned .proto files through "
            "the Go module proxy) or `lab setup`"
        )
    return out


def load(version: str = LND_VERSION) -> Stubs:
    """Import the generated stubs; a StubsError when they were never generated."""
    global _loaded
    if _loaded is not None:
        return _loaded
    out = require(version)
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))

    def m(name: str) -> ModuleType:
        return importlib.import_module(name)

    _loaded = Stubs(
        ln=m("lightning_pb2"),
        lnrpc=m("lightning_pb2_grpc"),
        state=m("stateservice_pb2"),
        state_grpc=m("stateservice_pb2_grpc"),
        router=m("routerrpc.router_pb2"),
        router_grpc=m("routerrpc.router_pb2_grpc"),
        invoices=m("invoicesrpc.invoices_pb2"),
        invoices_grpc=m("invoicesrpc.invoices_pb2_grpc"),
        walletkit=m("walletrpc.walletkit_pb2"),
        walletkit_grpc=m("walletrpc.walletkit_pb2_grpc"),
        signer=m("signrpc.signer_pb2"),
        signer_grpc=m("signrpc.signer_pb2_grpc"),
        chainnotifier=m("chainrpc.chainnotifier_pb2"),
        chainnotifier_grpc=m("chainrpc.chainnotifier_pb2_grpc"),
        chainkit=m("chainrpc.chainkit_pb2"),
        chainkit_grpc=m("chainrpc.chainkit_pb2_grpc"),
        peers=m("peersrpc.peers_pb2"),
        peers_grpc=m("peersrpc.peers_pb2_grpc"),
        watchtower=m("watchtowerrpc.watchtower_pb2"),
        watchtower_grpc=m("watchtowerrpc.watchtower_pb2_grpc"),
        wtclient=m("wtclientrpc.wtclient_pb2"),
        wtclient_grpc=m("wtclientrpc.wtclient_pb2_grpc"),
        verrpc=m("verrpc.verrpc_pb2"),
        verrpc_grpc=m("verrpc.verrpc_pb2_grpc"),
    )
    return _loaded
