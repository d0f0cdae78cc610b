"""The camelCase JSON models: the services build them and the API serves them unchanged, so each
shape is defined once, beside the code that fills it in."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

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
