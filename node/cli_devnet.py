"""`zion devnet`: a local Zion network (nodes, chain, DAO, test bridges) from one command."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import click

from zion.node.devnet_settings import ANVIL_ENV, DEFAULT_NODES, DEVNET_PASSWORD, MAX_NODES
from zion.node.errors import NodeError


@click.command("devnet")
@click.option(
    "--nodes",
    type=click.IntRange(2, MAX_NODES),
    default=DEFAULT_NODES,
    show_default=True,
    help="How many nodes: one seed and the rest members bootstrapped to it.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the node homes, logs and devnet.json here: a new or empty directory, or one"
    " an earlier devnet used (its nodes keep their keys, listings and wallets). Default: a new"
    " directory under $XDG_STATE_HOME/zion/devnets (~/.local/state/zion/devnets).",
)
@click.option(
    "--anvil",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar=ANVIL_ENV,
    help=f"The anvil binary (default: ${ANVIL_ENV}, then anvil on PATH, then the npm package"
    " that ./dev.sh setup installs).",
)
@click.option("--stripe", is_flag=True, help="Also run localstripe, the seed as its Stripe bridge.")
@click.option("--ai", is_flag=True, help="Also run the AI test server, the seed as its AI bridge.")
@click.option(
    "--wallet-password",
    default=DEVNET_PASSWORD,
    show_default=True,
    help="The password of the nodes' wallets (devnet only: they hold play money).",
)
@click.option(
    "--block-time",
    type=click.IntRange(1, 60),
    default=1,
    show_default=True,
    help="Seconds between blocks once the DAO is deployed.",
)
@click.option(
    "--rpc-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="The chain's JSON-RPC port on 127.0.0.1 (0: any free one; 8545 suits browser wallets).",
)
@click.pass_obj
def devnet(
    ctx: Any,
    nodes: int,
    directory: Path | None,
    anvil: Path | None,
    stripe: bool,
    ai: bool,
    wallet_password: str,
    block_time: int,
    rpc_port: int,
) -> None:
    """Run a local Zion network on 127.0.0.1 until Ctrl-C.

    Starts anvil (a local Ethereum chain) with the DAO deployed, then a seed node and the
    member nodes, each with a wallet holding ETH and DAO tokens (delegated, so every node can
    vote) and every node's [chain] set up, so the DAO works in the web UI. With --stripe and
    --ai, test stand-ins for Stripe and an AI service run too, with the seed as their bridge.

    Prints each node's peer ID and login URL, the chain and contracts, and writes the same to
    devnet.json in the directory for scripts. Ctrl-C (or SIGTERM) stops everything it started.
    The --home option does not apply: each node has its home in the devnet's directory.
    """
    from zion.node.devnet import DevnetOptions, run_devnet
    from zion.node.devnet_chain import find_anvil

    if stripe and importlib.util.find_spec("localstripe") is None:
        raise NodeError(
            "--stripe needs localstripe, a development dependency: run ./dev.sh setup"
            " (or pip install localstripe)"
        )
    options = DevnetOptions(
        nodes=nodes,
        directory=directory,
        anvil=find_anvil(anvil),
        stripe=stripe,
        ai=ai,
        password=wallet_password,
        block_time_s=block_time,
        rpc_port=rpc_port,
    )
    run_devnet(options, lambda line: click.echo(line, err=True), click.echo)
