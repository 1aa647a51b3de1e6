"""`zion wallet ...`: the member's Ethereum keystores in the node home (no running node needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from zion.node.errors import NodeError
from zion.node.wallet import PASSWORD_ENV, Wallets

password_file_option = click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"Read the password from this file (else ${PASSWORD_ENV}, else a prompt).",
)


def read_password(password_file: Path | None, *, confirm: bool) -> str:
    """From --password-file, then the environment, then a prompt; never echoed or logged."""
    if password_file is not None:
        return password_file.read_text().rstrip("\r\n")
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise NodeError(f"no password: use --password-file or set {PASSWORD_ENV}")
    return str(click.prompt("Wallet password", hide_input=True, confirmation_prompt=confirm))


@click.group()
def wallet() -> None:
    """Ethereum wallets (encrypted keystores, scrypt) for DAO votes and proposals."""


@wallet.command("new")
@password_file_option
@click.pass_obj
def wallet_new(ctx: Any, password_file: Path | None) -> None:
    """Create a wallet; the first one becomes the default."""
    address = Wallets(ctx.home).create(read_password(password_file, confirm=True))
    click.echo(address)


@wallet.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@password_file_option
@click.pass_obj
def wallet_import(ctx: Any, source: Path, password_file: Path | None) -> None:
    """Import SOURCE: a keystore JSON file (its own password), or a file holding a hex key
    (encrypted here with the password given)."""
    wallets = Wallets(ctx.home)
    text = source.read_text().strip()
    if text.startswith("{"):
        address = wallets.import_keystore(source, read_password(password_file, confirm=False))
    else:
        address = wallets.import_key(text, read_password(password_file, confirm=True))
    click.echo(address)


@wallet.command("list")
@click.pass_obj
def wallet_list(ctx: Any) -> None:
    wallets = Wallets(ctx.home).list()
    if not wallets:
        click.echo("no wallets (create one with: zion wallet new)")
    for info in wallets:
        click.echo(f"{info.address}{'  (default)' if info.default else ''}")


@wallet.command("address")
@click.pass_obj
def wallet_address(ctx: Any) -> None:
    """The default wallet's address."""
    address = Wallets(ctx.home).default_address()
    if address is None:
        raise NodeError("no wallet yet: create one with `zion wallet new`")
    click.echo(address)


@wallet.command("link")
@click.option("--name", required=True, help="Display name for the profile.")
@click.option("--address", help="Which wallet (default: the default wallet).")
@password_file_option
@click.pass_obj
def wallet_link(ctx: Any, name: str, address: str | None, password_file: Path | None) -> None:
    """Link a wallet to this node: publish a profile carrying the wallet's EIP-191 signature
    over the node's peer ID (needs the running node)."""
    from eth_account.messages import encode_defunct

    from zion.protocols.records import wallet_link_message

    client = ctx.client()
    peer_id = client.get("/api/v1/node")["peer_id"]
    account = Wallets(ctx.home).unlock(read_password(password_file, confirm=False), address)
    signature = account.sign_message(encode_defunct(text=wallet_link_message(peer_id))).signature
    body = {"name": name, "wallet": account.address, "wallet_sig": "0x" + bytes(signature).hex()}
    client.request("PUT", "/api/v1/profile", json=body)
    click.echo(f"linked {account.address} to {peer_id}")
