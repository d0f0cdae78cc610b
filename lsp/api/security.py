"""/api/admin/security: watchtowers and breaches (docs/LSP.md, "Watchtowers and breaches"), operator only."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from lsp.api.deps import Ctx, get_lnd, require_admin
from lsp.api.schemas import ERROR_RESPONSES
from lsp.services import security
from lsp.services.security import SecurityView

router = APIRouter(prefix="/api/admin", tags=["admin"], responses=ERROR_RESPONSES, dependencies=[Depends(require_admin)])


@router.get("/security", response_model=SecurityView)
async def security_report(ctx: Ctx) -> SecurityView:
    """Each watchtower's health and backups (LND's watchtower client), and every breach seen."""
    return await security.security_view(ctx, get_lnd(ctx))
