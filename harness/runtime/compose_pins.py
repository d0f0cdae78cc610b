"""Image tags ``docker-compose.regtest.yml`` names (the compose file cannot
import Python, so it repeats these strings as defaults; ``tests/docker``
checks the two agree). The pins themselves live in ``lncore/versions.py``."""

from __future__ import annotations

from typing import Final

from harness.runtime.images import BITCOIND_IMAGE, LND_IMAGE
from lncore.versions import UPSTREAM_BITCOIND_IMAGE, UPSTREAM_LND_IMAGE

# Profile `lab` (exercised here): the images harness.runtime.images builds FROM scratch.
LAB_BITCOIND_IMAGE: Final = BITCOIND_IMAGE
LAB_LND_IMAGE: Final = LND_IMAGE

__all__ = ["LAB_BITCOIND_IMAGE", "LAB_LND_IMAGE", "UPSTREAM_BITCOIND_IMAGE", "UPSTREAM_LND_IMAGE"]
