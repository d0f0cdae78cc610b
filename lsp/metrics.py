"""Prometheus metrics, one registry per app (so several apps in one process do not collide).

Counts that live in the database (channels, capacity, payment outcomes, routing
revenue) are read at scrape time by a collector, so they are right after a
restart; latencies are histograms observed as things happen.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from lsp.db.base import session_scope
from lsp.db.models import Channel, ForwardingEvent, Payment


class DbCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with session_scope(self.sessions) as s:
            chans = s.execute(
                select(Channel.status, func.count(), func.coalesce(func.sum(Channel.capacity_sat), 0)).group_by(
                    Channel.status
                )
            ).all()
            pays = s.execute(select(Payment.status, func.count()).group_by(Payment.status)).all()
            revenue = int(s.scalar(select(func.coalesce(func.sum(ForwardingEvent.fee_msat), 0))) or 0)
        count = GaugeMetricFamily("lsp_channels", "Channels the LSP opened for clients, by status", labels=["status"])
        cap = GaugeMetricFamily("lsp_channel_capacity_sat", "Capacity of those channels, by status", labels=["status"])
        for status, n, total in chans:
            count.add_metric([status], n)
            cap.add_metric([status], int(total))
        yield count
        yield cap
        by_status = {str(st): int(n) for st, n in pays}
        payments = CounterMetricFamily("lsp_payments", "Client payments by final status", labels=["status"])
        for st in ("succeeded", "failed", "in_flight"):
            payments.add_metric([st], by_status.get(st, 0))
        yield payments
        done = by_status.get("succeeded", 0) + by_status.get("failed", 0)
        yield GaugeMetricFamily(
            "lsp_payment_success_ratio",
            "Succeeded / (succeeded + failed) payments",
            value=by_status.get("succeeded", 0) / done if done else 0.0,
        )
        yield CounterMetricFamily("lsp_routing_revenue_msat", "Fees earned forwarding payments", value=revenue)


class Metrics:
    def __init__(self, sessions: sessionmaker[Session]):
        self.registry = CollectorRegistry()
        self.registry.register(DbCollector(sessions))
        self.api_latency = Histogram(
            "lsp_api_request_seconds",
            "API latency by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        # Set to the compliance worker's backlog when monitoring is installed: operators see it
        # fall behind, and a client of the API can wait for it to be 0 before reading alerts.
        self.compliance_pending = Gauge(
            "lsp_compliance_pending_events",
            "Events the compliance monitor has not handled yet (alerts lag behind by this many)",
            registry=self.registry,
        )
        self.payment_latency = Histogram(
            "lsp_payment_seconds",
            "Time from send to final state",
            ["status"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
