"""Bitcoin Core's toolchain checks without building it: the version each binary
must report, the sdist's pinned hash, and what a machine without the build tools is told."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from harness.errors import ToolchainError
from harness.toolchain import bitcoin_core as bc
from lncore import versions

pytestmark = pytest.mark.unit

# What `--version` prints for binaries built from the pinned tree (seen on this machine kind).
BITCOIND_OUT = "Bitcoin Core daemon version v31.99.0-unk\nCopyright (C) 2009-2026 The Bitcoin Core developers\n"
CLI_OUT = "Bitcoin Core RPC client version v31.99.0-unk\nCopyright (C) 2009-2026 The Bitcoin Core developers\n"


def test_version_problem_accepts_what_the_pinned_binaries_print() -> None:
    assert bc.version_problem("bitcoind", BITCOIND_OUT) is None
    assert bc.version_problem("bitcoin-cli", CLI_OUT) is None


def test_version_problem_names_the_binary_and_both_versions() -> None:
    assert bc.version_problem("bitcoind", "Bitcoin Core daemon version v29.0.0\n") == (
        "bitcoind reports version 29.0.0, expected 31.99.0"
    )
    # The daemon's banner where the client's is expected: the wrong binary.
    assert "expected 'Bitcoin Core RPC client version" in (bc.version_problem("bitcoin-cli", BITCOIND_OUT) or "")
    assert bc.version_problem("bitcoind", "") is not None


def _fake_bin(directory: Path, name: str, output: str) -> None:
    p = directory / name
    p.write_text(f"#!/bin/sh\nprintf '{output}'\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)


def test_the_cache_is_trusted_only_with_the_pin_and_both_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path))
    out = bc.core_dir()
    out.mkdir(parents=True)
    _fake_bin(out, "bitcoind", BITCOIND_OUT)
    _fake_bin(out, "bitcoin-cli", CLI_OUT)
    assert not bc.cached()  # no stamp yet
    (out / ".pin").write_text(bc.pin() + "\n")
    assert bc.cached()
    (out / ".pin").write_text(bc.pin().replace(versions.BITCOIN_CORE_SDIST_SHA256, "0" * 64))
    assert not bc.cached()
    (out / ".pin").write_text(bc.pin())
    _fake_bin(out, "bitcoin-cli", "Bitcoin Core RPC client version v30.0.0\n")
    assert not bc.cached()


def test_a_tarball_with_another_hash_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / bc.sdist_name()
    fake.write_bytes(b"not the pinned source")
    with pytest.raises(ToolchainError) as err:
        bc.check_sdist(fake)
    msg = str(err.value)
    assert hashlib.sha256(b"not the pinned source").hexdigest() in msg
    assert versions.BITCOIN_CORE_SDIST_SHA256 in msg and "refusing" in msg and "lab setup" in msg


def test_a_cached_download_with_another_hash_is_refused_not_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path))
    dl = tmp_path / "downloads"
    dl.mkdir()
    (dl / bc.sdist_name()).write_bytes(b"tampered")
    with pytest.raises(ToolchainError, match="refusing to build"):
        bc.fetch_sdist()


def test_unpack_takes_only_the_core_tree(tmp_path: Path) -> None:
    prefix = f"py_bitcoinkernel-{versions.BITCOIN_CORE_SDIST_VERSION}/"
    sdist = tmp_path / "s.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, body in (
            (prefix + "pyproject.toml", b"[project]"),
            (prefix + "depend/bitcoin/CMakeLists.txt", b"cmake_minimum_required(VERSION 3.22)"),
            (prefix + "depend/bitcoin/src/bitcoind.cpp", b"int main(){}"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    root = bc._unpack(sdist, tmp_path / "src")
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == ["CMakeLists.txt", "src/bitcoind.cpp"]


def test_a_machine_without_the_build_tools_is_told_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no cmake, no compiler, no pkg-config
    monkeypatch.setattr(bc, "_boost_version", lambda: None)
    with pytest.raises(ToolchainError) as err:
        bc.require_build_tools()
    msg = str(err.value)
    assert "\n" not in msg
    for phrase in ("cmake is not installed", "no C++ compiler", "pkg-config is not installed", "Boost headers"):
        assert phrase in msg
    assert "apt-get install cmake g++ pkg-config libboost-dev libevent-dev libzmq3-dev" in msg


def test_old_cmake_and_boost_are_named_with_their_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmake = tmp_path / "cmake"
    cmake.write_text("#!/bin/sh\necho 'cmake version 3.18.4'\n")
    cmake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(bc, "_boost_version", lambda: (1, 71))
    problems = bc.missing_build_tools()
    assert "cmake 3.18 is older than 3.22" in problems
    assert "Boost 1.71 is older than 1.74" in problems
