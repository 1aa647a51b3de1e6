"""An in-memory block source for exporter tests."""

from zion.protocols.cid import Cid
from zion.storage.unixfs.importer import DiscardingSink


class MemoryBlocks(DiscardingSink):
    def __init__(self) -> None:
        super().__init__()
        self.store: dict[bytes, bytes] = {}

    def put(self, cid: Cid, block: bytes, *, verify: bool = False) -> bool:
        super().put(cid, block)
        new = cid.multihash not in self.store
        self.store[cid.multihash] = block
        return new

    async def get_block(self, cid: Cid) -> bytes:
        return self.store[cid.multihash]
