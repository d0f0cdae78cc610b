"""Hosted nodes, pure logic: LND's command line and config file, features, sweep addresses, the
creation charge, Docker's state words, and the settings' errors. Expected values come from LND's
flag names, BIP 173 / base58 test addresses and the seed's fee structure, not from the code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from lsp.config import Settings
from lsp.hosting import features
from lsp.hosting.config import HostingSettings
from lsp.hosting.docker_orch import DockerOrchestrator, _parse_time, _status
from lsp.hosting.orchestrator import NodeSpec, Ports, lnd_conf
from lsp.hosting.service import CLIENT_PERMISSIONS, ChannelAsk, NodeAsk, hosting_charge, payments_to_bill, valid_address

RPC_PASS = "s3cret-rpc-pass"


def hosting(**kw: Any) -> HostingSettings:
    base: dict[str, Any] = {
        "instance": "unit",
        "bitcoind_rpc_host": "bitcoind:18443",
        "bitcoind_rpc_user": "lab",
        "bitcoind_rpc_pass": SecretStr(RPC_PASS),
        "bitcoind_zmq_block": "tcp://bitcoind:28332",
        "bitcoind_zmq_tx": "tcp://bitcoind:28333",
    }
    return HostingSettings(**{**base, **kw})


def spec(**kw: Any) -> NodeSpec:
    base: dict[str, Any] = {
        "node_id": "hn-0123456789ab",
        "client_id": "c" * 32,
        "alias": "acme",
        "color": "#ff9900",
        "ports": Ports(grpc=20001, rest=20002, p2p=20003),
        "password": b"hunter2-wallet-secret",
    }
    return NodeSpec(**{**base, **kw})


def test_bridge_network_nodes_listen_on_lnds_ports_and_name_the_chain_by_host() -> None:
    orch = DockerOrchestrator(hosting(docker_network="lab-net"), client=object())
    args = orch.command(spec(extra_flags=("--accept-keysend",)))
    assert "--rpclisten=0.0.0.0:10009" in args and "--listen=0.0.0.0:9735" in args and "--restlisten=0.0.0.0:8080" in args
    assert "--bitcoin.regtest" in args and "--bitcoin.node=bitcoind" in args
    assert "--bitcoind.rpchost=bitcoind:18443" in args
    assert "--bitcoind.zmqpubrawblock=tcp://bitcoind:28332" in args
    assert "--wallet-unlock-password-file=/data/wallet-password" in args and "--wallet-unlock-allow-create" in args
    assert "--configfile=/data/lnd.conf" in args
    assert "--alias=acme" in args and "--color=#ff9900" in args and "--accept-keysend" in args
    # The certificate names the container (the LSP's LND dials it there) and the public host.
    assert "--tlsextradomain=lsp-unit-hn-0123456789ab" in args and "--tlsextraip=127.0.0.1" in args
    # Secrets never on the command line (docker inspect shows it).
    assert not any(RPC_PASS in a or "hunter2" in a for a in args)
    addr = orch.addresses(spec())
    assert (addr.rpc, addr.endpoint_grpc, addr.peer) == ("127.0.0.1:20001", "127.0.0.1:20001", "lsp-unit-hn-0123456789ab:9735")


def test_host_network_nodes_bind_the_ports_the_lsp_picked() -> None:
    orch = DockerOrchestrator(hosting(docker_network="host", public_host="node.example.com"), client=object())
    args = orch.command(spec())
    assert "--rpclisten=127.0.0.1:20001" in args and "--restlisten=127.0.0.1:20002" in args and "--listen=127.0.0.1:20003" in args
    assert "--tlsextradomain=node.example.com" in args
    addr = orch.addresses(spec())
    assert (addr.endpoint_grpc, addr.endpoint_rest) == ("node.example.com:20001", "node.example.com:20002")
    assert addr.peer == "127.0.0.1:20003"


def test_lnd_conf_holds_the_chain_credentials_in_lnds_section() -> None:
    assert lnd_conf(hosting()).decode().splitlines() == ["[Bitcoind]", "bitcoind.rpcuser=lab", f"bitcoind.rpcpass={RPC_PASS}"]


def test_features_map_to_lnds_flags_and_unknown_names_are_named() -> None:
    assert features.unknown(["keysend", "teleport", "amp", "x"]) == ["teleport", "x"]
    flags = features.flags(["zero-conf", "scid-alias"], autopilot=True, max_channels=3, allocation=0.5)
    # zero-conf needs scid-alias (LND refuses it alone); asked twice, given once.
    assert flags == (
        "--protocol.option-scid-alias",
        "--protocol.zero-conf",
        "--autopilot.active",
        "--autopilot.maxchannels=3",
        "--autopilot.allocation=0.5",
    )
    assert features.flags([], autopilot=False, max_channels=9, allocation=None) == ()


@pytest.mark.parametrize(
    ("address", "network", "ok"),
    [
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "mainnet", True),  # BIP 173
        ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "mainnet", True),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "regtest", False),  # another network's
        ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "testnet", True),  # BIP 173
        ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "signet", True),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "mainnet", False),  # BIP 173: bad checksum
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "mainnet", True),  # base58 P2PKH
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "testnet", False),
        ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "regtest", True),  # testnet/regtest P2PKH
        ("not an address", "regtest", False),
        ("", "regtest", False),
    ],
)
def test_sweep_addresses_are_checked_for_the_lsps_network(address: str, network: str, ok: bool) -> None:
    assert valid_address(address, network) is ok


def test_creation_charges_the_first_period_opening_fees_and_pushes() -> None:
    settings = Settings(
        channel_base_fee=1000,
        channel_fee_rate=0.002,
        hosting=hosting(monthly_fee=50_000),
    )
    ask = NodeAsk(
        alias="a",
        color="#000000",
        features=[],
        channels=[ChannelAsk(capacity=1_000_000, push_amount=25_000), ChannelAsk(capacity=333_333)],
    )
    # 50,000 + (1,000 + 2,000) + 25,000 + (1,000 + ceil(666.666)) = 79,667
    assert hosting_charge(settings, ask) == 79_667


def test_payments_are_billed_once_each_and_an_in_flight_one_is_not_skipped() -> None:
    assert payments_to_bill(0, []) == (0, 0)
    # 1 and 3 succeeded, 2 failed: two to bill, all three done.
    assert payments_to_bill(0, [(1, "SUCCEEDED"), (2, "FAILED"), (3, "SUCCEEDED")]) == (2, 3)
    # 5 is still in flight when 6 succeeds: 6 waits for 5 (the mark stays at 4).
    assert payments_to_bill(4, [(6, "SUCCEEDED"), (5, "IN_FLIGHT")]) == (0, 4)
    # Later, 5 succeeded: both billed once.
    assert payments_to_bill(4, [(5, "SUCCEEDED"), (6, "SUCCEEDED")]) == (2, 6)
    # Payments at or before the mark are never billed again.
    assert payments_to_bill(6, [(5, "SUCCEEDED"), (6, "SUCCEEDED"), (7, "INITIATED")]) == (0, 6)


def test_the_clients_macaroon_cannot_bake_macaroons_send_on_chain_or_dial_peers() -> None:
    granted = set(CLIENT_PERMISSIONS)
    assert ("invoices", "write") in granted and ("offchain", "write") in granted and ("address", "write") in granted
    assert not any(entity in ("macaroon", "signer", "uri") for entity, _ in granted)
    assert ("onchain", "write") not in granted and ("peers", "write") not in granted


class FakeContainer:
    """A fake of the Docker SDK's container object: only ``attrs`` (pure logic under test)."""

    def __init__(self, state: dict[str, Any]):
        self.attrs = {"State": state}


