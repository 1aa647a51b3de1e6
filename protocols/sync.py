"""Range-based set reconciliation for /zion/sync/1.0.0 (in the spirit of Negentropy).

Both sides hold the set of records they keep, ordered by (created, record ID). The initiator
wants to learn which of the responder's records it lacks; the responder runs the same
protocol on its own connection to learn the reverse. Each round the initiator sends ranges
with its count and fingerprint in each; the responder skips ranges that match, lists its IDs
for small ranges, and splits large ones into SPLIT_FANOUT sub-ranges with its own
fingerprints, which the initiator compares and sends back where they differ. The responder's
count per range shrinks every round, so the walk ends after about log16(n) rounds.

Then the initiator asks for the records it lacks (``get``) and the responder streams them
back in batches (``records``, then ``end``). Everything here is sans-IO; the node moves frames.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from sortedcontainers import SortedList

from zion.protocols import cid, encoding, limits
from zion.protocols.errors import ProtocolError

PROTOCOL_ID: Final = "/zion/sync/1.0.0"

#: Ranges holding at most this many of the responder's items are listed, not split.
LIST_THRESHOLD: Final = 64
SPLIT_FANOUT: Final = 16
#: A walk deeper than this is a misbehaving peer (log16 of 2^64 is 16).
MAX_ROUNDS: Final = 24
FINGERPRINT_BYTES: Final = 16
#: A responder examines at most this many times its own set size per session: an honest
#: walk examines each item about once per round.
WORK_BUDGET_FACTOR: Final = MAX_ROUNDS + 8
#: The initiator stops collecting past this many missing items; the next session continues.
MAX_MISSING: Final = 1_000_000

#: (created ms, record ID as CID bytes)
Item = tuple[int, bytes]
#: A range bound; None is -infinity as a lower bound and +infinity as an upper one.
Bound = Item | None


@dataclass(frozen=True, slots=True)
class Range:
    lo: Bound
    hi: Bound
    count: int
    fingerprint: bytes


def fingerprint(items: Iterable[Item]) -> tuple[int, bytes]:
    """Count and fingerprint of a set of items: a hash of the count and the sum of the IDs'
    digests modulo 2^256, so it is order-free and cheap to combine."""
    total = 0
    count = 0
    for _, record_id in items:
        total += int.from_bytes(record_id[-32:], "big")
        count += 1
    digest = hashlib.sha256(count.to_bytes(8, "big") + (total % 2**256).to_bytes(32, "big"))
    return count, digest.digest()[:FINGERPRINT_BYTES]


class ItemIndex:
    """The sorted set of (created, ID) a node offers to sync."""

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._items: SortedList = SortedList(items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: Item) -> bool:
        return item in self._items

    def add(self, item: Item) -> None:
        if item not in self._items:
            self._items.add(item)

    def discard(self, item: Item) -> None:
        self._items.discard(item)

    def slice(self, lo: Bound, hi: Bound) -> list[Item]:
        start = 0 if lo is None else self._items.bisect_left(lo)
        stop = len(self._items) if hi is None else self._items.bisect_left(hi)
        return list(self._items[start:stop])

    def describe(self, lo: Bound, hi: Bound) -> Range:
        count, fp = fingerprint(self.slice(lo, hi))
        return Range(lo, hi, count, fp)


def _split(items: list[Item], lo: Bound, hi: Bound) -> list[Range]:
    """Cut a sorted run of items into SPLIT_FANOUT ranges of about equal count."""
    step = max(1, -(-len(items) // SPLIT_FANOUT))
    starts = list(range(0, len(items), step))
    ranges = []
    for number, start in enumerate(starts):
        part = items[start : start + step]
        lower = lo if number == 0 else items[start]
        upper = hi if number == len(starts) - 1 else items[start + step]
        count, fp = fingerprint(part)
        ranges.append(Range(lower, upper, count, fp))
    return ranges


@dataclass(slots=True)
class Responder:
    """Answers reconciliation rounds from its own index, within a bounded amount of work."""

    index: ItemIndex
    examined: int = 0

    def answer(self, ranges: list[Range]) -> tuple[list[Range], list[Item]]:
        """Sub-ranges the initiator should compare, and items listed outright.

        Ranges must be in order and must not overlap (an honest initiator only sends back
        pieces of earlier answers), so one frame costs at most one pass over the set.
        """
        _check_ordered(ranges)
        out_ranges: list[Range] = []
        listed: list[Item] = []
        budget = WORK_BUDGET_FACTOR * max(len(self.index), LIST_THRESHOLD)
        for asked in ranges:
            items = self.index.slice(asked.lo, asked.hi)
            self.examined += len(items) + 1
            if self.examined > budget:
                raise ProtocolError("sync-too-costly", "the peer asked for too much work")
            count, fp = fingerprint(items)
            if count == asked.count and fp == asked.fingerprint:
                continue
            listing_is_cheap = count <= LIST_THRESHOLD or asked.count == 0
            if listing_is_cheap and len(listed) + count <= limits.MAX_SYNC_IDS_PER_FRAME:
                listed.extend(items)
            elif count > 0:
                out_ranges.extend(_split(items, asked.lo, asked.hi))
        return out_ranges, listed


def _check_ordered(ranges: list[Range]) -> None:
    previous_hi: Bound = None
    for number, current in enumerate(ranges):
        if number > 0 and (previous_hi is None or (current.lo is None or current.lo < previous_hi)):
            raise ProtocolError("malformed", "sync ranges overlap or are out of order")
        previous_hi = current.hi


@dataclass(slots=True)
class Initiator:
    """Walks the responder's set and collects the items it lacks."""

    index: ItemIndex
    missing: list[Item] = field(default_factory=list)
    rounds: int = 0

    def first_request(self) -> list[Range]:
        return [self.index.describe(None, None)]

    def next_request(self, ranges: list[Range], listed: list[Item]) -> list[Range]:
        """Take a reply; return the next round's ranges (empty when done)."""
        self.rounds += 1
        if self.rounds > MAX_ROUNDS:
            raise ProtocolError("sync-too-deep", f"more than {MAX_ROUNDS} rounds")
        self.missing.extend(item for item in listed if item not in self.index)
        if len(self.missing) >= MAX_MISSING:
            del self.missing[MAX_MISSING:]
            return []  # enough for one session; the next one continues from there
        out: list[Range] = []
        for theirs in ranges:
            mine = self.index.describe(theirs.lo, theirs.hi)
            if (mine.count, mine.fingerprint) != (theirs.count, theirs.fingerprint):
                out.append(mine)
        return out


