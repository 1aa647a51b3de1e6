"""The `zion` command: run a node, and talk to a running one through its gateway."""

from __future__ import annotations

import contextlib
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import click

from zion import __version__
from zion.node.cli_bridge import ai, bridge, orders, pay
from zion.node.cli_dao import dao
from zion.node.cli_devnet import devnet
from zion.node.cli_dm import dm
from zion.node.cli_doctor import doctor
from zion.node.cli_ipfs import ipfs
from zion.node.cli_open import open_ui
from zion.node.cli_wallet import wallet
from zion.node.config import NODE_PROFILES
from zion.node.errors import NodeError
from zion.node.home import NodeHome, resolve_home

#: Currencies whose minor unit is the unit itself (ISO 4217 exponent 0).
ZERO_DECIMAL_CURRENCIES: Final = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)


class Context:
    def __init__(self, home_flag: str | None) -> None:
        self.home = NodeHome(resolve_home(home_flag))

    def client(self) -> Any:
        from zion.node.client import GatewayClient

        return GatewayClient(self.home)


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    metavar="DIR",
    envvar="ZION_HOME",
    help="Node home (key, config, database). Default: $ZION_HOME or ~/.zion.",
)
@click.version_option(__version__, prog_name="zion")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Zion: a peer-to-peer marketplace node.

    Start a node with `zion run`; the other commands talk to the running node.
    """
    ctx.obj = Context(home)


@cli.command()
@pass_context
def init(ctx: Context) -> None:
    """Create the node home: identity key, config.toml, database, API token."""
    created = ctx.home.init()
    from zion.protocols.identity import peer_id_of

    peer_id = peer_id_of(ctx.home.load_key())
    verb = "created" if created else "already set up"
    click.echo(f"{ctx.home.path}: {verb}\npeer ID: {peer_id}")


@cli.command()
@click.option(
    "--listen",
    "listen",
    multiple=True,
    metavar="MULTIADDR",
    help="libp2p listen address (repeatable), e.g. /ip4/127.0.0.1/tcp/4001.",
)
@click.option("--gateway", metavar="HOST:PORT", help="HTTP gateway address (port 0: any free).")
@click.option(
    "--bootstrap", multiple=True, metavar="MULTIADDR", help="Peer to dial at start (repeatable)."
)
@click.option(
    "--default-bootstrap/--no-default-bootstrap",
    default=None,
    help="Also dial the network's seeds (configs/bootstrap.toml); on by default.",
)
@click.option("--mdns/--no-mdns", default=None, help="Find peers on the LAN by multicast DNS.")
@click.option("--log-level", default="info", show_default=True, help="debug, info, warning.")
@click.option(
    "--profile",
    type=click.Choice(NODE_PROFILES),
    default="member",
    show_default=True,
    help="What the node is for: seed = DHT server, relay, AutoNAT, mailbox, no web UI,"
    " metrics, JSON logs"
    " (configs/seed.toml; config.toml still overrides it).",
)
@click.option(
    "--metrics", metavar="HOST:PORT", help="Serve Prometheus metrics here (port 0: any free)."
)
@pass_context
def run(
    ctx: Context,
    listen: tuple[str, ...],
    gateway: str | None,
    bootstrap: tuple[str, ...],
    default_bootstrap: bool | None,
    mdns: bool | None,
    log_level: str,
    profile: str,
    metrics: str | None,
) -> None:
    """Run the node until SIGINT or SIGTERM (creates the home on first start)."""
    from zion.node.daemon import run_daemon

    network: dict[str, object] = {}
    if listen:
        network["listen"] = list(listen)
    if bootstrap:
        network["bootstrap"] = list(bootstrap)
    if default_bootstrap is not None:
        network["default_bootstrap"] = default_bootstrap
    if mdns is not None:
        network["mdns"] = mdns
    overrides: dict[str, dict[str, object]] = {"network": network}
    if gateway:
        overrides["gateway"] = {"listen": gateway}
    if metrics:
        overrides["metrics"] = {"listen": metrics}
    run_daemon(ctx.home, overrides, log_level, profile)


@cli.command("id")
@pass_context
def show_id(ctx: Context) -> None:
    """This node's peer ID and listen addresses."""
    info = ctx.client().get("/api/v1/node")
    click.echo(info["peer_id"])
    for addr in info["addrs"]:
        click.echo(f"  {addr}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@pass_context
def status(ctx: Context, as_json: bool) -> None:
    """Peers, record counts and sync state of the running node."""
    info = ctx.client().get("/api/v1/status")
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        click.echo(f"{key}: {value}")


@cli.command()
@pass_context
def peers(ctx: Context) -> None:
    """Connected peers."""
    items = ctx.client().get("/api/v1/peers")["items"]
    if not items:
        click.echo("no peers connected")
    for peer in items:
        click.echo(f"{peer['peer_id']}  {' '.join(peer.get('addrs', []))}")


@cli.command()
@click.argument("multiaddr")
@pass_context
def connect(ctx: Context, multiaddr: str) -> None:
    """Dial a peer: MULTIADDR ends in /p2p/<peer ID>."""
    result = ctx.client().post("/api/v1/peers", {"multiaddr": multiaddr})
    click.echo(f"connected to {result['peer_id']}")


# --- listings ----------------------------------------------------------------------------


@cli.group()
def listings() -> None:
    """Create, find and remove marketplace listings."""


def parse_price(price: str, currency: str) -> int:
    """A decimal price in the currency's major unit as an integer of minor units."""
    exponent = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    try:
        value = Decimal(price)
    except InvalidOperation:
        raise click.BadParameter(f"{price!r} is not a number", param_hint="--price") from None
    minor = value * (10**exponent)
    if minor != minor.to_integral_value() or minor < 0:
        raise click.BadParameter(
            f"{price} {currency} has more than {exponent} decimals or is negative",
            param_hint="--price",
        )
    return int(minor)


def format_price(price: dict[str, Any]) -> str:
    currency = price["currency"]
    exponent = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    amount = Decimal(price["amount"]).scaleb(-exponent)
    return f"{amount:.{exponent}f} {currency}"


def echo_listing_line(item: dict[str, Any]) -> None:
    click.echo(f"{item['id']}  {format_price(item['price']):>14}  {item['title']}")


def echo_listings(page: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    if not page["items"]:
        click.echo("no listings")
    for item in page["items"]:
        echo_listing_line(item)
    if page.get("next"):
        click.echo(f"(more: --cursor {page['next']})")


@listings.command("add")
@click.option("--title", required=True)
@click.option("--price", required=True, help="In the currency's major unit, e.g. 12.50.")
@click.option("--currency", default="EUR", show_default=True)
@click.option("--category", required=True)
@click.option("--description", default="")
@click.option("--tag", "tags", multiple=True, help="Repeatable.")
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="FILE|CID",
    help="An image file (added to IPFS) or the CID of one. Repeatable.",
)
@click.option("--location")
@click.option("--expires-in-days", type=click.IntRange(1, 365), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def listings_add(
    ctx: Context,
    title: str,
    price: str,
    currency: str,
    category: str,
    description: str,
    tags: tuple[str, ...],
    images: tuple[str, ...],
    location: str | None,
    expires_in_days: int,
    as_json: bool,
) -> None:
    """Publish a new listing."""
    currency = currency.upper()
    body: dict[str, Any] = {
        "title": title,
        "description": description,
        "price": {"amount": parse_price(price, currency), "currency": currency},
        "category": category,
        "tags": list(tags),
        "images": [image for image in images if not Path(image).is_file()],
        "expires_in_days": expires_in_days,
    }
    if location:
        body["location"] = location
    files = [Path(image) for image in images if Path(image).is_file()]
    if files:
        with contextlib.ExitStack() as stack:
            parts = [("image", (f.name, stack.enter_context(f.open("rb")))) for f in files]
            item = ctx.client().request(
                "POST", "/api/v1/listings", data={"listing": json.dumps(body)}, files=parts
            )
    else:
        item = ctx.client().post("/api/v1/listings", body)
    if as_json:
        click.echo(json.dumps(item, indent=2))
    else:
        click.echo(item["id"])


@listings.command("ls")
@click.option("--category")
@click.option("--author", metavar="PEER_ID")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--cursor")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def listings_ls(
    ctx: Context,
    category: str | None,
    author: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List listings, newest first."""
    page = ctx.client().get(
        "/api/v1/listings", category=category, author=author, limit=limit, cursor=cursor
    )
    echo_listings(page, as_json)


@listings.command("search")
@click.argument("query")
@click.option("--category")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def listings_search(
    ctx: Context, query: str, category: str | None, limit: int, as_json: bool
) -> None:
    """Full-text search over titles, descriptions and tags."""
    page = ctx.client().get("/api/v1/listings", q=query, category=category, limit=limit)
    echo_listings(page, as_json)


@listings.command("show")
@click.argument("listing_id")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def listings_show(ctx: Context, listing_id: str, as_json: bool) -> None:
    """One listing in full."""
    item = ctx.client().get(f"/api/v1/listings/{listing_id}")
    if as_json:
        click.echo(json.dumps(item, indent=2))
        return
    click.echo(f"{item['title']}  ({format_price(item['price'])})")
    click.echo(f"id: {item['id']}  version: {item['seq']}  cid: {item['cid']}")
    click.echo(f"seller: {item['author']}")
    click.echo(f"category: {item['category']}  tags: {', '.join(item['tags']) or '-'}")
    if item.get("location"):
        click.echo(f"location: {item['location']}")
    if item["description"]:
        click.echo("")
        click.echo(item["description"])


@listings.command("rm")
@click.argument("listing_id")
@pass_context
def listings_rm(ctx: Context, listing_id: str) -> None:
    """Delete one of your listings (everywhere, for good)."""
    ctx.client().request("DELETE", f"/api/v1/listings/{listing_id}")
    click.echo(f"deleted {listing_id}")


# --- chat --------------------------------------------------------------------------------


@cli.group()
def chat() -> None:
    """Public messages in named channels."""


@chat.command("post")
@click.argument("channel")
@click.argument("text")
@click.option("--reply-to", metavar="MESSAGE_ID")
@pass_context
def chat_post(ctx: Context, channel: str, text: str, reply_to: str | None) -> None:
    """Post TEXT to CHANNEL."""
    body: dict[str, Any] = {"text": text}
    if reply_to:
        body["reply_to"] = reply_to
    item = ctx.client().post(f"/api/v1/channels/{channel}/messages", body)
    click.echo(item["id"])


@chat.command("read")
@click.argument("channel")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def chat_read(ctx: Context, channel: str, limit: int, as_json: bool) -> None:
    """Recent messages of CHANNEL, oldest first."""
    page = ctx.client().get(f"/api/v1/channels/{channel}/messages", limit=limit)
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    for item in reversed(page["items"]):
        click.echo(f"[{item['author'][-8:]}] {item['text']}")


cli.add_command(ipfs)
cli.add_command(wallet)
cli.add_command(dao)
cli.add_command(open_ui)
cli.add_command(dm)
cli.add_command(bridge)
cli.add_command(pay)
cli.add_command(orders)
cli.add_command(ai)
cli.add_command(doctor)
cli.add_command(devnet)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except NodeError as exc:
        click.echo(f"zion: {exc}", err=True)
        sys.exit(1)
