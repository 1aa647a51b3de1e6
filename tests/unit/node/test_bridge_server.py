"""A bridge's inbound side: who may ask (one test per access policy), how often (rate limits,
daily quotas), what is a valid request; and where secrets come from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import NOW
from zion.node import config
from zion.node.bridge_server import AccessPolicy, BridgeServer, TokenHolders
from zion.node.bridges import read_secret
from zion.node.errors import NodeError
from zion.protocols import bridge, encoding, identity, records
from zion.storage.bridges import DAY_MS, BridgeStore
from zion.storage.database import Database
from zion.storage.records import RecordStore

ALICE = identity.peer_id_of(Ed25519PrivateKey.from_private_bytes(bytes([1] * 32)))
BOB = identity.peer_id_of(Ed25519PrivateKey.from_private_bytes(bytes([2] * 32)))
DRAFT = bridge.encode_request(bridge.Draft(notes="a red bike"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Handler:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, asker: str, request: bridge.Request) -> AsyncIterator[bridge.Reply]:
        self.asked.append(asker)
        yield bridge.Chunk(text="drafted")
        yield bridge.Done(model="test")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "zion.db")


def ai_config(**changes: Any) -> config.AiBridgeConfig:
    base = config.load(None).bridge.ai
    return msgspec.structs.replace(base, enabled=True, **changes)


def server(
    db: Database, policy: AccessPolicy, clock: Clock | None = None, **changes: Any
) -> tuple[BridgeServer, Handler]:
    handler = Handler()
    made = BridgeServer(
        "ai", ai_config(**changes), policy, BridgeStore(db), handler, clock or Clock()
    )
    return made, handler


async def replies(server: BridgeServer, asker: str, data: bytes = DRAFT) -> list[bridge.Reply]:
    return [reply async for reply in server.answer(asker, data)]


def reason(answer: list[bridge.Reply]) -> str | None:
    return answer[0].reason if isinstance(answer[0], bridge.Error) else None


async def test_open_policy_serves_any_member(db: Database) -> None:
    bridge_server, handler = server(db, AccessPolicy("open"))
    assert await replies(bridge_server, ALICE) == [bridge.Chunk("drafted"), bridge.Done("test")]
    assert reason(await replies(bridge_server, BOB)) is None
    assert handler.asked == [ALICE, BOB]


async def test_allowlist_policy_serves_only_listed_members(db: Database) -> None:
    bridge_server, handler = server(db, AccessPolicy("allowlist", frozenset({ALICE})))
    assert reason(await replies(bridge_server, ALICE)) is None
    refused = await replies(bridge_server, BOB)
    assert reason(refused) == bridge.FORBIDDEN and len(refused) == 1
    assert handler.asked == [ALICE]
    assert bridge_server.refused == {bridge.FORBIDDEN: 1}


async def test_token_policy_asks_the_balance_of_the_wallet_the_profile_links(
    db: Database,
) -> None:
    """The chain is a function here; tests/contracts/test_bridge_token_access.py asks a real
    DAO token contract."""
    store = RecordStore(db)
    alice_profile, alice_wallet = profile_with_wallet(1)
    bob_profile, bob_wallet = profile_with_wallet(2)
    store.apply(alice_profile, NOW)
    store.apply(bob_profile, NOW)
    wallets = {alice_wallet: 5, bob_wallet: 0}
    asked: list[str] = []

    async def balance_of(wallet: str) -> int:
        asked.append(wallet)
        return wallets[wallet]

    holders = TokenHolders(store, balance_of, minimum=1)
    bridge_server, handler = server(db, AccessPolicy("token", token_holders=holders))
    assert reason(await replies(bridge_server, ALICE)) is None
    assert reason(await replies(bridge_server, BOB)) == bridge.FORBIDDEN
    stranger = identity.peer_id_of(Ed25519PrivateKey.from_private_bytes(bytes([3] * 32)))
    assert reason(await replies(bridge_server, stranger)) == bridge.FORBIDDEN  # no profile
    assert handler.asked == [ALICE]
    # Balances are cached: asking again costs no chain call.
    await replies(bridge_server, ALICE)
    assert asked.count(alice_wallet) == 1


def profile_with_wallet(key_byte: int) -> tuple[records.Record, str]:
    """Member ``key_byte``'s profile, linking a wallet (the link signed by the wallet)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    key = Ed25519PrivateKey.from_private_bytes(bytes([key_byte] * 32))
    account = Account.from_key(bytes([key_byte + 100] * 32))
    message = encode_defunct(text=records.wallet_link_message(identity.peer_id_of(key)))
    signature = bytes(account.sign_message(message).signature)
    profile = records.sign_record(
        key,
        kind="profile",
        subject=records.PROFILE_SUBJECT,
        seq=1,
        created=NOW,
        body=records.ProfileBody(name=f"m{key_byte}", wallet=account.address, wallet_sig=signature),
    )
    return profile, str(account.address)


