"""Product boundaries and hygiene: lsp never imports harness, lncore neither product; secrets never\nreach a log line."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

import lncore
import lsp
from lsp.logs import RedactingFormatter, RequestIdFilter, redact, request_id_var

pytestmark = pytest.mark.unit


def _imports(package_dir: Path) -> list[tuple[Path, str]]:
    found = []
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(path, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.append((path, node.module))
    return found


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def test_lsp_never_imports_harness() -> None:
    assert [f"{p}: {m}" for p, m in _imports(Path(lsp.__file__).parent) if _top(m) == "harness"] == []


def test_lncore_is_the_bottom_it_imports_neither_product() -> None:
    found = _imports(Path(lncore.__file__).parent)
    assert found, "lncore has imports to check"
    assert [f"{p}: {m}" for p, m in found if _top(m) in ("lsp", "harness", "bench")] == []


def test_secrets_are_redacted_and_request_id_is_on_every_line() -> None:
    record = logging.LogRecord(
        "lsp.test",
        logging.INFO,
        __file__,
        1,
        "headers %s, url %s",
        ({"X-Signature": "deadbeef", "X-API-Key": "lsp_abc"}, "/ws?apiKey=k&signature=cafe"),
        None,
    )
    token = request_id_var.set("req-77")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = RedactingFormatter("[%(request_id)s] %(message)s").format(record)
    assert line.startswith("[req-77] ")
    assert "deadbeef" not in line and "cafe" not in line
    assert "lsp_abc" in line  # the key identifies the client; only secrets are hidden
    assert redact('{"apiSecret": "s3cr3t"}') == '{"apiSecret": "***"}'
