"""Python gRPC stubs for LND, generated at setup from the pinned LND module.

Neither LND's ``.proto`` files nor stubs generated from them are committed:
``generate()`` (run by ``lsp stubs`` and ``lab setup``) fetches the pinned module
through the Go module proxy (``go mod download``) and runs grpcio-tools over its
``lnrpc/`` tree into a cache directory keyed by LND's and grpcio-tools' versions.
The modules form the package ``lnd_grpc`` (their imports rewritten to it), with protoc's
``.pyi`` types and ``py.typed``; a ``.pth`` file puts it on the interpreter's path. ``load()``
imports them (adding the directory to ``sys.path`` if the ``.pth`` could not be written) and
returns them by service; it never generates.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from lncore.versions import GO_MIN_VERSION, LND_MODULE, LND_PROTOS, LND_VERSION

STAMP = ".complete"
# The generated modules form one real package, importable (and visible to mypy through the
# .pyi files protoc writes) as ``lnd_grpc.lightning_pb2``, ``lnd_grpc.routerrpc.router_pb2``...
PACKAGE = "lnd_grpc"
PTH_NAME = "lightning-lab-lnd-grpc.pth"


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
    return cache_root() / "stubs" / f"lnd-{version}-grpcio-tools-{generator_version()}-{PACKAGE}"


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
    """Generate the stubs as the package ``lnd_grpc`` under ``stubs_dir(version)``; idempotent.

    protoc names the generated modules after the .proto paths (``lightning_pb2``,
    ``routerrpc.router_pb2``) and makes them import each other by those top-level names; the
    imports are rewritten to the package's (``from lnd_grpc import lightning_pb2 as ...``), so
    nothing needs the stubs directory itself on ``sys.path``."""
    out = stubs_dir(version)
    if (out / STAMP).exists() and not force:
        install_path_file(out)
        return out
    src = lnd_module_dir(version) / "lnrpc"
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pkg = tmp / PACKAGE
    pkg.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{src}",
        f"--python_out={pkg}",
        f"--grpc_python_out={pkg}",
        f"--pyi_out={pkg}",
        *LND_PROTOS,
    ]
    proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StubsError(f"protoc failed: {proc.stderr.strip()}")
    _make_package(pkg, version)
    (tmp / STAMP).write_text(version + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    install_path_file(out)
    return out


def _make_package(pkg: Path, version: str) -> None:
    modules = {p.stem for p in pkg.glob("*.py")}
    subpackages = {p.name for p in pkg.iterdir() if p.is_dir()}
    own = re.compile(r"^import (\w+) as (\w+)$", re.M)
    own_from = re.compile(r"^from (\w+) import (\w+) as (\w+)$", re.M)

    def rewrite(text: str) -> str:
        text = own.sub(lambda m: f"from {PACKAGE} import {m[1]} as {m[2]}" if m[1] in modules else m[0], text)
        return own_from.sub(lambda m: f"from {PACKAGE}.{m[1]} import {m[2]} as {m[3]}" if m[1] in subpackages else m[0], text)

    for path in [*pkg.rglob("*.py"), *pkg.rglob("*.pyi")]:
        path.write_text(rewrite(path.read_text()))
    for d in [pkg, *(pkg / s for s in subpackages)]:
        (d / "__init__.py").write_text(f'"""LND {version} gRPC stubs, generated by `lsp stubs` / `lab setup`."""\n')
    (pkg / "py.typed").write_text("")


def install_path_file(out: Path) -> Path | None:
    """Put the stubs on this interpreter's path for good (a ``.pth`` file in its site-packages),
    so ``import lnd_grpc`` works anywhere and mypy sees the .pyi types. None when the
    site-packages directory is not writable (``load`` still finds the stubs)."""
    site = Path(sysconfig.get_paths()["purelib"])
    pth = site / PTH_NAME
    try:
        if not pth.exists() or pth.read_text().strip() != str(out):
            pth.write_text(f"{out}\n")
    except OSError:
        return None
    return pth


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
    unlocker: ModuleType  # walletunlocker_pb2
    unlocker_grpc: ModuleType


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
        return importlib.import_module(f"{PACKAGE}.{name}")

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
        unlocker=m("walletunlocker_pb2"),
        unlocker_grpc=m("walletunlocker_pb2_grpc"),
    )
    return _loaded