async def test_the_chain_being_down_denies_without_caching(db: Database) -> None:
    store = RecordStore(db)
    calls = 0

    async def failing(wallet: str) -> int:
        nonlocal calls
        calls += 1
        raise ConnectionError("chain down")

    store.apply(profile_with_wallet(1)[0], NOW)
    holders = TokenHolders(store, failing, minimum=1)
    assert not await holders.holds(ALICE)
    assert not await holders.holds(ALICE)
    assert calls == 2


def test_policies_check_themselves() -> None:
    with pytest.raises(NodeError, match="allow"):
        AccessPolicy("allowlist")
    with pytest.raises(NodeError, match="chain"):
        AccessPolicy("token")


async def test_rate_limit_is_per_member_and_refills(db: Database) -> None:
    clock = Clock()
    bridge_server, handler = server(
        db, AccessPolicy("open"), clock, rate_per_minute=60.0, burst=2, quota_per_day=0
    )
    assert reason(await replies(bridge_server, ALICE)) is None
    assert reason(await replies(bridge_server, ALICE)) is None
    assert reason(await replies(bridge_server, ALICE)) == bridge.RATE_LIMITED
    assert reason(await replies(bridge_server, BOB)) is None  # another member's own bucket
    clock.now += 1.0  # one request a second refills one token
    assert reason(await replies(bridge_server, ALICE)) is None
    assert handler.asked == [ALICE, ALICE, BOB, ALICE]


async def test_daily_quota_is_per_member_and_survives_a_restart(
    db: Database, tmp_path: Path
) -> None:
    bridge_server, _ = server(db, AccessPolicy("open"), quota_per_day=2, burst=100)
    assert reason(await replies(bridge_server, ALICE)) is None
    assert reason(await replies(bridge_server, ALICE)) is None
    exhausted = await replies(bridge_server, ALICE)
    assert reason(exhausted) == bridge.QUOTA_EXHAUSTED
    assert "2 requests a day" in exhausted[0].message  # type: ignore[union-attr]
    assert reason(await replies(bridge_server, BOB)) is None
    db.close()
    reopened = Database(tmp_path / "zion.db")
    again, _ = server(reopened, AccessPolicy("open"), quota_per_day=2, burst=100)
    assert reason(await replies(again, ALICE)) == bridge.QUOTA_EXHAUSTED


def test_quotas_count_per_utc_day(db: Database) -> None:
    store = BridgeStore(db)
    day = 20_000 * DAY_MS
    assert store.take_quota("ai", ALICE, day, 1) is None
    assert store.take_quota("ai", ALICE, day + DAY_MS - 1, 1) == "member"
    assert store.take_quota("ai", ALICE, day + DAY_MS, 1) is None
    assert store.take_quota("stripe", ALICE, day + DAY_MS, 1) is None  # each service its own
    # Everyone together: the operator's cap.
    assert store.take_quota("ai", BOB, day + DAY_MS, 5, total_per_day=2) is None
    assert store.take_quota("ai", "third", day + DAY_MS, 5, total_per_day=2) == "everyone"


