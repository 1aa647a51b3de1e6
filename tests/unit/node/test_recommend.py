"""Recommendations from a real record store: local ranking by what listings share, the
member's interests, and re-ranking by embeddings when an embedding function works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import DAY, NOW, make_listing
from zion.node import recommend
from zion.node.recommend import Recommender
from zion.protocols import identity, records
from zion.protocols.bridge import MAX_EMBED_TEXTS
from zion.storage.database import Database
from zion.storage.records import RecordStore


def key_of(n: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)


ME, ALICE, BOB, BRIDGE = key_of(1), key_of(2), key_of(3), key_of(4)
MY_ID = identity.peer_id_of(ME)


def clock() -> int:
    return NOW + 1000


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    return RecordStore(Database(tmp_path / "zion.db"))


def put(store: RecordStore, *items: records.Record) -> None:
    for record in items:
        assert store.apply(record, NOW).stored


def listing(
    key: Ed25519PrivateKey,
    subject: str,
    title: str,
    category: str,
    description: str = "",
    tags: tuple[str, ...] = (),
    created: int = NOW,
) -> records.Record:
    return make_listing(
        key,
        subject=subject,
        title=title,
        category=category,
        description=description,
        tags=list(tags),
        created=created,
    )


# Words of the same concept share a dimension: "bike" and "bicycle" are close, as with a
# real embedding model, while sharing no word.
CONCEPTS = {
    "bike": 0,
    "bikes": 0,
    "bicycle": 0,
    "cycling": 0,
    "helmet": 0,
    "table": 1,
    "desk": 1,
    "sofa": 1,
    "oak": 1,
    "dress": 2,
    "summer": 2,
    "kids": 3,
    "child": 3,
}


class FakeEmbed:
    """Deterministic embeddings by concept; records every call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(texts)
        vectors = []
        for text in texts:
            vector = [0.0] * 5
            for word in re.findall(r"\w+", text.lower()):
                vector[CONCEPTS.get(word, 4)] += 1.0 if word in CONCEPTS else 0.01
            vectors.append(vector)
        return vectors


# --- similar, locally ------------------------------------------------------------------


async def test_similar_ranks_by_category_tags_and_words_not_by_age(store: RecordStore) -> None:
    target = listing(
        ALICE,
        "target",
        "Red city bike",
        "bikes",
        "A red city bicycle with a basket",
        ("red", "city"),
    )
    blue = listing(
        BOB, "blue", "Blue city bike", "bikes", "Blue bicycle for city riding", ("city",), NOW - 3
    )
    mountain = listing(BOB, "mtb", "Mountain bike", "bikes", "Full suspension", ("mtb",), NOW - 2)
    dress = listing(BOB, "dress", "Red dress", "clothes", "Summer dress", ("red",), NOW - 1)
    table = listing(BOB, "table", "Oak table", "furniture", "Solid oak, seats six", ("wood",))
    put(store, target, blue, mountain, dress, table)

    found = await Recommender(store, MY_ID, clock=clock).similar(target.id)

    assert found.source == "local"
    # Same category counts for more than one shared colour; nothing shared, not listed.
    assert [r.id for r in found.items] == [blue.id, mountain.id, dress.id]


async def test_similar_skips_itself_deleted_and_expired_listings(store: RecordStore) -> None:
    target = listing(ALICE, "target", "Red bike", "bikes", tags=("red",))
    live = listing(BOB, "live", "Red bike too", "bikes", tags=("red",), created=NOW - 1)
    expired = listing(BOB, "old", "Red bike", "bikes", tags=("red",), created=NOW - 31 * DAY)
    deleted = listing(BOB, "gone", "Red bike", "bikes", tags=("red",))
    tombstone = records.sign_record(
        BOB,
        kind="tombstone",
        subject="gone",
        seq=2,
        created=NOW,
        body=records.TombstoneBody(of="listing"),
    )
    put(store, target, live, expired, deleted, tombstone)

    found = await Recommender(store, MY_ID, clock=clock).similar(target.id, limit=10)

    assert [r.id for r in found.items] == [live.id]


