"""The routing engine's learned liquidity beliefs, so a restart does not forget them.

One row per channel direction we learned something about: ``lower <= X < upper`` in msat
(``upper`` NULL means "up to the capacity") and when it was learned (epoch seconds, which the
model's decay needs). In-flight amounts are not stored: after a restart LND's own HTLC state
is the truth for those.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from lsp.db.base import Base


class RoutingLiquidity(Base):
    __tablename__ = "routing_liquidity"

    scid: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(66), primary_key=True)
    lower_msat: Mapped[int] = mapped_column(BigInteger)
    upper_msat: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)
