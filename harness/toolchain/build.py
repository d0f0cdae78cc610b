"""Build the pinned LND and btcd from the Go module proxy into the cache
(Bitcoin Core: ``harness/toolchain/bitcoin_core.py``).

Binaries land in ``<cache>/bin/<name>-<version>-<flavor>/``; a stamp file
records the pin they were built from, and each binary is asked for its
version before it is trusted. Nothing built here is committed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ToolchainError
from lncore.stubs import cache_root
from lncore.versions import (
    BTCD_MODULE,
    BTCD_VERSION,
    GO_MIN_VERSION,
    LND_LAB_TAGS,
    LND_MODULE,
    LND_RELEASE_TAGS,
    LND_REPLACES,
    LND_VERSION,
)

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Toolchain:
    """Paths of the pinned binaries. The chain backends' binaries may be
    absent (a cache from before Bitcoin Core was added, or a machine that
    cannot build it): the lab checks the one a topology needs when it starts it."""

    lnd: Path
    lncli: Path
    btcd: Path
    btcctl: Path
    feeservice: Path
    bitcoind: Path
    bitcoin_cli: Path
    # The LDK driver (interop/ldk), for topologies with ldk nodes; None when not built.
    ldk: Path | None = None


def go_version(go: str | None = None) -> tuple[int, int, int]:
    go = go or shutil.which("go")
    if not go:
        raise ToolchainError(
            "Go is not installed. The lab builds LND "
            f"{LND_VERSION} from source and needs Go >= {'.'.join(map(str, GO_MIN_VERSION))}: "
            "install it from https://go.dev/dl (or Debian's golang-go if new enough) and run `lab setup` again."
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
    m = re.match(r"go(\d+)\.(\d+)(?:\.(\d+))?", out)
    if not m:
        raise ToolchainError(f"cannot read the Go version from {go!r} (got {out!r})")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def require_go() -> str:
    go = shutil.which("go")
    have = go_version(go)
    if have < GO_MIN_VERSION:
        need = ".".join(map(str, GO_MIN_VERSION))
        raise ToolchainError(
            f"Go {'.'.join(map(str, have))} is too old: LND {LND_VERSION} needs Go >= {need}. "
            "Install a newer Go from https://go.dev/dl and run `lab setup` again."
        )
    assert go is not None
    return go


def bin_root() -> Path:
    return cache_root() / "bin"


def lnd_dir(flavor: str = "lab") -> Path:
    return bin_root() / f"lnd-{LND_VERSION}-{flavor}"


def btcd_dir() -> Path:
    return bin_root() / f"btcd-{BTCD_VERSION}"


def _wrapper_module(workdir: Path) -> Path:
    """A tiny Go module that requires the pinned LND and btcd with LND's replaces."""
    workdir.mkdir(parents=True, exist_ok=True)
    replaces = "\n".join(f"replace {old} => {new}" for old, new in LND_REPLACES.items())
    gomod = (
        "module lightninglab/build\n\n"
        f"go {'.'.join(map(str, GO_MIN_VERSION))}\n\n"
        f"require (\n\t{LND_MODULE} {LND_VERSION}\n\t{BTCD_MODULE} {BTCD_VERSION}\n)\n\n"
        f"{replaces}\n"
    )
    tools = (
        "//go:build tools\n\npackage tools\n\nimport (\n"
        f'\t_ "{BTCD_MODULE}"\n\t_ "{BTCD_MODULE}/cmd/btcctl"\n'
        f'\t_ "{LND_MODULE}/cmd/lnd"\n\t_ "{LND_MODULE}/cmd/lncli"\n)\n'
    )
    mod_path = workdir / "go.mod"
    if not mod_path.exists() or mod_path.read_text() != gomod or not (workdir / "go.sum").exists():
        (workdir / "tools.go").write_text(tools)
        mod_path.write_text(gomod)
        _run(["go", "mod", "tidy"], cwd=workdir, what="resolving the pinned Go modules (go mod tidy)")
    return workdir


def _run(cmd: list[str], *, cwd: Path, what: str, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, "GOFLAGS": "-mod=mod", **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise ToolchainError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


def binary_version(path: Path) -> str:
    """What ``path --version`` prints, or why it did not run (a string either
    way, so the caller reports it next to what was expected)."""
    try:
        proc = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=20, check=False)
    except OSError as exc:
        return f"cannot run: {exc}"
    except subprocess.TimeoutExpired:
        return "no answer to --version within 20 s"
    output = (proc.stdout + proc.stderr).strip()
    # All four binaries exit 0 after printing their version: anything else is
    # a broken binary even if it printed something that looks right.
    return output if proc.returncode == 0 else f"exit {proc.returncode}: {output}"


_PSEUDO_TIME_HASH = r"\d{14}-[0-9a-f]{12}"


