"""Direct messages between real nodes: delivered at once to an online member, kept and
retried for one that is offline, in order, once each, with the sender seeing the status."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

from tests.integration.nodes import NodeProcess, Spawn, wait_until
from tests.integration.test_cli import zion
from zion.node.config import update_file

#: The issue's bound for a message to an online member.
ONLINE_DELIVERY_S = 2.0
PROPAGATION_S = 20.0


def set_profile(node: NodeProcess, name: str) -> None:
    node.api.put("/api/v1/profile", json={"name": name}).raise_for_status()


def knows_key_of(node: NodeProcess, other: NodeProcess) -> bool:
    response = node.api.get(f"/api/v1/profiles/{other.peer_id}")
    return response.status_code == 200 and response.json()["enc_key"] is not None


def conversations(node: NodeProcess) -> list[dict[str, Any]]:
    return list(node.api.get("/api/v1/conversations").json()["items"])


def texts(node: NodeProcess, conversation: str) -> list[str]:
    items = node.api.get(f"/api/v1/conversations/{conversation}/messages").json()["items"]
    return [item["text"] for item in items]


def test_online_members_talk_directly(spawn: Spawn) -> None:
    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id), 15, "b connected to a")
    set_profile(a, "Alice")
    set_profile(b, "Bob")
    wait_until(lambda: knows_key_of(a, b) and knows_key_of(b, a), PROPAGATION_S, "profiles")

    started = time.monotonic()
    sent = a.api.post("/api/v1/conversations", json={"to": "Bob", "text": "Still for sale?"})
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "delivered"
    conversation = sent.json()["conversation"]
    wait_until(lambda: texts(b, conversation) == ["Still for sale?"], ONLINE_DELIVERY_S, "B")
    elapsed = time.monotonic() - started
    assert elapsed < ONLINE_DELIVERY_S, elapsed
    [on_b] = conversations(b)
    assert on_b["peer"] == a.peer_id and on_b["name"] == "Alice" and on_b["unread"] == 1

    # B answers in the same conversation; several messages arrive in order, once each.
    for n in range(5):
        reply = b.api.post(
            f"/api/v1/conversations/{conversation}/messages", json={"text": f"reply {n}"}
        )
        assert reply.status_code == 201 and reply.json()["status"] == "delivered"
    expected = ["Still for sale?", *(f"reply {n}" for n in range(5))]
    wait_until(lambda: texts(a, conversation) == expected, PROPAGATION_S, "A to get the replies")
    assert texts(b, conversation) == expected

    read = b.api.post(f"/api/v1/conversations/{conversation}/read").json()
    assert read == {"read": 1} and conversations(b)[0]["unread"] == 0

    # B's node tells A's that it was read (read receipts are on by default).
    def first_status_on_a() -> str:
        items = a.api.get(f"/api/v1/conversations/{conversation}/messages").json()["items"]
        return str(items[0]["status"])

    wait_until(lambda: first_status_on_a() == "read", PROPAGATION_S, "A to see it read")
    listing = zion(b.home, "dm", "ls").stdout
    assert "Alice" in listing and conversation in listing


def test_a_message_to_an_offline_member_waits_and_is_delivered_when_they_return(
    spawn: Spawn,
) -> None:
    a = spawn("a")
    b = spawn("b", bootstrap=[a.address])
    wait_until(lambda: b.connected_to(a.peer_id), 15, "b connected to a")
    set_profile(b, "Bob")
    wait_until(lambda: knows_key_of(a, b), PROPAGATION_S, "A to know Bob's key")
    bob = b.peer_id
    b.stop()

    sent = zion(a.home, "dm", "send", bob, "Are you there?").stdout
    assert sent.startswith("sent"), sent
    conversation = sent.split("conversation ")[1].split()[0]
    [waiting] = a.api.get(f"/api/v1/conversations/{conversation}/messages").json()["items"]
    assert waiting["status"] == "sent" and waiting["detail"]

    b.start(bootstrap=[a.address])
    wait_until(lambda: texts(b, conversation) == ["Are you there?"], PROPAGATION_S, "B")

    def status() -> str:
        items = a.api.get(f"/api/v1/conversations/{conversation}/messages").json()["items"]
        return str(items[0]["status"])

    wait_until(lambda: status() == "delivered", PROPAGATION_S, "A to see it delivered")


def test_bad_messages_are_refused_with_a_reason(spawn: Spawn) -> None:
    a = spawn("a")
    nobody = a.api.post("/api/v1/conversations", json={"to": "Nobody", "text": "hi"})
    assert nobody.status_code == 404 and "Nobody" in nobody.json()["detail"]
    stranger = "12D3KooWRM5LdcFTdApFq6NejiwFiCn6dkiyWqGNQzjCAfyUc9p8"
    no_key = a.api.post("/api/v1/conversations", json={"to": stranger, "text": "hi"})
    assert no_key.status_code == 422 and "key" in no_key.json()["detail"]
    myself = a.api.post("/api/v1/conversations", json={"to": a.peer_id, "text": "hi"})
    assert myself.status_code == 422
    b = spawn("b", bootstrap=[a.address])
    set_profile(b, "Bob")
    wait_until(lambda: knows_key_of(a, b), PROPAGATION_S, "A to know Bob's key")
    for text in ("", "x" * 4001):  # a recipient with a key: only the text is wrong
        refused = a.api.post("/api/v1/conversations", json={"to": "Bob", "text": text})
        assert refused.status_code == 422, text
    assert conversations(a) == []  # nothing was stored for the refused ones
    fine = a.api.post("/api/v1/conversations", json={"to": "Bob", "text": "x" * 4000})
    assert fine.status_code == 201
    for body in ({"to": stranger}, {"text": "hi"}, {"to": stranger, "text": 5}):
        assert a.api.post("/api/v1/conversations", json=body).status_code == 422
    bad_id = a.api.get("/api/v1/conversations/zz/messages")
    assert bad_id.status_code == 422
    unknown = a.api.post(f"/api/v1/conversations/{'00' * 16}/messages", json={"text": "x"})
    assert unknown.status_code == 404


def test_a_mailbox_holds_a_message_while_both_members_are_offline(
    spawn: Spawn, tmp_path: Path
) -> None:
    """A sends while B is offline; A goes offline too; B comes back and gets the message from
    the mailbox node M, which never could read it."""
    zion(tmp_path / "m", "init")
    update_file(tmp_path / "m" / "config.toml", "dm", {"mailbox": True})
    m = spawn("m")
    a = spawn("a", bootstrap=[m.address])
    b = spawn("b", bootstrap=[m.address])
    eavesdropper = spawn("e", bootstrap=[m.address])  # on the same network, passively
    set_profile(b, "Bob")
    wait_until(lambda: knows_key_of(a, b), PROPAGATION_S, "A to know Bob's key (through M)")
    bob = b.peer_id
    b.stop()

    secret = "Meet at the old mill at nine; bring the receipt for the oak table."
    sent = a.api.post("/api/v1/conversations", json={"to": bob, "text": secret}).json()
    conversation = sent["conversation"]

    def status_on_a() -> str:
        items = a.api.get(f"/api/v1/conversations/{conversation}/messages").json()["items"]
        return str(items[0]["status"])

    wait_until(lambda: status_on_a() == "stored", PROPAGATION_S, "M to hold the message")
    alice = a.peer_id
    a.stop()
    assert held_by(m) == 1
    # M holds sealed bytes only, and the eavesdropper has nothing: neither database nor
    # write-ahead log has the text.
    for node in (m, eavesdropper):
        for path in (node.home / "zion.db", node.home / "zion.db-wal"):
            if path.exists():
                assert b"old mill" not in path.read_bytes(), path

    b.start(bootstrap=[m.address])
    wait_until(lambda: texts(b, conversation) == [secret], PROPAGATION_S, "B to fetch from M")
    [on_b] = conversations(b)
    assert on_b["peer"] == alice and on_b["unread"] == 1
    wait_until(lambda: held_by(m) == 0, PROPAGATION_S, "M to forget what B took")


def held_by(node: NodeProcess) -> int:
    """Messages the node holds as a mailbox (read from its database, read-only)."""
    uri = f"file:{node.home / 'zion.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM dm_mailbox").fetchone()[0])


def test_a_node_republishes_its_key_when_its_profile_carries_another(spawn: Spawn) -> None:
    """A lost keyring (or a profile from before keys existed): at start the node publishes
    its current key, so members can reach it again."""
    a = spawn("a")
    set_profile(a, "Alice")
    me = a.peer_id
    old_key = a.api.get(f"/api/v1/profiles/{me}").json()["enc_key"]
    a.stop()
    (a.home / "dm_keys").unlink()
    a.start()

    def republished() -> bool:
        profile = a.api.get(f"/api/v1/profiles/{me}").json()
        return profile["enc_key"] not in (None, old_key) and profile["name"] == "Alice"

    wait_until(republished, PROPAGATION_S, "the new key in a new profile")
