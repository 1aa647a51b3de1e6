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
@click.option("--wallet", "wallet_address", help="Use this wallet (default: default).")
@password_file_option
@click.pass_obj
def dao_delegate(
    ctx: Any, delegatee: str | None, wallet_address: str | None, password_file: Path | None
) -> None:
    """Delegate your tokens' votes: tokens only vote once delegated, to yourself or another."""
    from zion.contracts.errors import ChainError

    dao_ = _dao(ctx)
    password = read_password(password_file, confirm=False)
    account = Wallets(ctx.home).unlock(password, wallet_address)
    try:
        dao_.delegate(account, delegatee)
    except ChainError as exc:
        raise NodeError(f"delegate failed: {exc}") from None
    click.echo(f"{account.address} delegates to {delegatee or account.address}")


@dao.command("propose")
@click.option("--to", "recipient", required=True, help="Who the treasury pays.")
@click.option("--value", "value_eth", required=True, help="How much ETH (e.g. 0.5).")
@click.option("--description", required=True, help="What the proposal is for.")
@password_file_option
@click.pass_obj
def dao_propose(
    ctx: Any, recipient: str, value_eth: str, description: str, password_file: Path | None
) -> None:
    """Propose a payment from the treasury; prints the proposal ID."""
    from decimal import Decimal, InvalidOperation

    from zion.contracts.errors import ChainError

    try:
        wei = int(Decimal(value_eth) * 10**18)
    except InvalidOperation:
        raise click.BadParameter(f"{value_eth!r} is not an amount of ETH") from None
    dao_ = _dao(ctx)
    account = Wallets(ctx.home).unlock(read_password(password_file, confirm=False))
    try:
        proposal = dao_.propose(account, [recipient], [wei], [b""], description)
    except ChainError as exc:
        raise NodeError(f"propose failed: {exc}") from None
    click.echo(proposal.id)


@dao.command("vote")
@click.argument("proposal_id")
@click.argument("support", type=click.Choice(["for", "against", "abstain"]))
@click.option("--wallet", "wallet_address", help="Vote with this wallet (default: default).")
@password_file_option
@click.pass_obj
def dao_vote(
    ctx: Any,
    proposal_id: str,
    support: str,
    wallet_address: str | None,
    password_file: Path | None,
) -> None:
    """Sign a ballot with your wallet and hand it to the running node, which gossips it
    (a relayer node submits it on-chain; no gas from you)."""
    from zion.contracts.client import sign_ballot

    client = ctx.client()
    account = Wallets(ctx.home).unlock(read_password(password_file, confirm=False), wallet_address)
    url = f"/api/v1/dao/proposals/{proposal_id}"
    typed = client.get(f"{url}/ballot", voter=account.address, support=support)
    signature = "0x" + sign_ballot(account, typed).hex()
    body = {"voter": account.address, "support": support, "signature": signature}
    record = client.request("POST", f"{url}/ballots", json=body)
    click.echo(f"{account.address} votes {support} on {proposal_id} (ballot {record['id']})")


def _act(ctx: Any, proposal_id: str, password_file: Path | None, action: str) -> None:
    from zion.contracts.errors import ChainError

    dao_ = _dao(ctx)
    account = Wallets(ctx.home).unlock(read_password(password_file, confirm=False))
    try:
        proposal = dao_.find_proposal(int(proposal_id))
        getattr(dao_, action)(account, proposal)
    except (ChainError, ValueError) as exc:
        raise NodeError(f"{action} failed: {exc}") from None
    click.echo(f"{action}d {proposal_id}: {dao_.status(int(proposal_id)).state}")


@dao.command("queue")
@click.argument("proposal_id")
@password_file_option
@click.pass_obj
def dao_queue(ctx: Any, proposal_id: str, password_file: Path | None) -> None:
    """Queue a succeeded proposal in the timelock."""
    _act(ctx, proposal_id, password_file, "queue")


@dao.command("execute")
@click.argument("proposal_id")
@password_file_option
@click.pass_obj
def dao_execute(ctx: Any, proposal_id: str, password_file: Path | None) -> None:
    """Execute a queued proposal once the timelock delay has passed."""
    _act(ctx, proposal_id, password_file, "execute")
