#!/usr/bin/env bash
# Install everything the lab and the LSP need on a fresh machine; idempotent
# and quick when everything is already there.
#
#   1. Go >= the pinned minimum (Debian's golang-go plus a newer toolchain
#      fetched through the Go module proxy via GOTOOLCHAIN when it is too old)
#   2. a Python venv (.venv) with the project and its dev tools
#   3. Bitcoin Core's build tools from Debian (cmake, g++, Boost, libevent, libzmq)
#   4. Rust (cargo >= the pinned minimum, from rustup) for the LDK driver
#   5. `lab setup`: the pinned lnd/lncli, bitcoind/bitcoin-cli (built from
#      source), btcd/btcctl, the LDK driver (interop/ldk, cargo) and LND's
#      gRPC stubs
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bootstrap] %s\n' "$*" >&2; }
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
GO_MIN=$($PY -c 'import re;t=open("lncore/versions.py").read();print(".".join(re.search(r"GO_MIN_VERSION: Final = \((\d+), (\d+), (\d+)\)",t).groups()))')

# --- Go ------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
    say "Go not found: installing Debian's golang-go (a newer toolchain follows via GOTOOLCHAIN)"
    if [[ $(id -u) -eq 0 ]]; then apt-get update -qq && apt-get install -y -qq golang-go >/dev/null
    else say "error: install Go >= $GO_MIN (https://go.dev/dl) and run again"; exit 1; fi
fi
have=$(go env GOVERSION | sed 's/^go//')
if [[ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -1)" != "$GO_MIN" ]]; then
    say "Go $have is older than $GO_MIN: using GOTOOLCHAIN=go$GO_MIN (downloaded through the Go module proxy)"
    export GOTOOLCHAIN="go$GO_MIN"
    go version >/dev/null
fi

# --- Python ----------------------------------------------------------------
if ! $PY -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "error: Python >= 3.11 is needed (found $($PY --version))"; exit 1
fi
[[ -x "$VENV/bin/python" ]] || $PY -m venv "$VENV"
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
    say "installing Python packages into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e '.[dev,e2e,load]'
    # One plain install must hold every pin together (the stubs' protobuf runtime and
    # OR-tools' included): refuse to go on if pip sees a conflict.
    "$VENV/bin/pip" check
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi

# --- Bitcoin Core's build tools -----------------------------------------------
core_pkgs=$("$VENV/bin/python" -c 'from lncore.versions import BITCOIN_CORE_BUILD_PACKAGES as p; print(" ".join(p))')
missing=""
if command -v dpkg >/dev/null 2>&1; then  # elsewhere `lab setup` checks the tools themselves
    for p in $core_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
fi
if [[ -n "$missing" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Bitcoin Core's build tools from Debian:$missing"
        apt-get update -qq && apt-get install -y -qq $missing >/dev/null
    else
        say "Bitcoin Core's build needs these Debian packages:$missing (lab setup says what is missing)"
    fi
fi

# --- Rust (the LDK driver) --------------------------------------------------------
# rustup installs into ~/.cargo/bin, which a non-login shell (CI) may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found: the LDK driver (interop/ldk) needs Rust; install it with rustup (https://rustup.rs)"
    say "(lab setup names the minimum version; Debian's cargo is too old for ldk-node)"
fi

# --- toolchain -------------------------------------------------------------
"$VENV/bin/lab" setup
