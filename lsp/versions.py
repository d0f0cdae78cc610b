"""Every external version this project builds, generates or runs, in one place.

It lives in ``lsp`` (not ``harness``) because ``lsp`` is the bottom of the
dependency graph: the LSP needs the LND version to generate its gRPC stubs,
the lab needs everything here, and ``lsp`` must never import ``harness``.
Change a pin here and nothing else: ``lab setup`` rebuilds what it names.
"""

from __future__ import annotations

from typing import Final

# LND: the node the LSP runs on and the lab starts.
LND_MODULE: Final = "github.com/lightningnetwork/lnd"
LND_VERSION: Final = "v0.21.2-beta"

# LND's go.mod carries replace directives that `go install pkg@version`
# refuses; the toolchain builds from a wrapper module that repeats them.
LND_REPLACES: Final[dict[str, str]] = {
    "github.com/ulikunitz/xz": "github.com/ulikunitz/xz v0.5.11",
    "github.com/gogo/protobuf": "github.com/gogo/protobuf v1.3.2",
    # Mandatory: lnrpc calls a function that only this fork of protobuf-go has.
    "google.golang.org/protobuf": "github.com/lightninglabs/protobuf-go-hex-display v1.33.0-hex-display",
}

# btcd: the version LND v0.21.2-beta itself requires (see its go.mod).
BTCD_MODULE: Final = "github.com/btcsuite/btcd"
BTCD_VERSION: Final = "v0.25.1-0.20260310163610-1c55c7c18179"

# Oldest Go that builds the pinned LND.
GO_MIN_VERSION: Final = (1, 25, 10)

# Build tags. The lab build is what LND's own integration tests use: cheap
# wallet scrypt, --dev.* flags, every sub-server the harness drives.
LND_LAB_TAGS: Final = (
    "dev autopilotrpc chainrpc invoicesrpc neutrinorpc peersrpc routerrpc "
    "signrpc verrpc walletrpc watchtowerrpc wtclientrpc integration btcd"
)
# What operators deploy (anchors on, --dev.* rejected).
LND_RELEASE_TAGS: Final = (
    "autopilotrpc signrpc walletrpc chainrpc invoicesrpc watchtowerrpc neutrinorpc monitoring peersrpc"
)

# The .proto files (relative to lnrpc/ in the LND module) the Python stubs
# are generated from.
LND_PROTOS: Final = (
    "lightning.proto",
    "walletunlocker.proto",
    "stateservice.proto",
    "routerrpc/router.proto",
    "invoicesrpc/invoices.proto",
    "walletrpc/walletkit.proto",
    "signrpc/signer.proto",
    "chainrpc/chainnotifier.proto",
    "chainrpc/chainkit.proto",
    "peersrpc/peers.proto",
    "watchtowerrpc/watchtower.proto",
    "wtclientrpc/wtclient.proto",
    "verrpc/verrpc.proto",
)

# Images named by docker-compose.regtest.yml's `upstream` profile (for users
# with registry access; NOT exercised on this project's machines). The `lab`
# profile uses the FROM-scratch images built from the pins above.
BITCOIN_CORE_VERSION: Final = "29.0"
UPSTREAM_BITCOIND_IMAGE: Final = f"bitcoin/bitcoin:{BITCOIN_CORE_VERSION}"
UPSTREAM_LND_IMAGE: Final = f"lightninglabs/lnd:{LND_VERSION}"
