"""`zion dao ...`: deploy the DAO and act on it with this node's wallet.

These commands talk to the chain directly (the [chain] rpc_url), not through the node: they
work before any node runs. Voting through the network (signed ballots gossiped and relayed)
goes through the node's gateway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import click

from zion.node.cli_wallet import password_file_option, read_password
from zion.node.errors import NodeError
from zion.node.wallet import Wallets

TOKEN_UNIT: Final = 10**18
#: Initial supply minted to the deployer when no --holder is given.
DEFAULT_SUPPLY: Final = 1_000_000


@click.group()
def dao() -> None:
    """The DAO on Ethereum: deploy it, read it, delegate votes."""


def _parse_holder(text: str) -> tuple[str, int]:
    address, sep, amount = text.partition("=")
    if not sep or not amount.isdigit():
        raise click.BadParameter(f"{text!r}: use ADDRESS=TOKENS (whole tokens)")
    return address, int(amount) * TOKEN_UNIT


@dao.command("deploy")
@click.option("--rpc", "rpc_url", required=True, metavar="URL", help="Ethereum JSON-RPC URL.")
@click.option(
    "--holder",
    "holders",
    multiple=True,
    metavar="ADDRESS=TOKENS",
    help=f"Initial distribution, repeatable (default: {DEFAULT_SUPPLY:,} to your wallet).",
)
@click.option("--voting-delay-blocks", type=click.IntRange(0), default=1, show_default=True)
@click.option("--voting-period-blocks", type=click.IntRange(1), default=50, show_default=True)
@click.option("--quorum-percent", type=click.IntRange(0, 100), default=4, show_default=True)
@click.option("--timelock-delay-s", type=click.IntRange(0), default=60, show_default=True)
@click.option("--wallet", "wallet_address", help="Deploy from this wallet (default: default).")
@password_file_option
@click.pass_obj
def dao_deploy(
    ctx: Any,
    rpc_url: str,
    holders: tuple[str, ...],
    voting_delay_blocks: int,
    voting_period_blocks: int,
    quorum_percent: int,
    timelock_delay_s: int,
    wallet_address: str | None,
    password_file: Path | None,
) -> None:
    """Deploy token, timelock and governor from your wallet, and write them into config.toml."""
    from zion.contracts.client import Chain, GovernanceSettings
    from zion.contracts.errors import ChainError
    from zion.node.config import update_file

    ctx.home.init()
    account = Wallets(ctx.home).unlock(read_password(password_file, confirm=False), wallet_address)
    distribution = [_parse_holder(h) for h in holders] or [
        (account.address, DEFAULT_SUPPLY * TOKEN_UNIT)
    ]
    settings = GovernanceSettings(
        voting_delay_blocks=voting_delay_blocks,
        voting_period_blocks=voting_period_blocks,
        quorum_percent=quorum_percent,
        timelock_delay_s=timelock_delay_s,
    )
    try:
        chain = Chain.connect(rpc_url)
        click.echo(f"deploying to chain {chain.chain_id} from {account.address} ...", err=True)
        deployment = chain.deploy(
            account, [a for a, _ in distribution], [n for _, n in distribution], settings
        )
    except (ChainError, ValueError) as exc:
        raise NodeError(f"deploy failed: {exc}") from None
    update_file(
        ctx.home.config_file,
        "chain",
        {
            "rpc_url": rpc_url,
            "token": deployment.token,
            "governor": deployment.governor,
            "timelock": deployment.timelock,
        },
    )
    click.echo(f"token     {deployment.token}")
    click.echo(f"governor  {deployment.governor}")
    click.echo(f"timelock  {deployment.timelock}  (the treasury)")
    click.echo(f"written to {ctx.home.config_file} [chain]", err=True)


def _dao(ctx: Any) -> Any:
    from zion.contracts.errors import ChainError
    from zion.node.governance import connect_dao

    chain_config = ctx.home.load_config().chain
    if not chain_config.deployed:
        raise NodeError(
            "no DAO configured: set [chain] rpc_url and the contract addresses in "
            f"{ctx.home.config_file}, or run `zion dao deploy --rpc URL`"
        )
    try:
        return connect_dao(chain_config)
    except ChainError as exc:
        raise NodeError(str(exc)) from None


@dao.command("status")
@click.pass_obj
def dao_status(ctx: Any) -> None:
    """Chain, contracts, treasury, and your wallet's tokens and votes."""
    dao_ = _dao(ctx)
    w3 = dao_.chain.w3
    token = dao_.token.functions
    click.echo(f"chain     {dao_.chain.chain_id} at block {w3.eth.block_number}")
    click.echo(f"token     {dao_.deployment.token} ({token.symbol().call()})")
    click.echo(f"governor  {dao_.deployment.governor}")
    treasury = w3.eth.get_balance(dao_.deployment.timelock) / 10**18
    click.echo(f"timelock  {dao_.deployment.timelock} (treasury {treasury:g} ETH)")
    click.echo(f"supply    {token.totalSupply().call() / TOKEN_UNIT:,.0f}")
    address = Wallets(ctx.home).default_address()
    if address:
        balance = token.balanceOf(address).call() / TOKEN_UNIT
        votes = token.getVotes(address).call() / TOKEN_UNIT
        click.echo(f"you       {address}: {balance:,.0f} tokens, {votes:,.0f} votes")


@dao.command("delegate")
@click.option("--to", "delegatee", help="Give your votes to this address (default: yourself).")
@password_file_option
@click.pass_obj
def dao_delegate(ctx: Any, delegatee: str | None, password_file: Path | None) -> None:
    """Delegate your tokens' votes: tokens only vote once delegated, to yourself or another."""
    from zion.contracts.errors import ChainError

    dao_ = _dao(ctx)
    account = Wallets(ctx.home).unlock(read_password(password_file, confirm=False))
    try:
        dao_.delegate(account, delegatee)
    except ChainError as exc:
        raise NodeError(f"delegate failed: {exc}") from None
    click.echo(f"{account.address} delegates to {delegatee or account.address}")
