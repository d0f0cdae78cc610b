"""LSPS1 orders paid on chain share one wallet poll (pure logic: a fake fetch and a fake clock
stand in for LND's ListUnspent and time)."""

from __future__ import annotations

import asyncio

from lsp.lsps.lsps1 import UnspentSnapshot

UTXOS = [("aa:0", 50_000, "bcrt1qorder1"), ("bb:1", 20_000, "bcrt1qorder2"), ("cc:0", 30_000, "bcrt1qorder1")]


class FakeWallet:
    """Counts ListUnspent calls; each call takes a moment, as over gRPC."""

    def __init__(self) -> None:
        self.calls = 0
        self.utxos = list(UTXOS)

    async def unspent(self) -> list[tuple[str, int, str]]:
        self.calls += 1
        await asyncio.sleep(0.01)
        return list(self.utxos)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_many_waiting_orders_cost_one_wallet_call_per_interval() -> None:
    wallet, clock = FakeWallet(), FakeClock()
    snap = UnspentSnapshot(wallet.unspent, max_age_s=1.0, clock=clock)

    async def run() -> None:
        # 50 orders polling at once: one call, and each sees only its own address's outputs.
        got = await asyncio.gather(*(snap.received(f"bcrt1qorder{1 + i % 3}") for i in range(50)))
        assert wallet.calls == 1
        assert got[0] == [("aa:0", 50_000), ("cc:0", 30_000)]
        assert got[1] == [("bb:1", 20_000)]
        assert got[2] == []  # an order nobody paid yet

        clock.now += 0.5  # still fresh: no new call
        await snap.received("bcrt1qorder1")
        assert wallet.calls == 1

        # After the interval the next poll asks the wallet again and sees what arrived meanwhile.
        wallet.utxos.append(("dd:2", 10_000, "bcrt1qorder3"))
        clock.now += 0.5
        assert await snap.received("bcrt1qorder3") == [("dd:2", 10_000)]
        assert wallet.calls == 2

    asyncio.run(run())


def test_a_failed_wallet_call_is_retried_by_the_next_poll() -> None:
    calls = 0

    async def flaky() -> list[tuple[str, int, str]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("LND unreachable")
        return list(UTXOS)

    snap = UnspentSnapshot(flaky, max_age_s=1.0, clock=FakeClock())

    async def run() -> None:
        try:
            await snap.received("bcrt1qorder2")
        except ConnectionError:
            pass
        else:
            raise AssertionError("the wallet error should reach the order's loop")
        # Nothing was cached from the failed call: the next poll asks again at once.
        assert await snap.received("bcrt1qorder2") == [("bb:1", 20_000)]
        assert calls == 2

    asyncio.run(run())
