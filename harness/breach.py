"""A revoked-state breach, packaged: the cheater broadcasts an old commitment
and the victim (or its watchtower) sweeps the whole channel.

The recipe follows LND's itest ``lnd_revocation_test.go``: the victim runs
with ``--nolisten --minbackoff=1h`` so the restored cheater cannot reconnect
(otherwise channel re-establishment reveals the stale state and data-loss
protection kicks in instead of a breach).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import LabError
from harness.faults import Faults
from harness.network import Network
from harness.node import LndNode
from harness.wait import wait_for

VICTIM_FLAGS = ("--nolisten", "--minbackoff=1h")


@dataclass(frozen=True)
class BreachResult:
    channel_point: str
    breach_txid: str
    justice_txid: str
    victim_onchain_before_sat: int
    victim_onchain_after_sat: int
    victim_channel_balance_sat: int  # the victim's balance in the channel when the cheater broadcast
    cheater_revoked_balance_sat: int  # what the revoked state gave the cheater
    cheater_loss_sat: int  # the cheater's balance at the latest state, all lost
    swept_by: str  # "victim" or the tower's node name
    close_type: str


class Breach:
    def __init__(self, net: Network, faults: Faults):
        self.net = net
        self.faults = faults

    def run(
        self,
        cheater: str,
        victim: str,
        *,
        tower: str | None = None,
        payments_sat: int = 100_000,
        register_tower: bool = True,
    ) -> BreachResult:
        """``register_tower=False``: the victim's tower is registered already (e.g. by the LSP running
        on it, from LSP_WATCHTOWERS); the breach only uses it."""
        c, v = self.net.node(cheater), self.net.node(victim)
        victim_flags = set(self.net.topology.flags_for(self.net.topology.node(victim)))
        missing = [f for f in VICTIM_FLAGS if f not in victim_flags]
        if missing:
            raise LabError(f"the victim {victim!r} must run with {' '.join(VICTIM_FLAGS)} (missing: {' '.join(missing)})")
        channel = c.channel_with(v)
        if channel.local_balance_sat < 3 * payments_sat:
            raise LabError(
                f"{cheater} has {channel.local_balance_sat} sat in the channel; a breach needs more than "
                f"{3 * payments_sat} sat on the cheater's side (push to it or pay it first)"
            )
        if tower is not None and register_tower:
            self._add_tower(v, self.net.node(tower))

        # A state the cheater will later broadcast, when it gives it the most.
        self._pay(c, v, payments_sat)
        self.faults.stop_node(cheater)
        snapshot = self.faults.snapshot_node(cheater)
        self.faults.start_node(cheater, wait_active=False)
        v.connect(c)  # the victim dials: it does not listen
        wait_for(lambda: c.channel_with(v).active, what=f"{cheater}'s channel with {victim} to be active again",
                 timeout_s="CHANNEL_OPEN")
        revoked = c.channel_with(v)

        # Move funds away from the cheater, revoking the snapshot's state.
        self._pay(c, v, payments_sat)
        self._pay(c, v, payments_sat)
        latest = c.channel_with(v)
        if tower is not None:
            self._wait_backups(v)

        victim_before = v.balances().onchain_confirmed_sat
        self.faults.stop_node(cheater)
        self.faults.restore_node(cheater, snapshot)
        if tower is not None:
            self.faults.stop_node(victim)
        self.faults.start_node(cheater, wait_active=False)

        breach_txid = c.ln.close_channel(channel.channel_point, force=True)
        self.net.chain.wait_for_tx(breach_txid)
        self.net.mine(1)

        watcher = self.net.node(tower) if tower is not None else v
        justice_txid = self._wait_justice(watcher, breach_txid)
        self.net.mine(1)
        if tower is not None:
            self.faults.start_node(victim)
        self.net.mine_until_swept(victim, channel.channel_point)
        closed = next(x for x in v.ln.closed_channels() if x.channel_point == channel.channel_point)
        close_type = type(closed).ClosureType.Name(closed.close_type)
        victim_after = v.balances().onchain_confirmed_sat
        return BreachResult(
            channel_point=channel.channel_point,
            breach_txid=breach_txid,
            justice_txid=justice_txid,
            victim_onchain_before_sat=victim_before,
            victim_onchain_after_sat=victim_after,
            victim_channel_balance_sat=latest.remote_balance_sat,
            cheater_revoked_balance_sat=revoked.local_balance_sat,
            cheater_loss_sat=latest.local_balance_sat,
            swept_by=tower or victim,
            close_type=close_type,
        )

    @staticmethod
    def _pay(payer: LndNode, payee: LndNode, amount_sat: int) -> None:
        inv = payee.add_invoice(amount_sat, memo="breach setup")
        res = payer.pay_invoice(inv.payment_request, fee_limit_sat=0)
        if not res.succeeded:
            raise LabError(f"breach setup payment {payer.name} -> {payee.name} failed: {res.failure_reason}")
        payee.wait_no_pending_htlcs()

    def _wait_justice(self, watcher: LndNode, breach_txid: str) -> str:
        """The transaction in the mempool that spends the breach transaction."""

        def find() -> str | None:
            for txid in self.net.chain.mempool():
                tx = self.net.chain.raw_tx(txid)
                if any(i.get("txid") == breach_txid for i in tx.get("vin", [])):
                    return txid
            return None

        return wait_for(
            find,
            what=f"{watcher.name}'s justice transaction spending {breach_txid}",
            timeout_s="CHANNEL_CLOSE",
            log=watcher.config.log_path,
        )

    def _add_tower(self, client: LndNode, tower: LndNode) -> None:
        s = client.ln.s
        pubkey, address = tower.tower_uri().split("@", 1)
        stub = client._rpc_stub(s.wtclient_grpc.WatchtowerClientStub)
        stub.AddTower(s.wtclient.AddTowerRequest(pubkey=bytes.fromhex(pubkey), address=address), timeout=10)

    def _wait_backups(self, client: LndNode) -> None:
        s = client.ln.s
        stub = client._rpc_stub(s.wtclient_grpc.WatchtowerClientStub)
        wait_for(
            lambda: stub.Stats(s.wtclient.StatsRequest(), timeout=10).num_backups > 0,
            what=f"{client.name}'s watchtower client to back up channel states",
            timeout_s="CHANNEL_OPEN",
            log=client.config.log_path,
        )
