"""`zion bridge ...`, `zion pay`, `zion orders`, `zion ai ...`: bridges through the running
node (it talks to the bridges; this node never needs their secrets)."""

from __future__ import annotations

import json
from typing import Any, Final

import click

from zion.node.errors import NodeError

#: A bridge may take a while (it dials, checks, asks Stripe, which retries): wait for it.
PAY_TIMEOUT_S: Final = 120.0


def _money(amount: int, currency: str) -> str:
    from zion.node.cli import format_price  # the CLI's entry module imports this one

    return format_price({"amount": amount, "currency": currency})


@click.group()
def bridge() -> None:
    """Bridges: the ones this node knows and the ones it runs."""


@bridge.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_obj
def bridge_ls(ctx: Any, as_json: bool) -> None:
    """Bridges this node may use (configured ones first), and the ones it runs."""
    answer = ctx.client().get("/api/v1/bridges")
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    if not answer["items"]:
        click.echo("no bridges known (they announce themselves; or name them in [bridges])")
    for item in answer["items"]:
        offers = ", ".join(f"{o['service']} ({o['access']})" for o in item["offers"])
        mark = " [configured]" if item["configured"] else ""
        click.echo(f"{item['peer_id']}  {item['name']}{mark}\n  offers: {offers}")
        for offer in item["offers"]:
            if offer.get("terms"):
                click.echo(f"  {offer['service']} terms: {offer['terms']}")
    for server in answer["running"]:
        refused = sum(server["refused"].values())
        click.echo(
            f"running: {server['service']} ({server['access']}): served {server['served']},"
            f" refused {refused}"
        )


@bridge.command("refund")
@click.argument("payment_intent")
@click.option("--amount", type=click.IntRange(1), help="In minor units (default: all of it).")
@click.pass_obj
def bridge_refund(ctx: Any, payment_intent: str, amount: int | None) -> None:
    """Refund a payment this node's Stripe bridge took; the receipt follows at once."""
    body = {"amount": amount} if amount is not None else {}
    order = ctx.client().post(f"/api/v1/payments/{payment_intent}/refund", body)
    click.echo(f"{order['status']}  {_money(order['refunded'], order['currency'])} refunded")


@click.command("pay")
@click.argument("listing")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_obj
def pay(ctx: Any, listing: str, as_json: bool) -> None:
    """Start paying for LISTING (its ID) through a Stripe bridge the seller takes payments
    through.

    Prints the PaymentIntent and its client secret: the card holder confirms the payment with
    Stripe (Stripe.js with the bridge's publishable key). `zion orders` shows it paid once the
    bridge's signed receipt arrives.
    """
    order = ctx.client().request(
        "POST", "/api/v1/payments", json={"listing": listing}, timeout=PAY_TIMEOUT_S
    )
    if as_json:
        click.echo(json.dumps(order, indent=2))
        return
    click.echo(
        f"{order['payment_intent']}  {_money(order['amount'], order['currency'])}"
        f"  via bridge {order['bridge']}\nclient secret: {order['client_secret']}"
    )


@click.command("orders")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_obj
def orders(ctx: Any, as_json: bool) -> None:
    """Payments this member made or received, newest first, with their status."""
    items = ctx.client().get("/api/v1/payments")["items"]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no orders yet (buy with: zion pay LISTING)")
    for item in items:
        title = item["title"] or item["listing"]
        click.echo(
            f"{item['status']:<16} {item['role']:<6} {_money(item['amount'], item['currency'])}"
            f"  {title}  ({item['payment_intent']})"
        )


@click.group()
def ai() -> None:
    """AI through a bridge (drafting, questions), and recommendations."""


def _stream(ctx: Any, path: str, body: dict[str, Any]) -> None:
    with ctx.client().stream("POST", path, json=body) as response:
        for line in response.iter_lines():
            if not line:
                continue
            item = json.loads(line)
            if item["type"] == "source":
                click.echo(f"[from {item['name']} {item['bridge']}]", err=True)
            elif item["type"] == "chunk":
                click.echo(item["text"], nl=False)
            elif item["type"] == "done":
                click.echo()
            elif item["type"] == "error":
                click.echo()
                raise NodeError(f"the bridge stopped: {item['message']}")


@ai.command("draft")
@click.argument("notes", nargs=-1, required=True)
@click.option("--title", default="", help="A title to improve.")
@click.option("--category", default="")
@click.pass_obj
def ai_draft(ctx: Any, notes: tuple[str, ...], title: str, category: str) -> None:
    """Draft a listing's title and description from NOTES, as the bridge writes it."""
    _stream(
        ctx, "/api/v1/ai/draft", {"notes": " ".join(notes), "title": title, "category": category}
    )


@ai.command("ask")
@click.argument("question", nargs=-1, required=True)
@click.pass_obj
def ai_ask(ctx: Any, question: tuple[str, ...]) -> None:
    """Ask about the listings this node has (they go to the bridge as context)."""
    _stream(ctx, "/api/v1/ai/ask", {"question": " ".join(question)})


def _echo_recommendations(answer: dict[str, Any]) -> None:
    click.echo(f"[{answer['source']} ranking]", err=True)
    if not answer["items"]:
        click.echo("nothing to recommend yet")
    for item in answer["items"]:
        price = item["price"]
        click.echo(f"{item['id']}  {_money(price['amount'], price['currency'])}  {item['title']}")


@ai.command("similar")
@click.argument("listing")
@click.option("--limit", type=click.IntRange(1, 50), default=8, show_default=True)
@click.pass_obj
def ai_similar(ctx: Any, listing: str, limit: int) -> None:
    """Listings like LISTING (works without a bridge; better with embeddings)."""
    _echo_recommendations(ctx.client().get(f"/api/v1/listings/{listing}/similar", limit=limit))


@ai.command("for-you")
@click.option("--limit", type=click.IntRange(1, 50), default=8, show_default=True)
@click.pass_obj
def ai_for_you(ctx: Any, limit: int) -> None:
    """Listings for this member, from what they sell, buy and reply to."""
    _echo_recommendations(ctx.client().get("/api/v1/recommendations", limit=limit))
