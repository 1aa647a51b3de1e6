"""Content on IPFS: add, read, pin, collect garbage, CAR in and out.

The node's side of the blockstore, importer and exporter: CPU and disk work goes to worker
threads (one import never stalls gossip), blocks that are not here are asked of the network
within the retrieval timeout, and every import holds Blockstore.protect until its root is
pinned, so a GC running meanwhile cannot take its blocks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO, Any, Final

import trio

from zion.gateway.services import (
    ContentEntry,
    ContentNode,
    InvalidInput,
    NotFound,
    RetrievalTimeout,
    Unavailable,
    Upload,
)
from zion.node.bitswap import BitswapBusy
from zion.protocols import car as car_format
from zion.protocols.cid import IDENTITY, Cid
from zion.protocols.errors import ProtocolError
from zion.protocols.unixfs import DataType
from zion.storage import gc as garbage
from zion.storage.blockstore import BadBlock, BlockNotFound, Blockstore, BlockWriter
from zion.storage.pins import USER, PinStore
from zion.storage.unixfs import (
    PROFILES,
    BlockSink,
    ImportedNode,
    ImportProfile,
    UnixFsError,
    exporter,
    import_file,
)
from zion.storage.unixfs.importer import build_directory

log = logging.getLogger(__name__)

#: Asks the network for a block; returns it (verified) or raises trio.TooSlowError / KeyError.
BlockFetch = Callable[[Cid], Awaitable[bytes]]
#: Files in one upload (a directory added with `zion ipfs add -r`).
MAX_UPLOAD_FILES: Final = 100_000


class ContentService:
    def __init__(
        self,
        store: Blockstore,
        pins: PinStore,
        *,
        profile: str,
        retrieval_timeout_s: float,
        max_upload_bytes: int,
        max_storage_bytes: int = 1 << 50,
        fetch: BlockFetch | None = None,
        prefetch: Callable[[list[Cid]], None] | None = None,
    ) -> None:
        self._store = store
        self._pins = pins
        self._profile = PROFILES[profile]
        self._timeout = retrieval_timeout_s
        self._max_upload = max_upload_bytes
        self._max_storage = max_storage_bytes
        self.fetch = fetch
        self._prefetch = prefetch
        #: Called with each root added here, to announce it (the DHT); set by the daemon.
        self.announce: Callable[[Cid], None] | None = None
        self._gc_lock = trio.Lock()

    @property
    def max_upload_bytes(self) -> int:
        return self._max_upload

    # --- blocks ------------------------------------------------------------------------

    async def get_block(self, cid: Cid) -> bytes:
        """The block, from here or else from the network; RetrievalTimeout if neither."""
        if cid.hash_code == IDENTITY:  # the "hash" is the block itself
            return cid.digest
        try:
            return await trio.to_thread.run_sync(self._store.get, cid)
        except BlockNotFound:
            pass
        if self.fetch is None:
            raise RetrievalTimeout(f"{cid} is not here and this node does not fetch content")
        await self._make_room()
        with trio.move_on_after(self._timeout):
            try:
                return await self.fetch(cid)
            except BitswapBusy as exc:
                raise Unavailable(f"cannot fetch {cid} now: {exc}") from None
        raise RetrievalTimeout(f"{cid} was not found within {self._timeout:g} s")

    async def _make_room(self) -> None:
        """Before fetching: past max_storage_bytes, collect garbage; if that does not help,
        refuse (any web page can embed /ipfs/ URLs: fetching must not fill the disk)."""
        if self._store.total_bytes < self._max_storage:
            return
        if not self._gc_lock.locked():  # a pin in progress holds it: no GC from within it
            await self.gc()
        if self._store.total_bytes >= self._max_storage:
            raise Unavailable(
                f"the blockstore holds {self._store.total_bytes:,} bytes, the most"
                f" [ipfs] max_storage_bytes allows: unpin content or raise the limit"
            )

    def prefetch(self, cids: list[Cid]) -> None:
        """Ask the network now for blocks a read will soon need (exporter.Prefetcher)."""
        if self._prefetch is not None and self._store.total_bytes < self._max_storage:
            missing = [cid for cid in cids if not self._store.has(cid)]
            if missing:
                self._prefetch(missing)

    async def block(self, cid: Cid) -> bytes:
        return await self.get_block(cid)

    # --- reading -----------------------------------------------------------------------

    async def resolve(self, root: Cid, segments: list[str]) -> ContentNode:
        try:
            node = await exporter.resolve(self, root, segments)
        except exporter.NotUnixFs:
            if segments:
                raise NotFound(f"{root} is not a UnixFS directory") from None
            return ContentNode(root, "block", len(await self.get_block(root)), None)
        except exporter.NoSuchPath as exc:
            raise NotFound(str(exc)) from None
        except UnixFsError as exc:
            raise InvalidInput(str(exc)) from None
        if node.type == DataType.METADATA:
            # Never written by Kubo or Helia; served as the block it is.
            return ContentNode(root, "block", len(await self.get_block(node.cid)), None)
        # A symlink reads as its target path (its Data), like a small text file.
        kind = "directory" if node.is_directory else "file"
        return ContentNode(node.cid, kind, node.size, node)

    async def read(self, node: ContentNode, start: int, end: int | None) -> AsyncIterator[bytes]:
        if node.kind == "block":
            block = await self.get_block(node.cid)
            yield block[start:end]
            return
        assert isinstance(node.handle, exporter.UnixFsNode)
        try:
            async for piece in exporter.read_file(self, node.handle, start, end):
                yield piece
        except UnixFsError as exc:
            # Headers are gone by now; the gateway aborts the response.
            raise InvalidInput(str(exc)) from None

    async def list_directory(self, node: ContentNode) -> AsyncIterator[ContentEntry]:
        assert isinstance(node.handle, exporter.UnixFsNode)
        async for entry in exporter.list_directory(self, node.handle):
            yield ContentEntry(entry.name, entry.cid, entry.tsize)

    async def car(self, root: Cid, segments: list[str]) -> AsyncIterator[bytes]:
        """A CAR rooted at ``root``: first the blocks that lead along ``segments`` (so a
        verifying client can check the path), then the whole DAG at its end."""
        path_blocks = _RecordingGetter(self)
        target = await exporter.resolve(path_blocks, root, segments) if segments else None
        yield car_format.encode_header([root])
        sent: set[bytes] = set()
        for cid, block in path_blocks.seen:
            if cid.multihash not in sent:
                sent.add(cid.multihash)
                yield car_format.encode_section(cid, block)
        start = target.cid if target is not None else root
        async for cid, block in exporter.walk_blocks(self, start):
            if cid.multihash not in sent:
                yield car_format.encode_section(cid, block)

    # --- adding ------------------------------------------------------------------------

    async def add(
        self,
        uploads: list[Upload],
        *,
        profile: str | None,
        pin: bool,
        wrap: bool,
        owner: str = USER,
    ) -> dict[str, Any]:
        """Import uploaded files; several (or ``wrap``) become one directory tree, pinned for
        ``owner`` unless ``pin`` is false."""
        if not uploads:
            raise InvalidInput("nothing to add: send at least one file")
        if len(uploads) > MAX_UPLOAD_FILES:
            raise InvalidInput(f"at most {MAX_UPLOAD_FILES} files per upload")
        chosen = self._profile if profile is None else PROFILES.get(profile)
        if chosen is None:
            raise InvalidInput(f"unknown profile {profile!r}; one of {', '.join(PROFILES)}")

        def work() -> dict[str, Any]:
            files = []
            tree: dict[str, Any] = {}
            with BlockWriter(self._store) as sink:
                for upload in uploads:
                    parts = _split_upload_path(upload.path)
                    if upload.is_directory:
                        _place_directory(tree, parts)
                        continue
                    node = import_file(upload.file, sink, chosen)
                    files.append({"path": "/".join(parts), "cid": str(node.cid), "size": node.size})
                    _place(tree, parts, node)
                # One top-level name (a file, or a directory sent as "dir/...") is the root
                # itself, as with `ipfs add`; several names are wrapped in a directory.
                top, *others = tree.values()
                if others or wrap:
                    root = _build(tree, sink, chosen)
                elif isinstance(top, ImportedNode):
                    root = top
                else:
                    root = _build(top, sink, chosen)
            return {"cid": str(root.cid), "size": root.size, "files": files}

        # The blocks stay protected from GC until the root is pinned; pinning waits for a GC
        # in progress, whose pin snapshot would not hold the new root.
        with self._store.protect():
            try:
                result = await trio.to_thread.run_sync(work)
            except UnixFsError as exc:
                raise InvalidInput(str(exc)) from None
            if pin:
                async with self._gc_lock:
                    self._pins.add(Cid.parse(result["cid"]), owner)
        if self.announce is not None:
            self.announce(Cid.parse(result["cid"]))
        return result

    async def import_car(self, stream: IO[bytes], *, pin: bool) -> list[Cid]:
        """Store every block of a CAR (each verified against its CID); pin its roots."""

        def work() -> list[Cid]:
            roots, sections = car_format.read_car(stream)
            for cid, block in sections:
                self._store.put(cid, block, verify=True)
            self._store.sync()
            return roots

        with self._store.protect():
            try:
                roots = await trio.to_thread.run_sync(work)
            except (ProtocolError, BadBlock) as exc:
                raise InvalidInput(f"bad CAR: {exc}") from None
            if pin:
                async with self._gc_lock:
                    for root in roots:
                        self._pins.add(root, USER)
        return roots

    # --- pins and GC -------------------------------------------------------------------

    async def pin(self, cid: Cid) -> None:
        """Fetch every block under ``cid`` that is not here, then pin it. No GC runs
        meanwhile: blocks already here are not protected by being read."""
        async with self._gc_lock:
            try:
                async for _ in exporter.walk_blocks(self, cid):
                    pass
            except UnixFsError as exc:
                raise InvalidInput(f"cannot pin {cid}: {exc}") from None
            self._pins.add(cid, USER)

    async def unpin(self, cid: Cid, owner: str = USER) -> bool:
        return self._pins.remove(cid, owner)

    async def replace_pins(self, owner: str, cids: list[Cid]) -> None:
        """Make ``owner``'s pins exactly ``cids`` (a listing and its images)."""
        async with self._gc_lock:
            self._pins.replace_owner(owner, cids)

    def pins(self) -> list[dict[str, Any]]:
        return [{"cid": str(pin.cid), "owners": list(pin.owners)} for pin in self._pins.pins()]

    async def gc(self) -> dict[str, int]:
        async with self._gc_lock:
            roots = [pin.cid for pin in self._pins.pins()]
            result = await trio.to_thread.run_sync(garbage.collect, self._store, roots)
        log.info("gc removed %d blocks (%d bytes)", result.blocks_removed, result.bytes_freed)
        return {
            "blocks_removed": result.blocks_removed,
            "bytes_freed": result.bytes_freed,
            "blocks_kept": result.blocks_kept,
        }

    def stats(self) -> dict[str, Any]:
        return {
            "blocks": self._store.block_count,
            "bytes": self._store.total_bytes,
            "pins": len(self._pins.pins()),
            "profile": self._profile.name,
        }


