"""Server-sent events for the dashboard: every bus event, fanned out to open dashboard tabs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from lsp.services.events import Event

log = logging.getLogger("lsp.dashboard")


class Broadcaster:
    def __init__(self) -> None:
        self._subs: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]] = set()

    def on_event(self, event: Event) -> None:
        msg = json.dumps({"type": event.type, "clientId": event.client_id, "at": event.at, "data": event.data})
        for loop, q in list(self._subs):
            # publish() may run on a worker thread: hand the message to the subscriber's own loop.
            try:
                loop.call_soon_threadsafe(_offer, q, msg)
            except RuntimeError:  # that loop is closed: the tab went away
                self._subs.discard((loop, q))

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[str]]:
        q: asyncio.Queue[str] = asyncio.Queue(500)
        key = (asyncio.get_running_loop(), q)
        self._subs.add(key)
        try:
            yield q
        finally:
            self._subs.discard(key)


def _offer(q: asyncio.Queue[str], msg: str) -> None:
    try:
        q.put_nowait(msg)
    except asyncio.QueueFull:
        log.warning("dropping a dashboard event for a slow tab")
