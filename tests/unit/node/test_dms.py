"""The direct-message service's answers to other peers: messages for us (once each, checked),
receipts, and as a mailbox; floods are rate-limited per peer and cost bounded storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zion.node.dmkeys import DmKeyring
from zion.node.dms import INBOUND_BURST, MAILBOX_STORE_BURST, RATE_LIMITED, DmService
from zion.node.home import NodeHome
from zion.protocols import dm, identity, records
from zion.protocols.framing import FrameDecoder, encode_frame
from zion.storage.database import Database
from zion.storage.dms import DmStore, MailboxLimits
from zion.storage.records import RecordStore

NOW = 1_700_000_000_000  # in the past: messages from the future are refused
LIMITS = MailboxLimits(per_recipient=200, max_age_ms=10**9, max_bytes=1 << 30)


class Node:
    def __init__(self, tmp_path: Path, mailbox: bool = False) -> None:
        home = NodeHome(tmp_path)
        home.init()
        self.key = home.load_key()
        self.peer_id = identity.peer_id_of(self.key)
        self.keyring = DmKeyring(home)
        db = Database(home.database_file)
        self.store = DmStore(db)
        self.streams: list[Any] = []
        self.service = DmService(
            self.store,
            RecordStore(db),
            self.keyring,
            self.key,
            _no_network,
            lambda: None,
            mailbox=LIMITS if mailbox else None,
            clock=lambda: 0.0,  # time stands still: only the bursts count
        )


async def _no_network(peer_id: str, protocol: str) -> Any:
    raise ConnectionError("no network in this test")


def sealed_to(node: Node, text: str = "hi", sender: Ed25519PrivateKey | None = None) -> dm.Envelope:
    envelope, _ = dm.seal(
        sender or Ed25519PrivateKey.generate(),
        node.peer_id,
        node.keyring.current.public_key(),
        text=text,
        sent=NOW,
    )
    return envelope


@pytest.fixture
def bob(tmp_path: Path) -> Node:
    return Node(tmp_path / "bob")


@pytest.fixture
def mailbox(tmp_path: Path) -> Node:
    return Node(tmp_path / "mailbox", mailbox=True)


def test_a_replayed_message_is_stored_once(bob: Node) -> None:
    request = dm.encode_deliver(sealed_to(bob, "only once"))
    assert bob.service._answer("alice", request) is None
    assert bob.service._answer("alice", request) is None  # acknowledged, not stored again
    [conversation] = bob.store.conversations()
    assert conversation["messages"] == 1


def test_tampered_oversized_or_misaddressed_messages_are_refused(bob: Node, tmp_path: Path) -> None:
    envelope = sealed_to(bob)
    flipped = bytearray(envelope.sealed)
    flipped[-1] ^= 1
    tampered = dm.Envelope(envelope.v, envelope.recipient, envelope.key, bytes(flipped))
    assert bob.service._answer("alice", dm.encode_deliver(tampered)) == "undecryptable"
    carol = Node(tmp_path / "carol")
    for_carol = sealed_to(carol)
    assert bob.service._answer("alice", dm.encode_deliver(for_carol)) == "not-for-us"
    oversized = dm.encoding.encode({"op": "deliver", "env": bytes(dm.MAX_FRAME_BYTES)})
    assert bob.service._answer("alice", oversized) == "too-large"
    assert bob.store.conversations() == []


def test_a_flood_of_messages_is_rate_limited_per_peer(bob: Node) -> None:
    answers = [
        bob.service._answer("flooder", dm.encode_deliver(sealed_to(bob, f"spam {n}")))
        for n in range(INBOUND_BURST + 10)
    ]
    assert answers.count(None) == INBOUND_BURST
    assert answers[INBOUND_BURST:] == [RATE_LIMITED] * 10
    # Someone else still gets through.
    assert bob.service._answer("honest", dm.encode_deliver(sealed_to(bob, "hello"))) is None


def test_a_mailbox_flood_costs_bounded_storage_and_loses_nothing_else(
    mailbox: Node, tmp_path: Path
) -> None:
    carol = Node(tmp_path / "carol")
    answers = [
        mailbox.service._mailbox_answer("flooder", "store", sealed_to(carol, f"spam {n}"))
        for n in range(MAILBOX_STORE_BURST + 15)
    ]
    assert answers.count(dm.encode_reply(None)) == MAILBOX_STORE_BURST
    assert mailbox.store.mailbox_count() == MAILBOX_STORE_BURST
    real = sealed_to(carol, "real")
    honest = mailbox.service._mailbox_answer("honest", "store", real)
    assert honest == dm.encode_reply(None)
    held = [envelope for _, envelope in mailbox.store.mailbox_for(carol.peer_id, 100)]
    assert dm.encode_envelope(real) in held
    # Only carol may take what is held for her.
    assert dm.decode_fetched(mailbox.service._mailbox_answer("flooder", "fetch", None)) == []
    fetched = dm.decode_fetched(mailbox.service._mailbox_answer(carol.peer_id, "fetch", None))
    assert len(fetched) == dm.MAX_FETCH


def test_a_node_that_is_not_a_mailbox_holds_nothing_for_others(bob: Node, tmp_path: Path) -> None:
    carol = Node(tmp_path / "carol")
    answer = bob.service._mailbox_answer("alice", "store", sealed_to(carol))
    assert dm.decode_reply(answer) == "not a mailbox"
    assert bob.store.mailbox_count() == 0


def test_receipts_are_taken_only_from_the_recipient(bob: Node, tmp_path: Path) -> None:
    carol = Node(tmp_path / "carol")
    envelope, message = dm.seal(
        bob.key,
        carol.peer_id,
        carol.keyring.current.public_key(),
        text="hi",
        sent=NOW,
    )
    bob.store.add_outgoing(message, dm.encode_envelope(envelope), NOW, NOW)
    receipt = dm.encode_receipt([message.id], read=True)
    assert bob.service._answer("mallory", receipt) is None  # answered, but changes nothing
    stored = bob.store.get(message.id)
    assert stored is not None and stored.status == "sent"
    assert bob.service._answer(carol.peer_id, receipt) is None
    stored = bob.store.get(message.id)
    assert stored is not None and stored.status == "read"


class ScriptedStream:
    """A stream whose other end answers every request with ``reply`` (a recipient's node)."""

    def __init__(self, reply: bytes) -> None:
        self._pending = encode_frame(reply)
        self.sent = b""

    async def read(self, n: int | None = None) -> bytes:
        data, self._pending = self._pending, b""
        return data

    async def write(self, data: bytes) -> None:
        self.sent += data

    async def close(self) -> None:
        return None

    async def reset(self) -> None:
        return None


def sender_with_reply(tmp_path: Path, reply: bytes | None) -> tuple[Node, Node]:
    """Alice's node, whose every stream reaches a node answering ``reply`` (None: no one)."""
    alice, bob = Node(tmp_path / "alice"), Node(tmp_path / "bob")

    async def open_stream(peer_id: str, protocol: str) -> Any:
        if reply is None:
            raise ConnectionError("connection refused")
        stream = ScriptedStream(reply)
        alice.streams.append(stream)
        return stream

    alice.service._open_stream = open_stream
    # Alice knows Bob's key from his profile.
    profile = records.sign_record(
        bob.key,
        kind="profile",
        subject=records.PROFILE_SUBJECT,
        seq=1,
        created=NOW,
        body=records.ProfileBody(name="Bob", enc_key=bob.keyring.current_public),
    )
    RecordStore(alice.store._db).apply(profile, NOW)
    return alice, bob


async def test_a_refusal_fails_the_message_with_the_reason(tmp_path: Path) -> None:
    alice, bob = sender_with_reply(tmp_path, dm.encode_reply("unknown-key"))
    sent = await alice.service.send(bob.peer_id, "hello")
    assert sent.status == "failed" and sent.detail == "refused: unknown-key"
    assert alice.store.due(NOW * 2, 10) == []  # nothing left to retry


async def test_an_unreachable_recipient_is_retried_later(tmp_path: Path) -> None:
    alice, bob = sender_with_reply(tmp_path, None)
    sent = await alice.service.send(bob.peer_id, "hello")
    assert sent.status == "sent" and "not reachable" in (sent.detail or "")
    [pending] = alice.store.due(NOW * 2, 10)
    assert pending.attempts == 1


async def test_a_busy_recipient_is_retried_not_failed(tmp_path: Path) -> None:
    alice, bob = sender_with_reply(tmp_path, dm.encode_reply(RATE_LIMITED))
    sent = await alice.service.send(bob.peer_id, "hello")
    assert sent.status == "sent" and "rate-limited" in (sent.detail or "")


async def test_an_accepting_recipient_gets_the_sealed_message(tmp_path: Path) -> None:
    alice, bob = sender_with_reply(tmp_path, dm.encode_reply(None))
    sent = await alice.service.send("Bob", "hello")  # by profile name
    assert sent.status == "delivered"
    [stream] = alice.streams
    [frame] = FrameDecoder(dm.MAX_FRAME_BYTES).feed(stream.sent)
    envelope = dm.decode_request(frame)
    assert isinstance(envelope, dm.Envelope)
    assert dm.open_envelope(envelope, bob.peer_id, bob.keyring.keys).text == "hello"


def test_a_message_from_the_future_is_refused(bob: Node) -> None:
    envelope, _ = dm.seal(
        Ed25519PrivateKey.generate(),
        bob.peer_id,
        bob.keyring.current.public_key(),
        text="from a clock far ahead",
        sent=2**52,
    )
    assert bob.service._answer("alice", dm.encode_deliver(envelope)) == "from-the-future"
    assert bob.store.conversations() == []


def test_a_peer_posing_as_a_mailbox_cannot_break_the_outbox(tmp_path: Path) -> None:
    alice, bob = sender_with_reply(tmp_path, b"\xff not cbor")
    alice.service._mailbox_peers = lambda: ["12D3KooWfake"]
    sent = None

    async def run() -> None:
        nonlocal sent
        sent = await alice.service.send(bob.peer_id, "hello")
        [pending] = alice.store.due(NOW * 2, 10)
        await alice.service._attempt(pending)  # the outbox's own try, with mailboxes

    trio.run(run)
    assert sent is not None and sent.status == "sent"
    stored = alice.store.get(sent.id)
    assert stored is not None and stored.status == "sent"  # no mailbox took it; no crash
