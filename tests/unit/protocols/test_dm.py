"""Direct messages: sealing, opening, and everything that must not open."""

from __future__ import annotations

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zion.protocols import dm, identity
from zion.protocols.errors import ProtocolError

NOW = 1_800_000_000_000
TEXT = "Is the oak table still available? I can pick it up on Saturday."
LISTING = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@pytest.fixture
def alice() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def bob() -> tuple[str, dm.X25519PrivateKey]:
    return identity.peer_id_of(Ed25519PrivateKey.generate()), dm.generate_key()


def sealed(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey], text: str = TEXT
) -> tuple[dm.Envelope, dm.Message]:
    peer, key = bob
    return dm.seal(
        alice,
        peer,
        key.public_key(),
        text=text,
        sent=NOW,
        listing=LISTING,
    )


def hand_sealed(
    bob: tuple[str, dm.X25519PrivateKey], unsigned: dict[str, object], signature: object
) -> dm.Envelope:
    """Seal a signed message to Bob by hand, as a hostile sender could."""
    plaintext = dm.encoding.encode({"m": unsigned, "sig": signature})
    return dm.Envelope(
        dm.FORMAT_VERSION,
        bob[0],
        dm.fingerprint(bob[1].public_key()),
        dm.SUITE.encrypt(dm.pad(plaintext), bob[1].public_key(), info=dm.HPKE_INFO),
    )


