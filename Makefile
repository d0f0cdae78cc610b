# The two commands a new user needs (both bootstrap everything first):
#   make demo   the main job: the smoke scenario suite on live regtest labs, HTML report
#   make test   the test suite against live regtest nodes (what CI runs)
SHELL := /bin/bash
VENV  ?= .venv
PYTEST_ARGS ?= -n 2
# What CI runs again on btcd: payments, channel verbs, node and chain faults
# (reorg), a breach with its justice transaction, swaps on-chain, and an LSPS1
# order paid on-chain.
BTCD_SUBSET ?= tests/lab/test_payments.py tests/lab/test_channels.py tests/lab/test_faults.py \
	tests/lab/test_breach.py tests/lab/swaps/test_swaps_settle.py tests/lab/lsps/test_lsps1.py
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH):$(HOME)/.cargo/bin

.PHONY: bootstrap demo gate test lint services stop-services

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	lab run smoke

# The release gate CI runs after the tests: every shipped scenario; fails on any failed expectation.
gate: bootstrap services
	@# Processes, explicitly: CI's private dockerd still answers here, and `auto` would pick it.
	@# The hosted-node scenario (star5-hosted) runs its nodes on that daemon, as an operator's LSP would.
	eval "$$(cat .dockerd-env)"; lab run release --runtime process

# PostgreSQL and a private Docker daemon are started (idempotently) for the
# LSP's database tests and the Docker runtime tests.
services:
	@scripts/start-postgres.sh > .postgres-url
	@scripts/dockerd.sh start > .dockerd-env
	@# lab setup skipped the images when bootstrap ran before the daemon: build them now (idempotent)
	@eval "$$(cat .dockerd-env)"; lab setup >/dev/null

test: bootstrap services
	ruff check .
	mypy
	export LSP_TEST_POSTGRES_URL=$$(cat .postgres-url); eval "$$(cat .dockerd-env)"; \
	  pytest $(PYTEST_ARGS) && \
	  echo "--- core payment and fault tests again, under the Docker runtime ---" && \
	  pytest $(PYTEST_ARGS) --lab-runtime docker tests/lab/test_payments.py tests/lab/test_faults.py tests/lab/test_breach.py tests/lab/test_ldk_payments.py \
	    tests/lab/lsp/test_lsp_live_hosted_nodes.py && \
	  echo "--- a representative subset again on btcd (the suite above runs on Bitcoin Core) ---" && \
	  pytest $(PYTEST_ARGS) --lab-chain btcd $(BTCD_SUBSET)

lint: bootstrap
	ruff check .
	mypy

stop-services:
	-@scripts/dockerd.sh stop
	-@runuser -u postgres -- pg_ctl -D /tmp/lab-pg stop 2>/dev/null || pg_ctl -D /tmp/lab-pg stop
