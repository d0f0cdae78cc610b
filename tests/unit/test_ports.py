"""The port allocator's claims: what lets a network snapshot's P2P ports be used by one lab at a time."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from harness.runtime import ports

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _own_reservations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_PORTS_DIR", str(tmp_path))


def test_a_claimed_port_is_this_labs_until_unclaimed() -> None:
    port = ports.free_port()
    assert ports.claim(port)  # reserved by this process for a lab that has not started yet
    assert not ports.claim(port)  # a second lab of this process may not take it meanwhile
    ports.unclaim(port)
    assert ports.claim(port)  # the first lab stopped: the next one may
    ports.unclaim(port)


def test_a_port_another_live_process_reserved_is_refused(tmp_path: Path) -> None:
    port = ports.free_port()
    (tmp_path / str(port)).write_text(str(os.getppid()))  # our parent: alive, not us
    assert not ports.claim(port)
    (tmp_path / str(port)).write_text("999999")  # a process that is gone: reclaimed
    assert ports.claim(port)
    ports.unclaim(port)


def test_a_port_something_listens_on_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert not ports.claim(s.getsockname()[1])