async def test_similar_to_an_unknown_or_non_listing_record_is_empty(store: RecordStore) -> None:
    message = records.sign_record(
        ALICE,
        kind="message",
        subject="m1",
        seq=1,
        created=NOW,
        body=records.MessageBody(channel="general", text="hello"),
    )
    put(store, message, listing(BOB, "b", "Red bike", "bikes"))
    recommender = Recommender(store, MY_ID, clock=clock)
    assert (await recommender.similar(message.id)).items == []
    assert (await recommender.similar("bafyreinothere")).items == []


async def test_similar_finds_old_matches_beyond_the_newest_candidates(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recommend, "MAX_CANDIDATES", 6)
    target = listing(ALICE, "target", "Tandem bicycle", "bikes")
    old = listing(BOB, "old", "Vintage tandem", "antiques", created=NOW - 10 * DAY)
    newer = [
        listing(BOB, f"n{i}", f"Garden chair {i}", "garden", created=NOW - i) for i in range(10)
    ]
    put(store, target, old, *newer)

    found = await Recommender(store, MY_ID, clock=clock).similar(target.id)

    # Not among the six newest, but found through the full-text index by its word "tandem".
    assert [r.id for r in found.items] == [old.id]


# --- for you, locally ------------------------------------------------------------------


async def test_for_you_follows_own_bought_and_replied_listings(store: RecordStore) -> None:
    mine = listing(ME, "mine", "Road bike", "bikes", "Carbon road bike", ("road",))
    helmet = listing(ALICE, "helmet", "Cycling helmet", "sports", "Size M", ("cycling",))
    receipt = records.sign_record(
        BRIDGE,
        kind="receipt",
        subject="pi_test1",
        seq=1,
        created=NOW,
        body=records.ReceiptBody(
            listing=helmet.id,
            listing_subject=helmet.subject,
            seller=identity.peer_id_of(ALICE),
            buyer=MY_ID,
            amount=4000,
            currency="EUR",
            payment_intent="pi_test1",
            status="paid",
        ),
    )
    tent = listing(ALICE, "tent", "Camping tent", "outdoor", "Two person tent", ("camping",))
    reply = records.sign_record(
        ME,
        kind="message",
        subject="m1",
        seq=1,
        created=NOW,
        body=records.MessageBody(channel="general", text="Still there?", reply_to=tent.id),
    )
    racer = listing(BOB, "racer", "Racing road bike", "bikes", tags=("road",), created=NOW - 5)
    shoes = listing(BOB, "shoes", "Cycling shoes", "sports", tags=("cycling",), created=NOW - 4)
    stove = listing(BOB, "stove", "Camping stove", "outdoor", tags=("camping",), created=NOW - 3)
    sofa = listing(BOB, "sofa", "Green sofa", "furniture", "Three seats", created=NOW - 1)
    my_other = listing(ME, "other", "Road bike wheels", "bikes", tags=("road",))
    put(store, mine, helmet, receipt, tent, reply, racer, shoes, stove, sofa, my_other)

    found = await Recommender(store, MY_ID, clock=clock).for_you(limit=10)

    ids = [r.id for r in found.items]
    assert found.source == "local"
    assert set(ids[:3]) == {racer.id, shoes.id, stove.id}
    assert ids[3:] == [sofa.id]  # then the newest others, so the list is not short
    assert mine.id not in ids and my_other.id not in ids  # never the member's own
    assert helmet.id not in ids and tent.id not in ids  # nor what they already know


async def test_for_you_with_no_interests_is_the_newest_listings_of_others(
    store: RecordStore,
) -> None:
    older = listing(ALICE, "a", "Lamp", "home", created=NOW - 2)
    newest = listing(BOB, "b", "Kettle", "kitchen", created=NOW - 1)
    put(store, older, newest)
    found = await Recommender(store, MY_ID, clock=clock).for_you()
    assert [r.id for r in found.items] == [newest.id, older.id]
    assert found.source == "local"


# --- embeddings ------------------------------------------------------------------------


