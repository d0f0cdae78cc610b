"""Persistence of LSPS2 buys, held HTLCs and wrapped invoices (SQLAlchemy, sync sessions).

The interceptor decides per circuit key from what is stored here, so a replay
by LND after a restart (ours or LND's) gets the same answer as the first time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from lsp.db.base import session_scope, utcnow
from lsp.db.models_lsps import Lsps2Buy, Lsps2Htlc, WrappedInvoice
from lsp.lsps.lsps2 import Buy, OpeningFeeParams, parse_datetime, random_jit_scid, scid_from_str, scid_to_str


def _buy(row: Lsps2Buy) -> Buy:
    return Buy(
        id=row.id,
        client_node_id=row.client_node_id,
        jit_scid=scid_from_str(row.jit_scid),
        params=OpeningFeeParams.from_json(json.loads(row.opening_fee_params)),
        payment_size_msat=row.payment_size_msat,
        state=row.state,
        channel_point=row.channel_point,
    )


@dataclass(frozen=True)
class HeldHtlc:
    chan_id: int
    htlc_id: int
    payment_hash: str
    amount_msat: int
    state: str
    fee_msat: int
    failure: str | None


class LspsStore:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    # -- buys ------------------------------------------------------------------
    def create_buy(self, client_node_id: str, params: OpeningFeeParams, payment_size_msat: int | None) -> Buy:
        for _ in range(8):  # a collision among 2^64 random SCIDs is near impossible; bounded anyway
            scid = scid_to_str(random_jit_scid())
            try:
                with session_scope(self.sessions) as s:
                    row = Lsps2Buy(
                        client_node_id=client_node_id,
                        jit_scid=scid,
                        opening_fee_params=json.dumps(params.to_json()),
                        payment_size_msat=payment_size_msat,
                        valid_until=parse_datetime(params.valid_until),
                        state="PENDING",
                    )
                    s.add(row)
                    s.flush()
                    return _buy(row)
            except IntegrityError:
                continue
        raise RuntimeError("could not allocate a unique JIT SCID")

    def buy_by_scid(self, scid: int) -> Buy | None:
        with session_scope(self.sessions) as s:
            row = s.scalars(select(Lsps2Buy).where(Lsps2Buy.jit_scid == scid_to_str(scid))).first()
            return _buy(row) if row else None

    def set_buy_state(
        self,
        buy_id: str,
        state: str,
        *,
        channel_point: str | None = None,
        channel_alias: int | None = None,
        fee_msat: int | None = None,
        reason: str | None = None,
    ) -> None:
        with session_scope(self.sessions) as s:
            row = s.get(Lsps2Buy, buy_id)
            if row is None:
                return
            row.state = state
            if channel_point is not None:
                row.channel_point = channel_point
            if channel_alias is not None:
                row.channel_alias = scid_to_str(channel_alias)
            if fee_msat is not None:
                row.opening_fee_msat = fee_msat
            if reason is not None:
                row.failure_reason = reason
            if state == "OPENED":
                row.opened_at = utcnow()

    def opened_aliases(self) -> list[tuple[str, int, int]]:
        """(buy id, base SCID, JIT SCID) of every opened buy: the aliases LND must route."""
        with session_scope(self.sessions) as s:
            rows = s.execute(
                select(Lsps2Buy.id, Lsps2Buy.channel_alias, Lsps2Buy.jit_scid).where(
                    Lsps2Buy.state == "OPENED", Lsps2Buy.channel_alias.is_not(None)
                )
            ).all()
        return [(str(i), scid_from_str(str(base)), scid_from_str(jit)) for i, base, jit in rows]

    # -- held HTLCs --------------------------------------------------------------
    def record_htlc(self, buy_id: str, chan_id: int, htlc_id: int, payment_hash: str, amount_msat: int) -> HeldHtlc:
        """Insert the part if new; return the stored row either way (replays keep their state)."""
        with session_scope(self.sessions) as s:
            row = s.scalars(
                select(Lsps2Htlc).where(Lsps2Htlc.chan_id == str(chan_id), Lsps2Htlc.htlc_id == htlc_id)
            ).first()
            if row is None:
                row = Lsps2Htlc(
                    buy_id=buy_id,
                    chan_id=str(chan_id),
                    htlc_id=htlc_id,
                    payment_hash=payment_hash,
                    amount_msat=amount_msat,
                    state="HELD",
                    fee_msat=0,
                )
                s.add(row)
                s.flush()
            return HeldHtlc(chan_id, htlc_id, row.payment_hash, row.amount_msat, row.state, row.fee_msat, row.failure)

    def resolve_htlc(
        self, chan_id: int, htlc_id: int, state: str, *, fee_msat: int = 0, failure: str | None = None
    ) -> None:
        with session_scope(self.sessions) as s:
            row = s.scalars(
                select(Lsps2Htlc).where(Lsps2Htlc.chan_id == str(chan_id), Lsps2Htlc.htlc_id == htlc_id)
            ).first()
            if row is not None:
                row.state = state
                row.fee_msat = fee_msat
                row.failure = failure

    def htlcs_for(self, buy_id: str) -> list[HeldHtlc]:
        with session_scope(self.sessions) as s:
            rows = s.scalars(select(Lsps2Htlc).where(Lsps2Htlc.buy_id == buy_id).order_by(Lsps2Htlc.id)).all()
            return [
                HeldHtlc(int(r.chan_id), r.htlc_id, r.payment_hash, r.amount_msat, r.state, r.fee_msat, r.failure)
                for r in rows
            ]

    # -- wrapped invoices ----------------------------------------------------------
    def add_wrapped(self, **fields: object) -> None:
        with session_scope(self.sessions) as s:
            s.add(WrappedInvoice(**fields))

    def wrapped(self, payment_hash: str) -> WrappedInvoice | None:
        with session_scope(self.sessions) as s:
            row = s.scalars(select(WrappedInvoice).where(WrappedInvoice.payment_hash == payment_hash)).first()
            if row is not None:
                s.expunge(row)
            return row

    def update_wrapped(self, payment_hash: str, **fields: object) -> None:
        with session_scope(self.sessions) as s:
            row = s.scalars(select(WrappedInvoice).where(WrappedInvoice.payment_hash == payment_hash)).first()
            if row is not None:
                for k, v in fields.items():
                    setattr(row, k, v)

    def open_wrapped(self) -> list[str]:
        """Payment hashes still in flight (resumed after a restart)."""
        with session_scope(self.sessions) as s:
            return list(
                s.scalars(
                    select(WrappedInvoice.payment_hash).where(
                        WrappedInvoice.state.in_(("WAITING", "ACCEPTED", "OPENING", "PAID"))
                    )
                ).all()
            )