async def test_bad_requests_are_answered_not_served(db: Database) -> None:
    bridge_server, handler = server(db, AccessPolicy("open"), quota_per_day=1)
    pay = bridge.encode_request(bridge.Pay(listing="b", amount=1, currency="EUR"))
    for data in (b"\xff\x00garbage", pay, encoding.encode({"op": "draft"})):
        assert reason(await replies(bridge_server, ALICE, data)) == bridge.BAD_REQUEST
    assert handler.asked == []
    # Bad requests do not use up the quota.
    assert reason(await replies(bridge_server, ALICE)) is None


def test_secrets_come_from_the_named_file_or_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "key"
    secret.write_text("sk_from_file\n")
    assert read_secret("key", "ZION_TEST_KEY", str(secret)) == "sk_from_file"
    monkeypatch.setenv("ZION_TEST_KEY", "sk_from_env")
    assert read_secret("key", "ZION_TEST_KEY", "") == "sk_from_env"
    monkeypatch.delenv("ZION_TEST_KEY")
    with pytest.raises(NodeError, match="ZION_TEST_KEY"):
        read_secret("key", "ZION_TEST_KEY", "")
    with pytest.raises(NodeError, match="cannot read"):
        read_secret("key", "", str(tmp_path / "missing"))


def test_config_refuses_secrets_in_odd_places() -> None:
    with pytest.raises(NodeError, match="api_key_file"):
        config.load(None, {"bridge": {"ai": {"api_key_file": "relative/key"}}})
    with pytest.raises(NodeError, match="access"):
        config.load(None, {"bridge": {"stripe": {"access": "everyone"}}})
    with pytest.raises(NodeError, match=r"unknown key bridge\.stripe\.secret_key"):
        config.load(None, {"bridge": {"stripe": {"secret_key": "sk_live_in_config"}}})
    with pytest.raises(NodeError, match="p2p"):
        config.load(None, {"bridges": {"ai": ["/ip4/127.0.0.1/tcp/1"]}})


async def test_token_access_counts_per_wallet_not_per_peer(db: Database) -> None:
    """One wallet linked from many peer IDs is one member: one quota."""
    store = RecordStore(db)
    first, wallet = profile_with_wallet(1)
    store.apply(first, NOW)
    # A second node links the same wallet (the wallet signs a link for each peer).
    from eth_account import Account
    from eth_account.messages import encode_defunct

    key = Ed25519PrivateKey.from_private_bytes(bytes([2] * 32))
    account = Account.from_key(bytes([101] * 32))  # the wallet of profile_with_wallet(1)
    link = encode_defunct(text=records.wallet_link_message(identity.peer_id_of(key)))
    second = records.sign_record(
        key,
        kind="profile",
        subject=records.PROFILE_SUBJECT,
        seq=1,
        created=NOW,
        body=records.ProfileBody(
            name="again", wallet=wallet, wallet_sig=bytes(account.sign_message(link).signature)
        ),
    )
    store.apply(second, NOW)

    async def balance_of(_: str) -> int:
        return 10

    policy = AccessPolicy("token", token_holders=TokenHolders(store, balance_of, 1))
    bridge_server, _ = server(db, policy, quota_per_day=1, burst=100)
    assert reason(await replies(bridge_server, ALICE)) is None
    assert reason(await replies(bridge_server, BOB)) == bridge.QUOTA_EXHAUSTED


def test_the_offer_announces_terms_price_and_quota(db: Database) -> None:
    priced, _ = server(
        db, AccessPolicy("open"), terms="Be nice.", price_amount=5, price_currency="USD"
    )
    offer = priced.offer(model="test-chat")
    assert (offer.service, offer.access, offer.terms) == ("ai", "open", "Be nice.")
    assert offer.price == records.Price(amount=5, currency="USD")
    assert offer.quota_per_day == 200 and offer.model == "test-chat"
    free, _ = server(db, AccessPolicy("open"), quota_per_day=0)
    assert free.offer().price is None and free.offer().quota_per_day is None
    with pytest.raises(NodeError, match="price_currency"):
        config.load(None, {"bridge": {"ai": {"price_amount": 5}}})
