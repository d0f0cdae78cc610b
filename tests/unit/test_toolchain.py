"""The toolchain's cache check: which version each pinned binary must report (no Go, no build)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from harness.errors import ToolchainError
from harness.toolchain.build import _stamp_ok, btcd_versions, lnd_versions, module_release, version_problem

pytestmark = pytest.mark.unit

# What the binaries built from the current pins print for --version.
LND_OUT = "lnd version 0.21.2-beta commit="
LNCLI_OUT = "lncli version 0.21.2-beta commit="
BTCD_OUT = "btcd version 0.25.0-beta"
BTCCTL_OUT = "btcctl version 0.23.1-beta"


def test_module_release_of_tags_and_pseudo_versions() -> None:
    assert module_release("v0.21.2-beta") == "0.21.2-beta"
    assert module_release("v0.25.0") == "0.25.0"
    # A commit after the v0.25.0 tag: the code still says 0.25.0.
    assert module_release("v0.25.1-0.20260310163610-1c55c7c18179") == "0.25.0"
    # A commit after the v0.21.2-beta tag.
    assert module_release("v0.21.2-beta.0.20260310163610-1c55c7c18179") == "0.21.2-beta"
    assert module_release("v0.19.0-beta.rc1") == "0.19.0-beta.rc1"
    # A commit with no tag before it: nothing to compare with.
    assert module_release("v0.0.0-20260310163610-1c55c7c18179") is None
    with pytest.raises(ToolchainError, match="not a Go module version"):
        module_release("0.21.2")


def test_the_pins_name_a_release_to_compare_with() -> None:
    # A pin that follows no tag would silently check only "it runs".
    assert lnd_versions()["lnd"] and lnd_versions()["lncli"] == lnd_versions()["lnd"]
    assert btcd_versions()["btcd"]


def test_version_problem_accepts_what_the_pinned_binaries_print() -> None:
    assert version_problem("lnd", LND_OUT, "0.21.2-beta") is None
    assert version_problem("lncli", LNCLI_OUT, "0.21.2-beta") is None
    # btcd appends its own "beta" to a tag that has none: X.Y.Z is compared.
    assert version_problem("btcd", BTCD_OUT, "0.25.0") is None
    assert version_problem("btcctl", BTCCTL_OUT, None) is None


def test_version_problem_names_the_binary_and_both_versions() -> None:
    assert version_problem("lnd", "lnd version 0.21.1-beta commit=", "0.21.2-beta") == (
        "lnd reports version 0.21.1-beta, expected 0.21.2-beta"
    )
    assert version_problem("btcd", "btcd version 0.24.2-beta", "0.25.0") == ("btcd reports version 0.24.2-beta, expected 0.25.0")
    # A pre-release label in the pin must match exactly.
    assert version_problem("lnd", "lnd version 0.21.2-beta.rc1 commit=", "0.21.2-beta") is not None
    # Not the binary asked for, or it did not run at all.
    assert "expected 'lncli version <semver>'" in (version_problem("lncli", LND_OUT, "0.21.2-beta") or "")
    assert version_problem("btcctl", "cannot run: [Errno 8] Exec format error", None) is not None
    assert version_problem("btcctl", "", None) is not None


def _fake_bin(directory: Path, name: str, output: str, code: int = 0) -> None:
    p = directory / name
    p.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)


def _btcd_cache(tmp_path: Path, btcctl_out: str = BTCCTL_OUT, btcctl_code: int = 0) -> Path:
    (tmp_path / ".pin").write_text("github.com/btcsuite/btcd@pin\n")
    _fake_bin(tmp_path, "btcd", BTCD_OUT)
    _fake_bin(tmp_path, "btcctl", btcctl_out, btcctl_code)
    return tmp_path


EXPECT = {"btcd": "0.25.0", "btcctl": None}


def test_stamp_ok_runs_every_cached_binary(tmp_path: Path) -> None:
    assert _stamp_ok(_btcd_cache(tmp_path), "github.com/btcsuite/btcd@pin", EXPECT)


def test_stamp_ok_rejects_a_broken_second_binary(tmp_path: Path) -> None:
    # Only btcd used to be asked; a btcctl that fails must fail the check too.
    assert not _stamp_ok(_btcd_cache(tmp_path, btcctl_code=2), "github.com/btcsuite/btcd@pin", EXPECT)
    assert not _stamp_ok(_btcd_cache(tmp_path, btcctl_out="garbage"), "github.com/btcsuite/btcd@pin", EXPECT)


def test_stamp_ok_rejects_another_pin_or_version(tmp_path: Path) -> None:
    cache = _btcd_cache(tmp_path)
    assert not _stamp_ok(cache, "github.com/btcsuite/btcd@other", EXPECT)
    assert not _stamp_ok(cache, "github.com/btcsuite/btcd@pin", {"btcd": "0.26.0", "btcctl": None})
    (cache / "btcctl").unlink()
    assert not _stamp_ok(cache, "github.com/btcsuite/btcd@pin", EXPECT)
