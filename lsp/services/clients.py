"""Enterprise clients: onboarding (credentials, limits, features) and lookup."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lsp.db.models import Client
from lsp.errors import Conflict
from lsp.security.crypto import SecretBox


@dataclass(frozen=True)
class NewClient:
    client: Client
    api_secret: str  # returned to the caller once, never again


def onboard(
    session: Session,
    box: SecretBox,
    *,
    name: str,
    client_id: str | None,
    requests_per_minute: int,
    monthly_volume_sat: int,
    custom_routing: bool = False,
    priority_support: bool = False,
    dedicated_liquidity: bool = False,
) -> NewClient:
    if client_id is not None and session.get(Client, client_id) is not None:
        raise Conflict(f"client {client_id!r} already exists", field="clientId")
    api_secret = secrets.token_urlsafe(32)
    client = Client(
        name=name,
        api_key="lsp_" + secrets.token_hex(16),
        secret_encrypted=box.encrypt(api_secret),
        requests_per_minute=requests_per_minute,
        monthly_volume_sat=monthly_volume_sat,
        custom_routing=custom_routing,
        priority_support=priority_support,
        dedicated_liquidity=dedicated_liquidity,
    )
    if client_id is not None:
        client.id = client_id
    try:
        # A savepoint: a concurrent onboarding of the same clientId that won the race makes this
        # insert fail; the caller's transaction stays usable and the client gets a 409.
        with session.begin_nested():
            session.add(client)
            session.flush()
    except IntegrityError:
        raise Conflict(f"client {client_id!r} already exists", field="clientId") from None
    return NewClient(client=client, api_secret=api_secret)
