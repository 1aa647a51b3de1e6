"""Direct messages in SQLite: outgoing state, incoming de-duplication, conversations, events."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zion.protocols import dm, identity
from zion.storage.database import Database
from zion.storage.dms import DmStore, InboxFull, MailboxLimits, Status
from zion.storage.records import RecordStore

NOW = 1_800_000_000_000


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "zion.db")


def message(text: str, sent: int = NOW) -> dm.Message:
    alice = Ed25519PrivateKey.generate()
    bob = identity.peer_id_of(Ed25519PrivateKey.generate())
    _, sealed = dm.seal(alice, bob, dm.generate_key().public_key(), text=text, sent=sent)
    return sealed


def event_types(db: Database) -> list[str]:
    return [event.type for event in RecordStore(db).events_after(0, 100)]


def test_an_outgoing_message_keeps_its_envelope_until_it_settles(db: Database) -> None:
    store = DmStore(db)
    sent = message("hello")
    stored = store.add_outgoing(sent, b"sealed bytes", NOW, NOW)
    assert stored.status == Status.SENT and stored.outgoing and stored.peer == sent.recipient
    due = store.due(NOW, 10)
    assert [p.envelope for p in due] == [b"sealed bytes"]
    store.retry_later(sent.id, NOW + 5000, "not reachable")
    assert store.due(NOW + 4999, 10) == []
    assert store.due(NOW + 5000, 10)[0].attempts == 1
    store.delivered(sent.id, NOW + 6000)
    assert store.due(NOW + 10**9, 10) == []
    got = store.get(sent.id)
    assert got is not None and got.status == Status.DELIVERED
    store.failed(sent.id, "too late", NOW + 7000)  # settled already: no change
    got = store.get(sent.id)
    assert got is not None and got.status == Status.DELIVERED
    assert event_types(db) == ["dm.status", "dm.status"]


def test_receipts_move_only_the_recipients_messages(db: Database) -> None:
    store = DmStore(db)
    sent = message("hello")
    store.add_outgoing(sent, b"x", NOW, NOW)
    assert store.receipt("someone else", [sent.id], read=False, now_ms=NOW) == 0
    assert store.receipt(sent.recipient, [sent.id], read=False, now_ms=NOW) == 1
    got = store.get(sent.id)
    assert got is not None and got.status == Status.DELIVERED
    assert store.due(NOW + 10**9, 10) == []  # nothing left to send
    assert store.receipt(sent.recipient, [sent.id], read=True, now_ms=NOW) == 1
    assert store.receipt(sent.recipient, [sent.id], read=False, now_ms=NOW) == 0  # stays read
    got = store.get(sent.id)
    assert got is not None and got.status == Status.READ


def test_a_failed_message_says_why(db: Database) -> None:
    store = DmStore(db)
    sent = message("hello")
    store.add_outgoing(sent, b"x", NOW, NOW)
    store.failed(sent.id, "the recipient has not been reachable for 7 days", NOW)
    got = store.get(sent.id)
    assert got is not None and got.status == Status.FAILED and "7 days" in (got.detail or "")


def test_incoming_duplicates_are_dropped_and_reading_clears_unread(db: Database) -> None:
    store = DmStore(db)
    first = message("one", NOW)
    second = msgspec.structs.replace(
        message("two", NOW + 1), sender=first.sender, conversation=first.conversation
    )
    assert store.add_incoming(first, NOW, 1000)
    assert not store.add_incoming(first, NOW + 5, 1000)  # the same message again
    assert store.add_incoming(second, NOW + 6, 1000)
    [conversation] = store.conversations()
    assert conversation["unread"] == 2 and conversation["messages"] == 2
    texts = [m.text for m in store.messages(first.conversation, 50)]
    assert texts == ["one", "two"]
    assert len(store.mark_read(first.conversation, NOW + 10)) == 2
    assert store.conversations()[0]["unread"] == 0
    assert store.mark_read(first.conversation, NOW + 11) == []
    assert event_types(db) == ["dm.received", "dm.received", "dm.status", "dm.status"]


def test_a_sender_with_too_many_unread_messages_is_told_the_inbox_is_full(db: Database) -> None:
    store = DmStore(db)
    first = message("one")
    store.add_incoming(first, NOW, 2)
    store.add_incoming(msgspec.structs.replace(message("two"), sender=first.sender), NOW, 2)
    with pytest.raises(InboxFull):
        store.add_incoming(msgspec.structs.replace(message("three"), sender=first.sender), NOW, 2)
    assert store.add_incoming(message("from someone else"), NOW, 2)
    store.mark_read(first.conversation, NOW)
    assert store.add_incoming(msgspec.structs.replace(message("four"), sender=first.sender), NOW, 2)


def test_events_carry_no_text(db: Database) -> None:
    store = DmStore(db)
    store.add_incoming(message("a secret plan"), NOW, 1000)
    for event in RecordStore(db).events_after(0, 10):
        assert "secret" not in str(event.data)


LIMITS = MailboxLimits(per_recipient=3, max_age_ms=10_000, max_bytes=1 << 20)


def test_a_mailbox_holds_messages_per_recipient_within_bounds(db: Database) -> None:
    store = DmStore(db)
    for n in range(5):
        assert store.mailbox_put("bob", f"env {n}".encode(), NOW + n, LIMITS)
    assert not store.mailbox_put("bob", b"env 4", NOW + 9, LIMITS)  # the same envelope
    held = store.mailbox_for("bob", 10)
    assert [envelope for _, envelope in held] == [b"env 2", b"env 3", b"env 4"]
    assert store.mailbox_for("carol", 10) == []
    # Only the recipient's own acks drop anything.
    hashes = [digest for digest, _ in held]
    assert store.mailbox_drop("carol", hashes) == 0
    assert store.mailbox_drop("bob", hashes[:2]) == 2
    assert [e for _, e in store.mailbox_for("bob", 10)] == [b"env 4"]
    # Old messages go when newer ones arrive.
    store.mailbox_put("carol", b"much later", NOW + 20_000, LIMITS)
    assert store.mailbox_for("bob", 10) == []


def test_a_mailbox_stays_under_its_size(db: Database) -> None:
    store = DmStore(db)
    small = MailboxLimits(per_recipient=100, max_age_ms=10**9, max_bytes=1 << 20)
    for n in range(5):
        store.mailbox_put(f"member {n}", bytes([n]) * (300 * 1024), NOW + n, small)
    assert store.mailbox_count() == 3  # 900 KiB fit in 1 MiB; the two oldest went
    assert store.mailbox_for("member 0", 1) == [] and store.mailbox_for("member 4", 1)
