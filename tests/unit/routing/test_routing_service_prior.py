"""``LSP_ROUTING_PRIOR`` reaches the running LSP's router: settings -> live graph -> liquidity model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from lncore import stubs
from lsp.config import Settings, load_settings
from lsp.errors import ConfigError
from lsp.routing import service
from lsp.routing.liquidity import Prior

pytestmark = pytest.mark.unit


def test_the_prior_defaults_to_uniform_and_reads_lsp_routing_prior(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LSP_ROUTING_PRIOR", raising=False)
    assert Settings(_env_file=None).routing_prior == "uniform"  # type: ignore[call-arg]
    monkeypatch.setenv("LSP_ROUTING_PRIOR", "bimodal")
    assert Settings(_env_file=None).routing_prior == "bimodal"  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="LSP_ROUTING_PRIOR"):
        load_settings(routing_prior="gaussian")


@pytest.mark.parametrize("prior", ["uniform", "bimodal"])
def test_live_graph_for_uses_the_configured_prior(prior: str) -> None:
    live = service.live_graph_for(Settings(routing_prior=prior), None)  # type: ignore[arg-type]
    assert live.liquidity.prior is Prior(prior)
    assert live.lnd is None  # built without touching LND


class GraphOnlyLnd:
    """A fake LND for pure-logic tests: just what ``LiveGraph.load``/``start`` call, an empty graph."""

    pb = stubs.load()

    async def get_info(self) -> Any:
        return self.pb.ln.GetInfoResponse(identity_pubkey="S")

    async def describe_graph(self, **_: Any) -> Any:
        return self.pb.ln.ChannelGraph()

    async def list_channels(self, **_: Any) -> list[Any]:
        return []

    async def subscribe_channel_graph(self) -> AsyncIterator[Any]:
        await asyncio.Event().wait()  # no updates, ever
        yield None


def test_the_lsps_executor_is_built_with_the_configured_prior() -> None:
    async def run() -> Prior:
        ctx = SimpleNamespace(settings=Settings(routing_prior="bimodal"), lnd=GraphOnlyLnd(), sessions=None,
                              routing_executor=None, routing_lock=asyncio.Lock())
        ex = await service.executor_for(ctx)  # type: ignore[arg-type]
        try:
            assert await service.executor_for(ctx) is ex  # type: ignore[arg-type]
            return ex.live.liquidity.prior
        finally:
            await service.close(ctx)  # type: ignore[arg-type]

    assert asyncio.run(run()) is Prior.BIMODAL
