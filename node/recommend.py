"""Recommendations from the node's own data: listings like a given one, and listings for the
member. They need no bridge and no network.

Candidates come from the record store, bounded by MAX_CANDIDATES: the newest listings of the
categories in question, full-text matches for their most telling words (older listings that
the newest ones would miss), then the newest listings. Deleted listings are gone from the
store; expired ones (not yet swept by the store) are skipped.

Local ranking scores what a candidate shares with what is wanted: the category, tags, and
words of titles and descriptions (title words count double), each word weighted by how rare
it is among the candidates, so that "bike" matters more than "good". With an embedding
function (a bridge's ``embed``, or the operator's own AiBackend.embed), the best
MAX_EMBEDDED_CANDIDATES of the local ranking are re-ranked by cosine similarity of the
embeddings of their texts, which also finds "bicycle" for "bike". Embeddings are cached by
record ID (a record never changes). If embedding fails or is slow, the local ranking stands.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

import trio

from zion.node.clock import now_ms
from zion.protocols.bridge import MAX_EMBED_TEXT_CHARS, MAX_EMBED_TEXTS
from zion.protocols.records import ListingBody, MessageBody, ReceiptBody, Record
from zion.storage.records import MAX_PAGE, RecordStore

log = logging.getLogger(__name__)

Embed = Callable[[list[str]], Awaitable[list[list[float]]]]

#: Listings considered per recommendation, from all sources together.
MAX_CANDIDATES: Final = 500
#: Interest categories whose newest listings join the candidates, and how many of each.
MAX_QUERY_CATEGORIES: Final = 3
MAX_PER_CATEGORY: Final = MAX_PAGE
#: Words looked up in the full-text index, and matches taken per word.
MAX_QUERY_WORDS: Final = 8
MAX_PER_WORD: Final = 50
#: The member's own listings, and listings they refer to, that make up their interests.
MAX_INTEREST_LISTINGS: Final = 50
#: Newest receipts and messages searched for the member's references to listings.
MAX_SCANNED_REFERENCES: Final = 500
#: Candidates re-ranked by embeddings (the best of the local ranking), and interest listings
#: embedded to stand for the member.
MAX_EMBEDDED_CANDIDATES: Final = 64
MAX_EMBEDDED_INTERESTS: Final = 16
#: Embeddings kept in memory, by record ID, least recently used dropped first.
EMBEDDING_CACHE_SIZE: Final = 4096
#: Texts per call of the embedding function (what one bridge request carries).
EMBED_BATCH: Final = MAX_EMBED_TEXTS
#: Characters of a listing's text embedded: title, category and tags come first.
MAX_EMBEDDED_CHARS: Final = min(2000, MAX_EMBED_TEXT_CHARS)
#: How long embedding may take before the local ranking is used instead.
EMBED_TIMEOUT_S: Final = 10.0
CATEGORY_WEIGHT: Final = 3.0
TAG_WEIGHT: Final = 1.5
TITLE_WORD_WEIGHT: Final = 2.0

_WORD_RE: Final = re.compile(r"\w+")
_MIN_WORD_CHARS: Final = 3
# Words that say nothing about what a listing is.
_STOPWORDS_TEXT: Final = (
    "and are but can for from has have its new not off one our out the this that very was "
    "were will with you your good great nice used like item sale sell selling"
)
_STOPWORDS: Final = frozenset(_STOPWORDS_TEXT.split())


@dataclass(frozen=True, slots=True)
class Recommendations:
    items: list[Record]
    #: Where the ranking came from: the node's own data, or embeddings (from an AI bridge).
    source: Literal["local", "embeddings"]


@dataclass(slots=True)
class _Profile:
    """What is wanted: weights of categories, tags and words (1.0 = in every listing)."""

    categories: dict[str, float] = field(default_factory=dict)
    tags: dict[str, float] = field(default_factory=dict)
    words: dict[str, float] = field(default_factory=dict)


class _EmbeddingFailed(Exception):
    pass


class Recommender:
    def __init__(
        self,
        store: RecordStore,
        peer_id: str,
        embed: Embed | None = None,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._store = store
        self._peer_id = peer_id
        self._embed = embed
        self._clock = clock
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._dimensions = 0

    async def similar(self, listing_id: str, limit: int = 8) -> Recommendations:
        """Listings like ``listing_id`` (never itself), best first. Only listings that share
        something with it when ranked locally; nothing if it is unknown or not a listing."""
        target, ranked = await trio.to_thread.run_sync(self._rank_similar, listing_id)
        if target is None:
            return Recommendations([], "local")
        if self._embed is not None and ranked:
            shortlist = [record for record, _ in ranked[:MAX_EMBEDDED_CANDIDATES]]
            reranked = await self._rerank([target], shortlist)
            if reranked is not None:
                return Recommendations(reranked[:limit], "embeddings")
        return Recommendations([r for r, score in ranked if score > 0][:limit], "local")

    async def for_you(self, limit: int = 8) -> Recommendations:
        """Listings for the member, best first, never their own.

        Their interests are the categories, tags and words of their own listings and of the
        listings they refer to: those they bought (receipts naming them as buyer) and those
        their messages reply to, which are not recommended again (they know them). Listings
        sharing most with those interests come first, then the newest others, so the list is
        full whenever there are listings. With no interests yet: the newest listings.
        """
        interests, ranked = await trio.to_thread.run_sync(self._rank_for_you)
        if self._embed is not None and interests and ranked:
            shortlist = [record for record, _ in ranked[:MAX_EMBEDDED_CANDIDATES]]
            reranked = await self._rerank(interests[:MAX_EMBEDDED_INTERESTS], shortlist)
            if reranked is not None:
                return Recommendations(reranked[:limit], "embeddings")
        return Recommendations([record for record, _ in ranked][:limit], "local")

    # --- local ranking (in a worker thread: it reads the store) ------------------------

    def _rank_similar(self, listing_id: str) -> tuple[Record | None, list[tuple[Record, float]]]:
        target = self._store.get(listing_id)
        if target is None or not isinstance(target.body, ListingBody):
            return None, []
        profile = _profile([target])
        return target, self._rank(profile, exclude={target.id}, exclude_author=None)

    def _rank_for_you(self) -> tuple[list[Record], list[tuple[Record, float]]]:
        own = self._store.listings(author=self._peer_id, limit=MAX_INTEREST_LISTINGS).items
        referenced = self._referenced_listings()
        interests = own + referenced
        ranked = self._rank(
            _profile(interests),
            exclude={record.id for record in referenced},
            exclude_author=self._peer_id,
        )
        return interests, ranked

    def _referenced_listings(self) -> list[Record]:
        ids: list[str] = []
        for receipt in self._store.of_kind("receipt", MAX_SCANNED_REFERENCES):
            if isinstance(receipt.body, ReceiptBody) and receipt.body.buyer == self._peer_id:
                ids.append(receipt.body.listing)
        for message in self._store.of_kind("message", MAX_SCANNED_REFERENCES):
            body = message.body
            is_mine = message.author == self._peer_id
            if is_mine and isinstance(body, MessageBody) and body.reply_to is not None:
                ids.append(body.reply_to)
        found: list[Record] = []
        for record_id in dict.fromkeys(ids):  # unique, in order
            record = self._store.get(record_id)
            if (
                record is not None
                and isinstance(record.body, ListingBody)
                and record.author != self._peer_id
            ):
                found.append(record)
            if len(found) >= MAX_INTEREST_LISTINGS:
                break
        return found

    def _rank(
        self, profile: _Profile, *, exclude: set[str], exclude_author: str | None
    ) -> list[tuple[Record, float]]:
        """Every candidate with its score, best first, newest first among equals."""
        candidates = self._candidates(profile, exclude, exclude_author)
        features = [_features(record) for record in candidates]
        frequency: Counter[str] = Counter()
        for _, _, words in features:
            frequency.update(words.keys())
        total = len(candidates)
        scored = []
        for record, (category, tags, words) in zip(candidates, features, strict=True):
            score = CATEGORY_WEIGHT * profile.categories.get(category, 0.0)
            score += TAG_WEIGHT * sum(profile.tags.get(tag, 0.0) for tag in tags)
            for word, weight in words.items():
                wanted = profile.words.get(word)
                if wanted:
                    rarity = math.log(1.0 + total / frequency[word])
                    score += rarity * min(wanted, weight)
            scored.append((record, score))
        scored.sort(key=lambda item: (-item[1], -item[0].created, item[0].id))
        return scored

    def _candidates(
        self, profile: _Profile, exclude: set[str], exclude_author: str | None
    ) -> list[Record]:
        now = self._clock()
        found: dict[str, Record] = {}

        def add(records: Iterable[Record]) -> None:
            for record in records:
                if len(found) >= MAX_CANDIDATES:
                    return
                if (
                    record.id in exclude
                    or record.author == exclude_author
                    or (record.expires is not None and record.expires <= now)
                ):
                    continue
                found.setdefault(record.id, record)

        for category in _top(profile.categories, MAX_QUERY_CATEGORIES):
            add(self._store.listings(category=category, limit=MAX_PER_CATEGORY).items)
        for word in _top(profile.words, MAX_QUERY_WORDS):
            add(self._store.listings(query=word, limit=MAX_PER_WORD).items)
        cursor: str | None = None
        read = 0
        while len(found) < MAX_CANDIDATES and read < MAX_CANDIDATES:
            page = self._store.listings(limit=MAX_PAGE, cursor=cursor)
            add(page.items)
            read += len(page.items)
            if page.next is None:
                break
            cursor = page.next
        return list(found.values())

    # --- embeddings ----------------------------------------------------------------------

    async def _rerank(self, wanted: list[Record], candidates: list[Record]) -> list[Record] | None:
        """``candidates`` by cosine similarity to the mean embedding of ``wanted``; None if
        embedding failed, timed out or gave something unusable."""
        with trio.move_on_after(EMBED_TIMEOUT_S):
            try:
                vectors = await self._vectors([*wanted, *candidates])
                centre = [sum(v) for v in zip(*(vectors[r.id] for r in wanted), strict=True)]
                scored = [
                    (sum(a * b for a, b in zip(centre, vectors[r.id], strict=True)), r)
                    for r in candidates
                ]
            except Exception as exc:  # any failure of a foreign function: rank locally
                log.warning("embeddings failed, recommending from local ranking: %s", exc)
                return None
            scored.sort(key=lambda item: (-item[0], -item[1].created, item[1].id))
            return [record for _, record in scored]
        log.warning("embeddings took over %ss, recommending from local ranking", EMBED_TIMEOUT_S)
        return None

    async def _vectors(self, records: list[Record]) -> dict[str, list[float]]:
        """Unit vectors by record ID, from the cache or the embedding function."""
        assert self._embed is not None
        vectors: dict[str, list[float]] = {}
        missing: dict[str, Record] = {}
        for record in records:
            cached = self._cache.get(record.id)
            if cached is not None:
                self._cache.move_to_end(record.id)
                vectors[record.id] = cached
            else:
                missing[record.id] = record
        fresh: dict[str, list[float]] = {}
        batch = list(missing.values())
        for start in range(0, len(batch), EMBED_BATCH):
            part = batch[start : start + EMBED_BATCH]
            answer = await self._embed([_text(record) for record in part])
            if len(answer) != len(part):
                raise _EmbeddingFailed(f"{len(answer)} vectors for {len(part)} texts")
            for record, vector in zip(part, answer, strict=True):
                fresh[record.id] = _unit(vector)
        dimensions = {len(vector) for vector in fresh.values()}
        if len(dimensions) > 1 or 0 in dimensions:
            raise _EmbeddingFailed("vectors of different dimensions")
        if fresh and self._cache and dimensions != {self._dimensions}:
            # Another model behind the embedding function: what is cached no longer compares.
            self._cache.clear()
            self._dimensions = 0
            raise _EmbeddingFailed("the embedding dimension changed")
        for record_id, vector in fresh.items():
            self._cache[record_id] = vector
            self._dimensions = len(vector)
        while len(self._cache) > EMBEDDING_CACHE_SIZE:
            self._cache.popitem(last=False)
        return vectors | fresh


def _normal(word: str) -> str:
    # Just enough stemming that "bikes" finds "bike"; the full-text lookup is by prefix.
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _words(text: str) -> list[str]:
    return [
        _normal(word)
        for word in (w.lower() for w in _WORD_RE.findall(text))
        if len(word) >= _MIN_WORD_CHARS and word not in _STOPWORDS and not word.isdigit()
    ]


def _features(record: Record) -> tuple[str, set[str], dict[str, float]]:
    """Category, tags (lower case) and word weights of a listing."""
    body = record.body
    assert isinstance(body, ListingBody)
    words: dict[str, float] = dict.fromkeys(
        _words(body.description + " " + " ".join(body.tags)), 1.0
    )
    words.update(dict.fromkeys(_words(body.title), TITLE_WORD_WEIGHT))
    return body.category, {tag.lower() for tag in body.tags}, words


def _profile(listings: list[Record]) -> _Profile:
    """The share of ``listings`` that has each category and tag, and the mean word weights."""
    profile = _Profile()
    if not listings:
        return profile
    share = 1.0 / len(listings)
    for record in listings:
        category, tags, words = _features(record)
        profile.categories[category] = profile.categories.get(category, 0.0) + share
        for tag in tags:
            profile.tags[tag] = profile.tags.get(tag, 0.0) + share
        for word, weight in words.items():
            profile.words[word] = profile.words.get(word, 0.0) + share * weight
    return profile


def _top(weights: dict[str, float], count: int) -> list[str]:
    return sorted(weights, key=lambda key: (-weights[key], key))[:count]


def _text(record: Record) -> str:
    body = record.body
    assert isinstance(body, ListingBody)
    head = f"{body.title}\n{body.category}"
    if body.tags:
        head += "; " + ", ".join(body.tags)
    return f"{head}\n{body.description}".strip()[:MAX_EMBEDDED_CHARS]


def _unit(vector: list[float]) -> list[float]:
    values = [float(x) for x in vector]
    if not all(map(math.isfinite, values)):
        raise _EmbeddingFailed("a vector is not finite")
    norm = math.sqrt(sum(x * x for x in values))
    return [x / norm for x in values] if norm else values
