"""The devnet's chain: where anvil is, and the DAO on it with every node a funded, delegated
token holder.

Synchronous (web3 and scrypt): the devnet calls it from worker threads. The chain is anvil's
in-memory one, new on every run, so the DAO is deployed anew each time (by a new deployer, so
its addresses are new too, and a node's chain watcher never mistakes it for the last run's).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from eth_account import Account
from eth_account.signers.local import LocalAccount

from zion.contracts.client import Chain, Dao, Deployment, GovernanceSettings
from zion.contracts.errors import ChainError
from zion.node.devnet_settings import ANVIL_ENV
from zion.node.errors import NodeError
from zion.node.home import NodeHome, write_secret
from zion.node.wallet import Wallets

#: ./dev.sh setup installs npm's @foundry-rs/anvil here (tests/interop's lock file).
NPM_MODULES: Final = Path("tests/interop/node_modules")
INSTALL_HINT: Final = (
    "anvil (Foundry's local Ethereum node) is needed: run ./dev.sh setup in the Zion"
    " repository (npm @foundry-rs/anvil), or `npm install -g @foundry-rs/anvil`, or install"
    f" Foundry; or name the binary with --anvil PATH or ${ANVIL_ENV}"
)

#: scrypt's work factor for the devnet's keystores (eth-account's default: 2**18).
DEVNET_SCRYPT_N: Final = 2**10
ETH: Final = 10**18
#: Each node's wallet: gas for delegating, voting, proposing and relaying ballots.
WALLET_ETH: Final = 100 * ETH
#: Each node's DAO tokens (18 decimals), all delegated to itself: every node can vote.
WALLET_TOKENS: Final = 1_000 * 10**18
#: The treasury (the timelock) holds this, so that proposals to pay from it can be executed.
TREASURY_ETH: Final = 100 * ETH
#: Gas for the deployer's six transactions, with room to spare.
DEPLOYER_ETH: Final = 10 * ETH
#: Short enough to try the whole proposal cycle by hand in a few minutes (at one block a
#: second): vote within two minutes, execute half a minute after queueing.
SETTINGS: Final = GovernanceSettings(
    voting_delay_blocks=1, voting_period_blocks=120, quorum_percent=4, timelock_delay_s=30
)


def find_anvil(flag: Path | None) -> Path:
    """--anvil, then $ZION_ANVIL, then anvil on PATH, then npm's copy in the repository
    (the platform's binary itself when it is there: no Node.js process in between)."""
    named = flag or (Path(os.environ[ANVIL_ENV]) if os.environ.get(ANVIL_ENV) else None)
    if named is not None:
        if not (named.is_file() and os.access(named, os.X_OK)):
            raise NodeError(f"{named} is not an executable anvil binary")
        return named
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    for root in dict.fromkeys([Path(__file__).resolve().parents[1], Path.cwd()]):
        modules = root / NPM_MODULES
        found = [*sorted(modules.glob("@foundry-rs/anvil-*/bin/anvil")), modules / ".bin/anvil"]
        for candidate in found:
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    raise NodeError(INSTALL_HINT)


def node_wallet(home: NodeHome, password: str) -> LocalAccount:
    """The node's default wallet: made on the first run, unlocked on later ones.

    Its keystore is scrypt with a devnet's work factor, not the full one: the password is
    printed for everyone anyway, and the full one costs every node a second of CPU at each
    start (to unlock the wallet that relays) and the devnet as much again to make it."""
    wallets = Wallets(home)
    if wallets.default_address() is None:
        account: LocalAccount = Account.create()
        keystore = Account.encrypt(account.key, password, kdf="scrypt", iterations=DEVNET_SCRYPT_N)
        staged = home.path / "devnet-wallet.json"
        write_secret(staged, json.dumps(keystore).encode("utf-8"))
        try:
            wallets.import_keystore(staged, password)
        finally:
            staged.unlink(missing_ok=True)
        return account
    try:
        return wallets.unlock(password)
    except NodeError as exc:
        raise NodeError(f"{home.path}: {exc} (pass the password of the first run)") from None


@dataclass(frozen=True)
class DevnetDao:
    deployment: Deployment
    deployer: str


def deploy_dao(rpc_url: str, members: Sequence[LocalAccount], block_time_s: int) -> DevnetDao:
    """Fund the members, deploy the DAO with their tokens, have each delegate to itself, fill
    the treasury, then let anvil mine a block every ``block_time_s``.

    anvil mines on every transaction until then, so that the setup does not wait for blocks;
    afterwards blocks come on a clock, as on a real chain, so that voting periods end and
    chain events get their confirmations while nobody sends anything."""
    try:
        chain = Chain.connect(rpc_url)
        w3 = chain.w3
        # anvil's first dev account is unlocked and rich: it pays for everything else.
        funder = w3.eth.accounts[0]
        deployer: LocalAccount = Account.create()
        grants = [(deployer.address, DEPLOYER_ETH), *((m.address, WALLET_ETH) for m in members)]
        for address, wei in grants:
            _send(chain, funder, address, wei)
        deployment = chain.deploy(
            deployer, [m.address for m in members], [WALLET_TOKENS] * len(members), SETTINGS
        )
        dao = Dao(chain, deployment)
        for member in members:
            dao.delegate(member)
        _send(chain, funder, deployment.timelock, TREASURY_ETH)
        reply = w3.provider.make_request("evm_setIntervalMining", [block_time_s])  # type: ignore[arg-type]
        if "error" in reply:
            raise ChainError(f"anvil cannot mine on a clock: {reply['error']}")
    except (ChainError, ValueError) as exc:
        raise NodeError(f"deploying the DAO on {rpc_url} failed: {exc}") from None
    return DevnetDao(deployment, deployer.address)


def _send(chain: Chain, sender: str, to: str, wei: int) -> None:
    w3 = chain.w3
    tx_hash = w3.eth.send_transaction({"from": sender, "to": to, "value": wei})  # type: ignore[typeddict-item]
    w3.eth.wait_for_transaction_receipt(tx_hash)
