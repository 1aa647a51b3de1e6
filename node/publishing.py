"""Signing our own records and getting them out: store first (durable), then gossip.

Gossip is batched: records published within ``window_s`` of each other on one topic travel in
one gossip message, because py-libp2p spends ~10 ms of CPU per message per node whatever its
size. The queue is bounded; if gossip cannot keep up, records wait for sync instead of
growing memory without limit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zion.node.clock import now_ms
from zion.node.ingest import Ingest
from zion.node.ratelimit import PeerRateLimiter
from zion.protocols import gossip
from zion.protocols.errors import ProtocolError
from zion.protocols.identity import peer_id_of
from zion.protocols.records import Body, Kind, Record, sign_record

log = logging.getLogger(__name__)

#: Records waiting for gossip; past this, new ones are left to sync.
MAX_GOSSIP_BACKLOG: Final = 50_000

#: Receivers take [gossip] peer_records_per_s from us, in bursts of peer_records_burst
#: (node/floodcontrol.py), and cut off a peer that keeps exceeding it: we send at most this
#: share of it, own and forwarded records together; the rest waits in the queue (or sync).
PACE_SHARE: Final = 0.8
#: Records that sync brought in are gossiped on when they are news (created this recently),
#: within this share of the pace: most of it stays for this node's own records.
FORWARD_WINDOW_MS: Final = 3600 * 1000
FORWARD_SHARE: Final = 0.25

GossipSend = Callable[[str, bytes], Awaitable[None]]


class Publisher:
    def __init__(
        self,
        key: Ed25519PrivateKey,
        ingest: Ingest,
        window_s: float,
        records_per_s: float = 100.0,
        burst: int = 1000,
    ) -> None:
        """``records_per_s``, ``burst``: what receivers take from one peer ([gossip])."""
        self._key = key
        #: The peer ID that signs what this publisher publishes.
        self.author = peer_id_of(key)
        self._ingest = ingest
        self._window_s = window_s
        self._send, self._receive = trio.open_memory_channel[tuple[str, bytes]](MAX_GOSSIP_BACKLOG)
        self.gossiped = 0
        self.dropped = 0
        # One bucket each (the limiter is per peer; "" is this node).
        self._pace = PeerRateLimiter(PACE_SHARE * records_per_s, int(PACE_SHARE * burst), 1)
        self._forward_budget = PeerRateLimiter(
            FORWARD_SHARE * records_per_s, int(FORWARD_SHARE * burst), 1
        )
        self.forwarded = 0

    async def publish(
        self,
        *,
        kind: Kind,
        subject: str,
        seq: int,
        body: Body,
        expires: int | None = None,
    ) -> Record:
        """Sign, store durably, queue for gossip; the record is ours for good on return."""
        record = sign_record(
            self._key,
            kind=kind,
            subject=subject,
            seq=seq,
            created=now_ms(),
            body=body,
            expires=expires,
        )
        await self._ingest.store_own(record)
        try:
            self._send.send_nowait((gossip.topic_for(record.family), record.block))
        except trio.WouldBlock:
            self.dropped += 1
            log.warning("gossip backlog full; record %s will travel by sync", record.id)
        return record

    def forward(self, records: list[Record]) -> None:
        """Gossip on records that sync brought in. Sync is pull-only and what it stores is
        not gossiped, so without this, peers that do not sync with the node they came from
        (the rest of a half, after a partition heals) would wait for their own next periodic
        sync with a node that has them: up to [sync] interval_s per hop. Only news, within a
        budget: a catch-up of old history stays with sync."""
        oldest = now_ms() - FORWARD_WINDOW_MS
        for record in records:
            if record.created < oldest:
                continue
            if not self._forward_budget.allow("", trio.current_time()):
                return
            try:
                self._send.send_nowait((gossip.topic_for(record.family), record.block))
            except trio.WouldBlock:
                return  # the queue is full: sync will carry it
            self.forwarded += 1

    async def _paced(self, records: int) -> None:
        """Wait until sending ``records`` keeps this node within its receivers' budget."""
        while not self._pace.allow("", trio.current_time(), records):
            missing = records - self._pace.available("", trio.current_time())
            await trio.sleep(max(missing, 1) / self._pace.rate_per_s)

    async def run(self, send: GossipSend) -> None:
        """Drain the queue forever, one batch per topic per window."""
        while True:
            first = await self._receive.receive()
            if self._window_s > 0:
                await trio.sleep(self._window_s)
            pending: dict[str, list[bytes]] = {first[0]: [first[1]]}
            while True:
                try:
                    topic, block = self._receive.receive_nowait()
                except trio.WouldBlock:
                    break
                pending.setdefault(topic, []).append(block)
            for topic, blocks in pending.items():
                for batch in gossip.pack_batches(blocks):
                    await self._paced(len(batch))
                    try:
                        await send(topic, gossip.encode_batch(batch))
                        self.gossiped += len(batch)
                    except ProtocolError as exc:  # only if a record outgrew a message
                        log.error("cannot gossip batch: %s", exc)
                    except Exception as exc:  # py-libp2p raises many types; sync will deliver
                        log.warning("gossip publish failed, sync will deliver: %r", exc)
