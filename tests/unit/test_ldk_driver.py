"""The LDK driver's pins and version check (pure logic: no cargo run here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.toolchain import ldk_driver
from lncore.versions import LDK_NODE_VERSION

pytestmark = pytest.mark.unit


def test_cargo_toml_and_lock_pin_the_same_ldk_node_as_versions_py() -> None:
    toml = (ldk_driver.CRATE / "Cargo.toml").read_text()
    assert re.search(rf'^ldk-node = "={re.escape(LDK_NODE_VERSION)}"$', toml, re.M), "Cargo.toml must pin ldk-node exactly"
    assert ldk_driver.locked_version() == LDK_NODE_VERSION
    main_rs = (ldk_driver.CRATE / "src" / "main.rs").read_text()
    assert f'const LDK_NODE_VERSION: &str = "{LDK_NODE_VERSION}";' in main_rs


def test_version_output_is_checked_against_the_pin() -> None:
    assert ldk_driver.version_problem(f"lab-ldk 0.1.0 ldk-node {LDK_NODE_VERSION}\n") is None
    wrong = ldk_driver.version_problem("lab-ldk 0.1.0 ldk-node 0.6.2")
    assert wrong is not None and "0.6.2" in wrong and LDK_NODE_VERSION in wrong
    assert "expected 'lab-ldk <version>" in (ldk_driver.version_problem("garbage") or "")


def test_a_lock_file_resolving_another_ldk_node_is_named(tmp_path: Path) -> None:
    lock = tmp_path / "Cargo.lock"
    lock.write_text('[[package]]\nname = "ldk-node"\nversion = "0.6.2"\n')
    assert ldk_driver.locked_version(lock) == "0.6.2"
    lock.write_text('[[package]]\nname = "other"\nversion = "1.0.0"\n')
    assert ldk_driver.locked_version(lock) is None


def test_the_cache_key_changes_with_the_driver_source() -> None:
    key = ldk_driver.crate_hash()
    assert re.fullmatch(r"[0-9a-f]{12}", key)
    assert ldk_driver.driver_dir().name == f"lab-ldk-{key}"
