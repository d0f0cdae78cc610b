"""Request/response models shared by the routers. JSON is camelCase, like the user's original API
(``CamelModel``, from lsp.schemas, which the services use too)."""

from __future__ import annotations

from pydantic import BaseModel

from lsp.schemas import CamelModel as CamelModel
from lsp.schemas import IsoTime as IsoTime

# Upper bounds for request fields: past them a value is a mistake, and an unbounded integer would
# overflow a 64-bit database column or a protobuf field (a 500 instead of a 422).
MAX_SAT = 2_100_000_000_000_000  # every bitcoin there will ever be, in sats
MAX_TIMEOUT_S = 86_400
MAX_SCID = 2**64 - 1
MAX_DB_ID = 2**63 - 1


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": desc}
    for status, desc in {
        401: "Missing or invalid signature, stale timestamp, reused nonce, or unknown API key",
        404: "No such resource (or it belongs to another client)",
        422: "Invalid request (field names the culprit)",
        429: "Rate limit exceeded; see Retry-After",
    }.items()
}
