"""Product boundaries and hygiene: lsp never imports harness, lncore neither product, the lab only
the LSP's public client; secrets never reach a log line."""

from __future__ import annotations

import ast
import inspect
import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import harness
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


def test_the_lab_reaches_the_lsp_only_through_its_public_client() -> None:
    """The lab runs the LSP as processes (lsp serve, lsp lsps, lsp reconcile) and talks to it over
    HTTP and LSPS messages; its only import of the LSP is the HTTP client (lsp.client)."""
    found = _imports(Path(harness.__file__).parent)
    assert [f"{p}: {m}" for p, m in found if _top(m) == "lsp" and m != "lsp.client"] == []


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


def _routes(routes: list[Any]) -> Iterator[Any]:
    for r in routes:
        if hasattr(r, "dependant"):
            yield r
        if hasattr(r, "original_router"):  # FastAPI keeps included routers as such
            yield from _routes(r.original_router.routes)


def _dependencies(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _dependencies(sub)


def _opens_a_session_itself(fn: Any) -> bool:
    """``fn``'s own body (not the functions nested in it) calls ``session_scope``."""
    top = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]

    def calls(node: ast.AST) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue  # run elsewhere: run_in_threadpool / asyncio.to_thread
            if isinstance(child, ast.Call):
                f = child.func
                yield f.id if isinstance(f, ast.Name) else getattr(f, "attr", "")
            yield from calls(child)

    return "session_scope" in set(calls(top))


def test_the_database_rule_no_session_on_the_event_loop(tmp_path: Path) -> None:
    """The database rule (docs/LSP.md): SQLAlchemy is synchronous and never runs on the event
    loop. A route that takes the request's session (``DB``) is a plain ``def`` (FastAPI runs it in
    its thread pool); an ``async def`` route does its database work in short transactions of its
    own through ``run_in_threadpool``, never opening a session in its own body."""
    from lsp.api.deps import get_session
    from lsp.app import create_app
    from lsp.config import load_settings

    app = create_app(load_settings(database_url=f"sqlite:///{tmp_path / 'rule.db'}", background_tasks=False))
    routes = list(_routes(app.router.routes))
    assert len(routes) > 40
    on_loop = [
        f"{r.path} ({r.endpoint.__module__}.{r.endpoint.__name__})"
        for r in routes
        if inspect.iscoroutinefunction(r.endpoint)
        and (get_session in set(_dependencies(r.dependant)) or _opens_a_session_itself(r.endpoint))
    ]
    assert on_loop == []


def test_one_owner_per_transaction_no_route_commits() -> None:
    """The request's transaction belongs to the DB dependency (it commits when the handler returns,
    before the response); a route that must act after a commit opens its own ``session_scope``.
    So no module under lsp/api calls ``commit()`` itself."""
    api = Path(lsp.__file__).parent / "api"
    commits = [
        f"{path.name}:{node.lineno}"
        for path in api.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
    ]
    assert commits == []
