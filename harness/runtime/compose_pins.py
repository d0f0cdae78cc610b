"""Image tags ``docker-compose.regtest.yml`` names.

TODO: these belong in ``lsp/versions.py`` (the one place for pins); they sit
here until that file's owner moves them. The compose file cannot import
Python, so it repeats these strings as defaults; ``tests/docker`` checks the
two agree.
"""

from __future__ import annotations

from typing import Final

from harness.runtime.images import BTCD_IMAGE, LND_IMAGE
from lsp.versions import LND_VERSION

# Profile `lab` (exercised here): the images harness.runtime.images builds FROM scratch.
LAB_BTCD_IMAGE: Final = BTCD_IMAGE
LAB_LND_IMAGE: Final = LND_IMAGE

# Profile `upstream` (NOT exercised here: no image registry is reachable).
BITCOIN_CORE_VERSION: Final = "29.0"
UPSTREAM_BITCOIND_IMAGE: Final = f"bitcoin/bitcoin:{BITCOIN_CORE_VERSION}"
UPSTREAM_LND_IMAGE: Final = f"lightninglabs/lnd:{LND_VERSION}"
