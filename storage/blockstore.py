"""Content blocks on disk, one file per block, named by multihash.

Layout (like Kubo's flatfs "next-to-last/2"): ``<root>/<2 chars>/<base32 multihash>``, where
the two characters are the next-to-last two of the name, so blocks spread over 1024
directories. A block is written to ``<root>/.tmp``, fsynced and renamed into place: a crash
leaves either the whole block or nothing. Blocks that came from the network are hashed before
they are written; blocks our own importer made were hashed when their CID was computed.

The store is used from worker threads (imports, gateway reads), so it is thread-safe; its
counters are kept in memory and rebuilt by one directory scan at open.
"""

import base64
import contextlib
import os
import queue
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from zion.protocols import limits
from zion.protocols.cid import Cid
from zion.storage.errors import StorageError

_TMP: Final = ".tmp"
_FILE_MODE: Final = 0o600
#: Blocks a BlockWriter holds while its threads write (memory: this many blocks at most).
WRITE_AHEAD_BLOCKS: Final = 8
#: Threads writing blocks: each spends much of its time waiting in fsync, so two overlap.
WRITER_THREADS: Final = 2


class BlockNotFound(StorageError):
    def __init__(self, cid: Cid) -> None:
        super().__init__(f"block {cid} is not in the blockstore")
        self.cid = cid


class BadBlock(StorageError):
    """A block that does not hash to its CID, or is too large; nothing was written."""


class Blockstore:
    def __init__(self, root: Path, *, durable: bool = True) -> None:
        """Open (creating) the store at ``root``. ``durable=False`` skips fsync, for tests and
        --only-hash style scratch stores."""
        self._root = root
        self._tmp = root / _TMP
        self._durable = durable
        self._lock = threading.Lock()
        self._protected: list[set[bytes]] = []
        try:
            self._tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
            for leftover in self._tmp.iterdir():
                leftover.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot open blockstore {root}: {exc}") from exc
        self._count, self._bytes = self._scan()

    # --- reading ---

    def has(self, cid: Cid) -> bool:
        return self._path(cid.multihash).exists()

    def get(self, cid: Cid) -> bytes:
        try:
            return self._path(cid.multihash).read_bytes()
        except FileNotFoundError:
            raise BlockNotFound(cid) from None
        except OSError as exc:
            raise StorageError(f"cannot read block {cid}: {exc}") from exc

    def size(self, cid: Cid) -> int | None:
        try:
            return self._path(cid.multihash).stat().st_size
        except FileNotFoundError:
            return None

    @property
    def block_count(self) -> int:
        return self._count

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def multihashes(self) -> Iterator[bytes]:
        """Every stored block's multihash (a snapshot taken lazily, directory by directory)."""
        for shard in sorted(self._root.iterdir()):
            if shard.name == _TMP or not shard.is_dir():
                continue
            for entry in sorted(os.listdir(shard)):
                with contextlib.suppress(ValueError):
                    yield _decode_name(entry)

    # --- writing ---

    def put(self, cid: Cid, block: bytes, *, verify: bool = True) -> bool:
        """Store ``block`` under ``cid``; return False if it was already there.

        ``verify`` hashes the block first (always for blocks from the network); BadBlock if it
        does not match or is larger than MAX_BLOCK_BYTES.
        """
        if len(block) > limits.MAX_BLOCK_BYTES:
            raise BadBlock(f"block {cid} has {len(block)} bytes, over {limits.MAX_BLOCK_BYTES}")
        if verify and not cid.matches(block):
            raise BadBlock(f"block does not hash to {cid}")
        with self._lock:
            for protected in self._protected:
                protected.add(cid.multihash)
        path = self._path(cid.multihash)
        if path.exists():
            return False
        tmp = self._tmp / secrets.token_hex(8)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
            try:
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
                if self._durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            path.parent.mkdir(exist_ok=True)
            # link() instead of rename(): it fails if another writer put the same block
            # meanwhile, so exactly one of them counts it. Either way the name appears whole.
            try:
                os.link(tmp, path)
                created = True
            except FileExistsError:
                created = False
        except OSError as exc:
            raise StorageError(f"cannot write block {cid}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        if created:
            with self._lock:
                self._count += 1
                self._bytes += len(block)
        return created

    def delete(self, multihash: bytes) -> int:
        """Remove a block; return the bytes freed (0 if it was not there or is protected)."""
        path = self._path(multihash)
        with self._lock:
            if any(multihash in protected for protected in self._protected):
                return 0
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                return 0
            self._count -= 1
            self._bytes -= size
        return size

    @contextlib.contextmanager
    def protect(self) -> Iterator[set[bytes]]:
        """While open, every block put (by anyone) is kept from ``delete``: an import or a
        fetch in progress holds one so that a concurrent GC cannot remove blocks it wrote
        before its root is pinned."""
        written: set[bytes] = set()
        with self._lock:
            self._protected.append(written)
        try:
            yield written
        finally:
            with self._lock:
                self._protected.remove(written)

    def sync(self) -> None:
        """Make renames durable (the shard directories' entries)."""
        if not self._durable:
            return
        for shard in self._root.iterdir():
            if shard.is_dir():
                fd = os.open(shard, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    # --- internals ---

    def _path(self, multihash: bytes) -> Path:
        name = _encode_name(multihash)
        return self._root / name[-3:-1] / name

    def _scan(self) -> tuple[int, int]:
        count = total = 0
        for shard in self._root.iterdir():
            if shard.name == _TMP or not shard.is_dir():
                continue
            with os.scandir(shard) as entries:
                for entry in entries:
                    count += 1
                    total += entry.stat().st_size
        return count, total


def _encode_name(multihash: bytes) -> str:
    return base64.b32encode(multihash).decode("ascii").rstrip("=")


def _decode_name(name: str) -> bytes:
    return base64.b32decode(name + "=" * (-len(name) % 8))


class BlockWriter:
    """Writes an import's blocks on threads of its own while the importer hashes the next.

    Hashing and writing each take about half the time of an import into the store; in
    separate threads they overlap (both release the GIL on large buffers). ``close`` waits for
    every write, makes the renames durable and raises the first error.
    """

    def __init__(self, store: Blockstore, threads: int = WRITER_THREADS) -> None:
        self._store = store
        self._queue: queue.Queue[tuple[Cid, bytes] | None] = queue.Queue(WRITE_AHEAD_BLOCKS)
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._run, name="block-writer", daemon=True)
            for _ in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def put(self, cid: Cid, block: bytes, *, verify: bool = False) -> bool:
        if self._error is not None:
            raise self._error
        self._queue.put((cid, block))
        return True

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        if self._error is not None:
            raise self._error
        self._store.sync()

    def __enter__(self) -> "BlockWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._store.put(*item, verify=False)
                except BaseException as exc:  # handed to the importer's thread by put/close
                    self._error = exc
