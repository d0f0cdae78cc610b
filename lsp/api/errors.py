"""Domain errors -> HTTP, in one place, with one body shape for every 4xx/5xx:

    {"error": {"code": "...", "message": "...", "field": "body.amount"}}   (field only when one is to blame)

No handler ever returns a traceback; unexpected exceptions are logged with the
request id and answered with a generic 500.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lsp import errors as e
from lsp.db.base import DB_UNAVAILABLE, db_error_line
from lsp.logs import request_id_var

log = logging.getLogger("lsp.api")

STATUS: dict[type[e.LSPError], int] = {
    e.ValidationFailed: 422,
    e.AuthError: 401,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.InsufficientFunds: 402,
    e.RateLimited: 429,
    e.LndUnavailable: 503,
    e.ServiceUnavailable: 503,
    e.LndError: 502,
    e.ConfigError: 500,
    e.NotImplementedYet: 501,
}


def status_for(exc: e.LSPError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        err["field"] = field
    return {"error": err}


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)


async def _lsp_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.LSPError)
    status = status_for(exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, e.RateLimited) else None
    if isinstance(exc, e.LndUnavailable):
        headers = {"Retry-After": str(DB_RETRY_AFTER_S)}  # LND restarting: worth retrying soon
    if isinstance(exc, e.AuthError):
        headers = {"WWW-Authenticate": "LSP-HMAC-SHA256"}
    message = exc.message
    if isinstance(exc, e.ConfigError):
        log.error("configuration error while serving a request: %s", exc.message)
        message = "the LSP is misconfigured; the operator has been told"
    elif status >= 500:
        log.warning("%s: %s", exc.code, exc)
    return error_response(status, exc.code, message, exc.field, headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    # pydantic marks a dict key it refused with a trailing "[key]": the key itself names the field.
    return ".".join(str(p) for p in loc if p != "[key]")


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errs = list(exc.errors())
    if not errs:
        return error_response(422, "validation_error", "invalid request")
    first = errs[0]
    field = _loc(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return error_response(
            422,
            "invalid_json",
            f"request body is not valid JSON: {first.get('ctx', {}).get('error', '')}".rstrip(": "),
            "body",
        )
    parts = [f"{_loc(err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in errs]
    return error_response(422, "validation_error", "; ".join(parts), field or None)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        code, message = (
            "not_found",
            (exc.detail if exc.detail != "Not Found" else f"no such endpoint: {request.method} {request.url.path}"),
        )
    elif exc.status_code == 405:
        code, message = "method_not_allowed", f"{request.method} is not allowed on {request.url.path}"
    else:
        code, message = "http_error", str(exc.detail)
    return error_response(exc.status_code, code, str(message), headers=getattr(exc, "headers", None))


async def _db_data_error(_request: Request, exc: Exception) -> JSONResponse:
    # The last line of defence: request models bound every field, so a value the database refuses
    # (out of range, NUL in text) means a bound is missing somewhere. It is still the client's
    # value: 422, and logged so the missing bound gets added.
    log.warning("database refused a request value (add a bound to the request model): %s", exc)
    return error_response(422, "invalid_value", "a value in the request is out of range or not storable")


async def _db_integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    # A concurrent request created the same thing first (unique constraint).
    log.info("integrity conflict: %s", exc)
    return error_response(409, "conflict", "the request conflicts with the current state (a concurrent change?)")


DB_RETRY_AFTER_S = 5


async def _db_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # The database is down, restarting or out of connections: the transaction in progress rolled
    # back. Work done before it (a payment LND already made) is recorded by the background loops
    # once the database is back; a retry with the same Idempotency-Key finds it. The pool checks
    # connections before use (pool_pre_ping), so the first request after the database is back
    # succeeds: the LSP recovers by itself.
    log.warning("database unavailable: %s", db_error_line(exc))
    return error_response(
        503,
        "database_unavailable",
        f"the LSP's database is unavailable; retry in {DB_RETRY_AFTER_S} s "
        "(a payment: with the same Idempotency-Key, which never pays twice)",
        headers={"Retry-After": str(DB_RETRY_AFTER_S)},
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error (request %s)", request_id_var.get())
    return error_response(500, "internal_error", f"internal server error (request id {request_id_var.get()})")


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.LSPError, _lsp_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sqlalchemy.exc.DataError, _db_data_error)
    app.add_exception_handler(sqlalchemy.exc.IntegrityError, _db_integrity_error)
    # (OperationalError: the server is gone or refuses connections; InterfaceError: the connection
    # broke under us; TimeoutError: no pooled connection freed in time.)
    for db_down in DB_UNAVAILABLE:
        app.add_exception_handler(db_down, _db_unavailable)
    app.add_exception_handler(Exception, _unexpected)
