"""`zion dm ...`: direct messages through the running node (it seals and delivers them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click


@click.group()
def dm() -> None:
    """Direct messages: send, list conversations, read one."""


@dm.command("send")
@click.argument("to")
@click.argument("text")
@click.option("--listing", metavar="CID", help="The listing this message is about.")
@click.pass_obj
def send(ctx: Any, to: str, text: str, listing: str | None) -> None:
    """Send TEXT to TO (a peer ID or a profile name), sealed end to end.

    Prints the message's status: delivered, or sent when the recipient's node is not
    reachable now (the node keeps retrying, and leaves it with mailboxes; `zion dm read`
    shows how it went).
    """
    body: dict[str, Any] = {"to": to, "text": text}
    if listing:
        body["listing"] = listing
    message = ctx.client().post("/api/v1/conversations", body)
    click.echo(f"{message['status']}  conversation {message['conversation']}")
    if message["status"] != "delivered" and message.get("detail"):
        click.echo(f"  ({message['detail']})")


@dm.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_obj
def ls(ctx: Any, as_json: bool) -> None:
    """Conversations, newest first, with unread counts."""
    items = ctx.client().get("/api/v1/conversations")["items"]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no conversations yet (start one with: zion dm send PEER_OR_NAME TEXT)")
    for item in items:
        who = item["name"] or item["peer"]
        unread = f"  {item['unread']} unread" if item["unread"] else ""
        click.echo(f"{item['id']}  {who}  {item['messages']} messages{unread}")


@dm.command("read")
@click.argument("conversation")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@click.pass_obj
def read(ctx: Any, conversation: str, limit: int, as_json: bool) -> None:
    """The messages of CONVERSATION (an ID from `zion dm ls`), oldest first; marks it read."""
    client = ctx.client()
    items = client.get(f"/api/v1/conversations/{conversation}/messages", limit=limit)["items"]
    client.post(f"/api/v1/conversations/{conversation}/read", {})
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        when = datetime.fromtimestamp(item["sent"] / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        who = "you" if item["outgoing"] else item["peer"][-8:]
        state = f" [{item['status']}]" if item["outgoing"] else ""
        click.echo(f"{when}  {who}{state}: {item['text']}")


@dm.command("rotate-key")
@click.pass_obj
def rotate_key(ctx: Any) -> None:
    """Make a new direct-message key and publish it in a new version of your profile.

    Messages sealed to older keys still open (the node keeps the last 8).
    """
    profile = ctx.client().post("/api/v1/profile/dm-key", {})
    click.echo(f"new key {profile['enc_key']} (profile version {profile['seq']})")