def module_release(module_version: str) -> str | None:
    """The release a Go module version's code describes itself as, without the ``v``.

    A tag (``v0.21.2-beta``) is its own release. A pseudo-version names a
    commit after a tag, and the code at that commit still carries the tag's
    version constants: ``vX.Y.(Z+1)-0.<time>-<hash>`` follows ``vX.Y.Z``,
    ``vX.Y.Z-pre.0.<time>-<hash>`` follows ``vX.Y.Z-pre``. ``vX.0.0-<time>-<hash>``
    follows no tag at all: None (nothing to compare with).
    """
    m = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?", module_version)
    if m is None:
        raise ToolchainError(f"{module_version!r} is not a Go module version (vMAJOR.MINOR.PATCH[-PRE])")
    major, minor, patch, pre = int(m[1]), int(m[2]), int(m[3]), m[4]
    if pre is None:
        return f"{major}.{minor}.{patch}"
    if re.fullmatch(_PSEUDO_TIME_HASH, pre):
        return None
    if re.fullmatch(rf"0\.{_PSEUDO_TIME_HASH}", pre):
        if patch == 0:
            raise ToolchainError(f"{module_version!r}: a pseudo-version after a release cannot have patch 0")
        return f"{major}.{minor}.{patch - 1}"
    after_pre = re.fullmatch(rf"(.+)\.0\.{_PSEUDO_TIME_HASH}", pre)
    if after_pre is not None:
        return f"{major}.{minor}.{patch}-{after_pre[1]}"
    return f"{major}.{minor}.{patch}-{pre}"


def version_problem(name: str, output: str, want: str | None) -> str | None:
    """Why ``output`` (of ``<name> --version``) does not show release ``want``; None when it does.

    lnd, lncli, btcd and btcctl all print ``<name> version <semver>`` (lnd and
    lncli append `` commit=...``). A ``want`` with a pre-release label must
    match the semver exactly; without one only MAJOR.MINOR.PATCH is compared,
    because btcd appends its own label (``beta``) that its tags (``v0.25.0``)
    do not carry. ``want`` None: only that the binary runs and names itself.
    """
    lines = output.strip().splitlines()
    m = re.match(rf"{re.escape(name)} version (\S+)", lines[0]) if lines else None
    if m is None:
        return f"{name} --version printed {output!r}, expected '{name} version <semver>'"
    got = m[1]
    if want is None or got == want or ("-" not in want and got.split("-", 1)[0] == want):
        return None
    return f"{name} reports version {got}, expected {want}"


def lnd_versions() -> dict[str, str | None]:
    """Expected ``--version`` release per binary of the LND build (both flavors)."""
    want = module_release(LND_VERSION)
    return {"lnd": want, "lncli": want}


def btcd_versions() -> dict[str, str | None]:
    """Expected ``--version`` release per binary of the btcd build.

    btcd reports the release its pinned commit follows (see ``module_release``).
    btcctl keeps separate version constants (cmd/btcctl/version.go) that
    upstream does not bump: at v0.25.1-0.20260310163610-1c55c7c18179 btcctl
    says 0.23.1-beta and btcd 0.25.0-beta. Nothing in the pin predicts
    btcctl's, so for it only that it
    runs and answers ``btcctl version ...`` is checked; the ``.pin`` stamp and
    the shared build directory tie it to the pinned commit.
    """
    return {"btcd": module_release(BTCD_VERSION), "btcctl": None}


def _version_problems(directory: Path, expect: dict[str, str | None]) -> list[str]:
    problems = (version_problem(name, binary_version(directory / name), want) for name, want in expect.items())
    return [p for p in problems if p is not None]


def _stamp_ok(directory: Path, pin: str, expect: dict[str, str | None]) -> bool:
    """The cache holds a build of ``pin`` whose every binary runs and reports the pinned release."""
    stamp = directory / ".pin"
    if not stamp.exists() or stamp.read_text().strip() != pin:
        return False
    for name in expect:
        p = directory / name
        if not p.exists() or not os.access(p, os.X_OK):
            return False
    return not _version_problems(directory, expect)


def _check_built(directory: Path, expect: dict[str, str | None], pin: str) -> None:
    problems = _version_problems(directory, expect)
    if problems:
        raise ToolchainError(
            f"the binaries built from {pin} in {directory} do not report the pinned version "
            f"(lncore/versions.py): {'; '.join(problems)}"
        )