async def test_embeddings_find_what_shares_meaning_but_no_words(store: RecordStore) -> None:
    target = listing(ALICE, "target", "Kids bike", "bikes")
    bicycle = listing(BOB, "bicycle", "Bicycle", "cycling", "For a child", created=NOW - 2)
    kids_table = listing(BOB, "ktable", "Kids table", "furniture", created=NOW - 1)
    put(store, target, bicycle, kids_table)
    embed = FakeEmbed()

    local = await Recommender(store, MY_ID, clock=clock).similar(target.id)
    found = await Recommender(store, MY_ID, embed, clock=clock).similar(target.id)

    assert [r.id for r in local.items] == [kids_table.id]  # "kids" is the only shared word
    assert found.source == "embeddings"
    assert [r.id for r in found.items] == [bicycle.id, kids_table.id]


async def test_embeddings_are_cached_by_record_and_asked_in_protocol_sized_batches(
    store: RecordStore,
) -> None:
    target = listing(ALICE, "target", "Oak desk", "furniture")
    others = [listing(BOB, f"t{i}", f"Oak table {i}", "furniture") for i in range(40)]
    put(store, target, *others)
    embed = FakeEmbed()
    recommender = Recommender(store, MY_ID, embed, clock=clock)

    first = await recommender.similar(target.id)
    asked = sum(len(call) for call in embed.calls)
    second = await recommender.similar(target.id)

    assert asked == 41  # the listing and its 40 candidates, once each
    assert max(len(call) for call in embed.calls) <= MAX_EMBED_TEXTS
    assert sum(len(call) for call in embed.calls) == asked  # all from the cache
    assert first == second


async def test_the_embedding_cache_is_bounded(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recommend, "EMBEDDING_CACHE_SIZE", 3)
    target = listing(ALICE, "target", "Oak desk", "furniture")
    put(store, target, *[listing(BOB, f"t{i}", f"Oak table {i}", "furniture") for i in range(5)])
    embed = FakeEmbed()
    recommender = Recommender(store, MY_ID, embed, clock=clock)

    await recommender.similar(target.id)
    before = sum(len(call) for call in embed.calls)
    await recommender.similar(target.id)

    assert sum(len(call) for call in embed.calls) > before  # some were dropped and asked again


async def test_for_you_with_embeddings_ranks_by_meaning(store: RecordStore) -> None:
    mine = listing(ME, "mine", "Bicycle", "cycling", "Old but good")
    helmet = listing(BOB, "helmet", "Helmet", "sports", created=NOW - 2)
    sofa = listing(BOB, "sofa", "Sofa", "furniture", created=NOW - 1)
    put(store, mine, helmet, sofa)

    found = await Recommender(store, MY_ID, FakeEmbed(), clock=clock).for_you()

    assert found.source == "embeddings"
    assert [r.id for r in found.items] == [helmet.id, sofa.id]


async def test_a_failing_embedding_function_falls_back_to_the_local_ranking(
    store: RecordStore,
) -> None:
    target = listing(ALICE, "target", "Kids bike", "bikes")
    bicycle = listing(BOB, "bicycle", "Bicycle", "cycling", "For a child")
    kids_table = listing(BOB, "ktable", "Kids table", "furniture")
    put(store, target, bicycle, kids_table)

    async def broken(texts: list[str]) -> list[list[float]]:
        raise ConnectionError("no AI bridge")

    async def short(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0]]  # one vector, whatever was asked

    for embed in (broken, short):
        found = await Recommender(store, MY_ID, embed, clock=clock).similar(target.id)
        assert found.source == "local"
        assert [r.id for r in found.items] == [kids_table.id]


async def test_a_hanging_embedding_function_falls_back_after_a_timeout(
    store: RecordStore, autojump_clock: trio.testing.MockClock
) -> None:
    target = listing(ALICE, "target", "Kids bike", "bikes")
    kids_table = listing(BOB, "ktable", "Kids table", "furniture")
    put(store, target, kids_table)

    async def hangs(texts: list[str]) -> list[list[float]]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    started = trio.current_time()
    found = await Recommender(store, MY_ID, hangs, clock=clock).similar(target.id)

    assert found.source == "local"
    assert [r.id for r in found.items] == [kids_table.id]
    assert trio.current_time() - started == pytest.approx(recommend.EMBED_TIMEOUT_S, abs=1)
