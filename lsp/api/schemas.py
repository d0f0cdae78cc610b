"""Request/response models shared by the routers. JSON is camelCase, like the user's original API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


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