# --- wire messages ------------------------------------------------------------------------


def _encode_bound(bound: Bound) -> Any:
    return None if bound is None else [bound[0], bound[1]]


def _decode_bound(value: Any) -> Bound:
    if value is None:
        return None
    return _decode_item(value)


def _decode_item(value: Any) -> Item:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], int)
        or isinstance(value[0], bool)
        or not isinstance(value[1], bytes)
        or len(value[1]) != cid.RECORD_ID_BYTES
    ):
        raise ProtocolError("malformed", "bad sync item")
    return value[0], value[1]


def encode_recon(ranges: list[Range], listed: list[Item] | None = None) -> bytes:
    return encoding.encode(
        {
            "t": "recon",
            "ranges": [
                [_encode_bound(r.lo), _encode_bound(r.hi), r.count, r.fingerprint] for r in ranges
            ],
            "have": [[created, record_id] for created, record_id in listed or ()],
        }
    )


def encode_get(ids: list[bytes]) -> bytes:
    return encoding.encode({"t": "get", "ids": ids})


def encode_records(blocks: list[bytes]) -> bytes:
    return encoding.encode({"t": "records", "records": blocks})


def encode_end() -> bytes:
    return encoding.encode({"t": "end"})


@dataclass(frozen=True, slots=True)
class Recon:
    ranges: list[Range]
    listed: list[Item]


@dataclass(frozen=True, slots=True)
class Get:
    ids: list[bytes]


@dataclass(frozen=True, slots=True)
class Records:
    blocks: list[bytes]


@dataclass(frozen=True, slots=True)
class End:
    pass


Message = Recon | Get | Records | End


def decode_message(frame: bytes) -> Message:
    """Decode one sync frame; ProtocolError for anything malformed or over a limit."""
    value = encoding.decode(frame)
    if not isinstance(value, dict):
        raise ProtocolError("malformed", "sync frame is not a map")
    kind = value.get("t")
    if kind == "recon":
        return _decode_recon(value)
    if kind == "get":
        ids = value.get("ids")
        if not isinstance(ids, list) or len(ids) > limits.MAX_SYNC_GET_IDS:
            raise ProtocolError("malformed", "bad get")
        if not all(isinstance(i, bytes) and len(i) == cid.RECORD_ID_BYTES for i in ids):
            raise ProtocolError("malformed", "bad record ID in get")
        return Get(ids)
    if kind == "records":
        blocks = value.get("records")
        if not isinstance(blocks, list) or not all(isinstance(b, bytes) for b in blocks):
            raise ProtocolError("malformed", "bad records")
        if len(blocks) > limits.MAX_BATCH_RECORDS:
            raise ProtocolError("bad-batch", "too many records in one frame")
        return Records(blocks)
    if kind == "end":
        return End()
    raise ProtocolError("malformed", f"unknown sync message {kind!r}")


def _decode_recon(value: dict[str, Any]) -> Recon:
    raw_ranges = value.get("ranges")
    raw_listed = value.get("have")
    if not isinstance(raw_ranges, list) or not isinstance(raw_listed, list):
        raise ProtocolError("malformed", "bad recon")
    if len(raw_ranges) > limits.MAX_SYNC_RANGES_PER_FRAME:
        raise ProtocolError("oversized", f"{len(raw_ranges)} ranges in one frame")
    if len(raw_listed) > limits.MAX_SYNC_IDS_PER_FRAME:
        raise ProtocolError("oversized", f"{len(raw_listed)} items in one frame")
    ranges = []
    for raw in raw_ranges:
        if (
            not isinstance(raw, list)
            or len(raw) != 4
            or not isinstance(raw[2], int)
            or isinstance(raw[2], bool)
            or raw[2] < 0
            or not isinstance(raw[3], bytes)
            or len(raw[3]) != FINGERPRINT_BYTES
        ):
            raise ProtocolError("malformed", "bad range")
        lo, hi = _decode_bound(raw[0]), _decode_bound(raw[1])
        if lo is not None and hi is not None and not lo < hi:
            raise ProtocolError("malformed", "empty or inverted range")
        ranges.append(Range(lo, hi, raw[2], raw[3]))
    return Recon(ranges, [_decode_item(item) for item in raw_listed])


def chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
