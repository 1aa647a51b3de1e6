"""`zion devnet`'s user-facing defaults and limits, apart from the modules that do the work, so
that the `zion` command loads none of web3 or trio before it runs a devnet."""

from __future__ import annotations

from typing import Final

DEFAULT_NODES: Final = 3
#: Each node is a Python process of 100-200 MB; more than this is not a laptop's devnet.
MAX_NODES: Final = 10
#: Devnet only, and printed: these wallets hold play money on a chain that lives for one run.
DEVNET_PASSWORD: Final = "zion-devnet-password"  # noqa: S105
#: Where to find anvil if not on PATH.
ANVIL_ENV: Final = "ZION_ANVIL"