def _go_build(packages: list[str], tags: str, out: Path, progress: Progress) -> None:
    go = require_go()
    work = _wrapper_module(cache_root() / "gobuild" / f"lnd-{LND_VERSION}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [go, "build", "-trimpath", *(["-tags", tags] if tags else []), "-o", str(tmp) + "/", *packages]
    names = " ".join(p.rsplit("/", 1)[-1] for p in packages)
    progress(f"go build {names}" + (f" (tags: {tags})" if tags else "") + " - several minutes on a cold cache")
    _run(cmd, cwd=work, what="building " + ", ".join(packages), env={"CGO_ENABLED": "0"})
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def ensure_lnd(flavor: str = "lab", progress: Progress = _noop) -> Path:
    """Build lnd and lncli (``lab`` or ``release`` flavor) unless the cache has them."""
    if flavor not in ("lab", "release"):
        raise ToolchainError(f"unknown LND build flavor {flavor!r} (expected 'lab' or 'release')")
    out = lnd_dir(flavor)
    tags = LND_LAB_TAGS if flavor == "lab" else LND_RELEASE_TAGS
    pin = f"{LND_MODULE}@{LND_VERSION} tags={tags}"
    expect = lnd_versions()
    if _stamp_ok(out, pin, expect):
        progress(f"lnd {LND_VERSION} ({flavor}) already built: {out}")
        return out
    _go_build([f"{LND_MODULE}/cmd/lnd", f"{LND_MODULE}/cmd/lncli"], tags, out, progress)
    _check_built(out, expect, pin)
    (out / ".pin").write_text(pin + "\n")
    return out


def ensure_btcd(progress: Progress = _noop) -> Path:
    out = btcd_dir()
    pin = f"{BTCD_MODULE}@{BTCD_VERSION}"
    expect = btcd_versions()
    if _stamp_ok(out, pin, expect):
        progress(f"btcd {BTCD_VERSION} already built: {out}")
        return out
    _go_build([BTCD_MODULE, f"{BTCD_MODULE}/cmd/btcctl"], "", out, progress)
    _check_built(out, expect, pin)
    (out / ".pin").write_text(pin + "\n")
    return out


FEESERVICE_SRC = Path(__file__).resolve().parent.parent / "feeservice"


def feeservice_dir() -> Path:
    h = hashlib.sha256()
    for name in ("go.mod", "main.go"):
        h.update((FEESERVICE_SRC / name).read_bytes())
    return bin_root() / f"feeservice-{h.hexdigest()[:12]}"


def ensure_feeservice(progress: Progress = _noop) -> Path:
    """Build the lab's own fee-estimate server (harness/feeservice, ~40 lines of Go)."""
    out = feeservice_dir()
    if (out / "feeservice").exists():
        return out
    go = require_go()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    progress("go build feeservice")
    _run([go, "build", "-trimpath", "-o", str(tmp / "feeservice"), "."], cwd=FEESERVICE_SRC,
         what="building the fee service", env={"CGO_ENABLED": "0"})
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def find_toolchain(flavor: str = "lab") -> Toolchain:
    """The cached binaries; a clear error if `lab setup` has not been run."""
    from harness.toolchain.bitcoin_core import core_dir
    from harness.toolchain.ldk_driver import driver_path

    ld, bd, cd, ldk = lnd_dir(flavor), btcd_dir(), core_dir(), driver_path()
    t = Toolchain(
        lnd=ld / "lnd", lncli=ld / "lncli", btcd=bd / "btcd", btcctl=bd / "btcctl",
        feeservice=feeservice_dir() / "feeservice", bitcoind=cd / "bitcoind", bitcoin_cli=cd / "bitcoin-cli",
        ldk=ldk if ldk.exists() else None,
    )
    missing = [p for p in (t.lnd, t.lncli, t.feeservice) if not p.exists()]
    if missing:
        raise ToolchainError(
            f"pinned binaries missing ({', '.join(str(p) for p in missing)}): run `lab setup` first"
        )
    return t


def setup(*, release: bool = False, progress: Progress = _noop) -> Toolchain:
    """Everything `lab setup` does, idempotently."""
    from harness.toolchain.bitcoin_core import cached, ensure_bitcoin_core, require_build_tools
    from lncore import stubs

    require_go()
    if not cached():
        require_build_tools()  # said before minutes of Go builds, not after
    ensure_btcd(progress)
    ensure_lnd("lab", progress)
    ensure_feeservice(progress)
    if release:
        ensure_lnd("release", progress)
    ensure_bitcoin_core(progress)
    from harness.toolchain.ldk_driver import ensure_ldk_driver

    ensure_ldk_driver(progress)
    progress("generating LND gRPC stubs")
    out = stubs.generate()
    progress(f"stubs ready: {out}")
    toolchain = find_toolchain("lab")
    from harness.runtime.docker_client import docker_available

    if docker_available():
        from harness.runtime.images import ensure_images

        progress("Docker daemon found: building the FROM-scratch images")
        ensure_images(progress=progress)
    else:
        progress("no Docker daemon answers: skipping images (scripts/dockerd.sh start, then `lab setup` again)")
    return toolchain
