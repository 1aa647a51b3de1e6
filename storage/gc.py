"""Garbage collection: remove every block no pin reaches.

Mark and sweep. Mark walks each pinned DAG through the blocks present locally (a pin whose DAG
is still being fetched keeps what has arrived). Sweep deletes the rest through
Blockstore.delete, which refuses blocks that an import or fetch in progress has written since
it began (Blockstore.protect), so GC can run at any time.
"""

import contextlib
from dataclasses import dataclass

from zion.protocols.cid import DAG_PB, Cid
from zion.protocols.dagpb import decode_node
from zion.protocols.errors import ProtocolError
from zion.storage.blockstore import BlockNotFound, Blockstore


@dataclass(frozen=True, slots=True)
class GcResult:
    blocks_removed: int
    bytes_freed: int
    blocks_kept: int


def reachable(store: Blockstore, roots: list[Cid]) -> set[bytes]:
    """Multihashes of every local block under ``roots``."""
    live: set[bytes] = set()
    stack = list(roots)
    while stack:
        cid = stack.pop()
        if cid.multihash in live:
            continue
        if cid.codec != DAG_PB:  # leaves: no need to read them, only to know they are here
            if store.has(cid):
                live.add(cid.multihash)
            continue
        try:
            block = store.get(cid)
        except BlockNotFound:
            continue
        live.add(cid.multihash)
        # Stored blocks were verified against their CID; a dag-pb CID naming bytes that are
        # not dag-pb is content someone pinned as is: keep it, follow nothing.
        with contextlib.suppress(ProtocolError):
            stack.extend(link.cid for link in decode_node(block).links)
    return live


def collect(store: Blockstore, roots: list[Cid]) -> GcResult:
    live = reachable(store, roots)
    removed = freed = kept = 0
    for multihash in list(store.multihashes()):
        if multihash in live:
            kept += 1
            continue
        size = store.delete(multihash)
        if size:
            removed += 1
            freed += size
        else:
            kept += 1
    return GcResult(removed, freed, kept)
