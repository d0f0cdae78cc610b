"""White-label branding (the seed's ``brandingConfig``: logo, colours, domain) and the public
payment page it dresses (``/pay/{invoiceId}``, ``lsp/api/paypage.py``).

A client's branding is validated on the way in, so the page can use it as is: the logo is an
``https://`` URL or a small ``data:image/...;base64,`` image; colours are ``#rrggbb`` for a fixed
set of roles; the domain is a hostname. A request that arrives for a client's domain (its
``Host``) only ever shows that client's invoices.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from lsp.db.models import Client
from lsp.schemas import CamelModel

COLOR_ROLES = ("primary", "accent", "background", "text")
HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/]+={0,2}$")
MAX_LOGO_CHARS = 100_000  # a data: URL of about 73 KB
DEFAULT_COLORS = {"primary": "#3b6ea5", "accent": "#f2a900", "background": "#f6f7f9", "text": "#1d2329"}

Role = Literal["primary", "accent", "background", "text"]


class BrandingConfig(CamelModel):
    """The seed's brandingConfig."""

    logo: str | None = Field(
        default=None,
        max_length=MAX_LOGO_CHARS,
        description="https:// URL of the logo, or a data:image/(png|jpeg|gif|webp|svg+xml);base64 URL",
    )
    colors: dict[Role, str] = Field(
        default_factory=dict, description=f"#rrggbb per role: {', '.join(COLOR_ROLES)} (missing roles: defaults)"
    )
    domain: str | None = Field(
        default=None, max_length=253, description="the hostname your payment pages are served on (CNAME to the LSP)"
    )

    @field_validator("logo")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if DATA_IMAGE.match(value):
            return value
        if re.match(r"^https://[^\s\"'<>()\\]+$", value):
            return value
        raise ValueError("must be an https:// URL or a data:image/...;base64 URL (png, jpeg, gif, webp, svg+xml)")

    @field_validator("colors")
    @classmethod
    def _colors(cls, value: dict[Role, str]) -> dict[Role, str]:
        bad = [k for k, v in value.items() if not HEX_COLOR.match(v)]
        if bad:
            raise ValueError(f"{', '.join(bad)}: colours are #rrggbb")
        return {k: v.lower() for k, v in value.items()}

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.lower().rstrip(".")
        if not HOSTNAME.match(value):
            raise ValueError("must be a hostname such as pay.example.com (no scheme, port or path)")
        return value

    def palette(self) -> dict[str, str]:
        return DEFAULT_COLORS | {str(k): v for k, v in self.colors.items()}


def of(client: Client) -> BrandingConfig | None:
    return BrandingConfig.model_validate_json(client.branding) if client.branding else None


def store(session: Session, client_id: str, config: BrandingConfig | None) -> None:
    client = session.get(Client, client_id)
    assert client is not None
    client.branding = config.model_dump_json(by_alias=True, exclude_none=True) if config is not None else None
    client.branding_domain = config.domain if config is not None else None


def owner_of_domain(session: Session, host: str) -> str | None:
    """The client whose branding claims ``host`` (the request's Host without its port), if any."""
    owner = session.scalar(select(Client.id).where(Client.branding_domain == host.lower().rstrip(".")))
    return str(owner) if owner is not None else None


def domain_taken(session: Session, domain: str, client_id: str) -> bool:
    owner = owner_of_domain(session, domain)
    return owner is not None and owner != client_id
