"""Product boundaries and hygiene: lsp never imports harness; secrets never reach a log line."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

import lsp
from lsp.logs import RedactingFormatter, RequestIdFilter, redact, request_id_var

pytestmark = pytest.mark.unit


def test_lsp_never_imports_harness() -> None:
    offenders = []
    for path in Path(lsp.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n == "harness" or n.startswith("harness.")]
    assert offenders == []


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
