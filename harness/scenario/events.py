"""Collect the LSP client's live events (``/ws/lightning``) during a scenario.

A background thread holds a signed WebSocket open and appends each event
(``{"type", "at", "data"}``) to a list that ``expect`` steps read; the
``hello`` greeting proves the connection is authenticated before any step runs.
"""

from __future__ import annotations

import contextlib
import json
import threading
from types import TracebackType
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from harness.errors import LabError
from lsp.client import websocket_url


class EventCollector:
    def __init__(self, base_url: str, api_key: str, api_secret: str):
        self.url = websocket_url(base_url, api_key, api_secret)
        self.events: list[dict[str, Any]] = []
        self._ws: ClientConnection | None = None
        self._thread: threading.Thread | None = None
        self._stack = contextlib.ExitStack()

    def start(self) -> EventCollector:
        # Entered as a context manager (websockets deprecates the bare call); ``stop`` exits it.
        self._ws = self._stack.enter_context(connect(self.url, open_timeout=20))
        hello = json.loads(self._ws.recv(timeout=20))
        if hello.get("type") != "hello":
            self._stack.close()
            raise LabError(f"the LSP WebSocket greeted with {hello!r} instead of hello")
        self._thread = threading.Thread(target=self._read, name="lsp-events", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._ws is not None
        try:
            for msg in self._ws:
                self.events.append(json.loads(msg))
        except ConnectionClosed:
            return

    def stop(self) -> None:
        self._stack.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> EventCollector:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