def test_the_recipient_opens_what_the_sender_sealed(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    envelope, message = sealed(alice, bob)
    wire = dm.encode_envelope(envelope)
    opened = dm.open_envelope(dm.decode_envelope(wire), bob[0], [dm.generate_key(), bob[1]])
    assert opened == message
    assert opened.sender == identity.peer_id_of(alice)
    assert opened.text == TEXT and opened.listing == LISTING and opened.sent == NOW


def test_a_mailbox_holds_nothing_readable(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    envelope, message = sealed(alice, bob)
    wire = dm.encode_envelope(envelope)
    for secret in (TEXT.encode(), identity.peer_id_of(alice).encode(), message.id,
                   message.conversation, LISTING.encode(), b"Saturday"):  # fmt: skip
        assert secret not in wire
    # Any other key fails, including the sender's own encryption key.
    stranger = dm.generate_key()
    forged = msgspec.structs.replace(envelope, key=dm.fingerprint(stranger.public_key()))
    with pytest.raises(ProtocolError) as failure:
        dm.open_envelope(forged, bob[0], [stranger])
    assert failure.value.reason == "undecryptable"


def test_lengths_are_padded_to_buckets(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    short, _ = sealed(alice, bob, "ok")
    longer, _ = sealed(alice, bob, "x" * 100)
    assert len(short.sealed) == len(longer.sealed) == dm.MIN_PADDED_BYTES + dm.SEAL_OVERHEAD_BYTES
    big, _ = sealed(alice, bob, "y" * 3000)
    assert len(big.sealed) == 4096 + dm.SEAL_OVERHEAD_BYTES


def test_tampered_ciphertext_does_not_open(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    envelope, _ = sealed(alice, bob)
    for index in (0, 40, len(envelope.sealed) - 1):
        flipped = bytearray(envelope.sealed)
        flipped[index] ^= 1
        tampered = msgspec.structs.replace(envelope, sealed=bytes(flipped))
        with pytest.raises(ProtocolError) as failure:
            dm.open_envelope(tampered, bob[0], [bob[1]])
        assert failure.value.reason == "undecryptable"


def test_a_message_for_someone_else_is_refused(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    envelope, _ = sealed(alice, bob)
    carol = identity.peer_id_of(Ed25519PrivateKey.generate())
    with pytest.raises(ProtocolError) as failure:
        dm.open_envelope(envelope, carol, [bob[1]])
    assert failure.value.reason == "not-for-us"
    # Re-addressing the envelope does not help: the signed message names bob.
    readdressed = msgspec.structs.replace(envelope, recipient=carol)
    with pytest.raises(ProtocolError) as failure:
        dm.open_envelope(readdressed, carol, [bob[1]])
    assert failure.value.reason == "not-for-us"


def test_a_recipient_cannot_forward_a_signed_message_as_written_to_someone_else(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    """Bob opens Alice's message and seals her signed bytes to Carol: Carol refuses them."""
    envelope, _ = sealed(alice, bob)
    inner = dm.unpad(dm.SUITE.decrypt(envelope.sealed, bob[1], info=dm.HPKE_INFO))
    carol_peer, carol_key = identity.peer_id_of(Ed25519PrivateKey.generate()), dm.generate_key()
    resealed = dm.Envelope(
        dm.FORMAT_VERSION,
        carol_peer,
        dm.fingerprint(carol_key.public_key()),
        dm.SUITE.encrypt(dm.pad(inner), carol_key.public_key(), info=dm.HPKE_INFO),
    )
    with pytest.raises(ProtocolError) as failure:
        dm.open_envelope(resealed, carol_peer, [carol_key])
    assert failure.value.reason == "not-for-us"


def test_a_forged_sender_is_refused(bob: tuple[str, dm.X25519PrivateKey]) -> None:
    """Mallory seals a message whose sender field says Alice: the signature is Mallory's."""
    mallory, alice = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    envelope, message = sealed(mallory, bob)
    unsigned = msgspec.to_builtins(
        msgspec.structs.replace(message, sender=identity.peer_id_of(alice)),
        builtin_types=(bytes,),
    )
    signature = mallory.sign(dm.SIGNATURE_DOMAIN + dm.encoding.encode(unsigned))
    plaintext = dm.encoding.encode({"m": unsigned, "sig": signature})
    forged = msgspec.structs.replace(
        envelope, sealed=dm.SUITE.encrypt(dm.pad(plaintext), bob[1].public_key(), info=dm.HPKE_INFO)
    )
    with pytest.raises(ProtocolError) as failure:
        dm.open_envelope(forged, bob[0], [bob[1]])
    assert failure.value.reason == "bad-signature"


def test_bad_input_is_refused_with_a_reason(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    peer, key = bob
    with pytest.raises(ProtocolError):
        dm.seal(alice, peer, key.public_key(), text="", sent=NOW)
    with pytest.raises(ProtocolError):
        dm.seal(alice, "not-a-peer", key.public_key(), text="hi", sent=NOW)
    with pytest.raises(ProtocolError):
        dm.seal(alice, peer, key.public_key(), text="hi", sent=NOW,
                listing="not-a-cid")  # fmt: skip
    for junk in (b"", b"\xa0", b"\x00" * 20, dm.encoding.encode({"v": 1}), b"\xff" * 40000):
        with pytest.raises(ProtocolError):
            dm.decode_envelope(junk)
    envelope, _ = sealed(alice, bob)
    with pytest.raises(ProtocolError) as failure:
        dm.open_envelope(envelope, peer, [dm.generate_key()])
    assert failure.value.reason == "unknown-key"


def test_the_longest_text_fits(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    longest = "\U0001f600" * dm.limits.MAX_DM_TEXT_CHARS  # 4 bytes each in UTF-8
    envelope, _ = sealed(alice, bob, longest)
    assert dm.open_envelope(envelope, bob[0], [bob[1]]).text == longest


def test_padding_round_trips_and_refuses_garbage() -> None:
    for size in (0, 1, 507, 508, 509, 5000):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        padded = dm.pad(data)
        assert len(padded) >= dm.MIN_PADDED_BYTES and dm.unpad(padded) == data
    with pytest.raises(ProtocolError):
        dm.unpad(b"\x00\x00\x00\x05abc")
    with pytest.raises(ProtocolError):
        dm.unpad(dm.pad(b"abc")[:-1] + b"\x01")
    with pytest.raises(ProtocolError):
        dm.pad(bytes(dm.MAX_PADDED_BYTES))


def test_deliver_requests_and_replies_round_trip(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    envelope, _ = sealed(alice, bob)
    assert dm.decode_request(dm.encode_deliver(envelope)) == envelope
    ids = [dm.new_message_id(), dm.new_message_id()]
    assert dm.decode_request(dm.encode_receipt(ids, read=True)) == dm.Receipt(ids, True)
    assert dm.decode_reply(dm.encode_reply(None)) is None
    assert dm.decode_reply(dm.encode_reply("x" * 1000)) == "x" * dm.MAX_REASON_CHARS
    for junk in (
        dm.encoding.encode({"op": "fetch", "env": b""}),
        dm.encoding.encode({"op": "deliver", "env": "text"}),
        dm.encoding.encode({"op": "deliver", "env": b"", "extra": 1}),
        dm.encoding.encode([1, 2]),
        dm.encoding.encode({"op": "receipt", "ids": [], "read": False}),
        dm.encoding.encode({"op": "receipt", "ids": [b"short"], "read": False}),
        dm.encoding.encode({"op": "receipt", "ids": [bytes(16)], "read": "yes"}),
        b"\xff",
    ):
        with pytest.raises(ProtocolError):
            dm.decode_request(junk)
    for junk in (dm.encoding.encode({"ok": "yes"}), dm.encoding.encode(1), b""):
        with pytest.raises(ProtocolError):
            dm.decode_reply(junk)


def test_both_members_derive_the_same_conversation() -> None:
    a = identity.peer_id_of(Ed25519PrivateKey.generate())
    b = identity.peer_id_of(Ed25519PrivateKey.generate())
    c = identity.peer_id_of(Ed25519PrivateKey.generate())
    assert dm.conversation_id(a, b) == dm.conversation_id(b, a)
    assert dm.conversation_id(a, b) != dm.conversation_id(a, c)
    assert len(dm.conversation_id(a, b)) == dm.CONVERSATION_ID_BYTES


def test_mailbox_requests_round_trip_and_refuse_junk(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    envelope, _ = sealed(alice, bob)
    assert dm.decode_mailbox_request(dm.encode_store(envelope)) == ("store", envelope)
    assert dm.decode_mailbox_request(dm.encode_fetch()) == ("fetch", None)
    hashes = [dm.envelope_hash(dm.encode_envelope(envelope))]
    assert dm.decode_mailbox_request(dm.encode_ack(hashes)) == ("ack", hashes)
    wire = [dm.encode_envelope(envelope)] * 3
    assert dm.decode_fetched(dm.encode_fetched(wire)) == wire
    for junk in (
        dm.encoding.encode({"op": "ack", "hashes": [b"short"]}),
        dm.encoding.encode({"op": "ack", "hashes": [bytes(32)] * (dm.MAX_FETCH + 1)}),
        dm.encoding.encode({"op": "fetch", "more": 1}),
        dm.encoding.encode({"op": "store", "env": "text"}),
        dm.encoding.encode({"op": "delete"}),
    ):
        with pytest.raises(ProtocolError):
            dm.decode_mailbox_request(junk)
    with pytest.raises(ProtocolError):
        dm.decode_fetched(dm.encoding.encode({"ok": True, "envs": ["x"]}))


def test_a_message_filed_in_another_conversation_is_refused(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    """Mallory signs a message to Bob that claims Bob's conversation with Carol."""
    carol = identity.peer_id_of(Ed25519PrivateKey.generate())
    _, message = sealed(alice, bob)
    unsigned = msgspec.to_builtins(
        msgspec.structs.replace(message, conversation=dm.conversation_id(bob[0], carol)),
        builtin_types=(bytes,),
    )
    signature = alice.sign(dm.SIGNATURE_DOMAIN + dm.encoding.encode(unsigned))
    envelope = hand_sealed(bob, unsigned, signature)
    with pytest.raises(ProtocolError) as failure:
        dm.open_envelope(envelope, bob[0], [bob[1]])
    assert failure.value.reason == "bad-conversation"


@pytest.mark.parametrize("signature", [b"", bytes(63), bytes(65), "text"])
def test_a_signature_of_the_wrong_shape_is_refused_not_a_crash(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey], signature: object
) -> None:
    _, message = sealed(alice, bob)
    unsigned = msgspec.to_builtins(message, builtin_types=(bytes,))
    envelope = hand_sealed(bob, unsigned, signature)
    with pytest.raises(ProtocolError) as failure:
        dm.open_envelope(envelope, bob[0], [bob[1]])
    assert failure.value.reason == "bad-signature"


def test_times_beyond_what_a_browser_can_show_are_refused(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    for sent in (-1, 2**64 - 1):
        with pytest.raises(ProtocolError):
            dm.seal(alice, bob[0], bob[1].public_key(), text="hi", sent=sent)


def test_envelopes_of_no_message_size_or_for_no_member_are_refused(
    alice: Ed25519PrivateKey, bob: tuple[str, dm.X25519PrivateKey]
) -> None:
    envelope, _ = sealed(alice, bob)
    for bad in (
        msgspec.structs.replace(envelope, sealed=envelope.sealed + b"x"),
        msgspec.structs.replace(envelope, recipient="x" * 50),
    ):
        with pytest.raises(ProtocolError):
            dm.decode_envelope(dm.encode_envelope(bad))