def test_docker_states_become_node_states_with_their_reason() -> None:
    running = _status(FakeContainer({"Running": True, "StartedAt": "2026-12-05T00:20:15.123456789Z"}))
    assert running.state == "running" and running.started_at == datetime(2026, 12, 5, 0, 20, 15, 123456, tzinfo=UTC)
    oom = _status(FakeContainer({"Running": False, "OOMKilled": True, "ExitCode": 137, "StartedAt": "0001-01-01T00:00:00Z"}))
    assert (oom.state, oom.exit_code, oom.detail, oom.started_at) == ("stopped", 137, "out of memory (OOMKilled)", None)
    assert _status(FakeContainer({"Restarting": True, "Running": True})).state == "restarting"
    assert _parse_time("garbage") is None


@pytest.mark.parametrize(
    ("env", "field", "words"),
    [
        ({"LSP_HOSTING_PUBLISH_HOST": "localhost"}, "publish_host", "is not an IP address"),
        ({"LSP_HOSTING_INSTANCE": "Bad_Name"}, "instance", "lowercase"),
        ({"LSP_HOSTING_BITCOIND_ZMQ_TX": "udp://x:1"}, "bitcoind_zmq_tx", "tcp://HOST:PORT"),
        ({"LSP_HOSTING_MEMORY_MB": "64"}, "memory_mb", "greater than or equal to 128"),
        (
            {"LSP_HOSTING_ENABLED": "true", "LSP_HOSTING_ORCHESTRATOR": "kubernetes"},
            "",
            "LSP_HOSTING_PUBLIC_HOST is required",
        ),
    ],
)
def test_bad_hosting_settings_name_the_field(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], field: str, words: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValidationError) as err:
        HostingSettings()
    (problem,) = err.value.errors()
    assert ".".join(str(p) for p in problem["loc"]) == field and words in problem["msg"]


def test_hosted_nodes_run_on_the_lsps_own_chain() -> None:
    assert Settings(network="testnet", admin_password=SecretStr("x")).hosting.network == "testnet"
