"""Enterprise endpoints: onboarding (admin), the client's own profile, dashboard data and webhooks."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import Field, HttpUrl
from sqlalchemy.orm import Session

from lsp.api.deps import DB, Ctx, CurrentClient, require_admin
from lsp.api.schemas import ERROR_RESPONSES, MAX_SAT, CamelModel
from lsp.compliance import audit, kyc
from lsp.db.base import session_scope
from lsp.db.models import Client, Webhook
from lsp.errors import Conflict
from lsp.services import branding, clients, overview, webhooks
from lsp.services.branding import BrandingConfig
from lsp.services.events import EVENT_TYPES
from lsp.services.overview import ClientDashboard

router = APIRouter(prefix="/api/enterprise", tags=["enterprise"], responses=ERROR_RESPONSES)


class ApiLimits(CamelModel):
    requests_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    monthly_volume: int | None = Field(default=None, ge=0, le=MAX_SAT, description="sats per calendar month")


class Features(CamelModel):
    custom_routing: bool = False
    priority_support: bool = False
    dedicated_liquidity: bool = False


class OnboardRequest(CamelModel):
    """The seed's EnterpriseConfig."""

    client_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=200)
    api_limits: ApiLimits = Field(default_factory=ApiLimits)
    features: Features = Field(default_factory=Features)
    branding_config: BrandingConfig | None = Field(
        default=None, description="what the client's public payment pages (/pay/{invoiceId}) wear"
    )


class ClientView(CamelModel):
    client_id: str
    name: str
    api_key: str
    api_limits: ApiLimits
    features: Features
    branding_config: BrandingConfig | None
    created_at: datetime

    @classmethod
    def of(cls, c: Client) -> ClientView:
        return cls(
            branding_config=branding.of(c),
            client_id=c.id,
            name=c.name,
            api_key=c.api_key,
            api_limits=ApiLimits(requests_per_minute=c.requests_per_minute, monthly_volume=c.monthly_volume_sat),
            features=Features(
                custom_routing=c.custom_routing,
                priority_support=c.priority_support,
                dedicated_liquidity=c.dedicated_liquidity,
            ),
            created_at=c.created_at,
        )


class OnboardResponse(ClientView):
    api_secret: str = Field(description="Shown once. Sign every request with it; the LSP cannot show it again.")


@router.post("/onboard", status_code=201, response_model=OnboardResponse, dependencies=[Depends(require_admin)])
def onboard(body: OnboardRequest, db: DB, ctx: Ctx) -> OnboardResponse:
    s = ctx.settings
    new = clients.onboard(
        db,
        ctx.box,
        name=body.name,
        client_id=body.client_id,
        requests_per_minute=body.api_limits.requests_per_minute or s.default_requests_per_minute,
        monthly_volume_sat=body.api_limits.monthly_volume
        if body.api_limits.monthly_volume is not None
        else s.default_monthly_volume,
        custom_routing=body.features.custom_routing,
        priority_support=body.features.priority_support,
        dedicated_liquidity=body.features.dedicated_liquidity,
    )
    if body.branding_config is not None:
        _check_domain(db, body.branding_config, new.client.id, "body.brandingConfig.domain")
        branding.store(db, new.client.id, body.branding_config)
    kyc.get_profile(db, s, new.client.id)
    audit.record(
        db,
        actor="admin:api",
        action="client.onboard",
        target=f"client:{new.client.id}",
        after={
            "name": new.client.name,
            "requestsPerMinute": new.client.requests_per_minute,
            "monthlyVolumeSat": new.client.monthly_volume_sat,
        },
    )
    view = ClientView.of(new.client)  # committed by the DB dependency before the answer goes out
    return OnboardResponse(**view.model_dump(), api_secret=new.api_secret)


@router.get("/me", response_model=ClientView)
def me(client: CurrentClient) -> ClientView:
    return ClientView.of(client)


def _check_domain(db: Session, config: BrandingConfig, client_id: str, field: str) -> None:
    if config.domain is not None and branding.domain_taken(db, config.domain, client_id):
        raise Conflict(f"domain {config.domain} is another client's", field=field)


@router.get("/branding", response_model=BrandingConfig | None)
def get_branding(client: CurrentClient) -> BrandingConfig | None:
    """Your branding (null: the LSP's defaults)."""
    return branding.of(client)


@router.put("/branding", response_model=BrandingConfig)
def put_branding(body: BrandingConfig, client: CurrentClient, db: DB) -> BrandingConfig:
    """Set your branding: logo, colours and the domain your payment pages are served on."""
    _check_domain(db, body, client.id, "body.domain")
    branding.store(db, client.id, body)
    audit.record(
        db,
        actor=f"client:{client.id}",
        action="client.branding",
        target=f"client:{client.id}",
        after={"domain": body.domain, "colors": body.colors, "logo": bool(body.logo)},
    )
    return body


@router.get("/dashboard", response_model=ClientDashboard)
def dashboard(client: CurrentClient, db: DB, ctx: Ctx) -> ClientDashboard:
    """Your balance, channels, volume (today and this month, UTC), fees, live reservations and
    latest activity, in one call (seed 001's enterprise dashboard)."""
    return overview.client_dashboard(db, ctx.settings, client)


class WebhookRequest(CamelModel):
    url: HttpUrl
    events: list[str] = Field(default_factory=lambda: ["*"], description=f"any of {list(EVENT_TYPES)}, or '*'")


class WebhookView(CamelModel):
    id: str
    url: str
    events: list[str]
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, h: Webhook) -> WebhookView:
        return cls(id=h.id, url=h.url, events=h.events.split(","), active=h.active, created_at=h.created_at)


class WebhookCreated(WebhookView):
    secret: str = Field(
        description="Shown once. Deliveries carry X-LSP-Signature = HMAC-SHA256(secret, ts + '.' + body)"
    )


class DeliveryView(CamelModel):
    id: int
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDetail(WebhookView):
    deliveries: list[DeliveryView]


@router.post("/webhook", status_code=201, response_model=WebhookCreated)
def create_webhook(body: WebhookRequest, client: CurrentClient, ctx: Ctx) -> WebhookCreated:
    with session_scope(ctx.sessions) as db:
        hook, secret = webhooks.register(db, ctx.box, client.id, str(body.url), body.events)
        audit.record(
            db,
            actor=f"client:{client.id}",
            action="webhook.create",
            target=f"webhook:{hook.id}",
            after={"url": hook.url, "events": hook.events},
        )
    ctx.bus.webhooks_changed(client.id)  # after the commit: the bus re-reads committed hooks
    return WebhookCreated(**WebhookView.of(hook).model_dump(), secret=secret)


@router.get("/webhooks", response_model=list[WebhookView])
def list_webhooks(client: CurrentClient, db: DB) -> list[WebhookView]:
    return [WebhookView.of(h) for h in webhooks.list_for_client(db, client.id)]


@router.get("/webhooks/{webhook_id}", response_model=WebhookDetail)
def get_webhook(webhook_id: str, client: CurrentClient, db: DB) -> WebhookDetail:
    hook = webhooks.get_for_client(db, client.id, webhook_id)
    log = [
        DeliveryView(
            id=d.id,
            event_type=d.event_type,
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )
        for d in webhooks.deliveries(db, hook.id)
    ]
    return WebhookDetail(**WebhookView.of(hook).model_dump(), deliveries=log)
