"""Request/response models shared by the routers. JSON is camelCase, like the user's original API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

# Upper bounds for request fields: past them a value is a mistake, and an unbounded integer would
# overflow a 64-bit database column or a protobuf field (a 500 instead of a 422).
MAX_SAT = 2_100_000_000_000_000  # every bitcoin there will ever be, in sats
MAX_TIMEOUT_S = 86_400
MAX_SCID = 2**64 - 1
MAX_DB_ID = 2**63 - 1

# A timestamp a handler already rendered with isoformat() (timezone-aware): documented as a
# date-time but kept as that string, so the body stays exactly what the handler wrote.
IsoTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold NUL and LND refuses it: a NUL in any string field is the
        # client's mistake, answered 422 naming the field (not a database error after side effects).
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


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
