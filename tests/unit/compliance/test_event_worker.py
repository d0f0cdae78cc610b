"""The compliance event worker: events are handled in order, in batches, and one bad event
does not cost the others (the handler here is a plain recording function, no database)."""

from __future__ import annotations

import time

import pytest

from lsp.compliance.monitoring import EventWorker
from lsp.services.events import Event

pytestmark = pytest.mark.unit


def _events(n: int) -> list[Event]:
    return [Event("payment_sent", "c1", {"i": i}) for i in range(n)]


def test_a_burst_is_handled_in_order_as_one_batch() -> None:
    batches: list[list[int]] = []
    worker = EventWorker(lambda batch: batches.append([e.data["i"] for e in batch]))
    for e in _events(5):
        worker.submit(e)
    assert worker.flush(timeout_s=10)
    assert batches == [[0, 1, 2, 3, 4]]


def test_a_failing_event_is_isolated_and_the_rest_handled() -> None:
    handled: list[int] = []

    def handle(batch: list[Event]) -> None:
        if any(e.data["i"] == 2 for e in batch):
            raise RuntimeError("bad event")
        handled.extend(e.data["i"] for e in batch)

    worker = EventWorker(handle)
    for e in _events(4):
        worker.submit(e)
    assert worker.flush(timeout_s=10)
    assert handled == [0, 1, 3]


def test_flush_does_not_wait_for_the_gathering_pause() -> None:
    worker = EventWorker(lambda batch: None)
    worker.GATHER_S = 30.0
    worker.submit(_events(1)[0])
    t = time.monotonic()
    assert worker.flush(timeout_s=10)
    assert time.monotonic() - t < 5
