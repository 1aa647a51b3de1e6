"""A member's side of bridges: which bridges it tries, in what order, and how it holds them to
the protocol (deadlines, the replies a request allows, a length, an answer that ends early)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.unit.node.test_bridge_server import ALICE, db
from zion.node.bridge_client import BridgeClient, BridgeDirectory
from zion.node.bridges import NO_BRIDGE, UNREACHABLE, BridgeError
from zion.protocols import bridge, identity, records
from zion.storage.bridges import DAY_MS
from zion.storage.database import Database
from zion.storage.records import RecordStore

__all__ = ["db"]


def announce(store: RecordStore, key_byte: int, service: str, now: int) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes([key_byte] * 32))
    record = records.sign_record(
        key,
        kind="bridge",
        subject=records.BRIDGE_SUBJECT,
        seq=1,
        created=now,
        expires=now + DAY_MS,
        body=records.BridgeBody(
            name=f"bridge {key_byte}",
            offers=[records.BridgeOffer(service=service, access="open")],  # type: ignore[arg-type]
            addrs=[f"/ip4/127.0.0.1/tcp/{4000 + key_byte}"],
        ),
    )
    store.apply(record, now)
    return record.author


async def test_a_member_tries_configured_bridges_first_then_the_next(db: Database) -> None:
    from zion.node.clock import now_ms

    store = RecordStore(db)
    now = now_ms()
    announced = announce(store, 10, "ai", now)
    announce(store, 11, "stripe", now)  # offers another service: never asked for AI
    configured = identity.peer_id_of(Ed25519PrivateKey.from_private_bytes(bytes([12] * 32)))
    directory = BridgeDirectory(
        store, {"ai": [f"/ip4/127.0.0.1/tcp/1/p2p/{configured}"]}, True, ALICE
    )
    assert [b.peer_id for b in directory.for_service("ai")] == [configured, announced]
    opened: list[str] = []

    async def open_stream(peer: str, protocol: str) -> Any:
        opened.append(peer)
        raise ConnectionError("nobody home")

    async def connect(address: str) -> str:
        raise ConnectionError("nobody home")

    client = BridgeClient(directory, open_stream, connect, list, 2.0, ALICE)
    with pytest.raises(BridgeError) as failed:
        async for _ in client.call("ai", bridge.Draft(notes="x")):
            pass
    assert failed.value.reason == UNREACHABLE
    assert opened == [configured, announced]

    nobody = BridgeClient(
        BridgeDirectory(store, {}, False, ALICE), open_stream, connect, list, 2.0, ALICE
    )
    with pytest.raises(BridgeError) as none:
        async for _ in nobody.call("ai", bridge.Draft(notes="x")):
            pass
    assert none.value.reason == NO_BRIDGE


async def test_expired_announcements_are_forgotten(db: Database) -> None:
    from zion.node.clock import now_ms

    store = RecordStore(db)
    announce(store, 10, "ai", now_ms() - 2 * DAY_MS)
    assert BridgeDirectory(store, {}, True, ALICE).for_service("ai") == []


async def test_a_slow_bridge_times_out(db: Database) -> None:
    from zion.node.clock import now_ms

    store = RecordStore(db)
    announce(store, 10, "ai", now_ms())

    async def hang(peer: str, protocol: str) -> Any:
        await trio.sleep_forever()

    async def connect(address: str) -> str:
        return address

    client = BridgeClient(BridgeDirectory(store, {}, True, ALICE), hang, connect, list, 0.2, ALICE)
    with pytest.raises(BridgeError) as failed:
        async for _ in client.call("ai", bridge.Draft(notes="x")):
            pass
    assert failed.value.reason == "timeout"


class ScriptedStream:
    """A libp2p stream stand-in whose other side sends ``frames`` and then closes."""

    def __init__(self, frames: list[bytes]) -> None:
        from zion.protocols.framing import encode_frame

        self._data = b"".join(encode_frame(frame) for frame in frames)
        self.closed = False
        self.written = b""

    async def read(self, n: int | None = None) -> bytes:
        chunk, self._data = self._data[: n or 65536], self._data[n or 65536 :]
        return chunk

    async def write(self, data: bytes) -> None:
        self.written += data

    async def close(self) -> None:
        self.closed = True

    async def reset(self) -> None:
        self.closed = True


async def ask_scripted(db: Database, request: bridge.Request, frames: list[bytes]) -> BridgeError:
    from zion.node.clock import now_ms

    store = RecordStore(db)
    announce(store, 10, "ai", now_ms())
    announce(store, 11, "stripe", now_ms())
    stream = ScriptedStream(frames)

    async def open_stream(peer: str, protocol: str) -> Any:
        return stream

    async def connect(address: str) -> str:
        return address

    directory = BridgeDirectory(store, {}, True, ALICE)
    client = BridgeClient(directory, open_stream, connect, list, 2.0, ALICE)
    service = "stripe" if isinstance(request, bridge.Pay) else "ai"
    with pytest.raises(BridgeError) as failed:
        async for _ in client.call(service, request):
            pass
    assert stream.closed, "the stream must be closed however the answer ends"
    return failed.value


async def test_a_bridge_answering_out_of_turn_or_stopping_early_is_an_error(
    db: Database,
) -> None:
    chunk = bridge.encode_reply(bridge.Chunk(text="la la"))
    pay = bridge.Pay(listing="b", amount=1, currency="EUR")
    wrong = await ask_scripted(db, pay, [chunk] * 50)
    assert wrong.reason == UNREACHABLE and "Chunk" in wrong.message
    early = await ask_scripted(db, bridge.Draft(notes="x"), [chunk, chunk])
    assert early.reason == UNREACHABLE and "early" in early.message
    flood = await ask_scripted(
        db,
        bridge.Draft(notes="x"),
        [bridge.encode_reply(bridge.Chunk(text="y" * 4000))] * 20,
    )
    assert "too long" in flood.message


async def test_a_reason_zion_bridges_do_not_give_is_not_passed_on(db: Database) -> None:
    """The reason becomes an HTTP status and a problem code: a bridge cannot pick them."""
    odd = bridge.encode_reply(bridge.error("<script>", "I am a teapot"))
    failed = await ask_scripted(db, bridge.Draft(notes="x"), [odd])
    assert failed.reason == bridge.UPSTREAM_FAILED and "teapot" in failed.message


async def test_a_sellers_bridge_is_tried_before_its_announcement_arrives(db: Database) -> None:
    vouched = identity.peer_id_of(Ed25519PrivateKey.from_private_bytes(bytes([30] * 32)))
    directory = BridgeDirectory(RecordStore(db), {}, True, ALICE)
    assert [b.peer_id for b in directory.for_service("stripe", among=[vouched])] == [vouched]
    assert directory.for_service("stripe", among=[ALICE]) == []  # never this node itself
    assert directory.for_service("stripe") == []
