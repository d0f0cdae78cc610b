"""Build the lab's LDK driver (``interop/ldk``: one ldk-node instance behind an
HTTP+JSON control API) with cargo into the cache.

The crate pins ``ldk-node`` exactly in its Cargo.toml and commits its
Cargo.lock; ``lncore/versions.py`` repeats the version (``LDK_NODE_VERSION``) and
``lab setup`` refuses a crate whose lock file resolves another one. The binary
lands in ``<cache>/bin/lab-ldk-<hash>/`` keyed by the hash of the crate's
sources and lock file; cargo's own target directory stays in the cache too, so
a change to the driver rebuilds only the driver, not ldk-node's ~260 crates.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import ToolchainError
from harness.toolchain.build import binary_version
from lncore.stubs import cache_root
from lncore.versions import LDK_NODE_VERSION, RUST_MIN_VERSION

Progress = Callable[[str], None]

CRATE = Path(__file__).resolve().parent.parent.parent / "interop" / "ldk"
BINARY = "lab-ldk"


def _noop(_: str) -> None:
    pass


def crate_hash() -> str:
    h = hashlib.sha256()
    for path in sorted([CRATE / "Cargo.toml", CRATE / "Cargo.lock", *(CRATE / "src").rglob("*.rs")]):
        h.update(str(path.relative_to(CRATE)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def driver_dir() -> Path:
    return cache_root() / "bin" / f"{BINARY}-{crate_hash()}"


def driver_path() -> Path:
    return driver_dir() / BINARY


def locked_version(lock: Path | None = None) -> str | None:
    """The ldk-node version Cargo.lock resolves (None when it names none)."""
    text = (lock or CRATE / "Cargo.lock").read_text()
    m = re.search(r'name = "ldk-node"\nversion = "([^"]+)"', text)
    return m[1] if m else None


def version_problem(output: str) -> str | None:
    """Why ``lab-ldk --version`` output is not the pinned ldk-node; None when it is."""
    m = re.match(r"lab-ldk \S+ ldk-node (\S+)", output.strip())
    if m is None:
        return f"lab-ldk --version printed {output.strip()!r}, expected 'lab-ldk <version> ldk-node <version>'"
    if m[1] != LDK_NODE_VERSION:
        return f"lab-ldk runs ldk-node {m[1]}, expected {LDK_NODE_VERSION} (lncore/versions.py)"
    return None


def cached() -> bool:
    p = driver_path()
    return p.exists() and version_problem(binary_version(p)) is None


def require_cargo() -> str:
    cargo = shutil.which("cargo")
    if cargo is None:
        raise ToolchainError(
            f"cargo is not installed: the lab's LDK driver (interop/ldk, ldk-node {LDK_NODE_VERSION}) is Rust and needs "
            f"cargo/rustc >= {'.'.join(map(str, RUST_MIN_VERSION))}. Install it with rustup (https://rustup.rs) "
            "and run `lab setup` again."
        )
    out = subprocess.run([cargo, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.match(r"cargo (\d+)\.(\d+)", out)
    if m is None or (int(m[1]), int(m[2])) < RUST_MIN_VERSION:
        raise ToolchainError(
            f"{out.strip() or 'cargo'} is too old: ldk-node {LDK_NODE_VERSION} needs Rust >= "
            f"{'.'.join(map(str, RUST_MIN_VERSION))}. Update it (`rustup update stable`) and run `lab setup` again."
        )
    return cargo


def ensure_ldk_driver(progress: Progress = _noop) -> Path:
    """Build ``lab-ldk`` unless the cache has the build of these exact sources."""
    if cached():
        progress(f"LDK driver (ldk-node {LDK_NODE_VERSION}) already built: {driver_path()}")
        return driver_path()
    locked = locked_version()
    if locked != LDK_NODE_VERSION:
        raise ToolchainError(
            f"interop/ldk/Cargo.lock resolves ldk-node {locked}, but lncore/versions.py pins {LDK_NODE_VERSION}: "
            "change both together (cargo update -p ldk-node --precise <version>)"
        )
    cargo = require_cargo()
    target = cache_root() / "build" / "cargo-target"
    log = target / f"{BINARY}-build.log"
    target.mkdir(parents=True, exist_ok=True)
    progress(f"cargo build {BINARY} (ldk-node {LDK_NODE_VERSION}): about 6 minutes on 2 cores, cold; log: {log}")
    started = time.monotonic()
    env = {**os.environ, "CARGO_TARGET_DIR": str(target), "CARGO_TERM_COLOR": "never"}
    with log.open("wb") as fh:
        proc = subprocess.run(
            [cargo, "build", "--release", "--locked", "--bin", BINARY],
            cwd=CRATE, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False,
        )
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise ToolchainError(f"building the LDK driver failed (exit {proc.returncode}); full log: {log}\n{tail}")
    out = driver_dir()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy2(target / "release" / BINARY, tmp / BINARY)
    problem = version_problem(binary_version(tmp / BINARY))
    if problem:
        raise ToolchainError(f"the LDK driver built from interop/ldk is not right: {problem}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    progress(f"LDK driver built in {time.monotonic() - started:.0f}s: {out}")
    return out / BINARY
