"""Every external version this project builds, generates or runs, in one place.

It lives in ``lncore``, the bottom of the dependency graph: the LSP needs the
LND version for its gRPC stubs, the lab needs everything here, and neither
product imports the other's internals for it. Change a pin here and nothing
else: ``lab setup`` rebuilds what it names. (Python packages are pinned in
pyproject.toml.)
"""

from __future__ import annotations

from typing import Final

# LND: the node the LSP runs on and the lab starts.
LND_MODULE: Final = "github.com/lightningnetwork/lnd"
LND_VERSION: Final = "v0.21.3-beta"

# LND's go.mod carries replace directives that `go install pkg@version`
# refuses; the toolchain builds from a wrapper module that repeats them.
LND_REPLACES: Final[dict[str, str]] = {
    "github.com/ulikunitz/xz": "github.com/ulikunitz/xz v0.5.11",
    "github.com/gogo/protobuf": "github.com/gogo/protobuf v1.3.2",
    # Mandatory: lnrpc calls a function that only this fork of protobuf-go has.
    "google.golang.org/protobuf": "github.com/lightninglabs/protobuf-go-hex-display v1.33.0-hex-display",
}

# btcd: the version LND v0.21.3-beta itself requires (see its go.mod).
BTCD_MODULE: Final = "github.com/btcsuite/btcd"
BTCD_VERSION: Final = "v0.25.1-0.20260310163610-1c55c7c18179"

# Bitcoin Core: the lab's default chain backend. No registry here ships a
# bitcoind binary, but the PyPI sdist of py-bitcoinkernel carries Bitcoin
# Core's whole source tree (a master snapshot, CLIENT_VERSION 31.99) under
# depend/bitcoin/. `lab setup` downloads exactly this sdist, refuses it unless
# its sha256 matches, and builds bitcoind and bitcoin-cli from it.
BITCOIN_CORE_SDIST: Final = "py-bitcoinkernel"
BITCOIN_CORE_SDIST_VERSION: Final = "0.1.0a5"
BITCOIN_CORE_SDIST_SHA256: Final = "71b91eecac7a8b07248be04471c3bf98016b38bf823aefd28f7b31179940520d"
BITCOIN_CORE_SDIST_SUBDIR: Final = "depend/bitcoin"
# What the built binaries report (`bitcoind --version`: "v31.99.0-unk").
BITCOIN_CORE_VERSION: Final = "31.99.0"
# A node-only build: no wallet (the lab's faucet key lives in Python), no GUI,
# tests, IPC or extra tools; ZMQ on (LND's block and transaction feed).
BITCOIN_CORE_CMAKE_FLAGS: Final = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DENABLE_WALLET=OFF",
    "-DWITH_ZMQ=ON",
    "-DBUILD_TESTS=OFF",
    "-DBUILD_BENCH=OFF",
    "-DBUILD_GUI=OFF",
    "-DBUILD_FUZZ_BINARY=OFF",
    "-DENABLE_IPC=OFF",
    "-DBUILD_KERNEL_LIB=OFF",
    "-DBUILD_UTIL=OFF",
    "-DBUILD_TX=OFF",
    "-DBUILD_WALLET_TOOL=OFF",
    "-DBUILD_BITCOIN_BIN=OFF",
    "-DINSTALL_MAN=OFF",
)
# Oldest tools the Core tree accepts (its CMakeLists.txt and
# cmake/module/AddBoostIfNeeded.cmake), with the Debian packages that bring them.
CMAKE_MIN_VERSION: Final = (3, 22)
BOOST_MIN_VERSION: Final = (1, 74)
BITCOIN_CORE_BUILD_PACKAGES: Final = ("cmake", "g++", "pkg-config", "libboost-dev", "libevent-dev", "libzmq3-dev")

# LDK: the lab's second Lightning implementation. `interop/ldk` (our driver,
# one ldk-node instance behind an HTTP+JSON API) pins this exact crate version
# in its Cargo.toml and commits Cargo.lock; `lab setup` refuses a lock file
# that resolves another one. ldk-node 0.7.1 brings lightning 0.2 and
# lightning-liquidity 0.2 (the LSPS1/LSPS2 clients the LSP is tested against).
LDK_NODE_VERSION: Final = "0.7.1"
# ldk-node 0.7.1's rust-version.
RUST_MIN_VERSION: Final = (1, 85)

# Oldest Go that builds the pinned LND.
GO_MIN_VERSION: Final = (1, 25, 13)

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
UPSTREAM_BITCOIN_CORE_VERSION: Final = "29.0"
UPSTREAM_BITCOIND_IMAGE: Final = f"bitcoin/bitcoin:{UPSTREAM_BITCOIN_CORE_VERSION}"
UPSTREAM_LND_IMAGE: Final = f"lightninglabs/lnd:{LND_VERSION}"