class _RecordingGetter:
    """Remembers every block a path resolution reads, in order."""

    def __init__(self, source: ContentService) -> None:
        self._source = source
        self.seen: list[tuple[Cid, bytes]] = []

    async def get_block(self, cid: Cid) -> bytes:
        block = await self._source.get_block(cid)
        self.seen.append((cid, block))
        return block


def _split_upload_path(path: str) -> list[str]:
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise UnixFsError(f"bad file name in upload: {path[:200]!r}")
    return parts


def _place(tree: dict[str, Any], parts: list[str], node: ImportedNode) -> None:
    for part in parts[:-1]:
        child = tree.setdefault(part, {})
        if not isinstance(child, dict):
            raise UnixFsError(f"{part!r} is both a file and a directory in the upload")
        tree = child
    if parts[-1] in tree:
        raise UnixFsError(f"{'/'.join(parts)!r} appears twice in the upload")
    tree[parts[-1]] = node


def _place_directory(tree: dict[str, Any], parts: list[str]) -> None:
    for part in parts:
        tree = tree.setdefault(part, {})
        if not isinstance(tree, dict):
            raise UnixFsError(f"{part!r} is both a file and a directory in the upload")


def _build(tree: dict[str, Any], store: BlockSink, profile: ImportProfile) -> ImportedNode:
    entries = [
        (name, value if isinstance(value, ImportedNode) else _build(value, store, profile))
        for name, value in sorted(tree.items())
    ]
    return build_directory(entries, store, profile)
